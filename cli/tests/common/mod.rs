//! Helpers of the CLI suites (`serve.rs` and the abuse suites
//! `abuse_*.rs`): the real binary, real image files, `ssgen serve` on
//! 127.0.0.1, and a small HTTP source that can trickle, lie or stall. Every
//! wait is bounded; its expiry is a failure.
#![allow(dead_code, reason = "each suite uses a part of the helpers")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ssgen_tests::images::{self, ImageMeta};

pub const TOKEN: &str = "abuse-token-0123456789abcdef";

/// The binary under test; `SSGEN_TEST_BIN` points the suites at another
/// build (to show that a test fails on the code before a fix).
pub fn bin() -> PathBuf {
    std::env::var_os("SSGEN_TEST_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ssgen")), PathBuf::from)
}

pub fn ssgen(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("SSL_CERT_FILE");
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("ssgen runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A container version of real files: a metadata tarball and root.tar.xz.
pub fn version(root: &Path, os: &str, release: &str, variant: &str, version: &str, date: i64) {
    let d = root.join(format!("images/{os}/{release}/amd64/{variant}/{version}"));
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", os, release, variant, date),
    )
    .expect("metadata tarball");
    images::root_tar_xz(&d, "root.tar.xz", &format!("{os}-{release}-{version}")).expect("root");
}

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
pub fn build(root: &Path) -> Output {
    let out = run(ssgen(&["build", "--timestamp", "1785556800"]).arg(root));
    assert!(out.status.success(), "build: {}", text(&out));
    out
}

pub fn images_json(root: &Path) -> String {
    std::fs::read_to_string(root.join("streams/v1/images.json")).unwrap_or_default()
}

/// The version names the published catalog lists for a product.
pub fn versions(root: &Path, product: &str) -> Vec<String> {
    let cat: serde_json::Value =
        serde_json::from_str(&images_json(root)).unwrap_or(serde_json::Value::Null);
    cat["products"][product]["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ssgen serve --self-signed` on a free port of 127.0.0.1.
pub struct Served {
    pub child: Killed,
    pub url: String,
    pub root: PathBuf,
    pub log: PathBuf,
}

pub fn serve(root: &Path, extra: &[&str]) -> Served {
    let log = root.with_extension("serve.log");
    let mut child = ssgen(&["serve", "--self-signed", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let url = line.trim().rsplit(" at ").next().expect("url").to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");
    Served {
        child: Killed(child),
        url,
        root: root.to_path_buf(),
        log,
    }
}

impl Served {
    /// curl with the server's certificate and the token; returns (status,
    /// body).
    pub fn curl(&self, path: &str, args: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-S",
                "--max-time",
                "30",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
            ])
            .arg("--cacert")
            .arg(self.root.join(".ssgen/tls/cert.pem"))
            .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(args)
            .arg(format!("{}/{path}", self.url))
            .output()
            .expect("curl runs");
        let all = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = all.rsplit_once('\n').unwrap_or(("", &all));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    pub fn alive(&mut self) -> bool {
        self.child.0.try_wait().expect("try_wait").is_none()
    }
}

/// How the test source answers a request for an image file.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// The file, in small chunks with a pause between them.
    Trickle(Duration),
    /// The file, then endless bytes, without Content-Length.
    Endless,
    /// Half the file, then silence (the connection stays open).
    Stall,
}

/// A plain HTTP server on 127.0.0.1 serving a built root: catalogs as
/// they are, image files as `behaviour` says. It counts the bytes of image
/// files it sent; it stops when dropped.
pub struct Source {
    pub url: String,
    pub sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

pub fn source(root: &Path, behaviour: Behaviour) -> Source {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let root = root.to_path_buf();
    let (sent2, stop2) = (sent.clone(), stop.clone());
    let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let (root, sent, stop, open) =
                (root.clone(), sent2.clone(), stop2.clone(), open.clone());
            std::thread::spawn(move || answer(conn, &root, behaviour, &sent, &stop, &open));
        }
    });
    Source { url, sent, stop }
}

fn answer(
    mut conn: TcpStream,
    root: &Path,
    behaviour: Behaviour,
    sent: &AtomicU64,
    stop: &AtomicBool,
    open: &Mutex<Vec<TcpStream>>,
) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
            break;
        }
    }
    let path = request
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/');
    let Ok(bytes) = std::fs::read(root.join(path)) else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if path.starts_with("streams/") {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        );
        let _ = conn
            .write_all(head.as_bytes())
            .and_then(|()| conn.write_all(&bytes));
        return;
    }
    let _ = conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
    );
    let count = |n: usize| sent.fetch_add(n as u64, Ordering::SeqCst);
    match behaviour {
        Behaviour::Trickle(pause) => {
            for chunk in bytes.chunks(2048) {
                if stop.load(Ordering::SeqCst) || conn.write_all(chunk).is_err() {
                    return;
                }
                count(chunk.len());
                std::thread::sleep(pause);
            }
        }
        Behaviour::Endless => {
            if conn.write_all(&bytes).is_err() {
                return;
            }
            count(bytes.len());
            let filler = vec![0u8; 64 * 1024];
            // Bounded so the thread ends: 256 MiB at most.
            for _ in 0..4096 {
                if stop.load(Ordering::SeqCst) || conn.write_all(&filler).is_err() {
                    return;
                }
                count(filler.len());
            }
        }
        Behaviour::Stall => {
            let half = &bytes[..bytes.len() / 2];
            if conn.write_all(half).is_err() {
                return;
            }
            count(half.len());
            let _ = conn.flush();
            // Kept open, silent, until the test ends.
            if let Ok(c) = conn.try_clone() {
                open.lock().expect("lock").push(c);
            }
            let mut sink = [0u8; 1];
            let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
            let _ = conn.read(&mut sink);
        }
    }
}
