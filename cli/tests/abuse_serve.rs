//! `ssgen serve` under abuse, against the real binary on 127.0.0.1: readers
//! while the catalog is replaced over and over, connections that hold the
//! server without using it (under a low open-file limit), links into
//! hidden directories, a large `.json` asked for gzip, and property tests
//! of the header parsers through real requests. Each test is bounded in
//! count and time; every server is a child process killed when its test
//! ends.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sha2::Digest as _;

mod common;
use common::{add_version, build};

const TOKEN: &str = "abuse-token-0123456789abcdef";

/// A running `ssgen serve`.
struct Served {
    child: Child,
    /// `127.0.0.1:<port>`.
    addr: String,
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

impl Served {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Peak resident memory of the server so far, in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kb * 1024
    }
}

/// A root with one complete version, built.
fn built_root(tmp: &Path) -> PathBuf {
    let root = tmp.join("www");
    add_version(&root, "debian/12", "20260801_0312", 1);
    build(&root);
    root
}

/// Starts `ssgen serve ARGS ROOT` on a port the kernel picks, prefixed by
/// `wrap` (e.g. `prlimit --nofile=…`, which then runs it as itself).
fn serve(tmp: tempfile::TempDir, root: PathBuf, wrap: &[&str], args: &[&str]) -> Served {
    let stderr = tmp.path().join("serve.stderr");
    let bin = env!("CARGO_BIN_EXE_ssgen");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg(&root)
        .env_remove("SSGEN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("ssgen serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the serving line");
    let url = line.trim().rsplit(" at ").next().expect("a URL").to_owned();
    let addr = url
        .split_once("://")
        .map(|(_, a)| a.to_owned())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    Served {
        child,
        addr,
        root,
        stderr,
        _tmp: tmp,
    }
}

/// One HTTP/1.1 answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A kept-alive plain HTTP/1.1 connection, read with Content-Length (the
/// server sends it on every answer this suite asks for).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::new(),
        })
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Reply> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.reply()
    }

    fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
        self.request("GET", path, headers, b"")
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed with {} bytes of an answer",
                    self.buf.len()
                ),
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn reply(&mut self) -> std::io::Result<Reply> {
        let end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let len = if status == 304 { 0 } else { len };
        while self.buf.len() < len {
            self.fill()?;
        }
        let body = self.buf.drain(..len).collect();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn sha(bytes: &[u8]) -> String {
    ssgen_tests::hex(&sha2::Sha256::digest(bytes))
}

/// A catalog replaced again and again, as builds do it (a temporary file
/// renamed over the published one), while readers ask for it: every answer
/// is one whole version of the file, with the length and ETag of that
/// version. Real `ssgen build` runs come first, then a tight loop of
/// renames between the two states they publish.
#[test]
fn readers_never_get_a_torn_or_cut_catalog_while_it_is_rebuilt() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = built_root(tmp.path());
    let streams = root.join("streams/v1");
    let read = |name: &str| std::fs::read(streams.join(name)).expect("catalog file");
    let one = [read("index.json"), read("images.json")];
    // A second state: one more product, so both files differ in size.
    let extra = add_version(&root, "alpine/12", "20260901_0000", 2);
    build(&root);
    let two = [read("index.json"), read("images.json")];
    assert!(
        one[1].len() != two[1].len(),
        "the two states must differ in length"
    );
    let hidden = extra.with_file_name(".20260901_0000");

    let s = serve(tmp, root.clone(), &[], &["--plain"]);
    let stop = Arc::new(AtomicBool::new(false));
    let valid: Arc<BTreeMap<String, String>> = Arc::new(
        [&one, &two]
            .iter()
            .flat_map(|state| state.iter())
            .map(|b| {
                (
                    sha(b),
                    String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned(),
                )
            })
            .collect(),
    );
    let readers: Vec<_> = (0..4)
        .map(|n| {
            let (addr, stop, valid) = (s.addr.clone(), stop.clone(), valid.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr).expect("connect");
                let mut etags: BTreeMap<String, String> = BTreeMap::new();
                let mut problems = Vec::new();
                let mut answers = 0u32;
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) || problems.len() > 5 {
                        break;
                    }
                    let path = if i % 3 == 0 { "index.json" } else { "images.json" };
                    let gzip = (i + n) % 2 == 0;
                    let headers: &[(&str, &str)] = if gzip { &[("Accept-Encoding", "gzip")] } else { &[] };
                    let reply = match conn.get(&format!("/streams/v1/{path}"), headers) {
                        Ok(r) => r,
                        Err(e) => {
                            problems.push(format!("{path}: answer cut: {e}"));
                            conn = Conn::open(&addr).expect("reconnect");
                            continue;
                        }
                    };
                    answers += 1;
                    let body = if reply.header("content-encoding") == Some("gzip") {
                        gunzip(&reply.body)
                    } else {
                        reply.body.clone()
                    };
                    let digest = sha(&body);
                    if reply.status != 200 || !valid.contains_key(&digest) {
                        problems.push(format!(
                            "{path} (gzip: {gzip}): HTTP {} with {} bytes that are neither published version",
                            reply.status,
                            body.len()
                        ));
                    }
                    let etag = reply.header("etag").unwrap_or_default().to_owned();
                    let key = format!("{path} {etag}");
                    if let Some(before) = etags.insert(key.clone(), digest.clone()) {
                        if before != digest {
                            problems.push(format!("{key}: one ETag for two different bodies"));
                        }
                    }
                }
                (answers, problems)
            })
        })
        .collect();

    // Real rebuilds: the extra version hidden and shown again.
    let started = Instant::now();
    for _ in 0..6 {
        std::fs::rename(&extra, &hidden).expect("hide");
        build(&root);
        std::fs::rename(&hidden, &extra).expect("show");
        build(&root);
    }
    // Then the same two states, renamed into place as fast as possible.
    let mut swaps = 0;
    while started.elapsed() < Duration::from_secs(12) && swaps < 40_000 {
        let state = if swaps % 2 == 0 { &one } else { &two };
        for (name, bytes) in [("images.json", &state[1]), ("index.json", &state[0])] {
            let tmp = streams.join(format!(".{name}.swap"));
            std::fs::write(&tmp, bytes).expect("write");
            std::fs::rename(&tmp, streams.join(name)).expect("rename");
        }
        swaps += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut problems = Vec::new();
    for reader in readers {
        let (answers, p) = reader.join().expect("reader thread");
        total += answers;
        problems.extend(p);
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in {total} answers during 12 rebuilds and {swaps} replacements:\n{}\n--- server stderr ---\n{}",
        problems.len(),
        problems.join("\n"),
        s.stderr()
    );
    assert!(total > 200, "only {total} answers: the readers did not run");
}

