use super::*;
use crate::testing::{BOTH_META, product, split};

#[test]
fn pairs_every_root_with_its_combined_key() {
    let r = product(
        "",
        &format!("{{{}}}", split("20260801", BOTH_META, "root.tar.xz", "ff")),
    );
    for c in Client::ALL {
        let v = view(&r, c, "x86_64");
        assert_eq!(v.images.len(), 1, "{c}");
        let i = &v.images[0];
        assert_eq!((i.fingerprint.as_str(), i.size), ("ff", 3));
        assert_eq!(i.meta_item, c.meta_ftype());
        assert_eq!(i.filename, "meta");
        assert_eq!(i.created, "2026-08-01");
    }
    // root.tar.xz falls back to the legacy combined_sha256.
    let legacy = r#"{"20260801":{"items":{
        "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,"combined_sha256":"11"},
        "r":{"ftype":"root.tar.xz","path":"r","sha256":"bb","size":2}}}}"#;
    let v = view(&product("", legacy), Client::Incus, "x86_64");
    assert_eq!(v.images[0].fingerprint, "11");
    let both = legacy.replace(
        r#""combined_sha256":"11""#,
        r#""combined_sha256":"11","combined_rootxz_sha256":"22""#,
    );
    assert_eq!(
        view(&product("", &both), Client::Incus, "x86_64").images[0].fingerprint,
        "22"
    );
}

#[test]
fn versions_and_descriptions() {
    let versions = format!(
        "{{{},{},{}}}",
        split("20260801_1512", BOTH_META, "squashfs", "new"),
        split("20260731", BOTH_META, "squashfs", "old"),
        split("2026-08-02", BOTH_META, "squashfs", "bad"),
    )
    .replacen(r#""items""#, r#""label":"rc","items""#, 1);
    let r = product(r#""variant":"cloud","#, &versions);
    let lxd = view(&r, Client::Lxd, "x86_64");
    let incus = view(&r, Client::Incus, "x86_64");
    let fps: Vec<&str> = incus
        .images
        .iter()
        .map(|i| i.fingerprint.as_str())
        .collect();
    assert_eq!(fps, ["new", "old"], "newest first");
    assert_eq!(incus.hidden[0].code, Some(Code::InvalidVersionName));
    assert_eq!(
        incus.images[0].description,
        "debian 12 amd64 (cloud) (rc) (20260801_1512)"
    );
    assert_eq!(lxd.images[0].description, "debian 12 (rc) (cloud)");
    let alias = incus
        .aliases
        .iter()
        .find(|a| a.name == "debian/12")
        .expect("alias");
    assert_eq!(alias.fingerprint, "new");
    assert_eq!(incus.images[1].aliases, Vec::<String>::new());
    assert_eq!(incus.images[0].properties["serial"], "20260801_1512");
    assert_eq!(incus.images[0].properties["label"], "rc");
    assert!(!incus.images[0].properties.contains_key("version"));
}

#[test]
fn squashfs_ranks_before_root_tar_xz() {
    let versions = r#"{"20260801":{"items":{
        "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,
             "combined_rootxz_sha256":"xz","combined_squashfs_sha256":"sq"},
        "a":{"ftype":"root.tar.xz","path":"a","sha256":"b1","size":2},
        "b":{"ftype":"squashfs","path":"b","sha256":"b2","size":2}}}}"#;
    let v = view(&product("", versions), Client::Incus, "x86_64");
    assert_eq!(v.images[0].fingerprint, "sq");
    assert_eq!(v.aliases[0].fingerprint, "sq");
    assert!(
        v.shadowed
            .iter()
            .all(|s| !s.tie && s.alias.fingerprint == "xz")
    );
}

