//! `ssgen serve` end to end over real HTTPS on 127.0.0.1, driven with curl:
//! HTTP semantics, the upload API, rebuilds on change, and operations
//! (health check, access log, graceful stop, the local CA trusted by the
//! real clients). Every server is a child process killed when its test
//! ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;
use ssgen_tests::images::{self, ImageMeta};

mod common;
use common::{add_version, build};

const TOKEN: &str = "test-token-0123456789abcdef";
const V: &str = "20260801_0312";

struct Served {
    child: Child,
    url: String,
    plain_url: Option<String>,
    root: PathBuf,
    stderr: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Served {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    add_version(&root, "debian/12", V, 1);
    build(&root);
    let stderr = tmp.path().join("serve.stderr");
    let (child, url, plain_url) = spawn_serve(&root, &stderr, extra);
    Served {
        child,
        url,
        plain_url,
        root,
        stderr,
        _tmp: tmp,
    }
}

/// `ssgen serve --self-signed … ROOT` on a port the kernel picks, stderr to
/// a file: the child, its HTTPS URL and (with `--http`) its plain one.
fn spawn_serve(root: &Path, stderr: &Path, extra: &[&str]) -> (Child, String, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["serve", "--self-signed", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).expect("stderr file"))
        .spawn()
        .expect("serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url_of = || {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a line");
        line.trim().rsplit(" at ").next().expect("url").to_owned()
    };
    let url = url_of();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let plain_url = extra.contains(&"--http").then(url_of);
    (child, url, plain_url)
}

