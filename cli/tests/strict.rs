//! `--strict` end to end: a warning (something left out of the catalog)
//! fails the run with exit 1 and writes nothing, for build, import, watch
//! and push; without it the same tree publishes the rest. Also the
//! warnings a root without `images/` and a forgotten variant level give
//! by default, and the one line that sums up withdrawn versions.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ssgen_tests::images::{self, ImageMeta};

mod common;

fn ssgen(args: &[&str]) -> Command {
    let mut cmd = common::ssgen(args);
    cmd.env_remove("SSGEN_LOCK_TIMEOUT")
        .env_remove("SOURCE_DATE_EPOCH");
    cmd
}

fn run(args: &[&str], root: &Path) -> Output {
    common::run(ssgen(args).arg(root))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A complete squashfs container version of debian/12/amd64/`variant`.
fn version(root: &Path, variant: &str, name: &str, label: &str) -> PathBuf {
    let d = root.join(format!("images/debian/12/amd64/{variant}/{name}"));
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", variant, 1),
    )
    .expect("meta");
    images::squashfs(&d, "rootfs.squashfs", label).expect("squashfs");
    d
}

/// Every file under `root`, with its bytes: what "writes nothing" compares.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "lock") {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_root_without_images_warns_and_fails_under_strict() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let out = run(&["build", "--strict"], root);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no images/ directory"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("--strict: a warning above"),
        "{}",
        stderr(&out)
    );
    assert!(
        !root.join("streams").exists(),
        "a strict failure wrote the catalog"
    );

    // By default a warning, not a silent success.
    let out = run(&["build"], root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("warning: ") && stderr(&out).contains("has no images/ directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_forgotten_variant_level_is_a_warning_naming_the_fix() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let d = root.join("images/debian/12/amd64/20260801_0312");
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 1),
    )
    .expect("meta");
    images::squashfs(&d, "rootfs.squashfs", "ct").expect("squashfs");
    // A stray non-image file stays a note.
    std::fs::write(root.join("images/README"), "hello").expect("readme");

    let out = run(&["build"], root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings.iter().all(|w| w.contains(
            "the variant directory is missing: move it to images/debian/12/amd64/default/20260801_0312/"
        )),
        "{err}"
    );
    assert!(
        err.contains("note: images/README: is outside the layout"),
        "{err}"
    );

    let before = snapshot(root);
    let out = run(&["build", "--strict"], root);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--strict: 2 warning(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(root), before, "a strict failure changed files");
}

#[test]
fn strict_build_writes_nothing_neither_catalog_nor_cache_nor_deltas() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    version(root, "default", "20260801_0000", "v1");
    let out = run(&["build", "--strict", "--timestamp", "1785556800"], root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A newer version (a delta from v1 would be made for it) and a copy of
    // v1 under another product: a duplicate fingerprint, which only the
    // catalog build finds, after hashing.
    let v2 = version(root, "default", "20260802_0000", "v2");
    // A copy in a product that sorts after default: default's version is
    // the one published, and the copy is the duplicate left out.
    let copy = root.join("images/debian/12/amd64/other/20260801_0000");
    std::fs::create_dir_all(&copy).expect("mkdir");
    let v1 = root.join("images/debian/12/amd64/default/20260801_0000");
    for f in ["incus.tar.xz", "rootfs.squashfs"] {
        std::fs::copy(v1.join(f), copy.join(f)).expect("copy");
    }
    let before = snapshot(root);
    let out = run(&["build", "--strict", "--timestamp", "1785560400"], root);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is already published by"), "{err}");
    assert!(err.contains("--strict: 1 warning(s)"), "{err}");
    assert_eq!(snapshot(root), before, "a strict failure changed files");
    assert!(
        !std::fs::read_dir(&v2)
            .expect("v2")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".vcdiff")),
        "a delta was written"
    );

    // Without --strict the rest is published, and the delta made.
    let out = run(&["build", "--timestamp", "1785560400"], root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let catalog = common::images_json(root);
    assert!(catalog.contains("20260802_0000"), "{catalog}");
    assert!(v2.join("delta-20260801_0000.vcdiff").exists());
}

