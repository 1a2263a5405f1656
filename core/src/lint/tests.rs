use serde_json::{Value, json};

use super::*;
use crate::remote::{INDEX_PATH, load_remote};
use crate::view::{ImageType, View, view};

const EXAMPLE_INDEX: &str = include_str!("../../tests/lint/example/index.json");
const EXAMPLE_IMAGES: &str = include_str!("../../tests/lint/example/images.json");
const IMAGES: &str = "streams/v1/images.json";
const DEF: &str = "/products/debian:12:amd64:default";
const CLOUD: &str = "/products/debian:12:amd64:cloud";
const DEF_V: &str = "/products/debian:12:amd64:default/versions/20260801_0312";
const CLOUD_V: &str = "/products/debian:12:amd64:cloud/versions/20260801_0345";

fn run(index: &str, images: &str) -> Report {
    lint(index, &|p| (p == IMAGES).then(|| images.to_owned()))
}

fn example() -> (Value, Value) {
    (
        serde_json::from_str(EXAMPLE_INDEX).expect("valid fixture"),
        serde_json::from_str(EXAMPLE_IMAGES).expect("valid fixture"),
    )
}

/// Lints the example catalog after `edit` changed its images.json.
fn with(edit: impl FnOnce(&mut Value)) -> Report {
    let (index, mut images) = example();
    edit(&mut images);
    run(&index.to_string(), &images.to_string())
}

/// Lints the example catalog after `edit` changed its index.json.
fn with_index(edit: impl FnOnce(&mut Value)) -> Report {
    let (mut index, images) = example();
    edit(&mut index);
    run(&index.to_string(), &images.to_string())
}

fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
    v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} is in the fixture"))
}

fn obj<'a>(v: &'a mut Value, pointer: &str) -> &'a mut serde_json::Map<String, Value> {
    at(v, pointer).as_object_mut().expect("an object")
}

fn find<'a>(r: &'a Report, code: &str) -> &'a Diagnostic {
    r.findings
        .iter()
        .find(|f| f.code_str() == code)
        .unwrap_or_else(|| panic!("no {code} in:\n{r}"))
}

fn lacks(r: &Report, code: &str) {
    assert!(
        r.findings.iter().all(|f| f.code_str() != code),
        "unexpected {code} in:\n{r}"
    );
}

const LXD: &[Client] = &[Client::Lxd];
const INCUS: &[Client] = &[Client::Incus];

fn hex(seed: &str) -> String {
    crate::digest::Sha256::of(seed.as_bytes()).to_hex()
}

/// Adds a copy of the default version under `name`, with new digests.
fn add_default_version(images: &mut Value, name: &str) {
    let mut v = at(images, DEF_V).clone();
    for key in ["incus.tar.xz", "lxd.tar.xz"] {
        let item = obj(&mut v, &format!("/items/{key}"));
        item.insert("sha256".into(), json!(hex(&format!("{name}-meta"))));
        item.insert(
            "combined_squashfs_sha256".into(),
            json!(hex(&format!("{name}-fp"))),
        );
    }
    obj(&mut v, "/items/root.squashfs")
        .insert("sha256".into(), json!(hex(&format!("{name}-root"))));
    obj(images, &format!("{DEF}/versions")).insert(name.into(), v);
}