impl Served {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops the server (killed) and starts it again on the same root.
    fn restart(&mut self, extra: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url, plain_url) = spawn_serve(&self.root, &self.stderr, extra);
        (self.child, self.url, self.plain_url) = (child, url, plain_url);
    }

    /// Runs curl against the server; returns (status, headers, body).
    fn curl(&self, path: &str, args: &[&str]) -> (u16, String, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-s", "-S", "-D", "-", "--max-time", "20", "--cacert"])
            .arg(self.root.join(".ssgen/tls/cert.pem"))
            .args(args)
            .arg(format!("{}/{path}", self.url))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Headers end at the first blank line; a 100 Continue adds a block.
        let mut raw = out.stdout.as_slice();
        loop {
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("header block");
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            raw = &raw[end + 4..];
            // `HTTP/1.1 200 OK` or `HTTP/2 200`.
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            if status == 100 {
                continue;
            }
            return (status, head.to_ascii_lowercase(), raw.to_vec());
        }
    }

    fn file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root.join(rel)).expect("file")
    }

    fn catalog_has(&self, product: &str) -> bool {
        let text =
            std::fs::read_to_string(self.root.join("streams/v1/index.json")).unwrap_or_default();
        text.contains(product)
    }
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn static_files_follow_http_semantics() {
    let s = start(&[]);
    let rootfs = format!("images/debian/12/amd64/default/{V}/root.tar.xz");
    let bytes = s.file(&rootfs);

    let (status, headers, body) = s.curl(&rootfs, &[]);
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    assert_eq!(header(&headers, "content-type"), Some("application/x-xz"));
    assert!(header(&headers, "cache-control").is_some_and(|v| v.contains("immutable")));
    assert!(
        header(&headers, "content-encoding").is_none(),
        "image files are never encoded"
    );

    let (status, headers, body) = s.curl(&rootfs, &["-I", "-o", "/dev/null"]);
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(
        header(&headers, "content-length"),
        Some(bytes.len().to_string().as_str())
    );

    let (status, headers, body) = s.curl(&rootfs, &["-H", "Range: bytes=10-19"]);
    assert_eq!(status, 206);
    assert_eq!(body, &bytes[10..20]);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes 10-19/{}", bytes.len()).as_str())
    );
    let (status, _, body) = s.curl(&rootfs, &["-H", "Range: bytes=-5"]);
    assert_eq!((status, body.as_slice()), (206, &bytes[bytes.len() - 5..]));
    let (status, headers, _) = s.curl(&rootfs, &["-H", &format!("Range: bytes={}-", bytes.len())]);
    assert_eq!(status, 416);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes */{}", bytes.len()).as_str())
    );

    let (_, headers, _) = s.curl("streams/v1/index.json", &[]);
    let etag = header(&headers, "etag").expect("etag").to_owned();
    let (status, _, body) = s.curl(
        "streams/v1/index.json",
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert_eq!((status, body.len()), (304, 0));
    assert!(header(&headers, "cache-control").is_some_and(|v| v.contains("max-age=60")));

    let (status, headers, body) = s.curl("streams/v1/images.json", &["--compressed"]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(body, s.file("streams/v1/images.json"));

    assert_eq!(
        s.curl(".ssgen/cache.json", &[]).0,
        404,
        "hidden files are private"
    );
    assert_eq!(
        s.curl("images/%2e%2e/%2e%2e/etc/passwd", &["--path-as-is"])
            .0,
        400
    );
    assert_eq!(s.curl("nothing-here", &[]).0, 404);
    // Without --token there is no upload API.
    assert_eq!(s.curl(&rootfs, &["-X", "PUT", "--data-binary", "x"]).0, 405);
}

#[test]
fn uploads_are_checked_staged_and_published() {
    let s = start(&["--token", TOKEN, "--allow-delete"]);
    let auth = format!("Authorization: Bearer {TOKEN}");
    let src = s.root.join(format!("images/debian/12/amd64/default/{V}"));
    let meta = src.join("incus.tar.xz");
    let sum = |p: &Path| ssgen_tests::hex(&sha2::Sha256::digest(std::fs::read(p).expect("read")));
    let dest = "images/debian/13/amd64/default/20260901_0000";

    let meta_arg = meta.to_str().expect("utf-8 path");
    let (status, _, _) = s.curl(&format!("{dest}/incus.tar.xz"), &["-T", meta_arg]);
    assert_eq!(status, 401, "no token");
    let (status, _, _) = s.curl(
        &format!("{dest}/incus.tar.xz"),
        &[
            "-T",
            meta_arg,
            "-H",
            "Authorization: Bearer wrong-token-0123456789",
        ],
    );
    assert_eq!(status, 401, "wrong token");
    let wrong_sum = format!("X-Checksum-Sha256: {}", "0".repeat(64));
    let (status, _, body) = s.curl(
        &format!("{dest}/incus.tar.xz"),
        &["-T", meta_arg, "-H", &auth, "-H", &wrong_sum],
    );
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(
        !s.root.join(dest).join("incus.tar.xz").exists(),
        "a bad upload was stored"
    );
    // Neither a staging file nor the directories made for it stay.
    assert!(
        !s.root.join("images/debian/13").exists(),
        "a failed upload left {:?}",
        std::fs::read_dir(s.root.join("images/debian/13"))
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
    let (status, _, _) = s.curl(
        "images/../escape",
        &["-T", meta_arg, "-H", &auth, "--path-as-is"],
    );
    assert_eq!(status, 400);

    let good_sum = format!("X-Checksum-Sha256: {}", sum(&meta));
    let (status, _, _) = s.curl(
        &format!("{dest}/incus.tar.xz"),
        &["-T", meta_arg, "-H", &auth, "-H", &good_sum],
    );
    assert_eq!(status, 201);
    // The seeds' habit: a multipart form whose file name is the path.
    let other = tempfile::tempdir().expect("temp");
    let rootfs = images::root_tar_xz(other.path(), "root.tar.xz", "uploaded").expect("rootfs");
    let form = format!(
        "upload=@{};filename=debian/13/amd64/default/20260901_0000/root.tar.xz",
        rootfs.display()
    );
    let (status, _, body) = s.curl("images/", &["-H", &auth, "-F", &form]);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        s.file(&format!("{dest}/root.tar.xz")),
        std::fs::read(&rootfs).expect("read")
    );
    wait_for("the upload to be published", || {
        s.catalog_has("debian:13:amd64:default")
    });

    // Published files never change; the same bytes again are fine.
    let (status, _, _) = s.curl(
        &format!("{dest}/incus.tar.xz"),
        &["-T", meta_arg, "-H", &auth],
    );
    assert_eq!(status, 200);
    // Other bytes (a good metadata tarball all the same) are refused.
    let other_meta = images::metadata_tarball(
        other.path(),
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "13", "other", 1_785_556_800),
    )
    .expect("another metadata tarball");
    let (status, _, _) = s.curl(
        &format!("{dest}/incus.tar.xz"),
        &["-T", other_meta.to_str().expect("utf-8"), "-H", &auth],
    );
    assert_eq!(status, 409);

    let (status, _, _) = s.curl(&format!("{dest}/"), &["-X", "DELETE", "-H", &auth]);
    assert_eq!(status, 200);
    wait_for("the withdrawal to be published", || {
        !s.catalog_has("debian:13:amd64:default")
    });
    assert!(
        s.root.join(dest).join("root.tar.xz").exists(),
        "files stay for the grace period"
    );
}

#[test]
fn watch_rebuilds_when_files_appear() {
    let s = start(&["--watch"]);
    let dir = s.root.join("images/alpine/3.22/amd64/default");
    let staging = dir.join(".20260901_0000");
    images::metadata_tarball(
        &staging,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "alpine", "3.22", "default", 7),
    )
    .expect("meta");
    images::root_tar_xz(&staging, "root.tar.xz", "watched").expect("rootfs");
    // A visible version written after the hidden one is complete: the
    // rebuild that publishes it has seen the hidden one too, so the hidden
    // one must be absent from that catalog (a wait, not a sleep that a slow
    // watcher would turn into a check of nothing).
    let signal = s
        .root
        .join("images/alpine/3.21/amd64/default/20260901_0000");
    images::metadata_tarball(
        &signal,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "alpine", "3.21", "default", 8),
    )
    .expect("meta");
    images::root_tar_xz(&signal, "root.tar.xz", "signal").expect("rootfs");
    wait_for("the visible version to be published", || {
        s.catalog_has("alpine:3.21:amd64:default")
    });
    assert!(
        !s.catalog_has("alpine:3.22:amd64:default"),
        "a hidden dir was published"
    );
    std::fs::rename(&staging, dir.join("20260901_0000")).expect("rename");
    wait_for("the new version to be published", || {
        s.catalog_has("alpine:3.22:amd64:default")
    });
}