/// Connections that hold a slot and never finish a request: ones that
/// send nothing, ones that trickle their headers a byte at a time, and
/// TLS connections that never start the handshake. Under an open-file
/// limit of 64, a hundred of them must not lock a real client out: the
/// default timeouts close them, and the client gets its answer.
#[test]
fn idle_and_trickling_connections_are_closed_and_do_not_lock_clients_out() {
    ssgen_tests::require_tools(&["prlimit"]).unwrap_or_else(|e| panic!("{e:#}"));
    for tls in [false, true] {
        let tmp = tempfile::tempdir().expect("temp");
        let root = built_root(tmp.path());
        let mode = if tls { "--self-signed" } else { "--plain" };
        let s = serve(tmp, root, &["prlimit", "--nofile=64:64"], &[mode]);
        let started = Instant::now();
        let mut held: Vec<TcpStream> = Vec::new();
        let stop = Arc::new(AtomicBool::new(false));
        for i in 0..100 {
            let Ok(stream) = TcpStream::connect(&s.addr) else {
                continue;
            };
            if i % 2 == 0 && !tls {
                // Trickle a request line, one byte every 500 ms.
                let mut writer = stream.try_clone().expect("clone");
                let stop = stop.clone();
                std::thread::spawn(move || {
                    for b in b"GET /streams/v1/index.json HTTP/1.1\r\nHost: x\r\nX-Slow: "
                        .iter()
                        .cycle()
                    {
                        if stop.load(Ordering::Relaxed) || writer.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    }
                });
            }
            held.push(stream);
        }
        // A real client, retrying until it gets an answer (40 s at most).
        let answered = loop {
            let got = if tls {
                let out = Command::new("curl")
                    .args([
                        "-sS",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--max-time",
                        "5",
                        "--cacert",
                    ])
                    .arg(s.root.join(".ssgen/tls/ca.pem"))
                    .arg(format!("https://{}/streams/v1/index.json", s.addr))
                    .output()
                    .expect("curl runs");
                String::from_utf8_lossy(&out.stdout) == "200"
            } else {
                Conn::open(&s.addr)
                    .and_then(|mut c| {
                        c.stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                        c.get("/streams/v1/index.json", &[])
                    })
                    .is_ok_and(|r| r.status == 200)
            };
            if got {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "TLS {tls}: no answer within 40 s while 100 idle connections are held; stderr:\n{}",
                s.stderr()
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        // And the held connections were closed by the server.
        let mut still_open = 0;
        for mut stream in held {
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .expect("timeout");
            let mut buf = [0u8; 256];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(_) => {
                        still_open += 1;
                        break;
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(
            still_open,
            0,
            "TLS {tls}: {still_open} idle connection(s) were still open {:?} after they were made",
            started.elapsed()
        );
        eprintln!("TLS {tls}: a client was answered after {answered:?} with 100 connections held");
    }
}

/// A request that stops mid-way is cut after the timeout for its phase:
/// headers trickling (each byte resets no clock), a body that stalls, and a
/// kept-alive connection with no next request.
#[test]
fn each_phase_of_a_request_has_its_timeout() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = built_root(tmp.path());
    let s = serve(
        tmp,
        root,
        &[],
        &[
            "--plain",
            "--token",
            TOKEN,
            "--header-timeout",
            "1",
            "--stall-timeout",
            "1",
            "--idle-timeout",
            "1",
        ],
    );
    let closed_within = |mut stream: TcpStream, limit: Duration| -> Option<Duration> {
        let started = Instant::now();
        stream.set_read_timeout(Some(limit)).expect("timeout");
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Some(started.elapsed());
                }
                Err(_) => return None,
            }
        }
    };
    // Headers, a byte every 200 ms: progress, but no end of headers.
    let stream = TcpStream::connect(&s.addr).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        let started = Instant::now();
        for b in b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if writer.write_all(&[*b]).is_err() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        started.elapsed()
    });
    let took = closed_within(stream, Duration::from_secs(6));
    assert!(
        took.is_some(),
        "a trickled header block was not cut within 6 s (--header-timeout 1)"
    );
    assert!(trickle.join().expect("trickle") < Duration::from_secs(6));

    // An upload whose body stops after 10 of 1000 bytes.
    let path = "/images/debian/12/amd64/default/20260901_0000/root.tar.xz";
    let mut stream = TcpStream::connect(&s.addr).expect("connect");
    stream
        .write_all(
            format!(
                "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n0123456789"
            )
            .as_bytes(),
        )
        .expect("send");
    assert!(
        closed_within(stream, Duration::from_secs(6)).is_some(),
        "a stalled upload was not cut within 6 s (--stall-timeout 1)"
    );
    let version = s.root.join("images/debian/12/amd64/default/20260901_0000");
    assert!(
        !version.join("root.tar.xz").exists(),
        "a stalled upload was published"
    );

    // A kept-alive connection after its answer.
    let mut conn = Conn::open(&s.addr).expect("connect");
    let reply = conn.get("/streams/v1/index.json", &[]).expect("an answer");
    assert_eq!(reply.status, 200);
    assert!(
        closed_within(conn.stream, Duration::from_secs(6)).is_some(),
        "an idle kept-alive connection was not closed within 6 s (--idle-timeout 1)"
    );
}