#[test]
fn the_example_is_clean_and_shows_the_table() {
    let r = run(EXAMPLE_INDEX, EXAMPLE_IMAGES);
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.count(Level::Warning) + r.count(Level::Error), 0);
    let remote = load_remote(EXAMPLE_INDEX, &|p| {
        (p == IMAGES).then(|| EXAMPLE_IMAGES.to_owned())
    })
    .expect("the example loads");
    let fp_c = "1599ea550e68efb99e1474cbab37589466a5e937570ae626fbeff6eafac2447e";
    let fp_v = "c1e55601b1325b88ec0dca387c3671f54c84466918e2ee9ef7cb80c1116a86ec";
    for client in Client::ALL {
        let v = view(&remote, client, "x86_64");
        assert!(v.error.is_none() && v.hidden.is_empty() && v.duplicates.is_empty());
        assert_eq!(v.images.len(), 2, "{client}");
        let c = v
            .images
            .iter()
            .find(|i| i.fingerprint == fp_c)
            .expect("container");
        assert_eq!(c.image_type, ImageType::Container);
        assert_eq!(c.architecture, "x86_64");
        assert_eq!(c.root_ftype, "squashfs");
        assert_eq!(c.version, "20260801_0312");
        assert_eq!(c.size, 2048 + 104_857_600);
        assert_eq!(c.created, "2026-08-01");
        assert_eq!(
            c.meta_path,
            "images/debian/12/amd64/default/20260801_0312/incus.tar.xz"
        );
        let vm = v.images.iter().find(|i| i.fingerprint == fp_v).expect("vm");
        assert_eq!(vm.image_type, ImageType::VirtualMachine);
        assert_eq!(vm.root_ftype, "disk-kvm.img");
        assert_eq!(
            vm.properties
                .get("requirements.secureboot")
                .map(String::as_str),
            Some("false")
        );
        assert_eq!(
            vm.root_path.as_deref(),
            Some("images/debian/12/amd64/cloud/20260801_0345/disk.qcow2")
        );
        let mut table: Vec<(String, ImageType, String)> = v
            .aliases
            .iter()
            .map(|a| (a.name.clone(), a.image_type, a.fingerprint.clone()))
            .collect();
        table.sort();
        let mut want = Vec::new();
        for a in [
            "debian/12/default",
            "debian/12",
            "debian/bookworm/default",
            "debian/bookworm",
        ] {
            want.push((a.to_owned(), ImageType::Container, fp_c.to_owned()));
            want.push((format!("{a}/amd64"), ImageType::Container, fp_c.to_owned()));
        }
        for a in ["debian/12/cloud", "debian/bookworm/cloud"] {
            want.push((a.to_owned(), ImageType::VirtualMachine, fp_v.to_owned()));
            want.push((
                format!("{a}/amd64"),
                ImageType::VirtualMachine,
                fp_v.to_owned(),
            ));
        }
        want.sort();
        assert_eq!(table, want, "{client}");
        assert_eq!(c.aliases.len(), 8);
        assert!(v.aliases.iter().all(|a| a.architecture == "x86_64"));
    }
}

#[test]
fn unknown_arch_is_hidden_from_both() {
    let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("x86-64"));
    let f = find(&r, "hidden-unknown-arch");
    assert_eq!(f.level, Level::Warning);
    assert_eq!(f.clients, BOTH);
    assert_eq!(
        f.path,
        "streams/v1/images.json#products[\"debian:12:amd64:default\"]"
    );
    assert!(!r.is_clean());
}

#[test]
fn arch_known_to_one_client() {
    let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("x86_64_v3"));
    assert_eq!(find(&r, "arch-one-client").clients, LXD);
    lacks(&r, "hidden-unknown-arch");
    let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("amd64v3"));
    assert_eq!(find(&r, "arch-one-client").clients, INCUS);
    // LXD HEAD keeps the first word; Incus does not.
    let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("amd64 (64-bit)"));
    assert_eq!(find(&r, "arch-one-client").clients, INCUS);
}

#[test]
fn loongarch_note() {
    let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("loong64"));
    let f = find(&r, "loongarch-old-lxd");
    assert_eq!((f.level, f.clients.as_slice()), (Level::Note, LXD));
    assert!(r.is_clean(), "{r}");
}

#[test]
fn invalid_version_name() {
    let r = with(|v| {
        let versions = obj(v, &format!("{DEF}/versions"));
        let version = versions.remove("20260801_0312").expect("present");
        versions.insert("2026-08-01".into(), version);
    });
    assert_eq!(find(&r, "invalid-version-name").clients, BOTH);
    let r = with(|v| {
        let versions = obj(v, &format!("{DEF}/versions"));
        let version = versions.remove("20260801_0312").expect("present");
        versions.insert("20260231_0312".into(), version);
    });
    find(&r, "invalid-version-name");
}

#[test]
fn metadata_for_one_client_only() {
    let r = with(|v| {
        obj(v, &format!("{DEF_V}/items")).remove("lxd.tar.xz");
    });
    let f = find(&r, "incus-only");
    assert_eq!(f.clients, LXD);
    assert!(
        f.path.ends_with(".versions[\"20260801_0312\"]"),
        "{}",
        f.path
    );
    let r = with(|v| {
        obj(v, &format!("{DEF_V}/items")).remove("incus.tar.xz");
    });
    assert_eq!(find(&r, "lxd-only").clients, INCUS);
    let r = with(|v| {
        let items = obj(v, &format!("{DEF_V}/items"));
        items.remove("incus.tar.xz");
        items.remove("lxd.tar.xz");
    });
    assert_eq!(find(&r, "no-metadata").clients, BOTH);
}