#[test]
fn the_plain_http_listener_serves_but_takes_no_uploads() {
    let s = start(&["--http", "127.0.0.1:0", "--token", TOKEN]);
    let plain = s.plain_url.clone().expect("a plain listener");
    assert!(
        plain.starts_with("http://127.0.0.1:") && plain != s.url,
        "{plain}"
    );
    let curl = |args: &[&str], path: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(args)
            .arg(format!("{plain}/{path}"))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(&[], "streams/v1/index.json"), "200");
    // The token would cross the network in clear text: refused even when right.
    let auth = format!("Authorization: Bearer {TOKEN}");
    let path = "images/x/1/amd64/default/20260901_0000/incus.tar.xz";
    assert_eq!(
        curl(&["-X", "PUT", "--data-binary", "x", "-H", &auth], path),
        "405"
    );
    assert!(!s.root.join(path).exists());
}

#[test]
fn alias_urls_answer_direct_imports_for_the_daemons_arch() {
    let s = start(&[]);
    // Before any unified image: the alias of a split image is not importable.
    let (status, _, body) = s.curl("aliases/debian/12", &["-I"]);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));

    for (arch, date) in [("amd64", 11), ("arm64", 12)] {
        let dir = s
            .root
            .join(format!("images/alpine/3.20/{arch}/default/20260901_0000"));
        let meta = ImageMeta::new(arch, "alpine", "3.20", "default", date);
        images::unified_tarball(&dir, "incus_combined.tar.gz", &meta, arch).expect("tarball");
    }
    build(&s.root);
    let tarball = |arch: &str| {
        format!("images/alpine/3.20/{arch}/default/20260901_0000/incus_combined.tar.gz")
    };

    // The daemon's HEAD, with its architectures (most preferred first).
    let (status, headers, body) = s.curl(
        "aliases/alpine/3.20",
        &["-I", "-H", "Incus-Server-Architectures: aarch64, armv7l"],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let hash = format!("{:x}", sha2::Sha256::digest(s.file(&tarball("arm64"))));
    assert_eq!(header(&headers, "incus-image-hash"), Some(hash.as_str()));
    assert_eq!(header(&headers, "lxd-image-hash"), Some(hash.as_str()));
    let url = format!("{}/{}", s.url, tarball("arm64"));
    assert_eq!(header(&headers, "incus-image-url"), Some(url.as_str()));
    assert_eq!(header(&headers, "lxd-image-url"), Some(url.as_str()));

    // LXD's header name, another arch; the URL it names serves the file.
    let (status, headers, _) = s.curl(
        "aliases/alpine/3.20",
        &["-I", "-H", "LXD-Server-Architectures: x86_64, i686"],
    );
    assert_eq!(status, 200);
    let url = header(&headers, "lxd-image-url").expect("a URL").to_owned();
    let rel = url
        .strip_prefix(&format!("{}/", s.url))
        .expect("on this server");
    assert_eq!(rel, tarball("amd64"));
    let (status, _, bytes) = s.curl(rel, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        format!("{:x}", sha2::Sha256::digest(&bytes)),
        header(&headers, "lxd-image-hash").expect("a hash")
    );

    // The arch in the path; no arch given with two candidates; an arch the
    // alias lacks; something that is no alias.
    let (status, _, body) = s.curl("aliases/alpine/3.20/default/arm64", &[]);
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(answer["hash"], hash.as_str());
    assert_eq!(answer["url"], format!("{}/{}", s.url, tarball("arm64")));
    let (status, _, body) = s.curl("aliases/alpine/3.20", &[]);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("amd64, arm64"));
    let (status, _, _) = s.curl(
        "aliases/alpine/3.20",
        &["-H", "Incus-Server-Architectures: s390x"],
    );
    assert_eq!(status, 404);
    let (status, _, _) = s.curl("aliases/alpine/..%2F..%2Fetc", &[]);
    assert!(status == 400 || status == 404, "{status}");
}

