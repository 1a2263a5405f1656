//! `ssgen prune` end to end: the catalog changes first, files go only after
//! the grace period, and exactly what the plan says goes.

use std::path::Path;
use std::process::{Command, Output};

use ssgen_tests::images::{self, ImageMeta};

const T0: i64 = 1_785_556_800; // 2026-08-01 04:00 UTC
const HOUR: i64 = 3600;
const VERSIONS: [&str; 4] = [
    "20260701_0000",
    "20260715_0000",
    "20260725_0000",
    "20260731_0000",
];

fn ssgen(root: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(args)
        .arg(root)
        .output()
        .expect("ssgen runs");
    assert!(
        out.status.success(),
        "ssgen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_path_buf();
    for (i, v) in VERSIONS.iter().enumerate() {
        let d = root.join(format!("images/debian/12/amd64/default/{v}"));
        // Distinct metadata per version; the daemons refuse 0 as missing.
        let created = i64::try_from(i).expect("small") + 1;
        images::metadata_tarball(
            &d,
            "incus.tar.xz",
            &ImageMeta::new("amd64", "debian", "12", "default", created),
        )
        .expect("meta");
        images::root_tar_xz(&d, "root.tar.xz", v).expect("rootfs");
    }
    let other = root.join("images/alpine/3.22/amd64/default/20260101_0000");
    images::metadata_tarball(
        &other,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "alpine", "3.22", "default", 9),
    )
    .expect("meta");
    images::root_tar_xz(&other, "root.tar.xz", "alpine").expect("rootfs");
    (tmp, root)
}

fn versions(root: &Path, product: &str) -> Vec<String> {
    let text = std::fs::read(root.join("streams/v1/images.json")).expect("catalog");
    let cat: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    cat["products"][product]["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

fn exists(root: &Path, version: &str) -> bool {
    root.join(format!(
        "images/debian/12/amd64/default/{version}/root.tar.xz"
    ))
    .exists()
}

#[test]
fn keep_withdraws_then_deletes_after_the_grace_period() {
    let (_tmp, root) = tree();
    let t0 = T0.to_string();
    ssgen(&root, &["build", "--timestamp", &t0]);
    assert_eq!(versions(&root, "debian:12:amd64:default").len(), 4);

    // A dry run says what would go and changes nothing.
    let before = std::fs::read(root.join("streams/v1/images.json")).expect("catalog");
    let dry = ssgen(
        &root,
        &["prune", "--keep", "2", "--dry-run", "--timestamp", &t0],
    );
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(plan.lines().count(), 2, "{plan}");
    assert!(
        plan.contains("withdraw images/debian/12/amd64/default/20260701_0000 (beyond --keep 2)"),
        "{plan}"
    );
    assert!(plan.contains("20260715_0000"), "{plan}");
    assert_eq!(
        std::fs::read(root.join("streams/v1/images.json")).expect("catalog"),
        before
    );

    ssgen(&root, &["prune", "--keep", "2", "--timestamp", &t0]);
    assert_eq!(
        versions(&root, "debian:12:amd64:default"),
        ["20260725_0000", "20260731_0000"]
    );
    // The other product's single version is the newest: always kept.
    assert_eq!(
        versions(&root, "alpine:3.22:amd64:default"),
        ["20260101_0000"]
    );
    assert!(
        exists(&root, "20260701_0000"),
        "deleted before the grace period"
    );

    let later = (T0 + HOUR).to_string();
    ssgen(&root, &["prune", "--timestamp", &later]);
    assert!(
        exists(&root, "20260701_0000"),
        "deleted within the grace period"
    );

    let after = (T0 + 7 * HOUR).to_string();
    let out = ssgen(&root, &["prune", "--timestamp", &after]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !exists(&root, "20260701_0000") && !exists(&root, "20260715_0000"),
        "{said}"
    );
    assert!(
        exists(&root, "20260725_0000") && exists(&root, "20260731_0000"),
        "{said}"
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("delete")).count(),
        2,
        "{said}"
    );
    // And the catalog still builds to the same two versions.
    ssgen(&root, &["build", "--timestamp", &after]);
    assert_eq!(versions(&root, "debian:12:amd64:default").len(), 2);
}

#[test]
fn older_than_uses_the_version_date_and_keeps_the_newest() {
    let (_tmp, root) = tree();
    let t0 = T0.to_string();
    ssgen(&root, &["build", "--timestamp", &t0]);
    // 10 days before 2026-08-01: versions of 2026-07-01 and 07-15 go.
    ssgen(&root, &["prune", "--older-than", "10", "--timestamp", &t0]);
    assert_eq!(
        versions(&root, "debian:12:amd64:default"),
        ["20260725_0000", "20260731_0000"]
    );
    // Alpine's only version is months old, but it is the newest.
    assert_eq!(
        versions(&root, "alpine:3.22:amd64:default"),
        ["20260101_0000"]
    );
}

#[test]
fn keep_zero_is_refused() {
    let (_tmp, root) = tree();
    let out = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["prune", "--keep", "0"])
        .arg(&root)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keep at least 1"));
}

/// A marker that is no marker deletes nothing: a warning, exit 0, and the
/// rest is pruned; with --strict, exit 1 before anything is withdrawn or
/// deleted (a dry run too).
#[test]
fn an_invalid_marker_warns_and_strict_refuses_before_any_change() {
    let (_tmp, root) = tree();
    let t0 = T0.to_string();
    ssgen(&root, &["build", "--timestamp", &t0]);
    let bad = root.join(format!(
        "images/debian/12/amd64/default/{}/.withdrawn",
        VERSIONS[0]
    ));
    std::fs::write(&bad, "not json").expect("write");
    let marker = |v: &str| {
        root.join(format!("images/debian/12/amd64/default/{v}/.withdrawn"))
            .exists()
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ssgen"))
            .args(args)
            .args(["--timestamp", &t0])
            .arg(&root)
            .output()
            .expect("runs")
    };
    for args in [
        &["prune", "--keep", "2", "--strict"][..],
        &["prune", "--keep", "2", "--strict", "--dry-run"][..],
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("not a valid marker") && err.contains("--strict: 1 marker warning"),
            "{args:?}: {err}"
        );
        assert!(!marker(VERSIONS[1]), "{args:?} withdrew a version");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read(&bad).expect("marker"), b"not json");
    assert!(exists(&root, VERSIONS[0]) && exists(&root, VERSIONS[1]));

    let out = run(&["prune", "--keep", "2"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("not a valid marker"), "{err}");
    assert!(marker(VERSIONS[1]), "the rest is pruned");
    assert!(
        exists(&root, VERSIONS[0]),
        "nothing is deleted for the bad marker"
    );
}
