use super::*;
use crate::testing::{BOTH_META, product, remote, split};
use crate::view::view;

#[test]
fn go_decoding_semantics() {
    // Case-insensitive keys, null for anything, unknown keys ignored.
    let r = product(
        r#""ARCH":"arm64","Requirements":null,"supported":null,"distro":[1],"#,
        &format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff")),
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let v = view(&r, Client::Lxd, "x86_64");
    assert_eq!(v.images[0].architecture, "aarch64");
    assert_eq!(v.images[0].raw_arch, "arm64");
    // The short alias is listed only on a host of the image's arch.
    assert_eq!(v.images[0].aliases, ["debian/12/arm64"]);
    let v = view(&r, Client::Lxd, "arm64");
    assert_eq!(v.images[0].aliases, ["debian/12", "debian/12/arm64"]);
    assert_eq!(r.spellings.len(), 2);

    for (bad, location) in [
        (r#""size":"1""#, ".size"),
        (r#""size":1.5"#, ".size"),
        (r#""size":9223372036854775808"#, ".size"),
    ] {
        let versions = format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff")).replacen(
            r#""size":2"#,
            bad,
            1,
        );
        let r = product("", &versions);
        assert_eq!(r.problems.len(), 1, "{bad}");
        assert_eq!(r.problems[0].code, Some(Code::RemoteTypeError));
        assert!(r.problems[0].path.ends_with(location));
    }
    // Negative sizes fit Go's int64.
    let versions = format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff")).replacen(
        r#""size":2"#,
        r#""size":-2"#,
        1,
    );
    assert!(product("", &versions).problems.is_empty());
}

#[test]
fn one_client_type_errors() {
    let versions = format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff"));
    let r = product(r#""lxd_requirements":{"nesting":true},"#, &versions);
    assert_eq!(r.problems[0].clients, [Client::Lxd]);
    assert_eq!(
        r.problems[0].short(),
        r#"streams/v1/images.json: products["p"].lxd_requirements.nesting: expected a string, found true"#
    );
    assert!(view(&r, Client::Lxd, "x86_64").error.is_some());
    assert_eq!(view(&r, Client::Incus, "x86_64").images.len(), 1);
    let versions = versions.replacen(
        r#""ftype":"squashfs""#,
        r#""ftype":"squashfs","combined_type":7"#,
        1,
    );
    let r = product("", &versions);
    assert_eq!(r.problems[0].clients, [Client::Incus]);
}

#[test]
fn index_entries_are_filtered() {
    let products = format!(
        r#"{{"products":{{"p":{{"arch":"amd64","versions":{{{}}}}}}}}}"#,
        split("20260801", BOTH_META, "squashfs", "ff")
    );
    let fetch = |p: &str| (p == "a.json").then(|| products.clone());
    let r = Remote::parse(
        r#"{"index":{"x":{"datatype":"image-ids","path":"a.json","products":["p"]},
                    "y":{"datatype":"image-downloads","path":"b.json","products":[]}}}"#,
        &fetch,
    );
    assert!(r.problems.is_empty() && r.files.is_empty());
    let r = Remote::parse(
        r#"{"index":{"z":{"datatype":"image-downloads","path":"/./x/../a.json","products":["p"]}}}"#,
        &fetch,
    );
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].path, "a.json");
    let r = Remote::parse(
        r#"{"index":{"z":{"datatype":"image-downloads","path":"c.json","products":["p"]}}}"#,
        &fetch,
    );
    assert_eq!(r.problems[0].code, Some(Code::ProductsFileMissing));
    assert!(load_remote(r#"[]"#, &fetch).is_err());
    // A JSON null index is an empty index for Go.
    assert!(load_remote("null", &fetch).is_ok_and(|r| r.entries.is_empty()));
}

#[test]
fn helpers() {
    assert_eq!(clean_path("/a//b/./c/../d"), "a/b/d");
    assert_eq!(clean_path("../../x"), "x");
    assert_eq!(
        crate::view::eol_date("2028-02-29"),
        Some("2028-02-29".to_owned())
    );
    assert_eq!(crate::view::eol_date("2027-02-29"), None);
    assert_eq!(crate::view::eol_date("2028-6-30"), None);
    assert_eq!(Client::Incus.normalise_arch("x86_64_v2"), Some("x86_64"));
    assert_eq!(Client::Lxd.normalise_arch("x86_64_v2"), None);
    assert_eq!(Client::Lxd.normalise_arch("amd64v3"), Some("x86_64"));
    assert_eq!(
        serde_json::to_string(&Client::Incus).ok().as_deref(),
        Some("\"incus\"")
    );
}

#[test]
fn go_semantics_of_repeated_keys_and_null() {
    // A type error in an earlier key still fails, although the last wins.
    let r = product(
        r#""arch":5,"arch":"amd64","#,
        &format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff")),
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].path.ends_with(r#"products["p"].arch"#));
    assert_eq!(r.files[0].products["p"].arch, "amd64");
    // null leaves a string as it was, and empties a map.
    let r = product(
        r#""release_title":"bookworm","release_title":null,"requirements":{"a":"1"},"requirements":null,"#,
        "{}",
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let p = &r.files[0].products["p"];
    assert_eq!(p.release_title, "bookworm");
    assert_eq!(p.requirements, None);
    // A repeated struct key merges; a repeated map element is replaced.
    let r = remote(
        r#"{"products":{"p":{"versions":{"a":{"label":"x"}},"versions":{"b":{}}},
            "p":{"arch":"arm64"}}}"#,
    );
    let p = &r.files[0].products["p"];
    assert_eq!(p.arch, "arm64");
    assert!(p.versions.is_empty(), "the second p replaced the first");
    let r = remote(r#"{"products":{"p":{"versions":{"a":{"label":"x"}},"versions":{"b":{}}}}}"#);
    let versions: Vec<&String> = r.files[0].products["p"].versions.keys().collect();
    assert_eq!(versions, ["a", "b"]);
    assert_eq!(r.spellings.len(), 1, "versions twice: {:?}", r.spellings);
}

/// A catalog's claims: what verify compares, without any IO.
#[test]
fn claims_pair_metadata_with_every_root_once() {
    let a = "a".repeat(64);
    let r = remote(&format!(
        r#"{{"products":{{"p":{{"versions":{{"v":{{"items":{{
        "incus.tar.xz":{{"ftype":"incus.tar.xz","path":"images/m","size":1,"sha256":"{a}","combined_squashfs_sha256":"x","combined_disk-kvm-img_sha256":"y"}},
        "lxd.tar.xz":{{"ftype":"lxd.tar.xz","path":"images/m","size":1,"sha256":"{a}","combined_squashfs_sha256":"x"}},
        "root":{{"ftype":"squashfs","path":"images/r","size":2}},
        "escape":{{"ftype":"squashfs","path":"../etc/passwd","size":2,"sha256":"{a}"}}}}}}}}}}}}}}"#
    ));
    let c = r.claims();
    assert_eq!(c.files.keys().collect::<Vec<_>>(), ["images/m", "images/r"]);
    // disk-kvm.img has no root here; both metadata items share one claim.
    assert_eq!(c.combined.len(), 1, "{:?}", c.combined);
    assert_eq!(c.combined[0].root, "images/r");
    assert!(c.combined[0].label.contains("lxd.tar.xz+root"));
    let why: Vec<&str> = c.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        why.iter().any(|m| m.contains("root: has no sha256")),
        "{why:?}"
    );
    assert!(
        why.iter().any(|m| m.contains("not a relative path")),
        "{why:?}"
    );

    let sizes = [("images/m".to_owned(), 1), ("images/r".to_owned(), 3)].into();
    let plan = c.plan(&sizes);
    assert_eq!(plan.prefixes.len(), 1);
    assert_eq!(plan.bodies[0].prefixes, ["images/m"]);
    let found = c.compare(&crate::Digests::default(), &sizes);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].code, Some(Code::SizeMismatch));
    assert_eq!(found[0].message, "is 3 bytes, the catalog says 2");
    let missing = c.missing("images/r", "missing");
    assert_eq!(missing.message, "missing (referenced by p v root)");
}