#[test]
fn healthz_answers_with_the_catalog_it_serves() {
    let s = start(&[]);
    let health = |s: &Served| {
        let (status, headers, body) = s.curl("healthz", &[]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(header(&headers, "cache-control").is_some_and(|v| v.contains("no-store")));
        serde_json::from_slice::<serde_json::Value>(&body).expect("JSON")
    };
    let first = health(&s);
    assert_eq!(first["status"], "ok");
    let (_, headers, _) = s.curl("streams/v1/images.json", &[]);
    assert_eq!(
        first["catalog"]["images"].as_str(),
        header(&headers, "etag"),
        "{first}"
    );
    // Another build: the health check names the new catalog.
    add_version(&s.root, "alpine/3.22", "20260901_0000", 3);
    build(&s.root);
    let second = health(&s);
    let (_, headers, _) = s.curl("streams/v1/images.json", &[]);
    assert_eq!(
        second["catalog"]["images"].as_str(),
        header(&headers, "etag")
    );
    assert_ne!(first["catalog"]["images"], second["catalog"]["images"]);
    assert!(second["catalog"]["generation"].as_u64() > first["catalog"]["generation"].as_u64());
}

#[test]
fn the_access_log_has_one_common_log_line_per_answer() {
    let logs = tempfile::tempdir().expect("temp");
    let log = logs.path().join("access.log");
    let log_arg = log.to_str().expect("utf-8");
    let s = start(&["--access-log", log_arg]);
    let rootfs = format!("images/debian/12/amd64/default/{V}/root.tar.xz");
    let (_, _, index) = s.curl("streams/v1/index.json", &[]);
    let (_, _, missing) = s.curl("nothing%22here", &[]);
    s.curl(&rootfs, &["--http1.1", "-H", "Range: bytes=0-9"]);
    wait_for("three access log lines", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)
    });
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    let shape = |line: &str| {
        // 127.0.0.1 - - [01/Aug/2026:04:00:00 +0000] "GET /x HTTP/2.0" 200 123
        let (host, rest) = line.split_once(" - - [").expect("host");
        let (date, rest) = rest.split_once("] \"").expect("date");
        let (request, rest) = rest.rsplit_once("\" ").expect("request");
        let (status, bytes) = rest.split_once(' ').expect("status");
        assert_eq!(host, "127.0.0.1", "{line}");
        assert!(
            date.len() == 26 && date.ends_with(" +0000") && date.as_bytes()[2] == b'/',
            "{line}"
        );
        (request.to_owned(), status.to_owned(), bytes.to_owned())
    };
    assert_eq!(
        shape(lines[0]),
        (
            "GET /streams/v1/index.json HTTP/2.0".into(),
            "200".into(),
            index.len().to_string()
        )
    );
    assert_eq!(
        shape(lines[1]),
        (
            "GET /nothing%22here HTTP/2.0".into(),
            "404".into(),
            missing.len().to_string()
        )
    );
    assert_eq!(
        shape(lines[2]),
        (format!("GET /{rootfs} HTTP/1.1"), "206".into(), "10".into())
    );
}

#[test]
fn https_speaks_http2_and_http11() {
    let s = start(&[]);
    let version = |flag: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                flag,
                "--cacert",
            ])
            .arg(s.root.join(".ssgen/tls/cert.pem"))
            .arg(format!("{}/streams/v1/images.json", s.url))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(version("--http2"), "2 200");
    assert_eq!(version("--http1.1"), "1.1 200");
}

/// SIGTERM: the listener closes at once, a download in progress finishes,
/// then the server exits 0; one that would outlast --shutdown-timeout is
/// cut when it runs out.
#[test]
fn sigterm_lets_downloads_finish_and_refuses_new_connections() {
    let cut_soon: &[&str] = &["--shutdown-timeout", "1"];
    // The default limit (30 s) for a download of about 3 s, then 1 s for
    // one of about 48 s.
    for (extra, rate, finishes) in [(&[][..], "16M", true), (cut_soon, "1M", false)] {
        let mut s = start(extra);
        let big = s.root.join("images/debian/12/amd64/default/big.img");
        let size: u64 = 48 << 20;
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(size))
            .expect("sparse file");
        let out = s.root.with_file_name("download");
        let mut curl = Command::new("curl")
            .args([
                "-sS",
                "--http1.1",
                "--limit-rate",
                rate,
                "--max-time",
                "90",
                "-o",
            ])
            .arg(&out)
            .arg("--cacert")
            .arg(s.root.join(".ssgen/tls/cert.pem"))
            .arg(format!("{}/images/debian/12/amd64/default/big.img", s.url))
            .stderr(Stdio::null())
            .spawn()
            .expect("curl starts");
        wait_for("the download to start", || {
            std::fs::metadata(&out).is_ok_and(|m| m.len() > 1 << 20)
        });
        let pid = s.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let addr = s.url.trim_start_matches("https://").to_owned();
        wait_for("the listener to close", || {
            std::net::TcpStream::connect(&addr).is_err()
        });
        let stopped = Instant::now();
        let curl_ok = curl.wait().expect("curl ends").success();
        let got = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let exit = loop {
            if let Some(status) = s.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(40),
                "the server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            exit.code(),
            Some(0),
            "exit {exit:?}; stderr:\n{}",
            s.stderr()
        );
        if finishes {
            assert!(
                curl_ok && got == size,
                "the download in progress got {got} of {size} bytes; stderr:\n{}",
                s.stderr()
            );
        } else {
            assert!(
                !curl_ok && got < size,
                "a download of {rate}/s outlasting --shutdown-timeout 1 was not cut ({got} bytes)"
            );
            assert!(s.stderr().contains("were cut"), "{}", s.stderr());
        }
        assert!(s.stderr().contains("stopping (SIGTERM)"), "{}", s.stderr());
        // Nothing to kill on drop; restart so Drop has a child to reap.
        s.restart(&[]);
    }
}

