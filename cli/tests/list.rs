//! `ssgen list` on a realistic tree, built from real image files: the
//! demo's three products (a squashfs container, a qcow2 VM, an arm64
//! container with an `lxd.tar.xz`) with a dozen versions each. The table
//! is snapshot-tested; the filters and the width are asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssgen_tests::images::{self, ImageMeta};

mod common;

/// The versions of each product, oldest first: 2026-07-20 .. 2026-07-31.
const VERSIONS: usize = 12;

fn ssgen(args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("ssgen runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn version_name(i: usize) -> String {
    format!("202607{:02}_0312", 20 + i)
}

/// The tree, built with a fixed timestamp.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_path_buf();
    for i in 0..VERSIONS {
        let v = version_name(i);
        let date = 1_784_000_000 + i64::try_from(i).expect("small") * 86_400;
        let d = root.join(format!("images/debian/12/amd64/default/{v}"));
        images::metadata_tarball(
            &d,
            "incus.tar.xz",
            &ImageMeta::new("amd64", "debian", "12", "default", date),
        )
        .expect("meta");
        images::squashfs(&d, "rootfs.squashfs", &format!("debian {v}")).expect("squashfs");

        let d = root.join(format!("images/debian/12/amd64/cloud/{v}"));
        images::metadata_tarball(
            &d,
            "incus.tar.xz",
            &ImageMeta::new("amd64", "debian", "12", "cloud", date),
        )
        .expect("meta");
        images::qcow2(&d, "disk.qcow2", &format!("cloud {v}")).expect("qcow2");

        let d = root.join(format!("images/alpine/3.22/arm64/default/{v}"));
        images::metadata_tarball(
            &d,
            "lxd.tar.xz",
            &ImageMeta::new("arm64", "alpine", "3.22", "default", date),
        )
        .expect("meta");
        images::root_tar_xz(&d, "root.tar.xz", &format!("alpine {v}")).expect("root");
    }
    std::fs::write(
        root.join("images/debian/12/amd64/cloud/.requirements"),
        r#"{"secureboot": "false"}"#,
    )
    .expect("requirements");
    let out = ssgen(&["build", "--timestamp", "1785556800", arg(&root)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, root)
}

#[test]
fn the_table_names_product_and_version_and_fits_120_columns() {
    let (_tmp, root) = tree();
    let out = ssgen(&["list", "--arch", "amd64", arg(&root)]);
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out);
    let widest = table.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 120, "{widest} columns:\n{table}");
    // One row per image, plus the header.
    assert_eq!(table.lines().count(), 3 * VERSIONS + 1, "{table}");
    insta::assert_snapshot!("list_table", table);
}

#[test]
fn filters_by_os_alias_and_type() {
    let (_tmp, root) = tree();
    let rows = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list", "--arch", "amd64", "--format", "csv"];
        all.extend_from_slice(args);
        all.push(arg(&root));
        let out = ssgen(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        text(&out).lines().skip(1).map(str::to_owned).collect()
    };
    let products = |rows: &[String]| -> std::collections::BTreeSet<String> {
        rows.iter()
            .map(|r| {
                // …,product,version,description (no comma in this
                // tree's descriptions).
                let fields: Vec<&str> = r.rsplitn(4, ',').collect();
                fields[2].to_owned()
            })
            .collect()
    };
    // Both clients, every version.
    assert_eq!(rows(&[]).len(), 2 * 3 * VERSIONS);

    let debian = rows(&["--os", "Debian"]);
    assert_eq!(debian.len(), 2 * 2 * VERSIONS);
    assert_eq!(
        products(&debian),
        ["debian:12:amd64:cloud", "debian:12:amd64:default"]
            .map(str::to_owned)
            .into()
    );

    // An alias selects its product, every version, with or without /arch.
    for alias in ["debian/12", "debian/12/amd64", "debian/bookworm/default"] {
        let hit = rows(&["--alias", alias]);
        assert_eq!(hit.len(), 2 * VERSIONS, "{alias}");
        assert_eq!(
            products(&hit),
            ["debian:12:amd64:default".to_owned()].into(),
            "{alias}"
        );
    }
    assert!(rows(&["--alias", "debian/11"]).is_empty());

    let vms = rows(&["--type", "virtual-machine"]);
    assert_eq!(vms.len(), 2 * VERSIONS);
    assert!(vms.iter().all(|r| r.contains(",virtual-machine,")));
    let cts = rows(&["--type", "container", "--os", "alpine"]);
    assert_eq!(cts.len(), 2 * VERSIONS);
    assert!(cts.iter().all(|r| r.contains("alpine:3.22:arm64:default")));

    // The table applies the same filters; JSON too.
    let out = ssgen(&[
        "list",
        "--alias",
        "alpine/3.22",
        "--arch",
        "amd64",
        arg(&root),
    ]);
    assert_eq!(text(&out).lines().count(), VERSIONS + 1, "{}", text(&out));
    let out = ssgen(&[
        "list",
        "--format",
        "json",
        "--client",
        "incus",
        "--type",
        "virtual-machine",
        arg(&root),
    ]);
    let images: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(images.as_array().map(Vec::len), Some(VERSIONS));
}

#[test]
fn a_client_column_appears_only_when_the_clients_differ() {
    let (_tmp, root) = tree();
    // The alpine product under an architecture name only LXD knows:
    // Incus hides it.
    let images_json = root.join("streams/v1/images.json");
    let doc = std::fs::read_to_string(&images_json).expect("catalog");
    let doc = doc.replacen("\"arch\": \"arm64\"", "\"arch\": \"amd64v3\"", 1);
    std::fs::write(&images_json, doc).expect("write");
    let out = ssgen(&["list", "--arch", "amd64", arg(&root)]);
    let table = text(&out);
    let header = table.lines().next().unwrap_or_default();
    assert!(header.ends_with("CLIENT"), "{table}");
    let alpine: Vec<&str> = table.lines().filter(|l| l.starts_with("alpine/")).collect();
    assert_eq!(alpine.len(), VERSIONS, "{table}");
    assert!(alpine.iter().all(|l| l.ends_with("  LXD")), "{table}");
    assert!(
        table
            .lines()
            .filter(|l| l.starts_with("debian/"))
            .all(|l| l.ends_with("LXD, Incus")),
        "{table}"
    );
    // Without a difference, no such column.
    let out = ssgen(&["list", "--arch", "amd64", "--os", "debian", arg(&root)]);
    assert!(!text(&out).contains("CLIENT"), "{}", text(&out));
}