#[test]
fn strict_import_is_undone_when_the_tree_warns() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    version(&root, "default", "20260801_0000", "v1");
    // Half an upload elsewhere in the tree.
    let half = root.join("images/debian/12/amd64/cloud/20260801_0000");
    images::metadata_tarball(
        &half,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "cloud", 1),
    )
    .expect("meta");
    let out = run(&["build", "--timestamp", "1785556800"], &root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let published = common::images_json(&root);

    let export = tmp.path().join("export");
    images::metadata_tarball(
        &export,
        "meta-1234.tar.xz",
        &ImageMeta::new("amd64", "alpine", "3.22", "default", 1_785_500_000),
    )
    .expect("meta");
    images::squashfs(&export, "1234.squashfs", "alpine").expect("squashfs");
    let out = common::run(
        ssgen(&["import", "--strict"])
            .arg(export.join("meta-1234.tar.xz"))
            .arg(export.join("1234.squashfs"))
            .arg(&root),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--strict"), "{}", stderr(&out));
    assert!(
        !root.join("images/alpine").exists(),
        "the import was not undone"
    );
    assert_eq!(common::images_json(&root), published);
}

#[test]
fn strict_push_refuses_before_connecting() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    version(root, "default", "20260801_0000", "v1");
    std::fs::write(
        root.join("images/debian/12/amd64/default/20260802_0000.tar.xz"),
        "stray",
    )
    .expect("stray");
    std::fs::create_dir_all(root.join("images/debian/12/amd64/default/20260803_0000"))
        .expect("mkdir");
    std::fs::write(
        root.join("images/debian/12/amd64/default/20260803_0000/incus.tar.xz"),
        std::fs::read(root.join("images/debian/12/amd64/default/20260801_0000/incus.tar.xz"))
            .expect("meta"),
    )
    .expect("half");
    // Nothing listens on these: a push that got past the check would fail
    // with a network error (exit 2), not exit 1.
    for to in ["http://127.0.0.1:9", "s3://bucket/prefix"] {
        let out = common::run(
            ssgen(&[
                "push",
                "--strict",
                "--to",
                to,
                "--endpoint",
                "http://127.0.0.1:9",
            ])
            .env("SSGEN_TOKEN", "t")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env_remove("AWS_PROFILE")
            .arg(root),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{to}: {err}");
        assert!(err.contains("--strict: 1 warning(s)"), "{to}: {err}");
    }
}

/// A `watch --strict` child whose stderr lines arrive on a channel.
struct Watching {
    _child: common::Killed,
    lines: mpsc::Receiver<String>,
}

impl Watching {
    fn wait_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for a line with {needle:?}"),
            }
        }
    }
}

#[test]
fn strict_watch_keeps_the_catalog_until_the_warning_is_gone() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    version(&root, "default", "20260801_0000", "v1");
    let mut child = ssgen(&[
        "watch",
        "--strict",
        "--settle",
        "0.3",
        "--timestamp",
        "1785556800",
    ])
    .arg(&root)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("watch starts");
    let pipe = BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in pipe.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let w = Watching {
        _child: common::Killed(child),
        lines,
    };
    w.wait_line("watching");
    let published = common::images_json(&root);
    assert!(published.contains("20260801_0000"), "{published}");

    // A version whose root file has not arrived yet, beside a complete one.
    let d = root.join("images/debian/12/amd64/default/20260802_0000");
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 2),
    )
    .expect("meta");
    version(&root, "cloud", "20260802_0000", "cloud");
    w.wait_line("--strict");
    assert_eq!(common::images_json(&root), published);

    // Completed, it is published (with the other one).
    images::squashfs(&d, "rootfs.squashfs", "v2").expect("squashfs");
    w.wait_line("2 product(s)");
    let now = common::images_json(&root);
    assert!(
        now.contains("20260802_0000") && now.contains("debian:12:amd64:cloud"),
        "{now}"
    );
}

