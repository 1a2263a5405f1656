//! Shared helpers for ssgen's cross-crate test suites.
//!
//! What is here, and why it is shared:
//!
//! - [`ssgen_bin`]: the built `ssgen` binary (built on demand), so every suite
//!   runs the real CLI rather than calling library functions.
//! - [`images`]: a maker of small but **real** images (xz metadata tarballs
//!   with `metadata.yaml` and a template, squashfs via `mksquashfs`,
//!   `root.tar.xz`, qcow2 via `qemu-img`) and [`images::sample_tree`], a whole
//!   `images/…` tree with the expectations the test computes itself.
//! - [`expect`]: what each client must show for a tree, derived from the files
//!   the test made (fingerprints hashed here, aliases per docs/protocol.md#aliases), never from
//!   ssgen's output.
//! - [`model`]: a small, independent model of how Incus and LXD turn an
//!   `images.json` into images (docs/protocol.md: pairing, aliases, architectures, requirements).
//! - [`checks`]: comparisons that return every problem found, each naming
//!   the image and the reason.
//! - [`proc`], [`tls`], [`https`], [`client`], [`sstream`]: the real-client
//!   harness: process groups killed by PID on drop, a throwaway CA made with
//!   the `openssl` CLI, a plain static HTTPS server, the LXD and Incus
//!   clients and daemons (one API, [`client::Client::ALL`]) each in a
//!   private state dir, and python-simplestreams.
//! - [`s3`]: moto's S3 emulator (standing in for the cloud stores), a
//!   fault-injecting proxy in front of it, and nginx as the TLS proxy a CDN
//!   would be, for `ssgen push --to s3://`.
//! - [`ssgen_serve`]: `ssgen serve` itself as the server under test, and a
//!   publisher that fills an empty one through its upload API.
//! - [`html`]: the page for people as a reader sees it.
//! - [`pebble`]: Let's Encrypt's test CA and its DNS server on loopback, for
//!   `ssgen serve --acme`, and a private `/etc/hosts` for the clients.
//!
//! The caller provides a scratch directory (a `tempfile::TempDir`); nothing
//! here writes outside it, binds a fixed port or touches the system trust
//! store.
//!
//! ```no_run
//! let run = ssgen_tests::proc::RunDir::new().expect("scratch dir");
//! let tree = ssgen_tests::images::sample_tree(&run.path().join("tree")).expect("tree");
//! assert!(!tree.products.is_empty());
//! ```

pub mod checks;
pub mod client;
pub mod deltas;
pub mod expect;
pub mod handmade;
pub mod html;
pub mod https;
pub mod images;
pub mod model;
pub mod pebble;
pub mod proc;
pub mod s3;
pub mod ssgen_serve;
pub mod sstream;
pub mod tls;

/// The former name of [`client`], from when only LXD ran here.
pub use client as lxd;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR is `<workspace>/tests` at compile time.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ always has a parent because it lives inside the workspace")
        .to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Path of the built `ssgen` binary, building it first if it is missing or
/// older than its sources.
///
/// Integration tests of *this* crate cannot use `CARGO_BIN_EXE_ssgen` (the
/// binary belongs to another package). `cargo test --workspace` builds
/// `<target>/debug/ssgen` before any test runs, and that binary is used when
/// it is newer than every source it is built from. Otherwise (e.g. `cargo
/// test -p ssgen-tests` after editing `cli/`) it is built with the same cargo
/// (`$CARGO`, else `cargo`) into `<target>/ssgen-tests-bin/`: a separate
/// build directory, because the `cargo test` that runs us holds the lock of
/// the main one until the tests finish, and building there would deadlock.
pub fn ssgen_bin() -> PathBuf {
    // Once per test process: tests run in parallel threads and would all
    // queue up on cargo's lock otherwise.
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(find_or_build_ssgen).clone()
}

fn find_or_build_ssgen() -> PathBuf {
    let main = target_dir().join("debug").join("ssgen");
    if is_fresh(&main) {
        return main;
    }
    let own_dir = target_dir().join("ssgen-tests-bin");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "ssgen",
            "--bin",
            "ssgen",
            "--target-dir",
        ])
        .arg(&own_dir)
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?} to build ssgen: {e}"));
    assert!(
        status.success(),
        "`cargo build -p ssgen --bin ssgen` failed: {status}"
    );
    let bin = own_dir.join("debug").join("ssgen");
    assert!(
        bin.is_file(),
        "cargo built ssgen but {} does not exist",
        bin.display()
    );
    bin
}

/// Whether `bin` exists and is newer than the sources of `ssgen` (`cli/src`,
/// `core/src`, the manifests and the lockfile).
fn is_fresh(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = workspace_root();
    let mut stack = vec![root.join("cli/src"), root.join("core/src")];
    let manifests = [
        "Cargo.toml",
        "Cargo.lock",
        "cli/Cargo.toml",
        "core/Cargo.toml",
    ];
    let mut newest = manifests
        .iter()
        .map(|m| root.join(m))
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(t) = meta.modified() {
                newest = newest.max(Some(t));
            }
        }
    }
    newest.is_none_or(|n| n <= built)
}

/// Lower-case hex sha256 of the concatenation of `files`, read in order.
///
/// With one file this is the file's own digest; with (metadata, root) it is
/// the split-image fingerprint of docs/protocol.md#combined-digests.
pub fn sha256_files(files: &[&Path]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    for path in files {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("read {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an
/// error carrying the command line, the status and stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{cmd:?} printed non-UTF-8"))
}

/// Whether an executable named `name` is on `PATH`.
pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}

/// Whether this process runs as root (the LXD and Incus daemons need it).
pub fn is_root() -> bool {
    // /proc/self/status has "Uid: real effective saved fs"; no libc needed.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Fails with one message naming every missing tool and how to install them.
pub fn require_tools(tools: &[&str]) -> Result<()> {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        bail!("missing tools {missing:?}: run `scripts/setup.sh` (as root) to install them");
    }
    Ok(())
}