#[test]
fn missing_combined_hash() {
    let r = with(|v| {
        obj(v, &format!("{DEF_V}/items/lxd.tar.xz")).remove("combined_squashfs_sha256");
    });
    let f = find(&r, "missing-combined-hash");
    assert_eq!(f.clients, LXD);
    assert!(
        f.message.contains("combined_squashfs_sha256"),
        "{}",
        f.message
    );
}

#[test]
fn underscore_disk_kvm_key() {
    let r = with(|v| {
        for key in ["incus.tar.xz", "lxd.tar.xz"] {
            let item = obj(v, &format!("{CLOUD_V}/items/{key}"));
            let fp = item
                .remove("combined_disk-kvm-img_sha256")
                .expect("present");
            item.insert("combined_disk_kvm_img_sha256".into(), fp);
        }
    });
    let f = find(&r, "combined-key-spelling");
    assert!(
        f.help.contains("combined_disk-kvm-img_sha256"),
        "{}",
        f.help
    );
    assert_eq!(
        r.codes()
            .iter()
            .filter(|c| **c == "missing-combined-hash")
            .count(),
        2
    );
}

#[test]
fn empty_meta_path_and_lonely_meta() {
    let r = with(|v| *at(v, &format!("{DEF_V}/items/incus.tar.xz/path")) = json!(""));
    assert_eq!(find(&r, "meta-empty-path").clients, INCUS);
    let r = with(|v| {
        obj(v, &format!("{DEF_V}/items")).remove("root.squashfs");
    });
    let lonely: Vec<&[Client]> = r
        .findings
        .iter()
        .filter(|f| f.code_str() == "meta-without-root")
        .map(|f| f.clients.as_slice())
        .collect();
    assert_eq!(lonely, [INCUS, LXD]);
}

#[test]
fn type_errors_break_the_remote() {
    let (index, mut images) = example();
    *at(&mut images, &format!("{CLOUD}/requirements/secureboot")) = json!(false);
    let text = images.to_string();
    let r = run(&index.to_string(), &text);
    let f = find(&r, "remote-type-error");
    assert_eq!(f.level, Level::Error);
    assert_eq!(f.clients, BOTH);
    assert_eq!(
        f.path,
        "streams/v1/images.json#products[\"debian:12:amd64:cloud\"].requirements.secureboot"
    );
    assert!(
        f.message.starts_with("expected a string, found false"),
        "{}",
        f.message
    );
    let err = load_remote(&index.to_string(), &|_| Some(text.clone())).expect_err("broken");
    assert!(
        err.to_string()
            .contains("requirements.secureboot: expected a string, found false"),
        "{err}"
    );

    for (pointer, value, field) in [
        (
            format!("{DEF_V}/items/root.squashfs/size"),
            json!("104857600"),
            ".size",
        ),
        (
            format!("{DEF_V}/items/root.squashfs/size"),
            json!(1.0),
            ".size",
        ),
        (
            format!("{DEF_V}/items/root.squashfs/size"),
            json!(u64::MAX),
            ".size",
        ),
        (format!("{DEF}/aliases"), json!(["debian/12"]), ".aliases"),
        (format!("{DEF}/supported"), json!("yes"), ".supported"),
        (format!("{DEF}/versions"), json!([]), ".versions"),
    ] {
        let r = with(|v| {
            if let Some(slot) = v.pointer_mut(&pointer) {
                *slot = value.clone();
            } else {
                obj(v, DEF).insert("supported".into(), value.clone());
            }
        });
        let f = find(&r, "remote-type-error");
        assert!(f.path.ends_with(field), "{pointer}: {}", f.path);
    }
    let r = with_index(|v| *at(v, "/index/images/products") = json!("debian:12:amd64:default"));
    assert!(
        find(&r, "remote-type-error")
            .path
            .ends_with("index[\"images\"].products")
    );
    let r = with_index(|v| *at(v, "/index/images/products") = json!([1]));
    assert!(find(&r, "remote-type-error").path.ends_with(".products[0]"));
}

#[test]
fn lxd_only_type_error() {
    let (index, mut images) = example();
    *at(&mut images, &format!("{CLOUD}/lxd_requirements/secureboot")) = json!(false);
    let text = images.to_string();
    let r = run(&index.to_string(), &text);
    assert_eq!(find(&r, "remote-type-error").clients, LXD);
    let remote =
        load_remote(&index.to_string(), &|_| Some(text.clone())).expect("Incus still reads it");
    assert!(view(&remote, Client::Lxd, "x86_64").error.is_some());
    assert_eq!(view(&remote, Client::Incus, "x86_64").images.len(), 2);
}

