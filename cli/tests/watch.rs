//! `ssgen watch` end to end on a real tree: the first build, a version
//! renamed into place, a bad `.requirements` that keeps the published
//! catalog until it is fixed, and a withdrawn version. The watcher is a
//! child process killed when the test ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ssgen_tests::images::{self, ImageMeta};

struct Watching {
    child: Child,
    /// Lines of the watcher's stderr, as they come.
    stderr: mpsc::Receiver<String>,
    root: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watching {
    fn images_json(&self) -> String {
        std::fs::read_to_string(self.root.join("streams/v1/images.json")).unwrap_or_default()
    }

    /// Waits for a stderr line containing `needle`; returns it.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for a line with {needle:?} on stderr"),
            }
        }
    }
}

fn version(root: &Path, os: &str, dir_name: &str, date: i64) -> PathBuf {
    let dir = root.join(format!("images/{os}/1/amd64/default/{dir_name}"));
    images::metadata_tarball(
        &dir,
        "incus.tar.xz",
        &ImageMeta::new("amd64", os, "1", "default", date),
    )
    .expect("meta");
    images::root_tar_xz(&dir, "root.tar.xz", dir_name).expect("rootfs");
    dir
}

fn start() -> Watching {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    version(&root, "alpha", "20260801_0000", 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["watch", "--settle", "0.3", "--timestamp", "1785542400"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssgen watch starts");
    let pipe = BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in pipe.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let w = Watching {
        child,
        stderr: rx,
        root,
        _tmp: tmp,
    };
    w.wait_line("watching");
    w
}

#[test]
fn publishes_changes_and_keeps_the_catalog_through_a_bad_edit() {
    let w = start();
    // The first build happened before watching began.
    assert!(w.images_json().contains("alpha:1:amd64:default"));

    // A version staged in a hidden directory is not published. A visible
    // version written after it makes a rebuild that has seen the staged one
    // too: that catalog must hold the visible one and not the staged one.
    let staged = version(&w.root, "beta", ".20260802_0000", 2);
    version(&w.root, "gamma", "20260802_0000", 3);
    let with_gamma = loop {
        w.wait_line("product(s)");
        let json = w.images_json();
        if json.contains("gamma:1:amd64:default") {
            break json;
        }
    };
    assert!(
        with_gamma.contains("gamma:1:amd64:default")
            && !with_gamma.contains("beta:1:amd64:default"),
        "the rebuild after a hidden and a visible version: {with_gamma}"
    );
    // Renamed into place, it is published.
    std::fs::rename(&staged, staged.with_file_name("20260802_0000")).expect("rename");
    w.wait_line("3 product(s)");
    let with_beta = w.images_json();
    assert!(with_beta.contains("beta:1:amd64:default"), "{with_beta}");

    // A malformed .requirements: reported, naming the file; the catalog
    // stays as it was.
    let req = w.root.join("images/beta/.requirements");
    std::fs::write(&req, r#"{"secureboot": false}"#).expect("write");
    let error = w.wait_line("error");
    assert!(error.contains(".requirements"), "{error}");
    w.wait_line("rebuild failed");
    assert_eq!(w.images_json(), with_beta);

    // Fixed, it is published.
    std::fs::write(&req, r#"{"secureboot": "false"}"#).expect("write");
    w.wait_line("3 product(s)");
    let fixed = w.images_json();
    assert!(fixed.contains(r#""secureboot": "false""#), "{fixed}");

    // A withdrawn version leaves the catalog.
    std::fs::write(
        w.root
            .join("images/alpha/1/amd64/default/20260801_0000/.withdrawn"),
        "",
    )
    .expect("withdraw");
    w.wait_line("2 product(s)");
    assert!(!w.images_json().contains("alpha:1:amd64:default"));
}

#[test]
fn a_missing_root_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["watch", "/nonexistent/ssgen-root"])
        .output()
        .expect("ssgen runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
}