/// `--self-signed` makes a CA once (key 0600), signs the server's
/// certificate with it for the local names, tells how to trust it, and the
/// README's lines work: `lxc` and `incus` list the images with only that
/// CA in SSL_CERT_FILE. A new name makes a new certificate from the same CA.
#[test]
fn self_signed_makes_a_local_ca_that_real_clients_trust() {
    ssgen_tests::require_tools(&["openssl", "lxc", "incus"]).unwrap_or_else(|e| panic!("{e:#}"));
    let mut s = start(&[]);
    let tls = s.root.join(".ssgen/tls");
    let ca = tls.join("ca.pem");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("runs");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let chain = std::fs::read_to_string(tls.join("cert.pem")).expect("cert.pem");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    let leaf = tls.join("leaf.pem");
    let end = chain
        .find("-----END CERTIFICATE-----")
        .expect("a certificate")
        + 25;
    std::fs::write(&leaf, &chain[..end]).expect("leaf");
    // Strict: the CA itself is the only trust anchor.
    run(Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&ca)
        .arg(&leaf));
    let sans = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&leaf));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    for name in [
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:localhost",
        &format!("DNS:{}", host.trim()),
    ] {
        assert!(sans.contains(name), "{name} missing in {sans}");
    }
    let ca_text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&ca));
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    let stderr = s.stderr();
    let ca_abs = std::fs::canonicalize(&ca).expect("ca");
    assert!(
        stderr.contains("update-ca-certificates")
            && stderr.contains(&format!("SSL_CERT_FILE={}", ca_abs.display())),
        "{stderr}"
    );

    // The real clients, trusting that CA only, as the README shows.
    let clients = tempfile::tempdir().expect("temp");
    let env = ssgen_tests::lxd::ClientEnv::new(clients.path(), &ca_abs).expect("client env");
    let url = s.url.clone();
    env.lxc(&["remote", "add", "demo", &url, "--protocol=simplestreams"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let listed = env
        .lxc(&["image", "list", "demo:", "--format", "csv"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        listed.contains("x86_64"),
        "lxc image list demo: printed {listed:?}"
    );
    let incus = |args: &[&str]| {
        let out = env
            .command("incus")
            .env("INCUS_CONF", clients.path().join("incus-conf"))
            .args(args)
            .output()
            .expect("incus runs");
        assert!(
            out.status.success(),
            "incus {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    incus(&["remote", "add", "demo", &url, "--protocol=simplestreams"]);
    let listed = incus(&["image", "list", "demo:", "--format", "csv"]);
    assert!(
        listed.contains("x86_64"),
        "incus image list demo: printed {listed:?}"
    );

    // Another name: a new certificate holding it, from the same CA.
    let ca_before = std::fs::read(&ca).expect("ca");
    s.restart(&["--tls-name", "images.example.org"]);
    assert_eq!(
        std::fs::read(&ca).expect("ca"),
        ca_before,
        "the CA was made again"
    );
    let chain = std::fs::read_to_string(tls.join("cert.pem")).expect("cert.pem");
    let end = chain
        .find("-----END CERTIFICATE-----")
        .expect("a certificate")
        + 25;
    std::fs::write(&leaf, &chain[..end]).expect("leaf");
    let sans = run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&leaf));
    assert!(
        sans.contains("DNS:images.example.org") && sans.contains("DNS:localhost"),
        "{sans}"
    );
    run(Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&ca)
        .arg(&leaf));
}

/// The settled serving contract, shared with the edge: image files are
/// immutable for a year, side files (which may be replaced) and other
/// files get five minutes, the catalogs, the page and direct-URL answers a
/// minute; the catalog may be read from any origin.
#[test]
fn cache_policy_follows_what_may_change_and_the_catalog_is_cross_origin() {
    let s = start(&[]);
    let product = "images/debian/12/amd64/default";
    std::fs::write(
        s.root.join(format!("{product}/metadata.json")),
        r#"{"aliases": ["deb"]}"#,
    )
    .expect("metadata.json");
    let cache = |rel: &str| {
        let (status, headers, _) = s.curl(rel, &[]);
        assert_eq!(status, 200, "{rel}");
        header(&headers, "cache-control").map(str::to_owned)
    };
    let year = Some("public, max-age=31536000, immutable".to_owned());
    assert_eq!(cache(&format!("{product}/{V}/root.tar.xz")), year);
    assert_eq!(cache(&format!("{product}/{V}/incus.tar.xz")), year);
    let five = Some("public, max-age=300".to_owned());
    assert_eq!(
        cache(&format!("{product}/metadata.json")),
        five,
        "a side file may change"
    );
    let minute = Some("public, max-age=60".to_owned());
    assert_eq!(cache("streams/v1/index.json"), minute);
    assert_eq!(cache(""), minute);
    for doc in ["streams/v1/index.json", "streams/v1/images.json"] {
        let (_, headers, _) = s.curl(doc, &["-H", "Origin: https://page.example"]);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some("*"),
            "{doc}"
        );
    }
}

