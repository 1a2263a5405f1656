//! `ssgen serve` end to end over real HTTPS on 127.0.0.1, driven with curl:
//! HTTP semantics, the upload API and rebuilds on change. Every server is
//! a child process killed when its test ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;
use ssgen_tests::images::{self, ImageMeta};

const TOKEN: &str = "test-token-0123456789abcdef";
const V: &str = "20260801_0312";

struct Served {
    child: Child,
    url: String,
    plain_url: Option<String>,
    root: PathBuf,
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
    let d = root.join(format!("images/debian/12/amd64/default/{V}"));
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 1),
    )
    .expect("meta");
    images::root_tar_xz(&d, "root.tar.xz", "served").expect("rootfs");
    let built = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .arg("build")
        .arg(&root)
        .output()
        .expect("build runs");
    assert!(built.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["serve", "--self-signed", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    Served {
        child,
        url,
        plain_url,
        root,
        _tmp: tmp,
    }
}

impl Served {
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
            if head.starts_with("HTTP/1.1 100") {
                continue;
            }
            let status = head[9..12].parse().expect("status");
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
    let rootfs_arg = rootfs.to_str().expect("utf-8");
    let (status, _, _) = s.curl(
        &format!("{dest}/incus.tar.xz"),
        &["-T", rootfs_arg, "-H", &auth],
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
    let built = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .arg("build")
        .arg(&s.root)
        .output()
        .expect("build runs");
    assert!(built.status.success());
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
