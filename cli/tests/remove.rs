//! `ssgen remove` end to end: by fingerprint prefix, by alias, ambiguous
//! aliases refused with the candidates.

use std::path::Path;
use std::process::{Command, Output};

use sha2::Digest as _;
use ssgen_tests::images::{self, ImageMeta};

const V: &str = "20260801_0312";

mod common;

fn ssgen(root: &Path, args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .arg(root)
        .output()
        .expect("ssgen runs")
}

fn catalog(root: &Path) -> serde_json::Value {
    let bytes = std::fs::read(root.join("streams/v1/images.json")).expect("catalog");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_path_buf();
    let d = root.join(format!("images/debian/12/amd64/default/{V}"));
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 1),
    )
    .expect("meta");
    images::squashfs(&d, "rootfs.squashfs", "ct").expect("squashfs");
    images::qcow2(&d, "disk.qcow2", "vm").expect("qcow2");
    for arch in ["amd64", "arm64"] {
        let a = root.join(format!("images/alpine/3.22/{arch}/default/{V}"));
        images::metadata_tarball(
            &a,
            "incus.tar.xz",
            &ImageMeta::new(arch, "alpine", "3.22", "default", 2),
        )
        .expect("meta");
        images::root_tar_xz(&a, "root.tar.xz", arch).expect("rootfs");
    }
    let out = ssgen(&root, &["build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, root)
}

#[test]
fn fingerprint_prefix_withdraws_only_that_image() {
    let (_tmp, root) = tree();
    let d = root.join(format!("images/debian/12/amd64/default/{V}"));
    let meta = std::fs::read(d.join("incus.tar.xz")).expect("meta");
    let disk = std::fs::read(d.join("disk.qcow2")).expect("disk");
    let fp = ssgen_tests::hex(&sha2::Sha256::digest([meta, disk].concat()));

    let out = ssgen(&root, &["remove", &fp[..12]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = &catalog(&root)["products"]["debian:12:amd64:default"]["versions"][V]["items"];
    assert!(
        items.get("disk-kvm.img").is_none(),
        "VM still listed: {items}"
    );
    assert!(
        items.get("squashfs").is_some(),
        "the container went too: {items}"
    );
    assert!(
        items["incus.tar.xz"]
            .get("combined_disk-kvm-img_sha256")
            .is_none()
    );
    // The file stays for clients with a cached catalog.
    assert!(d.join("disk.qcow2").exists());
}

/// A prefix too short to be taken that fingerprints do start with is told
/// to be too short, not to match nothing; nothing is withdrawn.
#[test]
fn a_too_short_prefix_asks_for_more_characters() {
    let (_tmp, root) = tree();
    let before = catalog(&root);
    let fp = before["products"]["debian:12:amd64:default"]["versions"][V]["items"]["incus.tar.xz"]
        ["combined_squashfs_sha256"]
        .as_str()
        .expect("a fingerprint")
        .to_owned();
    for prefix in [&fp[..1], &fp[..3]] {
        let out = ssgen(&root, &["remove", prefix]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("too short a fingerprint prefix") && err.contains("give more characters"),
            "{prefix}: {err}"
        );
        assert_eq!(catalog(&root), before);
    }
    // Four characters are taken.
    let out = ssgen(&root, &["remove", "--dry-run", &fp[..4]]);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("too short"), "{said}");
    assert!(said.contains(&fp[..12]), "{said}");
}

#[test]
fn ambiguous_alias_is_refused_with_candidates() {
    let (_tmp, root) = tree();
    let before = catalog(&root);
    let out = ssgen(&root, &["remove", "alpine/3.22"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("names 2 images"), "{err}");
    assert!(
        err.contains("alpine:3.22:amd64:default") && err.contains("alpine:3.22:arm64:default"),
        "{err}"
    );
    assert_eq!(catalog(&root), before);

    let out = ssgen(&root, &["remove", "alpine/3.22/arm64"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let products = catalog(&root)["products"].clone();
    assert!(
        products.get("alpine:3.22:arm64:default").is_none(),
        "{products}"
    );
    assert!(products.get("alpine:3.22:amd64:default").is_some());
}

#[test]
fn unknown_target_is_an_error() {
    let (_tmp, root) = tree();
    let out = ssgen(&root, &["remove", "nothing/like/this"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image has the fingerprint or alias"));
}

#[test]
fn type_chooses_between_the_container_and_the_vm_of_one_alias() {
    let (_tmp, root) = tree();
    let before = catalog(&root);
    // debian/12/amd64 names the container and the VM of one version: the
    // hint says how to choose, not to give the form just given.
    let out = ssgen(&root, &["remove", "debian/12/amd64"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("names 2 images"), "{err}");
    assert!(
        err.contains("--type container or --type virtual-machine"),
        "{err}"
    );
    assert!(!err.contains("add the architecture"), "{err}");
    assert_eq!(catalog(&root), before);

    let out = ssgen(
        &root,
        &["remove", "--type", "virtual-machine", "debian/12/amd64"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = &catalog(&root)["products"]["debian:12:amd64:default"]["versions"][V]["items"];
    assert!(
        items.get("disk-kvm.img").is_none(),
        "VM still listed: {items}"
    );
    assert!(
        items.get("squashfs").is_some(),
        "the container went too: {items}"
    );

    // The container is now the only image of the alias; --type container
    // finds it, --type virtual-machine finds nothing.
    let out = ssgen(
        &root,
        &[
            "remove",
            "--dry-run",
            "--type",
            "virtual-machine",
            "debian/12/amd64",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no image of type virtual-machine"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssgen(
        &root,
        &[
            "remove",
            "--dry-run",
            "--type",
            "container",
            "debian/12/amd64",
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("container"));
}

#[test]
fn architectures_are_told_apart_by_the_alias_form() {
    let (_tmp, root) = tree();
    let out = ssgen(&root, &["remove", "alpine/3.22"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("add the architecture (`alpine/3.22/amd64`)"),
        "{err}"
    );
    assert!(!err.contains("--type"), "{err}");
}