/// If-Modified-Since, If-Match, If-Unmodified-Since and If-Range are judged
/// as the edge judges them (the core's one evaluation).
#[test]
fn conditional_requests_are_judged_by_the_contract() {
    let s = start(&[]);
    let rel = format!("images/debian/12/amd64/default/{V}/root.tar.xz");
    let bytes = s.file(&rel);
    let (_, headers, _) = s.curl(&rel, &[]);
    let etag = header(&headers, "etag").expect("etag").to_owned();
    // The helper lowercases headers, and HTTP dates are case-sensitive:
    // the date of the file's mtime, as the server must have written it.
    let mtime = std::fs::metadata(s.root.join(&rel))
        .and_then(|m| m.modified())
        .expect("mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let modified = ssgen_core::serve::http::http_date(i64::try_from(mtime).expect("mtime"));
    assert_eq!(
        header(&headers, "last-modified"),
        Some(modified.to_ascii_lowercase().as_str())
    );
    let status = |args: &[&str]| s.curl(&rel, args).0;
    assert_eq!(
        status(&["-H", &format!("If-Modified-Since: {modified}")]),
        304
    );
    assert_eq!(
        status(&["-H", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"]),
        200
    );
    assert_eq!(status(&["-H", "If-Match: \"other\""]), 412);
    assert_eq!(status(&["-H", &format!("If-Match: {etag}")]), 200);
    assert_eq!(
        status(&["-H", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT"]),
        412
    );
    // A Range under an If-Range that no longer matches gets the whole file.
    let (code, _, body) = s.curl(&rel, &["-H", "Range: bytes=0-9", "-H", "If-Range: \"old\""]);
    assert_eq!((code, body.len()), (200, bytes.len()));
    let (code, _, body) = s.curl(
        &rel,
        &["-H", "Range: bytes=0-9", "-H", &format!("If-Range: {etag}")],
    );
    assert_eq!((code, body.as_slice()), (206, &bytes[..10]));
    let (code, _, _) = s.curl(
        "streams/v1/index.json",
        &["-H", "If-Modified-Since: Sun, 06 Nov 2094 08:49:37 GMT"],
    );
    assert_eq!(code, 304, "the catalog documents too");
}

/// Uploads take the sha256 in either header and either case, side files
/// at their levels (replaced by other bytes), and refuse bytes the build
/// would refuse, before anything is stored.
#[test]
fn uploads_take_either_checksum_header_and_side_files_and_refuse_bad_bytes() {
    let s = start(&["--token", TOKEN, "--allow-delete"]);
    let auth = format!("Authorization: Bearer {TOKEN}");
    let work = tempfile::tempdir().expect("temp");
    let meta = images::metadata_tarball(
        work.path(),
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "13", "default", 1_785_556_800),
    )
    .expect("metadata");
    let root = images::root_tar_xz(work.path(), "root.tar.xz", "contract").expect("root");
    let sum = |p: &Path| ssgen_tests::hex(&sha2::Sha256::digest(std::fs::read(p).expect("read")));
    let dir = "images/debian/13/amd64/default/20260901_0000";
    let put = |rel: &str, file: &Path, headers: &[String]| {
        let mut args = vec!["-T".to_owned(), file.to_str().expect("utf-8").to_owned()];
        args.extend(["-H".to_owned(), auth.clone()]);
        for h in headers {
            args.extend(["-H".to_owned(), h.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, body) = s.curl(rel, &args);
        (status, String::from_utf8_lossy(&body).into_owned())
    };

    // Two headers that disagree: nothing stored.
    let (status, body) = put(
        &format!("{dir}/incus.tar.xz"),
        &meta,
        &[
            format!("X-Ssgen-Sha256: {}", sum(&meta)),
            format!("X-Checksum-Sha256: {}", "0".repeat(64)),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("send one sha256"), "{body}");
    assert!(!s.root.join(dir).exists());
    // The edge's header, in capitals.
    let (status, body) = put(
        &format!("{dir}/incus.tar.xz"),
        &meta,
        &[format!(
            "X-Ssgen-Sha256: {}",
            sum(&meta).to_ascii_uppercase()
        )],
    );
    assert_eq!(status, 201, "{body}");

    // Bytes the build would refuse.
    let cut = work.path().join("cut.tar.xz");
    let whole = std::fs::read(&meta).expect("meta");
    std::fs::write(&cut, &whole[..whole.len() - 20]).expect("cut");
    for (file, name, why) in [
        (&cut, "lxd.tar.xz", "cut short"),
        (&root, "lxd.tar.xz", "metadata.yaml"),
        (&root, "rootfs.squashfs", "squashfs"),
    ] {
        let rel = format!("{dir}/{name}");
        let (status, body) = put(&rel, file, &[]);
        assert_eq!(status, 422, "{name}: {body}");
        assert!(body.contains(why), "{name}: {body}");
        assert!(!s.root.join(&rel).exists(), "{rel} was stored");
    }

    // Side files at their levels, replaced by other bytes.
    let req = work.path().join("req");
    std::fs::write(&req, br#"{"secureboot": "false"}"#).expect("req");
    let side = "images/debian/.requirements";
    assert_eq!(put(side, &req, &[]).0, 201);
    std::fs::write(&req, br#"{"secureboot": "true"}"#).expect("req");
    assert_eq!(put(side, &req, &[]).0, 201);
    assert_eq!(s.file(side), br#"{"secureboot": "true"}"#);
    assert_eq!(put(side, &req, &[]).0, 200, "the same bytes again");
    let fields = work.path().join("metadata.json");
    std::fs::write(&fields, br#"{"aliases": ["trixie-ish"]}"#).expect("fields");
    assert_eq!(
        put("images/debian/13/amd64/default/metadata.json", &fields, &[]).0,
        201
    );
    for refused in [
        format!("{dir}/.requirements"),
        format!("{dir}/.withdrawn"),
        "images/debian/metadata.json".to_owned(),
    ] {
        let (status, body) = put(&refused, &req, &[]);
        assert_eq!(status, 400, "{refused}: {body}");
        assert!(!s.root.join(&refused).exists(), "{refused} was stored");
    }
    let (status, _, _) = s.curl(side, &["-X", "DELETE", "-H", &auth]);
    assert_eq!(status, 200);
    assert!(
        !s.root.join(side).exists(),
        "a side file is deleted at once"
    );

    // JSON, as the edge answers, when asked for.
    let (status, _, body) = s.curl(
        &format!("{dir}/incus.tar.xz"),
        &[
            "-T",
            meta.to_str().expect("utf-8"),
            "-H",
            &auth,
            "-H",
            "Accept: application/json",
        ],
    );
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(answer["sha256"], sum(&meta));
    assert_eq!(answer["stored"], false);
    let (status, _, body) = s.curl(
        &format!("{dir}/notes.txt"),
        &[
            "-T",
            meta.to_str().expect("utf-8"),
            "-H",
            &auth,
            "-H",
            "Accept: application/json",
        ],
    );
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("notes.txt"))
    );
}

const READ_TOKEN: &str = "reader-one-0123456789abcdef";

/// A private feed: reads only under a token, of the command line or of a
/// file read again when it changes; the page, the direct-URL answers and
/// the access log keep the token where it belongs; the upload API keeps
/// its own token at the root.
#[test]
fn a_private_feed_answers_reads_only_under_its_tokens() {
    let work = tempfile::tempdir().expect("temp");
    let tokens = work.path().join("readers");
    std::fs::write(&tokens, "# readers\nreader-two-0123456789abcdef\n").expect("tokens");
    let log = work.path().join("access.log");
    let s = start(&[
        "--read-token",
        READ_TOKEN,
        "--read-token-file",
        tokens.to_str().expect("utf-8"),
        "--token",
        TOKEN,
        "--access-log",
        log.to_str().expect("utf-8"),
    ]);
    let dir = s
        .root
        .join("images/alpine/3.20/amd64/default/20260901_0000");
    let meta = ImageMeta::new("amd64", "alpine", "3.20", "default", 11);
    images::unified_tarball(&dir, "incus_combined.tar.gz", &meta, "private").expect("tarball");
    build(&s.root);
    let rootfs = format!("images/debian/12/amd64/default/{V}/root.tar.xz");
    let readable = [
        "streams/v1/index.json",
        "streams/v1/images.json",
        rootfs.as_str(),
        "",
        "index.html",
    ];
    for rel in readable {
        let (status, _, body) = s.curl(rel, &[]);
        assert_eq!(
            status,
            404,
            "/{rel} without a token: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("debian"),
            "/{rel} tells"
        );
        let (status, _, body) = s.curl(&format!("reader-one-0123456789abcdeX/{rel}"), &[]);
        assert_eq!(
            status,
            404,
            "/{rel} under a wrong token: {}",
            String::from_utf8_lossy(&body)
        );
        let (status, headers, body) = s.curl(&format!("{READ_TOKEN}/{rel}"), &[]);
        assert_eq!(status, 200, "/{READ_TOKEN}/{rel}");
        if rel.starts_with("streams/v1/") {
            assert_eq!(
                header(&headers, "access-control-allow-origin"),
                Some("*"),
                "/{READ_TOKEN}/{rel} is cross-origin"
            );
        }
        if rel.starts_with("streams/") || rel == rootfs {
            assert_eq!(body, s.file(rel), "/{READ_TOKEN}/{rel} is the file");
        }
    }
    // The page names the remote with its token.
    let (_, _, page) = s.curl(&format!("{READ_TOKEN}/"), &[]);
    let page = String::from_utf8_lossy(&page).into_owned();
    let remote = format!("{}/{READ_TOKEN}", s.url);
    assert!(
        page.contains("remote add") && page.contains(&remote),
        "{page}"
    );
    // Direct-URL import: the image URL is under the token too.
    let (status, _, _) = s.curl("aliases/alpine/3.20", &["-I"]);
    assert_eq!(status, 404);
    let (status, headers, _) = s.curl(&format!("{READ_TOKEN}/aliases/alpine/3.20"), &["-I"]);
    assert_eq!(status, 200);
    let url = header(&headers, "incus-image-url")
        .expect("a URL")
        .to_owned();
    assert_eq!(
        url,
        format!("{remote}/images/alpine/3.20/amd64/default/20260901_0000/incus_combined.tar.gz")
    );
    let (status, _, _) = s.curl(
        url.strip_prefix(&format!("{}/", s.url)).expect("here"),
        &["-I"],
    );
    assert_eq!(status, 200);
    // The health check stays open and says no more than that.
    let (status, _, body) = s.curl("healthz", &[]);
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (200, r#"{"status":"ok"}"#)
    );
    let (_, _, body) = s.curl(&format!("{READ_TOKEN}/healthz"), &[]);
    assert!(String::from_utf8_lossy(&body).contains("generation"));
    // The upload API's view of the files needs its own token, at the root;
    // without it (a reader's token is not it) the listing is not there.
    let (status, _, body) = s.curl("api/v1/files", &[]);
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("images/"));
    let (status, _, body) = s.curl(
        "api/v1/files",
        &["-H", &format!("Authorization: Bearer {READ_TOKEN}")],
    );
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("images/"));
    let (status, _, _) = s.curl(&format!("{READ_TOKEN}/api/v1/files"), &[]);
    assert_eq!(status, 404);
    let (status, _, _) = s.curl(
        "api/v1/files",
        &["-H", &format!("Authorization: Bearer {TOKEN}")],
    );
    assert_eq!(status, 200);

    // The file's token works, and is revoked by changing the file.
    let second = "reader-two-0123456789abcdef";
    assert_eq!(
        s.curl(&format!("{second}/streams/v1/index.json"), &[]).0,
        200
    );
    let replaced = work.path().join("readers.new");
    std::fs::write(&replaced, "reader-three-0123456789abcdef\n").expect("tokens");
    std::fs::rename(&replaced, &tokens).expect("rename");
    wait_for("the revoked token to stop working", || {
        s.curl(&format!("{second}/streams/v1/index.json"), &[]).0 == 404
    });
    assert_eq!(
        s.curl("reader-three-0123456789abcdef/streams/v1/index.json", &[])
            .0,
        200
    );
    // A file that goes bad opens nothing, and never the feed.
    std::fs::write(&tokens, "short\n").expect("tokens");
    wait_for("the bad file to close its tokens", || {
        s.curl("reader-three-0123456789abcdef/streams/v1/index.json", &[])
            .0
            == 404
    });
    assert_eq!(s.curl("streams/v1/index.json", &[]).0, 404);
    assert_eq!(
        s.curl(&format!("{READ_TOKEN}/streams/v1/index.json"), &[])
            .0,
        200
    );

    // Extra slashes and `.` segments reach the same file, and the log
    // hides the token in them as well; a query is never logged.
    for odd in [
        format!("/{READ_TOKEN}/streams/v1/index.json"),
        format!("//{READ_TOKEN}/streams/v1/index.json"),
        format!("./{READ_TOKEN}//streams/v1/index.json"),
    ] {
        assert_eq!(s.curl(&odd, &["--path-as-is"]).0, 200, "{odd}");
    }
    assert_eq!(
        s.curl(&format!("streams/v1/index.json?token={READ_TOKEN}"), &[])
            .0,
        404
    );

    // No token in the access log.
    wait_for("the access log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("/[token]/healthz"))
    });
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains("0123456789abcdef"),
        "a token is in the log:\n{text}"
    );
    assert!(
        text.contains("GET /[token]/streams/v1/index.json"),
        "{text}"
    );
    assert!(text.contains("GET /streams/v1/index.json"), "{text}");
}

#[test]
fn read_tokens_that_can_be_guessed_or_not_be_in_a_url_are_refused() {
    let tmp = tempfile::tempdir().expect("temp");
    for token in ["x7Qz9", "has/a/slash-0123456789", "has space 0123456789ab"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ssgen"))
            .args([
                "serve",
                "--plain",
                "--listen",
                "127.0.0.1:0",
                "--read-token",
                token,
            ])
            .arg(tmp.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{token}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--read-token") && !err.contains(token),
            "{token}: {err}"
        );
    }
}

/// A token file replaced by a FIFO (or anything but a regular file) closes
/// the file's tokens and never stalls the server waiting for a writer.
#[test]
fn a_token_file_that_is_no_regular_file_closes_its_tokens_and_stalls_nothing() {
    let work = tempfile::tempdir().expect("temp");
    let tokens = work.path().join("readers");
    let reader = "reader-fifo-0123456789abcdef";
    std::fs::write(&tokens, format!("{reader}\n")).expect("tokens");
    let s = start(&["--read-token-file", tokens.to_str().expect("utf-8")]);
    build(&s.root);
    assert_eq!(
        s.curl(&format!("{reader}/streams/v1/index.json"), &[]).0,
        200
    );
    std::fs::remove_file(&tokens).expect("rm");
    let made = Command::new("mkfifo")
        .arg(&tokens)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    // curl's own bound (20 s) fails the test if the server stalls on the
    // FIFO; the file's tokens close within the recheck interval.
    wait_for("the FIFO to close the file's tokens", || {
        s.curl(&format!("{reader}/streams/v1/index.json"), &[]).0 == 404
    });
    let (status, _, _) = s.curl("healthz", &[]);
    assert_eq!(status, 200);
    std::fs::remove_file(&tokens).expect("rm fifo");
    std::fs::write(&tokens, format!("{reader}\n")).expect("tokens");
    wait_for("the file's tokens to open again", || {
        s.curl(&format!("{reader}/streams/v1/index.json"), &[]).0 == 200
    });
}

#[test]
fn push_refuses_plain_http_to_another_machine_unless_allowed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    common::version(&root, "debian", "12", "default", "20260801_0000", 1);
    let push = |to: &str, extra: &[&str]| {
        let out = common::run(
            common::ssgen(&["push", "--token", "t0ken", "--timeout", "5", "--to", to])
                .args(extra)
                .arg(&root),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = push("http://192.0.2.1:9", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--allow-http") && err.contains("unencrypted") && err.contains("https://"),
        "{err}"
    );
    // Allowed, or to this machine: the push goes ahead (and fails to
    // connect, since nothing listens there).
    for (to, extra) in [
        ("http://192.0.2.1:9", &["--allow-http"][..]),
        ("http://127.0.0.1:9", &[][..]),
        ("http://localhost:9", &[][..]),
    ] {
        let (code, err) = push(to, extra);
        assert_ne!(code, Some(0), "{to}: {err}");
        assert!(!err.contains("--allow-http"), "{to} was refused: {err}");
    }
}
