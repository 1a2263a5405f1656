//! `ssgen import` and `ssgen verify` end to end: real exports made with
//! `tar`, `mksquashfs` and `qemu-img` under export-style names, imported
//! into temp trees; every expected digest is computed here, apart from
//! ssgen; every kind of corruption is made on real files and must be caught.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssgen_tests::images::{self, ImageMeta};

/// 2026-08-01 03:52 UTC.
const DATE: i64 = 1_785_556_320;
const VERSION: &str = "20260801_0352";

fn ssgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("SSL_CERT_FILE")
        // Help is wrapped to COLUMNS when set: fix it for the snapshots.
        .env("COLUMNS", "100")
        .output()
        .expect("ssgen runs")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sha(files: &[&Path]) -> String {
    ssgen_tests::sha256_files(files).expect("hash")
}

fn catalog(root: &Path) -> serde_json::Value {
    let bytes = fs::read(root.join("streams/v1/images.json")).expect("images.json");
    serde_json::from_slice(&bytes).expect("images.json is JSON")
}

fn items(root: &Path, product: &str, version: &str) -> serde_json::Value {
    catalog(root)["products"][product]["versions"][version]["items"].clone()
}

/// Every file under `dir` (hidden ones included) with its digest: a
/// failed import must leave this unchanged.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .display()
                .to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(&p, base, out);
            } else {
                out.insert(rel, sha(&[&p]));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// A metadata tarball from raw `metadata.yaml` text, made with GNU tar
/// (`-J` xz or `-z` gzip).
fn meta_from_yaml(dir: &Path, name: &str, yaml: &str, flag: &str) -> PathBuf {
    let stage = tempfile::tempdir_in(dir).expect("stage");
    fs::write(stage.path().join("metadata.yaml"), yaml).expect("write");
    fs::create_dir(stage.path().join("templates")).expect("mkdir");
    fs::write(stage.path().join("templates/hostname.tpl"), "x\n").expect("write");
    let out = dir.join(name);
    ssgen_tests::run(
        Command::new("tar")
            .arg("-C")
            .arg(stage.path())
            .arg(format!("-c{flag}f"))
            .arg(&out)
            .args(["metadata.yaml", "templates"]),
    )
    .expect("tar");
    out
}

fn yaml(arch: &str, date: &str, os: &str, release: &str, variant: &str) -> String {
    format!(
        "architecture: {arch}\ncreation_date: {date}\nproperties:\n  os: {os}\n  release: \"{release}\"\n  variant: {variant}\n  description: \"{os} {release}: test\"\n"
    )
}

/// An `lxc image export` of a container: `meta-<hash>.tar.xz` and
/// `<hash>.squashfs`.
fn container_export(dir: &Path, label: &str) -> (PathBuf, PathBuf) {
    let hash = format!("{label}0123456789abcdef");
    let meta = images::metadata_tarball(
        dir,
        &format!("meta-{hash}.tar.xz"),
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    let root = images::squashfs(dir, &format!("{hash}.squashfs"), label).expect("squashfs");
    (meta, root)
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let export = tmp.path().join("export");
    let root = tmp.path().join("srv");
    fs::create_dir_all(&export).expect("mkdir");
    fs::create_dir_all(&root).expect("mkdir");
    (tmp, export, root)
}

#[test]
fn imports_a_split_container_export_then_verifies_it() {
    let (_tmp, export, root) = setup();
    let (meta, sqfs) = container_export(&export, "c1");

    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    // x86_64/amd64 is filed as amd64; the version is the UTC creation date.
    let dir = root.join(format!("images/debian/12/amd64/default/{VERSION}"));
    assert_eq!(sha(&[&dir.join("incus.tar.xz")]), sha(&[&meta]));
    assert_eq!(sha(&[&dir.join("rootfs.squashfs")]), sha(&[&sqfs]));
    assert!(meta.exists() && sqfs.exists(), "copied, not moved");
    let items = items(&root, "debian:12:amd64:default", VERSION);
    assert_eq!(
        items["incus.tar.xz"]["combined_squashfs_sha256"],
        sha(&[&meta, &sqfs]),
        "{items:#}"
    );
    assert_eq!(
        items["lxd.tar.xz"]["combined_squashfs_sha256"],
        sha(&[&meta, &sqfs])
    );
    // No staging folder is left.
    assert!(
        snapshot(&root).keys().all(|k| !k.contains(".staging")),
        "{:?}",
        snapshot(&root)
    );

    // The same export again: a no-op.
    let before = snapshot(&root);
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already imported"), "{}", text(&out));
    assert_eq!(snapshot(&root), before);

    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

#[test]
fn imports_a_vm_with_gzip_metadata_under_any_names() {
    let (_tmp, export, root) = setup();
    // aarch64 only at the top level: filed as arm64. Names say nothing.
    let meta = meta_from_yaml(
        &export,
        "vm-metadata.bin",
        &yaml("aarch64", &DATE.to_string(), "ubuntu", "24.04", "cloud"),
        "z",
    );
    let disk = images::qcow2(&export, "a1b2c3.img", "vm1").expect("qcow2");

    let out = ssgen(&["import", s(&disk), s(&meta), "--root", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join(format!("images/ubuntu/24.04/arm64/cloud/{VERSION}"));
    assert_eq!(sha(&[&dir.join("incus.tar.xz")]), sha(&[&meta]));
    assert_eq!(sha(&[&dir.join("disk.qcow2")]), sha(&[&disk]));
    let items = items(&root, "ubuntu:24.04:arm64:cloud", VERSION);
    assert_eq!(
        items["incus.tar.xz"]["combined_disk-kvm-img_sha256"],
        sha(&[&meta, &disk]),
        "{items:#}"
    );
    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn imports_a_unified_tarball_alone() {
    let (_tmp, export, root) = setup();
    let stage = export.join("unified");
    fs::create_dir_all(stage.join("rootfs/etc")).expect("mkdir");
    fs::write(stage.join("rootfs/etc/hostname"), "u\n").expect("write");
    fs::write(
        stage.join("metadata.yaml"),
        yaml("x86_64", &DATE.to_string(), "alpine", "3.22", "default"),
    )
    .expect("write");
    let tarball = export.join("f00dcafe.tar.gz");
    ssgen_tests::run(
        Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-czf")
            .arg(&tarball)
            .args(["metadata.yaml", "rootfs"]),
    )
    .expect("tar");

    // Dry run first: the plan, and nothing written.
    let out = ssgen(&["import", "--dry-run", s(&tarball), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains(&format!(
            "images/alpine/3.22/amd64/default/{VERSION}/incus_combined.tar.gz"
        )),
        "{plan}"
    );
    assert!(snapshot(&root).is_empty(), "{:?}", snapshot(&root));

    let out = ssgen(&["import", s(&tarball), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let items = items(&root, "alpine:3.22:amd64:default", VERSION);
    let item = items
        .as_object()
        .and_then(|m| m.values().find(|i| i["ftype"] == "incus_combined.tar.gz"))
        .unwrap_or_else(|| panic!("no unified item: {items:#}"));
    assert_eq!(item["sha256"], sha(&[&tarball]));
}

/// A seeds' folder with both clients' metadata tarballs keeps both names,
/// each client's item pointing at its own file; another pair of names is
/// two tarballs for one image, refused.
#[test]
fn a_seed_folder_with_both_metadata_tarballs_keeps_both() {
    let (_tmp, export, root) = setup();
    let src = export.join("seed");
    let mut lxd_meta = ImageMeta::new("amd64", "debian", "12", "default", DATE);
    lxd_meta.description = "for LXD".into();
    let lxd = images::metadata_tarball(&src, "lxd.tar.xz", &lxd_meta).expect("meta");
    let incus = images::metadata_tarball(
        &src,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    assert_ne!(sha(&[&lxd]), sha(&[&incus]));
    let sqfs = images::squashfs(&src, "rootfs.squashfs", "s1").expect("squashfs");

    let out = ssgen(&["import", s(&src), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join(format!("images/debian/12/amd64/default/{VERSION}"));
    assert_eq!(sha(&[&dir.join("lxd.tar.xz")]), sha(&[&lxd]));
    assert_eq!(sha(&[&dir.join("incus.tar.xz")]), sha(&[&incus]));
    assert_eq!(sha(&[&dir.join("rootfs.squashfs")]), sha(&[&sqfs]));
    let items = items(&root, "debian:12:amd64:default", VERSION);
    assert_eq!(items["lxd.tar.xz"]["sha256"], sha(&[&lxd]));
    assert_eq!(items["incus.tar.xz"]["sha256"], sha(&[&incus]));

    let other = export.join("other");
    fs::create_dir_all(&other).expect("mkdir");
    for name in ["a.tar.xz", "b.tar.xz"] {
        fs::copy(&incus, other.join(name)).expect("copy");
    }
    fs::copy(&sqfs, other.join("rootfs.squashfs")).expect("copy");
    let out = ssgen(&["import", "--variant", "two", s(&other), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a.tar.xz and ") && text(&out).contains("metadata tarball"),
        "{}",
        text(&out)
    );
}

#[test]
fn imports_a_seed_folder_with_move_overrides_and_aliases() {
    let (_tmp, export, root) = setup();
    let src = export.join("build");
    let meta = images::metadata_tarball(
        &src,
        "lxd.tar.xz",
        &ImageMeta::new("amd64", "Debian", "12", "default", DATE),
    )
    .expect("meta");
    let rootfs = images::root_tar_xz(&src, "root.tar.xz", "r1").expect("rootfs");
    fs::write(src.join("SHA256SUMS"), "not an image\n").expect("write");
    let (meta_sum, root_sum) = (sha(&[&meta]), sha(&[&rootfs]));
    let combined = sha(&[&meta, &rootfs]);

    let out = ssgen(&[
        "import",
        "--move",
        "--os",
        "debian",
        "--variant",
        "slim",
        "--alias",
        "deb/slim",
        s(&src),
        s(&root),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !meta.exists() && !rootfs.exists(),
        "--move removes the sources"
    );
    assert!(
        src.join("SHA256SUMS").exists(),
        "non-image files are left alone"
    );
    let dir = root.join(format!("images/debian/12/amd64/slim/{VERSION}"));
    assert_eq!(sha(&[&dir.join("incus.tar.xz")]), meta_sum);
    assert_eq!(sha(&[&dir.join("root.tar.xz")]), root_sum);
    let cat = catalog(&root);
    let product = &cat["products"]["debian:12:amd64:slim"];
    let aliases = product["aliases"].as_str().unwrap_or_default();
    assert!(aliases.split(',').any(|a| a == "deb/slim"), "{product:#}");
    assert_eq!(
        product["versions"][VERSION]["items"]["incus.tar.xz"]["combined_rootxz_sha256"],
        combined
    );
    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Bad input: exit 1, one clear error, the tree and the sources untouched.
#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let (_tmp, export, root) = setup();
    let (meta, sqfs) = container_export(&export, "c1");
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let before = snapshot(&root);

    let bad = export.join("bad");
    fs::create_dir_all(&bad).expect("mkdir");
    let other_sqfs = images::squashfs(&bad, "other.squashfs", "c2").expect("squashfs");
    let third_sqfs = images::squashfs(&bad, "third.squashfs", "c3").expect("squashfs");
    let truncated = bad.join("meta-trunc.tar.xz");
    let whole = fs::read(&meta).expect("read");
    fs::write(&truncated, &whole[..whole.len() / 2]).expect("write");
    let no_date = meta_from_yaml(
        &bad,
        "meta-nodate.tar.xz",
        "architecture: x86_64\nproperties:\n  os: debian\n  release: \"13\"\n",
        "J",
    );
    let word_date = meta_from_yaml(
        &bad,
        "meta-word.tar.xz",
        &yaml("x86_64", "yesterday", "debian", "13", "default"),
        "J",
    );
    let bad_arch = meta_from_yaml(
        &bad,
        "meta-arch.tar.xz",
        &yaml("x86-64", &DATE.to_string(), "debian", "13", "default"),
        "J",
    );
    let bad_release = meta_from_yaml(
        &bad,
        "meta-rel.tar.xz",
        &yaml(
            "x86_64",
            &DATE.to_string(),
            "debian",
            "13 (trixie)",
            "default",
        ),
        "J",
    );
    let text_file = bad.join("notes.txt");
    fs::write(&text_file, "hello, not an image\n").expect("write");

    let cases: Vec<(Vec<&Path>, &str)> = vec![
        (vec![&truncated, &other_sqfs], "truncated"),
        (vec![&no_date, &other_sqfs], r#""creation_date" is missing"#),
        (
            vec![&word_date, &other_sqfs],
            r#""creation_date" is "yesterday", expected Unix seconds"#,
        ),
        (vec![&bad_arch, &other_sqfs], "unknown to LXD and Incus"),
        (vec![&bad_release, &other_sqfs], "--release NAME"),
        (vec![&text_file, &other_sqfs], "not an image file"),
        (vec![&other_sqfs], "without its metadata tarball"),
        (vec![&meta], "without a root file"),
        // Two roots of one type for one metadata tarball: both named.
        (vec![&meta, &other_sqfs, &third_sqfs], "other.squashfs and "),
        // Same metadata (same version), another root: a clash.
        (vec![&meta, &other_sqfs], "already exists with other files"),
    ];
    for (sources, expected) in cases {
        let sources_before: Vec<String> = sources.iter().map(|p| sha(&[p])).collect();
        let mut args = vec!["import"];
        args.extend(sources.iter().map(|p| s(p)));
        args.push(s(&root));
        let out = ssgen(&args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{expected}: {all}");
        assert!(all.contains(expected), "expected {expected:?} in:\n{all}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "one error line: {stderr}"
        );
        assert_eq!(snapshot(&root), before, "{expected}: the tree changed");
        let sources_after: Vec<String> = sources.iter().map(|p| sha(&[p])).collect();
        assert_eq!(sources_before, sources_after);
    }

    // --move with a failure: the sources stay where they were.
    let out = ssgen(&["import", "--move", s(&bad_arch), s(&other_sqfs), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(bad_arch.exists() && other_sqfs.exists());
    assert_eq!(snapshot(&root), before);
}

#[test]
fn help_is_clear() {
    let out = ssgen(&["import", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "lxc image export",
        "magic",
        "YYYYMMDD_HHMM",
        "--move",
        "--dry-run",
        "--alias",
        "--os",
        "Examples:",
    ] {
        assert!(
            help.contains(needle) || help.contains(&needle.replace("magic", "contents")),
            "import help lacks {needle:?}:\n{help}"
        );
    }
    let out = ssgen(&["verify", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--deep",
        "SSL_CERT_FILE",
        "combined",
        "Exit status",
        "https://",
    ] {
        assert!(
            help.contains(needle),
            "verify help lacks {needle:?}:\n{help}"
        );
    }
}

/// The full help of both commands, as users read it. Regenerate with
/// `INSTA_UPDATE=always cargo test -p ssgen --test import_verify help`
/// (or `cargo insta review`).
#[test]
fn help_snapshots() {
    for cmd in ["import", "verify"] {
        let out = ssgen(&[cmd, "--help"]);
        assert!(out.status.success(), "{}", text(&out));
        insta::assert_snapshot!(format!("{cmd}_help"), String::from_utf8_lossy(&out.stdout));
    }
}

/// A tree of four images built by import, for the verify tests.
fn four_images(export: &Path, root: &Path) {
    let mk = |variant: &str, date: i64| ImageMeta::new("amd64", "debian", "12", variant, date);
    let a = export.join("a");
    images::metadata_tarball(&a, "meta-a.tar.xz", &mk("default", DATE)).expect("meta");
    images::squashfs(&a, "a.squashfs", "a").expect("squashfs");
    let b = export.join("b");
    images::metadata_tarball(&b, "meta-b.tar.xz", &mk("cloud", DATE)).expect("meta");
    images::qcow2(&b, "b.qcow2", "b").expect("qcow2");
    let c = export.join("c");
    images::metadata_tarball(&c, "meta-c.tar.xz", &mk("minimal", DATE)).expect("meta");
    images::root_tar_xz(&c, "c.tar.xz", "c").expect("root.tar.xz");
    let d = export.join("d");
    images::metadata_tarball(&d, "meta-d.tar.xz", &mk("slim", DATE)).expect("meta");
    images::squashfs(&d, "d.squashfs", "d").expect("squashfs");
    let out = ssgen(&["import", s(&a), s(&b), s(&c), s(&d), s(root)]);
    assert!(out.status.success(), "{}", text(&out));
}

fn version_dir(root: &Path, variant: &str) -> PathBuf {
    root.join(format!("images/debian/12/amd64/{variant}/{VERSION}"))
}

fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(path, bytes).expect("write");
}

#[test]
fn verify_reports_every_kind_of_corruption_at_once() {
    let (_tmp, export, root) = setup();
    four_images(&export, &root);
    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));

    // a: one byte more (size, sha256 and fingerprint wrong).
    let a = version_dir(&root, "default").join("rootfs.squashfs");
    let mut bytes = fs::read(&a).expect("read");
    bytes.push(0);
    fs::write(&a, bytes).expect("write");
    // b: the disk is gone.
    let b = version_dir(&root, "cloud").join("disk.qcow2");
    fs::remove_file(&b).expect("rm");
    // c: same size, one bit flipped.
    let c = version_dir(&root, "minimal").join("root.tar.xz");
    flip_byte(&c);
    // d: the files are right but the catalog's fingerprint is not.
    let images_json = root.join("streams/v1/images.json");
    let cat = fs::read_to_string(&images_json).expect("read");
    let d_items = items(&root, "debian:12:amd64:slim", VERSION);
    let d_fp = d_items["incus.tar.xz"]["combined_squashfs_sha256"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    fs::write(&images_json, cat.replace(&d_fp, &"0".repeat(64))).expect("write");
    // An image file nobody references (an upload that was never built),
    // and a checksum file, which is no image file: noted, not failed.
    let stray = root.join("images/debian/12/amd64/default/20260901_00:00");
    fs::create_dir_all(&stray).expect("mkdir");
    fs::write(stray.join("rootfs.squashfs"), "x").expect("write");
    fs::write(version_dir(&root, "default").join("SHA256SUMS"), "x").expect("write");

    let out = ssgen(&["verify", s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let has = |path: &Path, what: &str| {
        let rel = path
            .strip_prefix(&root)
            .expect("under root")
            .display()
            .to_string();
        report
            .lines()
            .any(|l| l.starts_with(&rel) && l.contains(what))
    };
    assert!(has(&a, "the catalog says"), "size of a:\n{report}");
    assert!(report.contains("bytes, the catalog says"), "{report}");
    assert!(has(&b, "missing"), "b missing:\n{report}");
    assert!(has(&c, "sha256 is"), "c digest:\n{report}");
    let c_meta = version_dir(&root, "minimal").join("incus.tar.xz");
    assert!(
        has(&c_meta, "combined_rootxz_sha256"),
        "c combined:\n{report}"
    );
    let d_meta = version_dir(&root, "slim").join("incus.tar.xz");
    assert!(
        has(&d_meta, "combined_squashfs_sha256"),
        "d combined:\n{report}"
    );
    assert!(
        !report
            .lines()
            .any(|l| l.contains("/slim/") && l.contains("sha256 is") && !l.contains("combined")),
        "d's own files are right:\n{report}"
    );
    assert!(
        report.contains("20260901_00:00/rootfs.squashfs: is not referenced"),
        "{report}"
    );
    assert!(!report.contains("SHA256SUMS"), "{report}");
    assert!(
        text(&out).contains("note: 1 other file(s)"),
        "{}",
        text(&out)
    );

    // The same as JSON, for scripts.
    let out = ssgen(&["verify", "--json", s(&root)]);
    assert_eq!(out.status.code(), Some(1));
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let kinds: std::collections::BTreeSet<&str> = problems
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    for k in ["size", "missing", "sha256", "combined", "unreferenced"] {
        assert!(kinds.contains(k), "{k} not in {kinds:?}");
    }
}

#[test]
fn verify_refuses_a_root_without_a_catalog() {
    let (_tmp, _export, root) = setup();
    let out = ssgen(&["verify", s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("run `ssgen build` first"),
        "{}",
        text(&out)
    );
}

#[test]
fn verify_checks_a_server_over_https() {
    ssgen_tests::require_tools(&["openssl", "mksquashfs", "qemu-img"]).expect("tools");
    let run = ssgen_tests::proc::RunDir::new().expect("run dir");
    let export = run.path().join("export");
    let root = run.path().join("srv");
    fs::create_dir_all(&root).expect("mkdir");
    four_images(&export, &root);
    let tls = ssgen_tests::tls::TestTls::create(run.path()).expect("tls");
    let server = ssgen_tests::https::StaticHttpsServer::start(&run, &root, &tls).expect("server");
    let url = server.url("");
    let verify = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ssgen"))
            .arg("verify")
            .args(args)
            .env("SSL_CERT_FILE", &tls.ca_cert)
            .output()
            .expect("ssgen runs")
    };

    let out = verify(&[&url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = verify(&[&format!("{url}/streams/v1/index.json"), "--deep"]);
    assert!(out.status.success(), "{}", text(&out));

    // Same size, other bytes: only --deep can tell.
    let c = version_dir(&root, "minimal").join("root.tar.xz");
    flip_byte(&c);
    let out = verify(&[&url]);
    assert!(
        out.status.success(),
        "a HEAD sees the right size: {}",
        text(&out)
    );
    let out = verify(&[&url, "--deep"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.contains("root.tar.xz: sha256 is"), "{report}");
    assert!(report.contains("combined_rootxz_sha256"), "{report}");

    // A missing file shows without --deep.
    fs::remove_file(version_dir(&root, "cloud").join("disk.qcow2")).expect("rm");
    let out = verify(&[&url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("disk.qcow2: the server answered 404"),
        "{}",
        text(&out)
    );

    // Without the CA the server is not trusted.
    let out = ssgen(&["verify", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A server that answers HTML where the index should be.
    fs::write(
        root.join("streams/v1/index.json"),
        "<!DOCTYPE html><html><body>Welcome</body></html>\n",
    )
    .expect("write");
    let out = verify(&[&url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("HTML"), "{}", text(&out));

    // A port nobody listens on.
    drop(server);
    let out = verify(&[&url]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not answer"), "{}", text(&out));
}

/// When the rebuild after an import fails (here: a broken `.requirements`
/// elsewhere in the tree), the import is undone: the new version folder
/// is gone, moved sources are back, the published catalog is unchanged.
#[test]
fn a_failed_rebuild_undoes_the_import() {
    let (_tmp, export, root) = setup();
    let (meta, sqfs) = container_export(&export, "c1");
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    fs::write(root.join("images/.requirements"), "[not an object]").expect("write");
    let before = snapshot(&root);

    let vm = export.join("vm");
    images::metadata_tarball(
        &vm,
        "meta-v.tar.xz",
        &ImageMeta::new("arm64", "debian", "13", "cloud", DATE),
    )
    .expect("meta");
    let disk = images::qcow2(&vm, "v.qcow2", "v").expect("qcow2");
    let out = ssgen(&["import", "--move", s(&vm), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the import was undone"),
        "{}",
        text(&out)
    );
    assert_eq!(snapshot(&root), before);
    assert!(
        disk.exists() && vm.join("meta-v.tar.xz").exists(),
        "sources moved back"
    );
}

/// `incus image export` of a VM made unified: metadata.yaml + rootfs.img
/// (a real qcow2) in one tarball.
#[test]
fn imports_a_unified_vm_tarball() {
    let (_tmp, export, root) = setup();
    let stage = export.join("unified-vm");
    images::qcow2(&stage, "rootfs.img", "uvm").expect("qcow2");
    fs::write(
        stage.join("metadata.yaml"),
        yaml("x86_64", &DATE.to_string(), "fedora", "42", "cloud"),
    )
    .expect("write");
    let tarball = export.join("0badf00d.tar.gz");
    ssgen_tests::run(
        Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-czf")
            .arg(&tarball)
            .args(["metadata.yaml", "rootfs.img"]),
    )
    .expect("tar");
    let out = ssgen(&["import", "--dry-run", s(&tarball), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("virtual-machine, unified tarball"),
        "{}",
        text(&out)
    );
    let out = ssgen(&["import", s(&tarball), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let placed = root.join(format!(
        "images/fedora/42/amd64/cloud/{VERSION}/incus_combined.tar.gz"
    ));
    assert_eq!(sha(&[&placed]), sha(&[&tarball]));
    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Two exports given as loose files in one command: `meta-<hash>` pairs
/// with `<hash>.*`, whatever the order.
#[test]
fn pairs_loose_files_of_several_exports_by_hash() {
    let (_tmp, export, root) = setup();
    let m1 = images::metadata_tarball(
        &export,
        "meta-aaaa.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    let r1 = images::squashfs(&export, "aaaa.squashfs", "one").expect("squashfs");
    let m2 = images::metadata_tarball(
        &export,
        "meta-bbbb.tar.xz",
        &ImageMeta::new("arm64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    let r2 = images::squashfs(&export, "bbbb.squashfs", "two").expect("squashfs");
    let out = ssgen(&["import", s(&r2), s(&m1), s(&r1), s(&m2), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let cat = catalog(&root);
    for (product, meta, rootfs) in [
        ("debian:12:amd64:default", &m1, &r1),
        ("debian:12:arm64:default", &m2, &r2),
    ] {
        assert_eq!(
            cat["products"][product]["versions"][VERSION]["items"]["incus.tar.xz"]["combined_squashfs_sha256"],
            sha(&[meta, rootfs]),
            "{product}"
        );
    }
}

/// A product whose versions are named `YYYYMMDD_HHMM` (distrobuilder's
/// default) gets the new version in that form too: the two forms do not
/// sort together. And metadata.yaml's two architectures disagreeing is
/// worth a warning.
#[test]
fn follows_the_products_version_format() {
    let (_tmp, export, root) = setup();
    let old = root.join("images/debian/12/amd64/default/20260701_1500");
    images::metadata_tarball(
        &old,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE - 86_400 * 31),
    )
    .expect("meta");
    images::squashfs(&old, "rootfs.squashfs", "old").expect("squashfs");
    let meta = meta_from_yaml(
        &export,
        "meta-x.tar.xz",
        "architecture: aarch64\ncreation_date: 1785556320\nproperties:\n  architecture: amd64\n  os: debian\n  release: \"12\"\n",
        "J",
    );
    let sqfs = images::squashfs(&export, "x.squashfs", "new").expect("squashfs");
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("disagree; filed under amd64"),
        "{}",
        text(&out)
    );
    assert!(
        root.join("images/debian/12/amd64/default/20260801_0352/rootfs.squashfs")
            .is_file(),
        "{:?}",
        snapshot(&root)
    );
}

/// A private LXD daemon for a test with the real daemon, with its run
/// directory and throwaway CA.
struct RealLxd {
    run: ssgen_tests::proc::RunDir,
    tls: ssgen_tests::tls::TestTls,
    daemon: ssgen_tests::lxd::LxdDaemon,
}

impl RealLxd {
    /// Starts the daemon, or prints a loud SKIPPED line naming `test` where
    /// it cannot run here (not root, LXD not installed).
    fn start(test: &str) -> Option<Self> {
        let run = ssgen_tests::proc::RunDir::new().expect("run dir");
        let tls = ssgen_tests::tls::TestTls::create(run.path()).expect("tls");
        let env = ssgen_tests::lxd::ClientEnv::new(run.path(), &tls.ca_cert).expect("client env");
        let daemon = ssgen_tests::lxd::daemon_or_skip(&run, &env, test)?;
        Some(Self { run, tls, daemon })
    }
}

/// Runs `lxc` against the daemon; a failure fails the test with its log.
fn real_lxc(daemon: &ssgen_tests::lxd::LxdDaemon, args: &[&str]) -> String {
    daemon
        .env()
        .lxc(args)
        .unwrap_or_else(|e| panic!("{e:#}\n--- lxd.log ---\n{}", daemon.log_tail()))
}

/// The real thing: LXD imports an image, `lxc image export` writes it
/// under LXD's own names, `ssgen import` files those, and the LXD daemon
/// downloads the image back from the served tree, checking every hash and
/// the fingerprint (docs/protocol.md#downloads).
#[test]
fn round_trip_through_a_real_lxd_export() {
    let Some(RealLxd { run, tls, daemon }) = RealLxd::start("round_trip_through_a_real_lxd_export")
    else {
        return;
    };
    let lxc = |args: &[&str]| real_lxc(&daemon, args);

    let src = run.path().join("src");
    let meta = images::metadata_tarball(
        &src,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    let sqfs = images::squashfs(&src, "rootfs.squashfs", "round-trip").expect("squashfs");
    let fp = sha(&[&meta, &sqfs]);
    lxc(&["image", "import", s(&meta), s(&sqfs), "local:"]);

    let export = run.path().join("export");
    fs::create_dir_all(&export).expect("mkdir");
    lxc(&["image", "export", &fp, &format!("{}/", s(&export))]);
    let mut exported: Vec<PathBuf> = fs::read_dir(&export)
        .expect("read export")
        .map(|e| e.expect("entry").path())
        .collect();
    exported.sort();
    let names: Vec<String> = exported
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [format!("{fp}.squashfs"), format!("meta-{fp}.tar.xz")],
        "LXD's export names"
    );

    let root = run.path().join("srv");
    fs::create_dir_all(&root).expect("mkdir");
    let mut args = vec!["import"];
    args.extend(exported.iter().map(|p| s(p)));
    args.push(s(&root));
    let out = ssgen(&args);
    assert!(out.status.success(), "{}", text(&out));
    let items = items(&root, "debian:12:amd64:default", VERSION);
    assert_eq!(
        items["lxd.tar.xz"]["combined_squashfs_sha256"], fp,
        "{items:#}"
    );

    // Forget the image locally, then fetch it from the imported tree.
    lxc(&["image", "delete", &fp]);
    let server = ssgen_tests::https::StaticHttpsServer::start(&run, &root, &tls).expect("server");
    daemon
        .env()
        .remote_add("t", &server.url(""))
        .expect("remote add");
    lxc(&["image", "copy", &format!("t:{fp}"), "local:"]);
    let listed = lxc(&["image", "list", "local:", "--format", "csv", "-c", "F"]);
    assert!(listed.contains(&fp), "{listed}");

    // A unified image: `lxc publish` of a container, exported as one
    // tarball, imported, and downloaded back by the daemon.
    lxc(&["init", &format!("local:{fp}"), "c1"]);
    lxc(&["publish", "c1", "local:", "--alias", "published"]);
    let info = daemon
        .env()
        .lxc_json(&["image", "list", "local:published", "--format", "json"])
        .expect("image list");
    let unified_fp = info[0]["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("{info:#}"))
        .to_owned();
    let export2 = run.path().join("export2");
    fs::create_dir_all(&export2).expect("mkdir");
    lxc(&["image", "export", "published", &format!("{}/", s(&export2))]);
    let files: Vec<PathBuf> = fs::read_dir(&export2)
        .expect("read export")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one unified tarball: {files:?}");
    assert!(
        files[0].ends_with(format!("{unified_fp}.tar.gz")),
        "LXD's export name: {files:?}"
    );
    // LXD 5.0 keeps the source image's metadata.yaml (same creation_date),
    // so the published image clashes with its source version: the error
    // says to give another --variant.
    let out = ssgen(&["import", s(&files[0]), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--variant"), "{}", text(&out));
    let out = ssgen(&["import", "--variant", "published", s(&files[0]), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let images_json = fs::read_to_string(root.join("streams/v1/images.json")).expect("read");
    assert!(images_json.contains(&unified_fp), "{images_json}");
    lxc(&["image", "delete", "published"]);
    // The daemon caches a remote's catalog for an hour (docs/protocol.md#caching): ask
    // through another URL of the same server.
    let fresh = format!("https://localhost:{}", server.port());
    daemon.env().remote_add("t2", &fresh).expect("remote add");
    lxc(&["image", "copy", &format!("t2:{unified_fp}"), "local:"]);
    let listed = lxc(&["image", "list", "local:", "--format", "csv", "-c", "F"]);
    assert!(listed.contains(&unified_fp[..12]), "{listed}");
}

/// The `metadata.yaml` inside an xz metadata tarball, read with `tar`.
fn metadata_yaml_of(tarball: &Path) -> String {
    let out = Command::new("tar")
        .arg("-xJOf")
        .arg(tarball)
        .arg("metadata.yaml")
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn a_bare_disk_gets_generated_metadata() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("build");
    let disk = images::qcow2(&src, "output.qcow2", "packer").expect("qcow2");
    let root = tmp.path().join("srv");
    fs::create_dir_all(&root).expect("mkdir");

    // Without --arch: the error says how to have the metadata written.
    let out = ssgen(&["import", s(&disk), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--arch"), "{}", text(&out));
    // --arch alone is not enough; --arch beside a metadata tarball is refused.
    let out = ssgen(&["import", "--arch", "amd64", s(&disk), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--os and --release"), "{}", text(&out));
    let meta = images::metadata_tarball(
        &src,
        "meta.tar.xz",
        &ImageMeta::new("amd64", "x", "1", "default", DATE),
    )
    .expect("meta");
    let out = ssgen(&["import", "--arch", "amd64", s(&meta), s(&disk), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    fs::remove_file(&meta).expect("rm");
    assert!(
        snapshot(&root).is_empty(),
        "a refused import wrote something"
    );

    let args = [
        "import",
        "--arch",
        "arm64",
        "--os",
        "myos",
        "--release",
        "1.0",
        "--variant",
        "cloud",
        "--timestamp",
        "1785556320",
    ];
    let mut with_files = args.to_vec();
    with_files.extend([s(&disk), s(&root)]);
    let out = ssgen(&with_files);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join(format!("images/myos/1.0/arm64/cloud/{VERSION}"));
    let yaml = metadata_yaml_of(&dir.join("incus.tar.xz"));
    for line in [
        "architecture: aarch64",
        "creation_date: 1785556320",
        "os: myos",
        "variant: cloud",
    ] {
        assert!(yaml.contains(line), "{line:?} missing from:\n{yaml}");
    }
    let items = items(&root, "myos:1.0:arm64:cloud", VERSION);
    assert_eq!(
        items["incus.tar.xz"]["combined_disk-kvm-img_sha256"],
        sha(&[&dir.join("incus.tar.xz"), &disk]),
        "{items:#}"
    );
    // The same again: the same bytes, so nothing to do.
    let out = ssgen(&with_files);
    assert!(
        out.status.success() && text(&out).contains("already imported"),
        "{}",
        text(&out)
    );
}

/// A container root with the metadata ssgen wrote is copied from the tree
/// by a real LXD daemon, which then makes a container of it (unpacking the
/// image and reading that metadata).
#[test]
fn lxd_accepts_generated_metadata() {
    let Some(RealLxd { run, tls, daemon }) = RealLxd::start("lxd_accepts_generated_metadata")
    else {
        return;
    };
    let lxc = |args: &[&str]| real_lxc(&daemon, args);

    let sqfs =
        images::squashfs(&run.path().join("src"), "rootfs.squashfs", "bare").expect("squashfs");
    let root = run.path().join("srv");
    fs::create_dir_all(&root).expect("mkdir");
    let out = ssgen(&[
        "import",
        "--arch",
        "amd64",
        "--os",
        "bare",
        "--release",
        "1",
        "--timestamp",
        "1785556320",
        s(&sqfs),
        s(&root),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join(format!("images/bare/1/amd64/default/{VERSION}"));
    let fp = sha(&[&dir.join("incus.tar.xz"), &dir.join("rootfs.squashfs")]);

    let server = ssgen_tests::https::StaticHttpsServer::start(&run, &root, &tls).expect("server");
    daemon
        .env()
        .remote_add("t", &server.url(""))
        .expect("remote add");
    lxc(&["image", "copy", "t:bare/1", "local:"]);
    let info = lxc(&["image", "info", &format!("local:{fp}")]);
    assert!(info.contains("Architecture: x86_64"), "{info}");
    // Making a container unpacks the image and reads its metadata.yaml.
    lxc(&["init", &format!("local:{fp}"), "from-bare"]);
    lxc(&["delete", "from-bare"]);
}

/// A product `debian/12/amd64/default` with one version per label, built.
fn built_versions(root: &Path, versions: &[(&str, &str)]) {
    for (name, label) in versions {
        let dir = root.join("images/debian/12/amd64/default").join(name);
        images::metadata_tarball(
            &dir,
            "incus.tar.xz",
            &ImageMeta::new("amd64", "debian", "12", "default", DATE),
        )
        .expect("meta");
        images::squashfs(&dir, "rootfs.squashfs", label).expect("squashfs");
    }
    let out = ssgen(&["build", s(root)]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Files withdrawn by `prune --keep` or `remove` stay for their grace
/// period; they are no problem for verify.
#[test]
fn verify_is_clean_while_withdrawn_files_wait_for_their_grace_period() {
    let (_tmp, _export, root) = setup();
    built_versions(
        &root,
        &[
            ("20260701_0000", "a"),
            ("20260702_0000", "b"),
            ("20260703_0000", "c"),
        ],
    );
    let out = ssgen(&["prune", "--keep", "2", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "after prune --keep: {}", text(&out));
    assert!(text(&out).contains("withdrawn file(s)"), "{}", text(&out));

    let fp = items(&root, "debian:12:amd64:default", "20260703_0000")["incus.tar.xz"]
        ["combined_squashfs_sha256"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    let out = ssgen(&["remove", &fp[..12], s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ssgen(&["verify", s(&root)]);
    assert!(out.status.success(), "after remove: {}", text(&out));
}

/// A version the build leaves out is reported with the build's own reason
/// and fix: running `ssgen build` again would change nothing.
#[test]
fn verify_says_why_the_build_leaves_a_version_out() {
    let (_tmp, _export, root) = setup();
    built_versions(&root, &[("20260701_0000", "a")]);
    let half = root.join("images/debian/12/amd64/default/20260702_0000");
    images::metadata_tarball(
        &half,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    let out = ssgen(&["build", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ssgen(&["verify", s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = report
        .lines()
        .find(|l| l.contains("20260702_0000/incus.tar.xz"))
        .unwrap_or_else(|| panic!("the half upload is reported:\n{report}"));
    assert!(line.contains("no root file"), "{line}");
    assert!(line.contains("finish the upload"), "{line}");
    assert!(!line.contains("run `ssgen build`"), "{line}");
}

/// What the daemons refuse to import, `ssgen import` and `ssgen build`
/// both refuse, naming the file: one check of a metadata tarball.
#[test]
fn build_and_import_refuse_the_same_metadata() {
    let (_tmp, export, root) = setup();
    let date = DATE.to_string();
    let good = yaml("x86_64", &date, "debian", "12", "default");
    let cases = [
        ("empty", String::new(), "is empty"),
        ("tilde", "~\n".to_owned(), "is empty"),
        (
            "pdp11",
            good.replace("architecture: x86_64", "architecture: pdp11"),
            "unknown to LXD and Incus",
        ),
        (
            "yesterday",
            good.replace(
                &format!("creation_date: {date}"),
                "creation_date: yesterday",
            ),
            "\"creation_date\" is \"yesterday\"",
        ),
        (
            "list",
            format!("architecture: x86_64\ncreation_date: {date}\nproperties: [a, b]\n"),
            "\"properties\" is a list",
        ),
        (
            "nested",
            format!("{good}  extra:\n    deep: 1\n"),
            "\"properties.extra\" is a mapping",
        ),
    ];
    let mut tarballs: Vec<(PathBuf, &str)> = cases
        .iter()
        .map(|(name, yaml, why)| {
            (
                meta_from_yaml(&export, &format!("{name}.tar.xz"), yaml, "J"),
                *why,
            )
        })
        .collect();
    // A symbolic link named metadata.yaml: the daemons read nothing.
    let stage = export.join("link-stage");
    fs::create_dir_all(&stage).expect("mkdir");
    fs::write(stage.join("real.yaml"), &good).expect("write");
    std::os::unix::fs::symlink("real.yaml", stage.join("metadata.yaml")).expect("symlink");
    let link = export.join("link.tar.xz");
    ssgen_tests::run(
        Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-cJf")
            .arg(&link)
            .args(["metadata.yaml", "real.yaml"]),
    )
    .expect("tar");
    tarballs.push((link, "symbolic link"));
    let sqfs = images::squashfs(&export, "root.squashfs", "r").expect("squashfs");
    // Refused with `why`, exit status 1.
    let refused = |what: &str, out: &Output, why: &str| {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(out));
        assert!(
            text(out).contains(why),
            "{what}: want {why:?}: {}",
            text(out)
        );
    };
    for (tarball, why) in &tarballs {
        let out = ssgen(&["import", s(tarball), s(&sqfs), s(&root)]);
        refused(&format!("import {}", tarball.display()), &out, why);

        let tree = export.join("tree");
        let dir = tree.join("images/debian/12/amd64/default/20260801_0352");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::copy(tarball, dir.join("incus.tar.xz")).expect("copy");
        fs::copy(&sqfs, dir.join("rootfs.squashfs")).expect("copy");
        let out = ssgen(&["build", s(&tree)]);
        refused(&format!("build {}", tarball.display()), &out, why);
        assert!(
            text(&out).contains("incus.tar.xz"),
            "names the file: {}",
            text(&out)
        );
        assert!(
            !tree.join("streams/v1/images.json").exists(),
            "nothing is published"
        );
        fs::remove_dir_all(&tree).expect("rm");
    }
}

/// The version name `import` gives: `YYYYMMDD_HHMM` in a new product, the
/// product's own form in one whose versions all share another (the seeds'
/// `YYYYMMDD_HH:MM`), so that byte-wise order stays time order.
#[test]
fn names_versions_compact_unless_the_product_has_colons() {
    let (_tmp, export, root) = setup();
    let (meta, sqfs) = container_export(&export, "a");
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        root.join("images/debian/12/amd64/default/20260801_0352/rootfs.squashfs")
            .is_file(),
        "{:?}",
        snapshot(&root)
    );

    let (_tmp, export, root) = setup();
    let old = root.join("images/debian/12/amd64/default/20260701_15:00");
    images::metadata_tarball(
        &old,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE - 86_400 * 31),
    )
    .expect("meta");
    images::squashfs(&old, "rootfs.squashfs", "old").expect("squashfs");
    let (meta, sqfs) = container_export(&export, "b");
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        root.join("images/debian/12/amd64/default/20260801_03:52/rootfs.squashfs")
            .is_file(),
        "{:?}",
        snapshot(&root)
    );
}

/// An xz file with stream padding (zero bytes after the footer, which `xz`
/// itself accepts) is whole: the build publishes it.
#[test]
fn xz_stream_padding_is_published() {
    let (_tmp, _export, root) = setup();
    let dir = root.join("images/debian/12/amd64/default/20260801_0352");
    let meta = images::metadata_tarball(
        &dir,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    let rootfs = images::root_tar_xz(&dir, "root.tar.xz", "padded").expect("root");
    for file in [&meta, &rootfs] {
        let mut bytes = fs::read(file).expect("read");
        bytes.extend_from_slice(&[0; 4]);
        fs::write(file, bytes).expect("write");
        let test = Command::new("xz")
            .arg("-t")
            .arg(file)
            .output()
            .expect("xz runs");
        assert!(test.status.success(), "xz -t refuses {}", file.display());
    }
    let out = ssgen(&["build", s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    let items = items(&root, "debian:12:amd64:default", "20260801_0352");
    assert_eq!(
        items["root.tar.xz"]["sha256"].as_str(),
        Some(sha(&[&rootfs]).as_str())
    );
}

#[test]
fn a_creation_date_outside_1970_to_9999_is_refused_before_writing() {
    let (_tmp, export, root) = setup();
    let sqfs = images::squashfs(&export, "r.squashfs", "dates").expect("squashfs");
    for date in [
        "99999999999999",
        "-9223372036854775808",
        "-1",
        "253402300800",
    ] {
        let meta = meta_from_yaml(
            &export,
            "meta-date.tar.xz",
            &yaml("x86_64", date, "myos", "1", "default"),
            "J",
        );
        let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
        assert_eq!(out.status.code(), Some(1), "{date}: {}", text(&out));
        assert!(
            text(&out).contains("creation_date") && text(&out).contains("meta-date.tar.xz"),
            "{date}: {}",
            text(&out)
        );
        assert!(snapshot(&root).is_empty(), "{date}: {:?}", snapshot(&root));
        fs::remove_file(&meta).expect("rm");
    }
    let meta = meta_from_yaml(
        &export,
        "meta-last.tar.xz",
        &yaml("x86_64", "253402300799", "myos", "1", "default"),
        "J",
    );
    let out = ssgen(&["import", s(&meta), s(&sqfs), s(&root)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        catalog(&root)["products"]["myos:1:amd64:default"]["versions"]["99991231_2359"].is_object()
    );
}

#[test]
fn a_seed_pair_whose_metadata_disagree_is_refused_naming_both() {
    let (_tmp, export, root) = setup();
    let src = export.join("seed");
    let lxd = images::metadata_tarball(
        &src,
        "lxd.tar.xz",
        &ImageMeta::new("arm64", "other", "12", "default", 1),
    )
    .expect("meta");
    let incus = images::metadata_tarball(
        &src,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", DATE),
    )
    .expect("meta");
    images::squashfs(&src, "rootfs.squashfs", "s1").expect("squashfs");
    let out = ssgen(&["import", s(&src), s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains(s(&lxd)) && all.contains(s(&incus)) && all.contains("architecture, os"),
        "{all}"
    );
    assert!(snapshot(&root).is_empty(), "{:?}", snapshot(&root));
}