#[test]
fn null_and_unknown_keys_are_fine() {
    let r = with(|v| {
        obj(v, DEF).insert("requirements".into(), Value::Null);
        obj(v, DEF).insert("distro".into(), json!({"anything": [1, 2]}));
        obj(v, &format!("{DEF_V}/items/root.squashfs")).insert("md5".into(), Value::Null);
    });
    assert!(r.is_clean(), "{r}");
}

#[test]
fn invalid_json_empty_and_missing_files() {
    let (index, _) = example();
    let r = run(&index.to_string(), "{\"products\": {");
    assert_eq!(find(&r, "remote-invalid-json").path, IMAGES);
    let r = run(&format!("\u{feff}{index}"), EXAMPLE_IMAGES);
    assert_eq!(find(&r, "remote-invalid-json").path, INDEX_PATH);
    let r = run(&index.to_string(), "");
    find(&r, "remote-empty-file");
    let r = lint(&index.to_string(), &|_| None);
    let f = find(&r, "products-file-missing");
    assert_eq!((f.level, f.path.as_str()), (Level::Error, IMAGES));
}

#[test]
fn duplicate_fingerprint_across_products() {
    let r = with(|v| {
        let mut copy = at(v, DEF).clone();
        copy["aliases"] = json!("debian/12/other");
        copy["variant"] = json!("other");
        obj(v, "/products").insert("debian:12:amd64:other".into(), copy);
    });
    let f = find(&r, "duplicate-fingerprint");
    assert_eq!(f.level, Level::Error);
    assert_eq!(f.clients, BOTH);
    assert!(f.message.contains("1599ea550e68"), "{}", f.message);
    assert!(
        f.message.contains("; LXD and Incus list them all"),
        "{}",
        f.message
    );
}

#[test]
fn alias_clash_goes_to_the_first_product() {
    let r = with(|v| {
        let mut copy = at(v, DEF).clone();
        copy["os"] = json!("Devuan");
        copy["aliases"] = json!("debian/12");
        let item = &mut copy["versions"]["20260801_0312"]["items"];
        for key in ["incus.tar.xz", "lxd.tar.xz"] {
            item[key]["combined_squashfs_sha256"] = json!(hex("devuan"));
        }
        // Newer, yet it loses: Debian sorts before Devuan.
        let version = copy["versions"]["20260801_0312"].clone();
        copy["versions"] = json!({"20270101_0000": version});
        obj(v, "/products").insert("devuan:5:amd64:default".into(), copy);
    });
    let f = find(&r, "alias-clash");
    assert_eq!(f.clients, BOTH);
    assert!(f.path.contains("devuan:5:amd64:default"), "{}", f.path);
    assert!(
        f.message.contains("debian:12:amd64:default"),
        "{}",
        f.message
    );
    // Older versions of one product losing aliases is normal.
    let r = with(|v| add_default_version(v, "20260901_0312"));
    lacks(&r, "alias-clash");
    assert!(r.is_clean(), "{r}");
}

#[test]
fn newest_version_wins_aliases() {
    let (index, mut images) = example();
    add_default_version(&mut images, "20260901_0312");
    let text = images.to_string();
    let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
    let v = view(&remote, Client::Incus, "amd64");
    let a = v
        .aliases
        .iter()
        .find(|a| a.name == "debian/12")
        .expect("alias");
    assert_eq!(a.version, "20260901_0312");
    assert_eq!(v.shadowed.iter().filter(|s| !s.tie).count(), 8);
}

#[test]
fn alias_ambiguous_on_a_tie() {
    let r = with(|v| {
        let items = obj(v, &format!("{DEF_V}/items"));
        for key in ["incus.tar.xz", "lxd.tar.xz"] {
            let mut second = items[key].clone();
            second["path"] = json!(format!("images/other-{key}"));
            second["sha256"] = json!(hex("other-meta"));
            second["combined_squashfs_sha256"] = json!(hex("other-fp"));
            items.insert(format!("{key}.2"), second);
        }
    });
    assert_eq!(find(&r, "alias-ambiguous").clients, BOTH);
    find(&r, "lxd-first-meta-only");
}

