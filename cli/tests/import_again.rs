//! `ssgen import` of content the root already holds, under another
//! version name or other file names: a no-op that says where it is, never
//! a second copy that makes the build drop a published version. And
//! importing into a root that does not exist yet.

use std::path::{Path, PathBuf};
use std::process::Output;

use ssgen_tests::images::{self, ImageMeta};

mod common;

/// 2026-08-01 10:00 UTC: the export's creation_date, so its version is
/// 20260801_10:00 (or 20260801_1000).
const CREATED: i64 = 1_785_578_400;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An export as `lxc image export` writes it: meta-<hash>.tar.xz and
/// <hash>.squashfs (and a qcow2 disk when `vm`).
fn export(dir: &Path, vm: bool) -> Vec<PathBuf> {
    let meta = images::metadata_tarball(
        dir,
        "meta-9e71.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", CREATED),
    )
    .expect("meta");
    let mut files = vec![
        meta,
        images::squashfs(dir, "9e71.squashfs", "debian").expect("squashfs"),
    ];
    if vm {
        files.push(images::qcow2(dir, "9e71.qcow2", "debian vm").expect("qcow2"));
    }
    files
}

/// Puts the export's files into `root` as version `version`, under the
/// names given, beside an older version `other` (its own image).
fn publish_copy(root: &Path, files: &[PathBuf], version: &str, names: &[&str], other: &str) {
    let product = root.join("images/debian/12/amd64/default");
    let v = product.join(version);
    std::fs::create_dir_all(&v).expect("mkdir");
    for (f, name) in files.iter().zip(names) {
        std::fs::copy(f, v.join(name)).expect("copy");
    }
    let o = product.join(other);
    images::metadata_tarball(
        &o,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", CREATED - 86_400),
    )
    .expect("meta");
    images::squashfs(&o, "rootfs.squashfs", "older").expect("squashfs");
    common::build(root);
}

fn import(files: &[PathBuf], root: &Path) -> Output {
    common::run(
        common::ssgen(&["import", "--timestamp", "1785600000"])
            .args(files)
            .arg(root),
    )
}

fn version_dirs(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("images/debian/12/amd64/default"))
        .expect("product")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Publishes the export's files by hand as `version` (under `names`,
/// beside the version `other`), imports the export, and checks that the
/// import changed nothing and said `says`; returns the root.
fn import_is_a_no_op(
    tmp: &Path,
    version: &str,
    names: &[&str],
    other: &str,
    says: &str,
) -> PathBuf {
    let root = tmp.join("srv");
    let files = export(&tmp.join("export"), false);
    publish_copy(&root, &files, version, names, other);
    let before = common::images_json(&root);
    assert!(before.contains(version), "{before}");
    let out = import(&files, &root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(says), "{}", stderr(&out));
    assert_eq!(common::images_json(&root), before);
    let mut expected = vec![other, version];
    expected.sort_unstable();
    assert_eq!(version_dirs(&root), expected);
    root
}

#[test]
fn an_image_published_under_a_later_version_name_stays_published() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // Uploaded by hand as 20260802_0000: the import's own name,
    // 20260801_1000, would sort first, and the build would keep it and
    // drop the published version as a duplicate.
    import_is_a_no_op(
        tmp.path(),
        "20260802_0000",
        &["incus.tar.xz", "rootfs.squashfs"],
        "20260731_0000",
        "already published as",
    );
}

#[test]
fn the_colon_and_compact_forms_of_one_version_are_one_image() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // The product mixes both forms, so the import may name it
    // 20260801_10:00 beside the published 20260801_1000; whichever form it
    // picks, it finds the published version.
    import_is_a_no_op(
        tmp.path(),
        "20260801_1000",
        &["incus.tar.xz", "rootfs.squashfs"],
        "20260731_23:00",
        "20260801_1000 (the same image); nothing to do",
    );
}

#[test]
fn identical_content_under_other_file_names_is_a_no_op() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // The same version directory the import picks, but the metadata as
    // lxd.tar.xz and the root as root.squashfs.
    let root = import_is_a_no_op(
        tmp.path(),
        "20260801_10:00",
        &["lxd.tar.xz", "root.squashfs"],
        "20260731_23:00",
        "(the same image); nothing to do",
    );
    let dir = root.join("images/debian/12/amd64/default/20260801_10:00");
    assert!(!dir.join("incus.tar.xz").exists() && !dir.join("rootfs.squashfs").exists());
}

#[test]
fn an_export_of_which_a_part_is_published_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    let files = export(&tmp.path().join("export"), true);
    // The container is published; the export adds the VM.
    publish_copy(
        &root,
        &files[..2],
        "20260802_0000",
        &["incus.tar.xz", "rootfs.squashfs"],
        "20260731_0000",
    );
    let before = common::images_json(&root);
    let out = import(&files, &root);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("part of this image is already published in")
            && stderr(&out).contains("20260802_0000"),
        "{}",
        stderr(&out)
    );
    assert_eq!(common::images_json(&root), before);
    assert_eq!(version_dirs(&root), ["20260731_0000", "20260802_0000"]);
}

#[test]
fn importing_into_a_root_that_does_not_exist_creates_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = export(&tmp.path().join("export"), false);
    let root = tmp.path().join("new/srv");
    let out = import(&files, &root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("created the server root {}", root.display())),
        "{}",
        stderr(&out)
    );
    assert!(
        common::images_json(&root).contains("debian:12:amd64:default"),
        "{}",
        stderr(&out)
    );

    // --root works the same way.
    let other = tmp.path().join("other");
    let out = common::run(
        common::ssgen(&["import", "--root"])
            .arg(&other)
            .args(&files),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(other.join("streams/v1/images.json").is_file());

    // An import that fails takes the new root away again.
    let failed = tmp.path().join("failed");
    let out = common::run(
        common::ssgen(&["import", "--delta-max-percent", "0"])
            .args(&files)
            .arg(&failed),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!failed.exists(), "{}", stderr(&out));
}

#[test]
fn a_mistyped_export_file_is_not_taken_for_a_new_root() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = export(&tmp.path().join("export"), false);
    let typo = tmp.path().join("export/9e71.squashfz");
    let out = common::run(
        common::ssgen(&["import"])
            .current_dir(tmp.path())
            .arg(&files[0])
            .arg(&typo),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no such file or folder"),
        "{}",
        stderr(&out)
    );
    assert!(!typo.exists());
    // Named like an image file, the last argument is a source too.
    let typo = tmp.path().join("export/9e71.squashfs.xz");
    let out = common::run(common::ssgen(&["import"]).args(&files).arg(&typo));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!typo.exists());
}
