//! Two writers of one root at once, against the real binary: a build that
//! scanned before a withdrawal must not publish the version again, and a
//! writer that has to wait says so, then gives up with a clear message.
//!
//! The first writer is made slow by a large sparse disk image it has to
//! hash (no disk space used), and held at a known point (while it reads
//! that file, seen in /proc) with SIGSTOP.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Killed, build, run, s, ssgen, text, version, versions, wait_for};
use ssgen_tests::images::{self, ImageMeta};

const P: &str = "debian:12:amd64:default";

/// A new VM version whose 4 GiB sparse disk takes a while to hash.
fn slow_version(root: &Path) -> std::path::PathBuf {
    let d = root.join("images/myos/1/amd64/cloud/20260801_0000");
    images::metadata_tarball(
        &d,
        "lxd.tar.xz",
        &ImageMeta::new("amd64", "myos", "1", "cloud", 5),
    )
    .expect("meta");
    let disk = images::qcow2(&d, "disk.qcow2", "slow").expect("qcow2");
    std::fs::File::options()
        .write(true)
        .open(&disk)
        .and_then(|f| f.set_len(4 << 30))
        .expect("sparse");
    disk
}

/// Whether process `pid` has `file` open.
fn has_open(pid: u32, file: &Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == file))
        })
        .unwrap_or(false)
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A build that has scanned and is hashing is stopped; `second` runs
/// meanwhile; then the build goes on. Returns the second writer's output.
fn race(root: &Path, second: &[&str]) -> String {
    let disk = std::fs::canonicalize(slow_version(root)).expect("canonical");
    let first = ssgen(&["build"])
        .arg(root)
        .stderr(Stdio::null())
        .spawn()
        .expect("build");
    let pid = first.id();
    let mut first = Killed(first);
    wait_for(
        "the build to hash the disk",
        Duration::from_secs(60),
        || has_open(pid, &disk),
    );
    signal(pid, "-STOP");
    let log = root.with_extension("second.log");
    let mut second = Killed(
        ssgen(second)
            .arg(root)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("second writer"),
    );
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the second writer to wait or finish",
        Duration::from_secs(120),
        || {
            logged().contains("waiting for the root lock")
                || second.0.try_wait().expect("wait").is_some()
        },
    );
    signal(pid, "-CONT");
    let a = first.0.wait().expect("build ends");
    assert!(a.success(), "the first build failed");
    let b = second.0.wait().expect("second ends");
    assert!(b.success(), "second writer: {}", logged());
    logged()
}

#[test]
fn a_build_that_scanned_before_a_removal_does_not_publish_it_again() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = tmp.path().join("root");
    version(&root, "debian", "12", "default", "20260701_0000", 1);
    build(&root);
    let log = race(&root, &["remove", "debian/12/default"]);
    assert!(
        versions(&root, P).is_empty(),
        "the removed image is published again: {:?}\n{log}",
        versions(&root, P)
    );
    assert!(log.contains("waiting for the root lock"), "{log}");
}

#[test]
fn a_build_that_scanned_before_a_prune_does_not_publish_it_again() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = tmp.path().join("root");
    version(&root, "debian", "12", "default", "20260701_0000", 1);
    version(&root, "debian", "12", "default", "20260801_0000", 2);
    build(&root);
    let log = race(&root, &["prune", "--keep", "1"]);
    assert_eq!(
        versions(&root, P),
        ["20260801_0000"],
        "the pruned version is published again\n{log}"
    );
}

#[test]
fn a_second_writer_waits_saying_so_then_gives_up_naming_the_lock_and_the_flag() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = tmp.path().join("root");
    version(&root, "debian", "12", "default", "20260701_0000", 1);
    build(&root);
    let lock = root.join(".ssgen/lock");
    let _holder = Killed(
        Command::new("flock")
            .args(["-x", s(&lock), "sleep", "60"])
            .stdout(Stdio::null())
            .spawn()
            .expect("flock"),
    );
    wait_for("the lock to be held", Duration::from_secs(10), || {
        run(Command::new("flock").args(["-n", s(&lock), "true"]))
            .status
            .code()
            == Some(1)
    });
    // Something for import and mirror to bring in.
    let export = tmp.path().join("export");
    images::metadata_tarball(
        &export,
        "meta.tar.xz",
        &ImageMeta::new("amd64", "alpine", "3.22", "default", 1_785_556_800),
    )
    .expect("meta");
    images::root_tar_xz(&export, "root.tar.xz", "alpine").expect("root");
    let other = tmp.path().join("other");
    version(&other, "ubuntu", "24.04", "default", "20260801_0000", 4);
    build(&other);
    let commands: [Vec<&str>; 5] = [
        vec!["build"],
        vec!["prune", "--keep", "1"],
        vec!["remove", "debian/12/default"],
        vec!["import", s(&export)],
        vec!["mirror", s(&other)],
    ];
    for args in &commands {
        let out = run(ssgen(args).env("SSGEN_LOCK_TIMEOUT", "1").arg(&root));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains("waiting for the root lock"), "{args:?}: {t}");
        assert!(
            t.contains(s(&lock)) && t.contains("--lock-timeout"),
            "{args:?}: {t}"
        );
    }
    // The upload API answers 503 and changes nothing.
    let mut served = common::serve(
        &root,
        &[
            "--token",
            common::TOKEN,
            "--allow-delete",
            "--lock-timeout",
            "1",
        ],
    );
    let d = "images/debian/12/amd64/default/20260701_0000";
    let (status, body) = served.curl(d, &["-X", "DELETE"]);
    let log = || std::fs::read_to_string(&served.log).unwrap_or_default();
    assert_eq!(status, 503, "{body}\n{}", log());
    // A real metadata tarball: the bytes are checked before the lock.
    let file = root.join(d).join("incus.tar.xz");
    let new = "images/debian/12/amd64/default/20260901_0000/lxd.tar.xz";
    let (status, body) = served.curl(new, &["-T", s(&file)]);
    assert_eq!(status, 503, "{body}");
    assert!(!root.join(new).exists() && !root.join(d).join(".withdrawn").exists());
    assert!(served.alive());
    drop(served);
    assert_eq!(
        versions(&root, P).len(),
        1,
        "a writer went ahead without the lock"
    );
    assert!(
        versions(&root, "alpine:3.22:amd64:default").is_empty()
            && versions(&root, "ubuntu:24.04:amd64:default").is_empty(),
        "an import or mirror went ahead without the lock"
    );
}