#[test]
fn requirement_traps() {
    let r = with(|v| *at(v, &format!("{CLOUD}/lxd_requirements")) = json!({}));
    let f = find(&r, "empty-lxd-requirements");
    assert_eq!((f.level, f.clients.as_slice()), (Level::Warning, LXD));
    let r = with(|v| *at(v, &format!("{CLOUD}/lxd_requirements")) = json!({"secureboot": "true"}));
    assert_eq!(find(&r, "lxd-requirements-differ").clients, BOTH);
    let r = with(|v| *at(v, &format!("{CLOUD}/requirements")) = json!({}));
    assert_eq!(find(&r, "lxd-requirements-only").clients, INCUS);
    let r = with(|v| {
        obj(v, CLOUD).remove("lxd_requirements");
    });
    assert_eq!(find(&r, "requirements-old-lxd").level, Level::Note);
    assert!(r.is_clean());
    let r = with(|v| {
        *at(v, &format!("{CLOUD}/requirements")) = json!({"secure_boot": "false"});
        *at(v, &format!("{CLOUD}/lxd_requirements")) = json!({"secure_boot": "false"});
    });
    let f = find(&r, "secure_boot-typo");
    assert!(
        f.path.ends_with(".requirements.secure_boot")
            || f.path.ends_with(".lxd_requirements.secure_boot")
    );
    lacks(&r, "requirement-unknown-key");
    let r = with(|v| *at(v, &format!("{DEF}/requirements")) = json!({"gpu": "yes"}));
    find(&r, "requirement-unknown-key");
    let r = with(|v| *at(v, &format!("{DEF}/requirements")) = json!({"cgroup": "1"}));
    find(&r, "requirement-value");
}

#[test]
fn lxd_reads_empty_lxd_requirements() {
    let (index, mut images) = example();
    *at(&mut images, &format!("{CLOUD}/lxd_requirements")) = json!({});
    let text = images.to_string();
    let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
    let lxd = view(&remote, Client::Lxd, "x86_64");
    let incus = view(&remote, Client::Incus, "x86_64");
    let vm = |v: &View| {
        v.images
            .iter()
            .find(|i| i.image_type == ImageType::VirtualMachine)
            .cloned()
            .expect("vm")
    };
    assert!(!vm(&lxd).properties.contains_key("requirements.secureboot"));
    assert!(
        vm(&incus)
            .properties
            .contains_key("requirements.secureboot")
    );
    // null is no map: LXD falls back to requirements.
    *at(&mut images, &format!("{CLOUD}/lxd_requirements")) = Value::Null;
    let text = images.to_string();
    let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
    assert!(
        vm(&view(&remote, Client::Lxd, "x86_64"))
            .properties
            .contains_key("requirements.secureboot")
    );
}

#[test]
fn support_eol_format() {
    let r = with(|v| {
        obj(v, DEF).insert("support_eol".into(), json!("2028/06/30"));
    });
    find(&r, "support-eol-format");
    let r = with(|v| {
        obj(v, DEF).insert("support_eol".into(), json!("2028-06-30"));
    });
    lacks(&r, "support-eol-format");
}

#[test]
fn mixed_version_formats() {
    let r = with(|v| add_default_version(v, "202608010400"));
    let f = find(&r, "mixed-version-format");
    assert!(f.message.contains("\"20260801_0312\""), "{}", f.message);
}

/// The cloud product with a second version carrying a VM delta; when
/// `squashfs_in_base`, the base version also has a squashfs root.
fn vm_delta(squashfs_in_base: bool) -> Report {
    with(|v| {
        let base = at(v, CLOUD_V).clone();
        if squashfs_in_base {
            let items = obj(v, &format!("{CLOUD_V}/items"));
            items.insert(
                "root.squashfs".into(),
                json!({"ftype": "squashfs", "path": "images/x/rootfs.squashfs", "sha256": hex("sq"), "size": 5}),
            );
            for key in ["incus.tar.xz", "lxd.tar.xz"] {
                items[key]["combined_squashfs_sha256"] = json!(hex("base-sq-fp"));
            }
        }
        let mut newer = base;
        for key in ["incus.tar.xz", "lxd.tar.xz"] {
            newer["items"][key]["sha256"] = json!(hex("m2"));
            newer["items"][key]["combined_disk-kvm-img_sha256"] = json!(hex("fp2"));
        }
        newer["items"]["disk.qcow2"]["sha256"] = json!(hex("d2"));
        newer["items"]["delta"] = json!({"ftype": "disk-kvm.img.vcdiff", "path": "images/x/d.vcdiff",
            "sha256": hex("delta"), "size": 10, "delta_base": "20260801_0345"});
        obj(v, &format!("{CLOUD}/versions")).insert("20260802_0345".into(), newer);
    })
}