/// Links into hidden directories serve nothing, whatever they are called,
/// and the keys `--self-signed` writes are readable by their owner only.
#[test]
fn links_to_hidden_files_serve_nothing_and_keys_are_private() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = built_root(tmp.path());
    let s = serve(tmp, root.clone(), &[], &["--self-signed"]);
    let tls = root.join(".ssgen/tls");
    for (name, mode) in [("key.pem", 0o600), ("ca-key.pem", 0o600)] {
        use std::os::unix::fs::PermissionsExt as _;
        let got = std::fs::metadata(tls.join(name))
            .expect("key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(got, mode, "{name} is mode {got:o}");
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir_mode = std::fs::metadata(&tls).expect("dir").permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, ".ssgen/tls is mode {dir_mode:o}");

    std::os::unix::fs::symlink(".ssgen/tls", root.join("tls")).expect("link");
    std::os::unix::fs::symlink("../.ssgen", root.join("images/x")).expect("link");
    std::os::unix::fs::symlink(".ssgen/cache.json", root.join("cache.json")).expect("link");
    std::os::unix::fs::symlink("../.ssgen/tls/ca-key.pem", root.join("streams/ca-key.pem"))
        .expect("link");
    std::os::unix::fs::symlink(tls.join("key.pem"), root.join("images/key.pem")).expect("link");
    let key = std::fs::read(tls.join("key.pem")).expect("key");
    for path in [
        "tls/key.pem",
        "tls/ca-key.pem",
        "images/x/tls/key.pem",
        "images/x/cache.json",
        "cache.json",
        "streams/ca-key.pem",
        "images/key.pem",
        ".ssgen/tls/key.pem",
    ] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(tls.join("ca.pem"))
            .arg(format!("https://{}/{path}", s.addr))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.ends_with("\n404")
                && !out
                    .stdout
                    .windows(20)
                    .any(|w| key.windows(20).any(|k| k == w)),
            "{path}: {text}"
        );
    }
}

