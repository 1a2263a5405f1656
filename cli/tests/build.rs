//! `ssgen build` end to end on real temp trees: real tarballs, squashfs and
//! qcow2 files, every digest recomputed here apart from ssgen.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;
use ssgen_tests::images::{self, ImageMeta};

const V1: &str = "20260801_0312";
const V2: &str = "20260802_0312";

fn ssgen(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(args)
        .arg(root)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("ssgen runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sha(bytes: &[u8]) -> String {
    ssgen_tests::hex(&sha2::Sha256::digest(bytes))
}

fn read(root: &Path, rel: &str) -> Vec<u8> {
    fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A tree with a container (squashfs), a VM (qcow2) with requirements, an
/// LXD-only root.tar.xz image and a product with two different metadata
/// tarballs.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    let d = |p: &str| root.join(p);
    let c = d(&format!("images/debian/12/amd64/default/{V1}"));
    images::metadata_tarball(
        &c,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 1),
    )
    .expect("meta");
    images::squashfs(&c, "rootfs.squashfs", "c1").expect("squashfs");
    let vm = d(&format!("images/debian/12/amd64/cloud/{V1}"));
    images::metadata_tarball(
        &vm,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "cloud", 2),
    )
    .expect("meta");
    images::qcow2(&vm, "disk.qcow2", "vm1").expect("qcow2");
    fs::write(d("images/debian/.requirements"), r#"{"cgroup": "v2"}"#).expect("write");
    fs::write(
        d("images/debian/12/amd64/cloud/.requirements"),
        r#"{"secureboot": "false"}"#,
    )
    .expect("write");
    let lxd = d(&format!("images/alpine/3.22/arm64/default/{V1}"));
    images::metadata_tarball(
        &lxd,
        "lxd.tar.xz",
        &ImageMeta::new("arm64", "alpine", "3.22", "default", 3),
    )
    .expect("meta");
    images::root_tar_xz(&lxd, "root.tar.xz", "a1").expect("rootfs");
    let dual = d(&format!("images/ubuntu/24.04/amd64/default/{V1}"));
    images::metadata_tarball(
        &dual,
        "lxd.tar.xz",
        &ImageMeta::new("amd64", "ubuntu", "24.04", "default", 4),
    )
    .expect("meta");
    images::metadata_tarball(
        &dual,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "ubuntu", "24.04", "default", 5),
    )
    .expect("meta");
    images::squashfs(&dual, "rootfs.squashfs", "u1").expect("squashfs");
    (tmp, root)
}

fn catalog(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(root, "streams/v1/images.json")).expect("images.json is JSON")
}