#[test]
fn vm_deltas_and_incus() {
    let r = vm_delta(false);
    let f = find(&r, "vm-delta-incus");
    assert_eq!((f.level, f.clients.as_slice()), (Level::Warning, INCUS));
    let r = vm_delta(true);
    let f = find(&r, "vm-delta-incus");
    assert_eq!((f.level, f.clients.as_slice()), (Level::Error, INCUS));
    assert!(f.message.contains(&hex("base-sq-fp")), "{}", f.message);
}

#[test]
fn delta_bases() {
    let add = |base: &'static str, ftype: &'static str| {
        with(move |v| {
            obj(v, &format!("{DEF_V}/items")).insert(
                "delta".into(),
                json!({"ftype": ftype, "path": "images/d.vcdiff", "sha256": hex("d"), "size": 3, "delta_base": base}),
            );
            if base == "20260701_0000" {
                let mut old = at(v, DEF_V).clone();
                for key in ["incus.tar.xz", "lxd.tar.xz"] {
                    obj(&mut old, &format!("/items/{key}")).remove("combined_squashfs_sha256");
                }
                obj(v, &format!("{DEF}/versions")).insert(base.into(), old);
            }
        })
    };
    assert_eq!(
        find(
            &add("20200101_0000", "squashfs.vcdiff"),
            "delta-base-missing"
        )
        .clients,
        BOTH
    );
    find(
        &add("20260701_0000", "squashfs.vcdiff"),
        "delta-base-no-hash",
    );
    find(&add("20260801_0312", "disk-kvm.img.vcdiff"), "delta-orphan");
}

#[test]
fn digests() {
    let root = format!("{DEF_V}/items/root.squashfs");
    let r = with(|v| {
        let s = at(v, &format!("{root}/sha256"))
            .as_str()
            .expect("str")
            .to_ascii_uppercase();
        *at(v, &format!("{root}/sha256")) = json!(s);
    });
    assert_eq!(find(&r, "non-lowercase-digest").level, Level::Error);
    let r = with(|v| {
        *at(
            v,
            &format!("{DEF_V}/items/lxd.tar.xz/combined_squashfs_sha256"),
        ) = json!("abc")
    });
    assert!(
        find(&r, "bad-digest")
            .path
            .ends_with(".combined_squashfs_sha256")
    );
    let r = with(|v| {
        obj(v, &root).remove("sha256");
    });
    find(&r, "missing-sha256");
}

#[test]
fn paths() {
    let root = format!("{DEF_V}/items/root.squashfs/path");
    let r = with(|v| *at(v, &root) = json!("https://cdn.example/rootfs.squashfs"));
    assert_eq!(find(&r, "bad-path").level, Level::Error);
    for bad in [
        "/images/rootfs.squashfs",
        "images/../rootfs.squashfs",
        "images/root fs.squashfs",
    ] {
        let r = with(|v| *at(v, &root) = json!(bad));
        assert_eq!(find(&r, "bad-path").level, Level::Warning, "{bad}");
    }
    let r = with(|v| *at(v, &root) = json!(""));
    find(&r, "empty-path");
    let r = with_index(|v| *at(v, "/index/images/path") = json!("/streams/v1/images.json"));
    assert!(find(&r, "bad-path").path.starts_with(INDEX_PATH));
}

#[test]
fn sizes() {
    let size = format!("{DEF_V}/items/root.squashfs/size");
    let r = with(|v| *at(v, &size) = json!(0));
    assert_eq!(find(&r, "bad-size").clients, LXD);
    let r = with(|v| *at(v, &size) = json!(-1));
    assert_eq!(find(&r, "bad-size").clients, BOTH);
    // A size of the wrong type is its type error only, not also "0 or
    // missing".
    let r = with(|v| *at(v, &size) = json!("412"));
    let f = find(&r, "remote-type-error");
    assert!(f.path.ends_with("].size"), "{}", f.path);
    lacks(&r, "bad-size");
}