#[test]
fn withdrawn_versions_are_one_line_on_every_rebuild() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    for i in 1..=9 {
        version(
            root,
            "default",
            &format!("2026080{i}_0000"),
            &format!("v{i}"),
        );
    }
    let out = run(&["build", "--deltas", "0"], root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&["prune", "--keep", "2", "--deltas", "0"], root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    for args in [
        &["build", "--deltas", "0"][..],
        &["build", "--strict", "--deltas", "0"],
    ] {
        let out = run(args, root);
        // Withdrawn versions are no warning: strict passes.
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: ")).collect();
        assert_eq!(notes.len(), 1, "{err}");
        assert!(
            notes[0].contains("7 withdrawn versions are left out of the catalog")
                && notes[0].contains("ssgen prune --dry-run"),
            "{err}"
        );
    }
    // And the dry run does list them, with when their files go.
    let out = run(&["prune", "--dry-run"], root);
    let listed = String::from_utf8_lossy(&out.stdout);
    let pending: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("pending  "))
        .collect();
    assert_eq!(pending.len(), 7, "{listed}");
    assert!(pending[0].contains("deleted in 6h"), "{listed}");
}

#[test]
fn strict_serve_watch_refuses_the_rebuild_and_serves_the_old_catalog() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    version(&root, "default", "20260801_0000", "v1");
    let out = run(&["build", "--timestamp", "1785556800"], &root);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let published = common::images_json(&root);
    let served = common::serve(&root, &["--watch", "--strict", "--timestamp", "1785556800"]);

    // A metadata tarball whose root file is still to come.
    let d = root.join("images/debian/12/amd64/default/20260802_0000");
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 2),
    )
    .expect("meta");
    let log = || std::fs::read_to_string(&served.log).unwrap_or_default();
    common::wait_for(
        "the strict refusal in the log",
        Duration::from_secs(30),
        || log().contains("--strict: 1 warning(s)"),
    );
    assert_eq!(common::images_json(&root), published);
    let (status, body) = served.curl("streams/v1/images.json", &[]);
    assert_eq!((status, body.trim_end()), (200, published.trim_end()));

    images::squashfs(&d, "rootfs.squashfs", "v2").expect("squashfs");
    common::wait_for("the completed version", Duration::from_secs(30), || {
        common::images_json(&root).contains("20260802_0000")
    });
}

/// The `.mirror-*` staging directories under a product.
fn staging_dirs(product: &Path) -> Vec<String> {
    std::fs::read_dir(product)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".mirror-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn strict_mirror_publishes_nothing_and_resumes_later() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // The source names its versions YYYYMMDD_HH:MM; the copy's product
    // already has YYYYMMDD_HHMM, so the copy would mix the two forms.
    let src = tmp.path().join("src");
    version(&src, "default", "20260802_03:12", "v2");
    let out = run(&["build", "--timestamp", "1785556800"], &src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dest = tmp.path().join("dest");
    version(&dest, "default", "20260801_0000", "v1");
    let out = run(&["build", "--timestamp", "1785556800"], &dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let published = common::images_json(&dest);
    let product = dest.join("images/debian/12/amd64/default");
    let before = snapshot(&product);

    let out = common::run(
        ssgen(&["mirror", "--strict", "--timestamp", "1785556800"])
            .arg(&src)
            .arg(&dest),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("mix formats"), "{err}");
    assert!(err.contains("put back into staging"), "{err}");
    assert_eq!(common::images_json(&dest), published);
    assert!(!product.join("20260802_03:12").exists(), "{err}");
    assert_eq!(staging_dirs(&product).len(), 1, "{err}");
    // Nothing else changed either.
    let after: Vec<_> = snapshot(&product)
        .into_iter()
        .filter(|(p, _)| !p.to_string_lossy().contains("/.mirror-"))
        .collect();
    assert_eq!(after, before);

    // Without --strict it resumes from staging and publishes.
    let out = common::run(
        ssgen(&["mirror", "--timestamp", "1785556800"])
            .arg(&src)
            .arg(&dest),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(common::images_json(&dest).contains("20260802_03:12"));
    assert!(staging_dirs(&product).is_empty());
}

#[test]
fn strict_mirror_refuses_a_warning_tree_before_copying() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src");
    version(&src, "default", "20260802_0312", "v2");
    let out = run(&["build", "--timestamp", "1785556800"], &src);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dest = tmp.path().join("dest");
    let half = dest.join("images/debian/12/amd64/cloud/20260801_0000");
    images::metadata_tarball(
        &half,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "cloud", 1),
    )
    .expect("meta");
    let out = common::run(ssgen(&["mirror", "--strict"]).arg(&src).arg(&dest));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing was copied"), "{err}");
    assert!(
        !dest.join("images/debian/12/amd64/default").exists(),
        "{err}"
    );
}