#[test]
fn builds_a_correct_catalog_for_both_clients() {
    let (_tmp, root) = tree();
    let out = ssgen(&["build", "--timestamp", "1785556800"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
    let cat = catalog(&root);

    // Every item: exact size and sha256 of the file it points at.
    let products = cat["products"].as_object().expect("products");
    assert_eq!(products.len(), 4, "{:?}", products.keys());
    for (id, product) in products {
        for (name, version) in product["versions"].as_object().expect("versions") {
            for (key, item) in version["items"].as_object().expect("items") {
                let bytes = read(&root, item["path"].as_str().expect("path"));
                assert_eq!(
                    item["size"].as_u64(),
                    Some(bytes.len() as u64),
                    "{id} {name} {key}"
                );
                assert_eq!(
                    item["sha256"].as_str(),
                    Some(sha(&bytes).as_str()),
                    "{id} {name} {key}"
                );
            }
        }
    }

    let items = |id: &str| products[id]["versions"][V1]["items"].clone();
    let pair =
        |meta: &str, root_file: &str| sha(&[read(&root, meta), read(&root, root_file)].concat());
    // One incus.tar.xz serves both clients, with the same combined digest.
    let c = items("debian:12:amd64:default");
    let cdir = format!("images/debian/12/amd64/default/{V1}");
    let fp = pair(
        &format!("{cdir}/incus.tar.xz"),
        &format!("{cdir}/rootfs.squashfs"),
    );
    for ftype in ["incus.tar.xz", "lxd.tar.xz"] {
        assert_eq!(c[ftype]["ftype"], ftype);
        assert_eq!(
            c[ftype]["combined_squashfs_sha256"].as_str(),
            Some(fp.as_str())
        );
    }
    // The VM's key is spelled with hyphens; requirements inherit and merge.
    let vm = items("debian:12:amd64:cloud");
    let vdir = format!("images/debian/12/amd64/cloud/{V1}");
    assert_eq!(
        vm["lxd.tar.xz"]["combined_disk-kvm-img_sha256"].as_str(),
        Some(
            pair(
                &format!("{vdir}/incus.tar.xz"),
                &format!("{vdir}/disk.qcow2")
            )
            .as_str()
        )
    );
    assert_eq!(vm["disk-kvm.img"]["ftype"], "disk-kvm.img");
    let reqs = serde_json::json!({"cgroup": "v2", "secureboot": "false"});
    assert_eq!(products["debian:12:amd64:cloud"]["requirements"], reqs);
    assert_eq!(products["debian:12:amd64:cloud"]["lxd_requirements"], reqs);
    // root.tar.xz carries the legacy key too.
    let a = items("alpine:3.22:arm64:default");
    let adir = format!("images/alpine/3.22/arm64/default/{V1}");
    let afp = pair(
        &format!("{adir}/lxd.tar.xz"),
        &format!("{adir}/root.tar.xz"),
    );
    assert_eq!(
        a["incus.tar.xz"]["combined_rootxz_sha256"].as_str(),
        Some(afp.as_str())
    );
    assert_eq!(
        a["incus.tar.xz"]["combined_sha256"].as_str(),
        Some(afp.as_str())
    );
    // Two metadata tarballs: each client gets its own fingerprint.
    let u = items("ubuntu:24.04:amd64:default");
    let udir = format!("images/ubuntu/24.04/amd64/default/{V1}");
    let lxd_fp = pair(
        &format!("{udir}/lxd.tar.xz"),
        &format!("{udir}/rootfs.squashfs"),
    );
    let incus_fp = pair(
        &format!("{udir}/incus.tar.xz"),
        &format!("{udir}/rootfs.squashfs"),
    );
    assert_ne!(lxd_fp, incus_fp);
    assert_eq!(
        u["lxd.tar.xz"]["combined_squashfs_sha256"].as_str(),
        Some(lxd_fp.as_str())
    );
    assert_eq!(
        u["incus.tar.xz"]["combined_squashfs_sha256"].as_str(),
        Some(incus_fp.as_str())
    );
    assert_eq!(
        products["ubuntu:24.04:amd64:default"]["release_title"],
        "24.04 (noble)"
    );

    // The index points at the catalog and lists every product, sorted.
    let index: serde_json::Value =
        serde_json::from_slice(&read(&root, "streams/v1/index.json")).expect("index is JSON");
    assert_eq!(index["index"]["images"]["path"], "streams/v1/images.json");
    let listed: Vec<&str> = index["index"]["images"]["products"]
        .as_array()
        .expect("products")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let mut keys: Vec<&str> = products.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(listed, keys);
}

#[test]
fn rebuild_reads_nothing_and_is_byte_identical() {
    let (_tmp, root) = tree();
    let first = ssgen(&["build", "--timestamp", "1000"], &root);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        !stderr(&first).contains("read 0 file(s)"),
        "{}",
        stderr(&first)
    );
    let images = read(&root, "streams/v1/images.json");
    let index = read(&root, "streams/v1/index.json");

    // Nothing changed: no file is read and the output is the same bytes.
    let second = ssgen(&["build", "--timestamp", "2000"], &root);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("(unchanged); read 0 file(s), 0 byte(s)"),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        read(&root, "streams/v1/images.json"),
        images,
        "images.json changed"
    );
    assert_eq!(
        read(&root, "streams/v1/index.json"),
        index,
        "index.json changed"
    );

    // Other bytes of the same size written in place, with the mtime put
    // back (`touch -r`): the ctime still tells, so that one file and its
    // metadata (for the combined digest) are read again.
    let sq = root.join(format!(
        "images/debian/12/amd64/default/{V1}/rootfs.squashfs"
    ));
    let mtime = fs::metadata(&sq).and_then(|m| m.modified()).expect("mtime");
    let mut bytes = fs::read(&sq).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&sq, &bytes).expect("write in place");
    fs::File::options()
        .write(true)
        .open(&sq)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    let third = ssgen(&["build", "--timestamp", "3000"], &root);
    assert!(third.status.success(), "{}", stderr(&third));
    assert!(
        stderr(&third).contains("read 2 file(s)"),
        "{}",
        stderr(&third)
    );
    let new_sha = ssgen_tests::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert!(
        String::from_utf8_lossy(&read(&root, "streams/v1/images.json")).contains(&new_sha),
        "the catalog keeps the stale digest of the edited file"
    );
    assert_ne!(read(&root, "streams/v1/images.json"), images);
}