#[test]
fn control_characters_in_names() {
    assert!(
        with(|_| {})
            .codes()
            .iter()
            .all(|c| *c != "control-characters")
    );
    for (field, value) in [
        ("os", "debian\u{1b}[31m"),
        ("release_title", "12\nfake line"),
        ("variant", "default\u{202e}"),
    ] {
        let r = with(|v| *at(v, &format!("{DEF}/{field}")) = json!(value));
        let f = find(&r, "control-characters");
        assert!(f.message.starts_with(field), "{field}: {r}");
    }
    let r = with(|v| {
        obj(v, DEF_V).insert("label".into(), json!("rc\u{7}"));
    });
    assert!(
        find(&r, "control-characters").message.contains("label"),
        "{r}"
    );
}

#[test]
fn alias_rules() {
    let set =
        |aliases: &'static str| with(move |v| *at(v, &format!("{DEF}/aliases")) = json!(aliases));
    let long = Box::leak(format!("debian/{}", "x".repeat(52)).into_boxed_str());
    for bad in [
        "debian/12, debian/bookworm",
        "debian/12*",
        "images:debian/12",
        "debian/12/",
        long,
    ] {
        let r = set(bad);
        assert!(r.codes().contains(&"alias-invalid"), "{bad}: {r}");
    }
    assert!(
        set(Box::leak(
            format!("debian/{}", "x".repeat(50)).into_boxed_str()
        ))
        .is_clean()
    );
    // The local server's check is ASCII: a letter such as é at an end is
    // refused (the build drops such an alias by the same rule).
    for unicode in ["debian/12é", "édebian/12"] {
        assert!(set(unicode).codes().contains(&"alias-invalid"), "{unicode}");
    }
    assert!(set("debian/é/12").is_clean());
    // A remote's escape sequence would act on the terminal of whoever
    // lists the image.
    let r = set("x\u{1b}[2Jclear");
    assert!(
        find(&r, "control-characters").message.contains("'\\u{1b}'"),
        "{r}"
    );
    lacks(&r, "alias-invalid");
    find(&set("debian/12,"), "alias-empty-entry");
    find(&set("debian/12/amd64"), "alias-arch-suffix");
    assert_eq!(find(&set(""), "no-aliases").level, Level::Note);
}

#[test]
fn empty_product() {
    let r = with(|v| *at(v, &format!("{DEF}/versions")) = json!({}));
    find(&r, "empty-product");
    let r = with(|v| *at(v, &format!("{DEF}/versions")) = Value::Null);
    find(&r, "empty-product");
}

#[test]
fn empty_sort_property() {
    let r = with(|v| *at(v, &format!("{DEF}/os")) = json!(""));
    find(&r, "empty-sort-property");
}

#[test]
fn unknown_ftype() {
    let r =
        with(|v| *at(v, &format!("{DEF_V}/items/root.squashfs/ftype")) = json!("root.squashfs"));
    let f = find(&r, "unknown-ftype");
    assert_eq!(f.level, Level::Warning);
    assert!(f.help.contains("\"squashfs\""), "{}", f.help);
    find(&r, "meta-without-root");
    let r = with(|v| {
        obj(v, &format!("{DEF_V}/items")).insert(
            "sums".into(),
            json!({"ftype": "SHA256SUMS", "path": "x/SHA256SUMS", "sha256": hex("s"), "size": 1}),
        );
    });
    assert_eq!(find(&r, "unknown-ftype").level, Level::Note);
    assert!(r.is_clean());
}

#[test]
fn inconsistent_combined_hashes() {
    let r = with(|v| {
        *at(
            v,
            &format!("{DEF_V}/items/lxd.tar.xz/combined_squashfs_sha256"),
        ) = json!(hex("wrong"))
    });
    assert_eq!(find(&r, "combined-hash-inconsistent").level, Level::Error);
}

#[test]
fn unified_vm() {
    let (index, mut images) = example();
    let items = obj(&mut images, &format!("{CLOUD_V}/items"));
    items.clear();
    for ftype in ["incus_combined.tar.gz", "lxd_combined.tar.gz"] {
        items.insert(
            ftype.into(),
            json!({"ftype": ftype, "path": "images/u.tar.gz", "sha256": hex("unified"), "size": 9,
                   "combined_type": "virtual-machine"}),
        );
    }
    let text = images.to_string();
    let r = run(&index.to_string(), &text);
    let lxd = r
        .findings
        .iter()
        .find(|f| f.code_str() == "unified-vm" && f.clients == LXD)
        .expect("lxd");
    assert_eq!(lxd.level, Level::Warning);
    let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
    let kind = |c| {
        view(&remote, c, "x86_64")
            .images
            .iter()
            .find(|i| i.fingerprint == hex("unified"))
            .map(|i| (i.image_type, i.root_ftype.clone()))
    };
    assert_eq!(
        kind(Client::Incus),
        Some((ImageType::VirtualMachine, "tar.gz".to_owned()))
    );
    assert_eq!(
        kind(Client::Lxd),
        Some((ImageType::Container, "tar.gz".to_owned()))
    );
    let r = with(|v| {
        obj(v, &format!("{DEF_V}/items/root.squashfs")).insert("combined_type".into(), json!("vm"));
    });
    find(&r, "combined-type-value");
}

