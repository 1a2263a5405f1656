//! Abuse of `ssgen mirror` by its source, against the real binary and a
//! local plain-HTTP source on 127.0.0.1 that trickles, lies or stalls: two
//! mirrors at once, a body longer than the catalog says, a source that
//! goes silent, a version that could not be copied.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Behaviour, Killed, build, run, source, ssgen, text, versions, wait_for};
use sha2::Digest as _;
use ssgen_tests::images::{self, ImageMeta};

const V: &str = "20260801_0000";
const P: &str = "debian:12:amd64:cloud";

/// A built source root with one VM version (a qcow2 of some 200 KiB).
fn source_root(dir: &Path) -> PathBuf {
    let root = dir.join("source");
    let d = root.join(format!("images/debian/12/amd64/cloud/{V}"));
    images::metadata_tarball(
        &d,
        "lxd.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "cloud", 3),
    )
    .expect("meta");
    images::qcow2(&d, "disk.qcow2", "mirrored").expect("qcow2");
    build(&root);
    root
}

fn sha(path: &Path) -> String {
    ssgen_tests::hex(&sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

fn mirror(url: &str, root: &Path) -> std::process::Command {
    let mut cmd = ssgen(&["mirror", "--timestamp", "1785542400", url]);
    cmd.arg(root);
    cmd
}

#[test]
fn two_mirrors_at_once_from_a_slow_source_publish_whole_files() {
    let tmp = tempfile::tempdir().expect("temp");
    let src = source_root(tmp.path());
    let served = source(&src, Behaviour::Trickle(Duration::from_millis(15)));
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");
    let logs = [tmp.path().join("m1.log"), tmp.path().join("m2.log")];
    let spawn = |log: &Path| {
        Killed(
            mirror(&served.url, &root)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).expect("log"))
                .spawn()
                .expect("mirror"),
        )
    };
    let mut first = spawn(&logs[0]);
    // The second starts once the first is copying.
    wait_for("the first mirror to copy", Duration::from_secs(60), || {
        served.sent.load(Ordering::SeqCst) > 8192
    });
    let mut second = spawn(&logs[1]);
    let a = first.0.wait().expect("first");
    let b = second.0.wait().expect("second");
    let log = |i: usize| std::fs::read_to_string(&logs[i]).unwrap_or_default();
    assert!(a.success(), "first: {}", log(0));
    assert!(b.success(), "second: {}", log(1));
    let here = root.join(format!("images/debian/12/amd64/cloud/{V}"));
    let there = src.join(format!("images/debian/12/amd64/cloud/{V}"));
    for name in ["disk.qcow2", "lxd.tar.xz"] {
        assert_eq!(
            sha(&here.join(name)),
            sha(&there.join(name)),
            "{name} is torn\n{}\n{}",
            log(0),
            log(1)
        );
    }
    assert_eq!(versions(&root, P), [V]);
    let out = run(ssgen(&["verify"]).arg(&root));
    assert!(out.status.success(), "verify: {}", text(&out));
}

#[test]
fn a_body_longer_than_the_catalog_says_is_cut_at_its_size() {
    let tmp = tempfile::tempdir().expect("temp");
    let src = source_root(tmp.path());
    let served = source(&src, Behaviour::Endless);
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");
    let out = run(&mut mirror(&served.url, &root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&served.url) && text(&out).contains("more than"),
        "{}",
        text(&out)
    );
    let sent = served.sent.load(Ordering::SeqCst);
    assert!(sent < 32 << 20, "{sent} bytes were read of an endless body");
    assert!(
        !root
            .join(format!("images/debian/12/amd64/cloud/{V}"))
            .exists(),
        "a version was published"
    );
}

#[test]
fn a_source_that_goes_silent_is_given_up_after_the_stall_timeout() {
    let tmp = tempfile::tempdir().expect("temp");
    let src = source_root(tmp.path());
    let served = source(&src, Behaviour::Stall);
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");
    let log = tmp.path().join("m.log");
    let started = Instant::now();
    let mut child = Killed(
        mirror(&served.url, &root)
            .env("SSGEN_STALL_TIMEOUT", "2")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("mirror"),
    );
    wait_for("the mirror to give up", Duration::from_secs(40), || {
        child.0.try_wait().expect("wait").is_some()
    });
    let status = child.0.wait().expect("status");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(2), "{logged}");
    assert!(logged.contains(&served.url), "{logged}");
    assert!(logged.contains("--stall-timeout"), "{logged}");
    assert!(started.elapsed() < Duration::from_secs(40));
}

#[test]
fn fingerprints_are_compared_only_for_versions_copied() {
    let tmp = tempfile::tempdir().expect("temp");
    let src = source_root(tmp.path());
    // The catalog lies about the disk's digest: that version cannot be
    // copied, so nothing can be said of the fingerprint it advertises.
    let disk = src.join(format!("images/debian/12/amd64/cloud/{V}/disk.qcow2"));
    let catalog = src.join("streams/v1/images.json");
    let text_before = std::fs::read_to_string(&catalog).expect("catalog");
    let lie = text_before.replace(&sha(&disk), &"0".repeat(64));
    assert_ne!(lie, text_before);
    std::fs::write(&catalog, lie).expect("lie");
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");
    let out = run(&mut mirror(common::s(&src), &root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("disk.qcow2"), "{}", text(&out));
    assert!(
        !text(&out).contains("advertises fingerprint"),
        "a version not copied got a fingerprint warning: {}",
        text(&out)
    );
}

/// A plain HTTP source on 127.0.0.1 that serves the catalogs of `root`
/// and redirects every image file to `file:///etc/passwd`; it answers
/// `count` requests.
fn redirecting_source(root: &Path, count: usize) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let answer = match std::fs::read(root.join(&path)) {
                Ok(body) if path.starts_with("streams/") => {
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    a.extend_from_slice(&body);
                    a
                }
                _ => b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            };
            let _ = stream.write_all(&answer);
        }
    });
    url
}

#[test]
fn a_redirect_out_of_http_is_refused_by_name_and_the_root_is_made() {
    let tmp = tempfile::tempdir().expect("temp");
    let src = source_root(tmp.path());
    let url = redirecting_source(&src, 50);
    // A root that does not exist yet is made, as an import makes it.
    let root = tmp.path().join("new-root");
    let out = run(&mut mirror(&url, &root));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("redirects"), "{said}");
    assert!(said.contains("not http or https"), "{said}");
    assert!(!said.contains("run it again"), "a permanent error: {said}");
    assert!(root.is_dir(), "{said}");
    assert!(
        !root
            .join(format!("images/debian/12/amd64/cloud/{V}"))
            .exists(),
        "{said}"
    );
}