/// Only the catalogs are compressed (once, in memory); any other `.json`
/// is streamed as it is, so four parallel downloads of a 128 MiB one that
/// ask for gzip keep the server's memory small.
#[test]
fn large_json_files_are_streamed_not_compressed_in_memory() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = built_root(tmp.path());
    let big = root.join("images/debian/big.json");
    let size: u64 = 128 << 20;
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(size))
        .expect("a sparse file");
    let s = serve(tmp, root, &[], &["--plain"]);
    let before = s.peak_rss();
    let downloads: Vec<_> = (0..4)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).expect("connect");
                stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
                stream
                    .write_all(b"GET /images/debian/big.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
                    .expect("send");
                let mut head = Vec::new();
                let mut total = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = stream.read(&mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    if head.len() < 4096 {
                        head.extend_from_slice(&buf[..n.min(4096)]);
                    }
                    total += n as u64;
                }
                (String::from_utf8_lossy(&head).to_ascii_lowercase(), total)
            })
        })
        .collect();
    for d in downloads {
        let (head, total) = d.join().expect("download");
        let head = head.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            !head.contains("content-encoding"),
            "a large .json was gzipped:\n{head}"
        );
        assert!(total > size, "{total} bytes for a {size}-byte file");
    }
    let peak = s.peak_rss();
    assert!(
        peak < before + (64 << 20),
        "the server's peak memory went from {} MiB to {} MiB for four downloads of a {} MiB file",
        before >> 20,
        peak >> 20,
        size >> 20
    );
}

/// The reference reading of a Range header for a body of `size` bytes:
/// `Some((first, last))` for 206, `None` for 416, and `Err(())` when the
/// header is to be ignored (200).
fn range_model(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let value = value.trim();
    let Some((unit, spec)) = value.split_once('=') else {
        return Err(());
    };
    if !unit.eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Err(());
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Err(());
    };
    let num = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Err(()),
        (true, false) if digits(b) => {
            let n = num(b);
            if n == 0 {
                Ok(None)
            } else {
                Ok(Some((size.saturating_sub(n), size - 1)))
            }
        }
        (false, _) if digits(a) && (b.is_empty() || digits(b)) => {
            let first = num(a);
            let last = if b.is_empty() { u64::MAX } else { num(b) };
            if last < first {
                Err(())
            } else if first >= size {
                Ok(None)
            } else {
                Ok(Some((first, last.min(size - 1))))
            }
        }
        _ => Err(()),
    }
}