#[test]
fn one_metadata_item_per_root_is_fine() {
    let versions = r#"{"20260801":{"items":{
        "m1":{"ftype":"incus.tar.xz","path":"m1","sha256":"a1","size":1,"combined_squashfs_sha256":"sq"},
        "m2":{"ftype":"incus.tar.xz","path":"m2","sha256":"a2","size":1,"combined_disk-kvm-img_sha256":"vm"},
        "s":{"ftype":"squashfs","path":"s","sha256":"b1","size":2},
        "d":{"ftype":"disk-kvm.img","path":"d","sha256":"b2","size":2}}}}"#;
    let v = view(&product("", versions), Client::Incus, "x86_64");
    assert_eq!(v.images.len(), 2);
    assert!(v.hidden.is_empty(), "{:?}", v.hidden);
    let no_vm = versions.replace(r#""combined_disk-kvm-img_sha256":"vm""#, r#""x":"y""#);
    let v = view(&product("", &no_vm), Client::Incus, "x86_64");
    assert_eq!(v.hidden.len(), 2, "neither item pairs with the disk");
    assert!(
        v.hidden
            .iter()
            .all(|h| h.code == Some(Code::MissingCombinedHash))
    );
}

#[test]
fn duplicates_are_recorded() {
    let versions = r#"{"20260801":{"items":{
        "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,"combined_squashfs_sha256":"sq"},
        "a":{"ftype":"squashfs","path":"a","sha256":"b1","size":2},
        "b":{"ftype":"squashfs","path":"b","sha256":"b2","size":2}}}}"#;
    let v = view(&product("", versions), Client::Incus, "x86_64");
    assert_eq!(v.images.len(), 2);
    assert!(v.images.iter().all(|i| i.duplicate));
    assert_eq!(v.duplicates.len(), 1);
    assert_eq!(v.duplicates[0].images.len(), 2);
}

#[test]
fn deltas_per_client() {
    let versions = r#"{
      "20260801":{"items":{
        "m":{"ftype":"incus.tar.xz","path":"m1","sha256":"a1","size":1,"combined_squashfs_sha256":"sq1","combined_disk-kvm-img_sha256":"vm1"},
        "l":{"ftype":"lxd.tar.xz","path":"m1","sha256":"a1","size":1,"combined_squashfs_sha256":"sq1","combined_disk-kvm-img_sha256":"vm1"},
        "s":{"ftype":"squashfs","path":"s1","sha256":"b1","size":2},
        "d":{"ftype":"disk-kvm.img","path":"d1","sha256":"c1","size":2}}},
      "20260802":{"items":{
        "m":{"ftype":"incus.tar.xz","path":"m2","sha256":"a2","size":1,"combined_squashfs_sha256":"sq2","combined_disk-kvm-img_sha256":"vm2"},
        "l":{"ftype":"lxd.tar.xz","path":"m2","sha256":"a2","size":1,"combined_squashfs_sha256":"sq2","combined_disk-kvm-img_sha256":"vm2"},
        "s":{"ftype":"squashfs","path":"s2","sha256":"b2","size":2},
        "d":{"ftype":"disk-kvm.img","path":"d2","sha256":"c2","size":2},
        "sd":{"ftype":"squashfs.vcdiff","path":"sd","sha256":"e1","size":1,"delta_base":"20260801"},
        "dd":{"ftype":"disk-kvm.img.vcdiff","path":"dd","sha256":"e2","size":1,"delta_base":"20260801"}}}}"#;
    let r = product("", versions);
    let base = |c, fp: &str| -> Vec<(String, bool)> {
        let v = view(&r, c, "x86_64");
        let image = v
            .images
            .iter()
            .find(|i| i.fingerprint == fp)
            .cloned()
            .expect("image");
        image
            .deltas
            .iter()
            .map(|d| (d.base_fingerprint.clone(), d.wrong_base))
            .collect()
    };
    assert_eq!(base(Client::Lxd, "sq2"), [("sq1".to_owned(), false)]);
    assert_eq!(base(Client::Lxd, "vm2"), [("vm1".to_owned(), false)]);
    assert_eq!(base(Client::Incus, "sq2"), [("sq1".to_owned(), false)]);
    assert_eq!(base(Client::Incus, "vm2"), [("sq1".to_owned(), true)]);
}