/// Files no item references: withdrawn ones wait, a version the build
/// leaves out gets the build's reason, others mean a stale catalog.
#[test]
fn unreferenced_files_are_judged_by_the_build() {
    use crate::Entry;
    let d = "images/debian/12/amd64/default";
    let listing = vec![
        Entry::side(format!("{d}/20260701_0000/.withdrawn"), r#"{"since": 5}"#),
        Entry::file(format!("{d}/20260701_0000/rootfs.squashfs"), 5),
        Entry::side(
            format!("{d}/20260702_0000/.withdrawn"),
            r#"{"since": 5, "files": ["disk.qcow2"]}"#,
        ),
        Entry::file(format!("{d}/20260702_0000/disk.qcow2"), 5),
        Entry::file(format!("{d}/20260703_0000/incus.tar.xz"), 5),
        Entry::file(format!("{d}/20260704_0000/incus.tar.xz"), 5),
        Entry::file(format!("{d}/20260704_0000/rootfs.squashfs"), 5),
        Entry::file(format!("{d}/20260704_0000/build.log"), 5),
        Entry::side(format!("{d}/metadata.json"), "{}"),
    ];
    let scan = crate::scan(&listing, &crate::Config::new(0));
    let found = Claims::default().unreferenced(&listing, &scan);
    assert_eq!(found.withdrawn.len(), 2, "{found:?}");
    assert_eq!(found.others, [format!("{d}/20260704_0000/build.log")]);
    let [half, stale @ ..] = found.problems.as_slice() else {
        panic!("problems: {found:?}");
    };
    assert!(half.path.contains("20260703_0000"), "{}", half.path);
    assert!(half.message.contains("no root file"), "{}", half.message);
    assert!(!half.message.contains("ssgen build"), "{}", half.message);
    assert!(half.help.starts_with("finish the upload"), "{}", half.help);
    // A version the build would publish: the catalog is stale.
    assert_eq!(stale.len(), 2, "{stale:?}");
    for s in stale {
        assert!(s.path.contains("20260704_0000"), "{}", s.path);
        assert!(s.message.contains("run `ssgen build`"), "{}", s.message);
    }
}
