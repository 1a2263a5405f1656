use super::*;
use crate::testing::{BOTH_META, product, split};
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