/// Whether `Accept-Encoding: value` asks for gzip, read as the RFC says.
fn gzip_model(value: &str) -> bool {
    let (mut gzip, mut any): (Option<f64>, Option<f64>) = (None, None);
    for member in value.split(',') {
        let mut parts = member.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = Some(1.0);
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    let v = v.trim();
                    let ok = v == "1"
                        || v.strip_prefix("1.")
                            .is_some_and(|f| f.len() <= 3 && f.bytes().all(|b| b == b'0'))
                        || v == "0"
                        || v.strip_prefix("0.")
                            .is_some_and(|f| f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()));
                    q = if ok { v.parse().ok() } else { None };
                }
            }
        }
        let Some(q) = q else { continue };
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(gzip.map_or(q, |g: f64| g.max(q))),
            "*" => any = Some(any.map_or(q, |g: f64| g.max(q))),
            _ => {}
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// A server for the property tests, with a file of a known size.
fn property_server() -> (Served, Vec<u8>, Vec<u8>) {
    let tmp = tempfile::tempdir().expect("temp");
    let root = built_root(tmp.path());
    let file: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("images/debian/thousand.bin"), &file).expect("file");
    let catalog = std::fs::read(root.join("streams/v1/images.json")).expect("catalog");
    let s = serve(tmp, root, &[], &["--plain", "--token", TOKEN]);
    (s, file, catalog)
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One exchange on a shared connection (the property closures are `Fn`),
/// opened again after a failure so that the next case starts clean.
fn ask(
    conn: &std::cell::RefCell<Conn>,
    addr: &str,
    what: &str,
    exchange: impl FnOnce(&mut Conn) -> std::io::Result<Reply>,
) -> Result<Reply, TestCaseError> {
    let mut conn = conn.borrow_mut();
    exchange(&mut conn).map_err(|e| {
        if let Ok(fresh) = Conn::open(addr) {
            *conn = fresh;
        }
        TestCaseError::fail(format!("{what}: no answer ({e})"))
    })
}

/// Range headers, well-formed and not: the server never fails to answer,
/// serves exactly the model's bytes, and a 416 names the header it got.
#[test]
fn range_headers_get_the_models_bytes_and_refusals_name_them() {
    let (s, file, _) = property_server();
    let conn = std::cell::RefCell::new(Conn::open(&s.addr).expect("connect"));
    let size = file.len() as u64;
    let strategy = prop_oneof![
        "(bytes|Bytes|BYTES|items)=[+-]?[0-9]{0,5}-[+-]?[0-9]{0,5}",
        "bytes= ?[0-9]{0,4} ?- ?[0-9]{0,4}(,[0-9]{1,3}-[0-9]{0,3})?",
        "bytes=[0-9]{19,22}-[0-9]{0,22}",
        "bytes=-[0-9]{0,22}",
        "[ -~]{0,30}",
    ];
    proptest!(cases(), |(value in strategy)| {
        let reply = ask(&conn, &s.addr, &format!("Range {value:?}"), |c| {
            c.get("/images/debian/thousand.bin", &[("Range", &value)])
        })?;
        match range_model(&value, size) {
            Err(()) => prop_assert_eq!(
                (reply.status, reply.body.len()),
                (200, file.len()),
                "Range {:?}",
                value
            ),
            Ok(None) => {
                prop_assert_eq!(reply.status, 416, "Range {:?}", value);
                let named = format!("{:?}", value.trim());
                prop_assert!(
                    reply.text().contains(&named),
                    "the 416 for {:?} does not name it: {}",
                    value,
                    reply.text()
                );
            }
            Ok(Some((a, b))) => {
                prop_assert_eq!(reply.status, 206, "Range {:?}", value);
                let range = format!("bytes {a}-{b}/{size}");
                prop_assert_eq!(reply.header("content-range"), Some(range.as_str()));
                prop_assert_eq!(&reply.body[..], &file[a as usize..=b as usize]);
            }
        }
    });
}