#[test]
fn index_rules() {
    let r = with_index(|v| *at(v, "/index/images/datatype") = json!("image-download"));
    find(&r, "index-datatype");
    find(&r, "index-nothing-loaded");
    let r = with_index(|v| *at(v, "/index/images/products") = json!([]));
    let f = find(&r, "index-empty-products");
    assert_eq!(f.path, "streams/v1/index.json#index[\"images\"]");
    let r = with_index(|v| *at(v, "/index") = json!({}));
    find(&r, "index-no-entries");
    let r = with_index(|v| {
        let entry = at(v, "/index/images").clone();
        obj(v, "/index").insert("again".into(), entry);
    });
    find(&r, "index-duplicate-path");
    find(&r, "duplicate-fingerprint");
    let r = with_index(|v| {
        let mut entry = at(v, "/index/images").clone();
        entry["path"] = json!("other/images.json");
        obj(v, "/index").insert("again".into(), entry);
    });
    find(&r, "products-basename-clash");
    let r = with_index(|v| {
        obj(v, "").remove("format");
        *at(v, "/index/images/products") = json!(["debian:12:amd64:default"]);
    });
    assert_eq!(r.codes(), ["index-format", "index-products-mismatch"]);
    let r = with(|v| {
        obj(v, "").remove("format");
    });
    assert_eq!(r.codes(), ["products-format"]);
}

#[test]
fn key_spellings() {
    let text = EXAMPLE_IMAGES.replacen("\"arch\": \"amd64\"", "\"Arch\": \"amd64\"", 1);
    let r = run(EXAMPLE_INDEX, &text);
    let f = find(&r, "key-case");
    assert!(f.message.contains("\"Arch\""), "{}", f.message);
    assert!(r.is_clean(), "{r}");
    // The last spelling wins, as in Go.
    let text = EXAMPLE_IMAGES.replacen(
        "\"arch\": \"amd64\"",
        "\"arch\": \"amd64\", \"ARCH\": \"x86-64\"",
        1,
    );
    let r = run(EXAMPLE_INDEX, &text);
    find(&r, "duplicate-key");
    find(&r, "hidden-unknown-arch");
    // The Kelvin sign folds to k in Go.
    let text = EXAMPLE_IMAGES.replacen("\"sha256\": \"87cb", "\"\u{017F}ha256\": \"87cb", 1);
    let r = run(EXAMPLE_INDEX, &text);
    lacks(&r, "missing-sha256");
    find(&r, "key-case");
}

#[test]
fn no_images_and_display() {
    let r = with(|v| {
        for p in [DEF, CLOUD] {
            *at(v, &format!("{p}/arch")) = json!("pdp11");
        }
    });
    let f = find(&r, "no-images");
    assert_eq!(f.clients, BOTH);
    assert_eq!(
        f.message,
        "LXD and Incus show no image at all from this remote"
    );
    let text = r.to_string();
    assert!(text.contains("warning[hidden-unknown-arch] streams/v1/images.json#products[\"debian:12:amd64:cloud\"]: hidden from LXD and Incus"), "{text}");
    assert!(
        text.contains("\n  help: use an architecture name"),
        "{text}"
    );
    let json = serde_json::to_value(&r).expect("serialises");
    assert_eq!(json["findings"][0]["severity"], "warning");
    assert_eq!(json["findings"][0]["clients"], json!(["lxd", "incus"]));
    assert!(r.summary().ends_with("0 notes"), "{}", r.summary());
}

#[test]
fn lone_products_file() {
    let r = lint_products("images.json", EXAMPLE_IMAGES);
    assert!(r.findings.is_empty(), "{r}");
    let r = lint_products("images.json", "{\"products\": {\"p\": {\"arch\": 5}}}");
    find(&r, "remote-type-error");
}