#[test]
fn dry_run_prints_and_writes_nothing() {
    let (_tmp, root) = tree();
    let out = ssgen(&["build", "--dry-run", "--timestamp", "1785556800"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(printed["updated"], "Sat, 01 Aug 2026 04:00:00 +0000");
    assert!(!root.join("streams").exists(), "dry run wrote streams/");
    assert!(!root.join(".ssgen").exists(), "dry run wrote the cache");
    // The same bytes as a real build.
    let real = ssgen(&["build", "--timestamp", "1785556800"], &root);
    assert!(real.status.success());
    assert_eq!(read(&root, "streams/v1/images.json"), out.stdout);
}

#[test]
fn broken_versions_are_skipped_and_the_rest_published() {
    let (_tmp, root) = tree();
    let d = root.join(format!("images/debian/12/amd64/default/{V2}"));
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 9),
    )
    .expect("meta");
    // A truncated squashfs is still a squashfs by its head: the clients'
    // hash check is what catches it. A file that is not a squashfs at all
    // is refused here.
    let bad = root.join("images/debian/12/amd64/default/20260803_0000");
    fs::create_dir_all(&bad).expect("mkdir");
    fs::copy(d.join("incus.tar.xz"), bad.join("incus.tar.xz")).expect("copy");
    fs::write(bad.join("rootfs.squashfs"), b"<html>not found</html>").expect("write");
    let staging = root.join("images/debian/12/amd64/default/.20260804_0000");
    fs::create_dir_all(&staging).expect("mkdir");
    fs::write(staging.join("incus.tar.xz"), b"partial").expect("write");

    let out = ssgen(&["build"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{V2}: has a metadata tarball but no root file")),
        "{err}"
    );
    assert!(
        err.contains("rootfs.squashfs is not a squashfs file"),
        "{err}"
    );
    assert!(
        !err.contains(".20260804_0000"),
        "a hidden staging dir was read: {err}"
    );
    let cat = catalog(&root);
    let versions = cat["products"]["debian:12:amd64:default"]["versions"]
        .as_object()
        .expect("versions");
    assert_eq!(versions.keys().collect::<Vec<_>>(), [V1]);
    assert_eq!(cat["products"].as_object().map(|p| p.len()), Some(4));
}

/// Bad input that blocks publishing: a clear error naming the file, exit 1,
/// and the published catalog left as it was.
fn assert_refused(root: &Path, needle: &str) {
    let before = read(root, "streams/v1/images.json");
    let out = ssgen(&["build"], root);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(needle),
        "{needle:?} not in: {}",
        stderr(&out)
    );
    assert_eq!(
        read(root, "streams/v1/images.json"),
        before,
        "published catalog changed"
    );
    let leftovers: Vec<_> = fs::read_dir(root.join("streams/v1"))
        .expect("streams/v1")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_is_refused_and_the_published_catalog_kept() {
    let (_tmp, root) = tree();
    assert!(ssgen(&["build"], &root).status.success());

    let req = root.join("images/debian/.requirements");
    fs::write(&req, r#"{"secureboot": false}"#).expect("write");
    assert_refused(
        &root,
        "images/debian/.requirements: value of \"secureboot\" is false, not a string",
    );
    fs::write(&req, r#"{"cgroup": "v2""#).expect("write");
    assert_refused(&root, "images/debian/.requirements: is not valid JSON");
    fs::write(&req, r#"{"cgroup": "v2"}"#).expect("write");

    let outside = root.parent().expect("parent").join("outside.squashfs");
    fs::write(&outside, b"hsqs").expect("write");
    let link = root.join(format!("images/debian/12/amd64/default/{V2}"));
    fs::create_dir_all(&link).expect("mkdir");
    std::os::unix::fs::symlink(&outside, link.join("rootfs.squashfs")).expect("symlink");
    assert_refused(&root, "symbolic link points outside the root");
    fs::remove_dir_all(&link).expect("cleanup");

    assert!(ssgen(&["build"], &root).status.success());
}

#[test]
fn non_utf8_names_are_refused() {
    use std::os::unix::ffi::OsStringExt;
    let (_tmp, root) = tree();
    assert!(ssgen(&["build"], &root).status.success());
    let bad = root
        .join("images")
        .join(std::ffi::OsString::from_vec(b"caf\xe9".to_vec()));
    fs::create_dir_all(&bad).expect("mkdir");
    assert_refused(&root, "is not valid UTF-8");
    fs::remove_dir_all(&bad).expect("cleanup");
    assert!(ssgen(&["build"], &root).status.success());
}

#[test]
fn dangling_link_fails_without_writing() {
    let (_tmp, root) = tree();
    assert!(ssgen(&["build"], &root).status.success());
    // A new version whose root cannot be opened when it is hashed: a
    // dangling link inside the root looks like a file that vanished.
    let d = root.join(format!("images/debian/12/amd64/default/{V2}"));
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 9),
    )
    .expect("meta");
    std::os::unix::fs::symlink(d.join("gone.squashfs"), d.join("rootfs.squashfs"))
        .expect("symlink");
    let before = read(&root, "streams/v1/images.json");
    let out = ssgen(&["build"], &root);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("rootfs.squashfs"), "{}", stderr(&out));
    assert_eq!(read(&root, "streams/v1/images.json"), before);
}

/// Cuts `rel` under `root` to `len` bytes, keeping the original to put back.
fn cut(root: &Path, rel: &str, len: usize) -> Vec<u8> {
    let whole = read(root, rel);
    fs::write(root.join(rel), &whole[..len]).expect("write");
    whole
}

#[test]
fn files_cut_short_and_unreadable_metadata_are_refused() {
    let (_tmp, root) = tree();
    assert!(ssgen(&["build"], &root).status.success());
    let c = format!("images/debian/12/amd64/default/{V1}");

    // An upload that stopped: each format that can tell is caught, by name.
    for (rel, len, why) in [
        (format!("{c}/incus.tar.xz"), 100, "xz stream has no end"),
        (
            format!("images/alpine/3.22/arm64/default/{V1}/root.tar.xz"),
            64,
            "xz stream has no end",
        ),
        (
            format!("{c}/rootfs.squashfs"),
            96,
            "squashfs superblock says",
        ),
    ] {
        let whole = cut(&root, &rel, len);
        assert_refused(&root, &format!("{rel}: the {why}"));
        fs::write(root.join(&rel), whole).expect("restore");
    }

    // A whole xz tarball without metadata.yaml: no client could import it.
    let meta = format!("{c}/incus.tar.xz");
    let whole = read(&root, &meta);
    let stage = root.parent().expect("parent").join("not-metadata");
    fs::create_dir_all(&stage).expect("mkdir");
    fs::write(stage.join("README"), "no metadata here\n").expect("write");
    let status = std::process::Command::new("tar")
        .arg("-cJf")
        .arg(root.join(&meta))
        .arg("-C")
        .arg(&stage)
        .arg("README")
        .status()
        .expect("tar");
    assert!(status.success());
    assert_refused(&root, &format!("{meta}: "));
    let out = ssgen(&["build"], &root);
    assert!(stderr(&out).contains("metadata.yaml"), "{}", stderr(&out));
    fs::write(root.join(&meta), whole).expect("restore");

    // Put back, the tree builds again.
    let out = ssgen(&["build"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn sha256sums_hold_back_incomplete_versions_and_refuse_damaged_files() {
    let (_tmp, root) = tree();
    let c = format!("images/debian/12/amd64/default/{V1}");
    let sums = |lines: &[(&str, String)]| {
        let text: String = lines
            .iter()
            .map(|(name, hex)| format!("{hex}  {name}\n"))
            .collect();
        fs::write(root.join(&c).join("SHA256SUMS"), text).expect("write");
    };
    let meta = sha(&read(&root, &format!("{c}/incus.tar.xz")));
    let sqfs = sha(&read(&root, &format!("{c}/rootfs.squashfs")));

    // Right digests: published as usual.
    sums(&[
        ("incus.tar.xz", meta.clone()),
        ("rootfs.squashfs", sqfs.clone()),
    ]);
    let out = ssgen(&["build"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(catalog(&root)["products"]["debian:12:amd64:default"]["versions"][V1].is_object());

    // A listed file not there yet: that version waits, the rest is published.
    sums(&[
        ("incus.tar.xz", meta.clone()),
        ("rootfs.squashfs", sqfs.clone()),
        ("root.tar.xz", sqfs.clone()),
    ]);
    let out = ssgen(&["build"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SHA256SUMS lists root.tar.xz, which is not here"),
        "{}",
        stderr(&out)
    );
    let cat = catalog(&root);
    assert!(cat["products"]["debian:12:amd64:default"].is_null());
    assert!(cat["products"]["debian:12:amd64:cloud"].is_object());

    // A file that differs from its line: refused by name, nothing written.
    sums(&[
        ("incus.tar.xz", meta.clone()),
        ("rootfs.squashfs", "0".repeat(64)),
    ]);
    assert_refused(
        &root,
        &format!(
            "{c}/rootfs.squashfs: has sha256 {sqfs}, but SHA256SUMS says {}",
            "0".repeat(64)
        ),
    );

    // Another tool's file of that name: reported, and the version published.
    fs::write(root.join(&c).join("SHA256SUMS"), "not a checksum list\n").expect("write");
    let out = ssgen(&["build"], &root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{c}/SHA256SUMS: is not a checksum list (line 1")),
        "{}",
        stderr(&out)
    );
    assert!(catalog(&root)["products"]["debian:12:amd64:default"]["versions"][V1].is_object());
}