/// Accept-Encoding in any case and weight: the catalog comes gzipped
/// exactly when the model says gzip is acceptable, and decodes to the
/// published bytes either way.
#[test]
fn accept_encoding_follows_names_case_and_weights() {
    let (s, _, catalog) = property_server();
    let conn = std::cell::RefCell::new(Conn::open(&s.addr).expect("connect"));
    let member = (
        prop::sample::select(vec![
            "gzip", "GZIP", "Gzip", "x-gzip", "br", "*", "identity", "deflate", "gzipx",
        ]),
        prop::option::of(prop::sample::select(vec![
            "q=0", "q=0.0", "q=0.000", "Q=0", "q=0.5", "q=1", "q=1.000", "q=0.001", "q=2", "q=-1",
            "q=abc", "q=0.0001", "q = 0",
        ])),
    );
    let strategy = prop::collection::vec(member, 0..4).prop_map(|members| {
        members
            .into_iter()
            .map(|(c, q)| q.map_or(c.to_owned(), |q| format!("{c};{q}")))
            .collect::<Vec<_>>()
            .join(", ")
    });
    proptest!(cases(), |(value in strategy)| {
        let headers: Vec<(&str, &str)> = if value.is_empty() {
            vec![]
        } else {
            vec![("Accept-Encoding", value.as_str())]
        };
        let reply = ask(&conn, &s.addr, &format!("Accept-Encoding {value:?}"), |c| {
            c.get("/streams/v1/images.json", &headers)
        })?;
        prop_assert_eq!(reply.status, 200);
        let gzipped = reply.header("content-encoding") == Some("gzip");
        prop_assert_eq!(gzipped, gzip_model(&value), "Accept-Encoding: {:?}", value);
        let body = if gzipped { gunzip(&reply.body) } else { reply.body.clone() };
        prop_assert!(body == catalog, "Accept-Encoding {:?}: the body is not the catalog", value);
    });
}

/// Authorization headers: the Bearer scheme in any case with the right
/// token is accepted (the upload then fails on its checksum, 422); anything
/// else is a 401 that says what was wrong with the header, without
/// repeating the token sent.
#[test]
fn authorization_schemes_are_case_insensitive_and_refusals_say_why() {
    let (s, _, _) = property_server();
    let conn = std::cell::RefCell::new(Conn::open(&s.addr).expect("connect"));
    let path = "/images/debian/12/amd64/default/20260901_0000/root.tar.xz";
    let zeros = "0".repeat(64);
    let strategy = (
        prop::sample::select(vec![
            "Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Token", "Bearer:", "",
        ]),
        prop::sample::select(vec![" ", "  ", ""]),
        prop::sample::select(vec![TOKEN, "wrong-token-0123456789abcdef", ""]),
    );
    proptest!(cases(), |((scheme, gap, token) in strategy)| {
        let value = format!("{scheme}{gap}{token}");
        let mut headers = vec![("X-Checksum-Sha256", zeros.as_str())];
        if !value.is_empty() {
            headers.push(("Authorization", value.as_str()));
        }
        let reply = ask(&conn, &s.addr, &format!("Authorization {value:?}"), |c| {
            c.request("PUT", path, &headers, b"some bytes")
        })?;
        let accepted = scheme.eq_ignore_ascii_case("bearer") && !gap.is_empty() && token == TOKEN;
        let text = reply.text();
        if accepted {
            prop_assert_eq!(reply.status, 422, "Authorization {:?}: {}", value, text);
        } else {
            prop_assert_eq!(reply.status, 401, "Authorization {:?}: {}", value, text);
            prop_assert!(
                text.contains("Authorization"),
                "the 401 for {:?} does not name the header: {}",
                value,
                text
            );
            prop_assert!(token.is_empty() || !text.contains(token), "the 401 repeats the token: {}", text);
            let named = scheme.trim_end_matches(':');
            prop_assert!(
                named.is_empty() || named.eq_ignore_ascii_case("bearer") || gap.is_empty() || text.contains(named),
                "the 401 for {:?} does not name its scheme: {}",
                value,
                text
            );
        }
    });
}
