//! Trees for the `ssgen serve` suites (`serve.rs`, `abuse_serve.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use ssgen_tests::images::{self, ImageMeta};

/// A complete version of `product` (`os/release`, amd64, default) with
/// real files; returns its directory.
pub fn add_version(root: &Path, product: &str, version: &str, day: i64) -> PathBuf {
    let (os, release) = product.split_once('/').expect("os/release");
    let dir = root.join(format!("images/{product}/amd64/default/{version}"));
    let meta = ImageMeta::new("amd64", os, release, "default", day);
    images::metadata_tarball(&dir, "incus.tar.xz", &meta).expect("metadata tarball");
    images::root_tar_xz(&dir, "root.tar.xz", &format!("{product} {version}")).expect("rootfs");
    dir
}

/// `ssgen build ROOT` with a fixed `updated`, so the same tree gives the
/// same bytes.
pub fn build(root: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["build", "--timestamp", "1785556800"])
        .arg(root)
        .output()
        .expect("ssgen build runs");
    assert!(
        out.status.success(),
        "ssgen build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
