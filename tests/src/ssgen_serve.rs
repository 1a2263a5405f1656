//! `ssgen serve` as the server in front of the real clients, and a
//! publisher that fills it through its upload API.
//!
//! Unlike [`crate::https`], this server **is** under test. It is started
//! with the suite's throwaway CA-signed certificate (`--tls-cert`,
//! `--tls-key`), so clients trust it through `SSL_CERT_FILE` exactly as
//! they trust the Python server, on a port the kernel picks. Requests are
//! made with `curl` (a real HTTP client; the crate needs no TLS stack of its
//! own).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::images::TreeSpec;
use crate::proc::{ProcessGuard, RunDir};
use crate::tls::TestTls;
use crate::{sha256_files, ssgen_bin};

/// A running `ssgen serve`; stopped (by process group) on drop.
pub struct SsgenServe {
    guard: ProcessGuard,
    https: String,
    http: Option<String>,
    root: PathBuf,
    ca_cert: PathBuf,
    token: String,
    stderr_log: PathBuf,
}

/// What one `curl` request got back.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status (0 when there was no response).
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

impl SsgenServe {
    /// Serves `root` (which must exist) over HTTPS with `tls`, accepting
    /// uploads with `token`; with `plain_http`, also over plain HTTP on a
    /// second port. `timestamp` is passed on to the rebuilds (`updated`).
    ///
    /// Both "serving … at URL" lines are parsed; the HTTPS one must come
    /// first, as `ssgen serve --help` promises.
    pub fn start(
        run: &RunDir,
        root: &Path,
        tls: &TestTls,
        token: &str,
        plain_http: bool,
        timestamp: &str,
    ) -> Result<Self> {
        Self::start_with(run, root, tls, token, plain_http, timestamp, &[])
    }

    /// [`SsgenServe::start`] with `extra` arguments (`--read-token T`,
    /// `--deltas 0`, …).
    pub fn start_with(
        run: &RunDir,
        root: &Path,
        tls: &TestTls,
        token: &str,
        plain_http: bool,
        timestamp: &str,
        extra: &[&str],
    ) -> Result<Self> {
        let stderr_log = run.path().join("ssgen-serve.stderr");
        let stdout_log = run.path().join("ssgen-serve.stdout");
        let mut cmd = Command::new(ssgen_bin());
        cmd.arg("serve")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&tls.server_cert)
            .arg("--tls-key")
            .arg(&tls.server_key)
            .args(["--token", token, "--timestamp", timestamp])
            .args(extra)
            .env_remove("SSGEN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).context("create the stderr log")?);
        if plain_http {
            cmd.args(["--http", "127.0.0.1:0"]);
        }
        let mut guard = run.spawn("ssgen serve", &mut cmd)?;
        let stdout = guard
            .child_mut()
            .and_then(|c| c.stdout.take())
            .context("ssgen serve's stdout was not captured")?;
        // Keep draining stdout after the first lines into a log: a closed
        // pipe would make a later print fail inside the server.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(stdout_log).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        let canonical = std::fs::canonicalize(root)
            .with_context(|| format!("canonicalize {}", root.display()))?;
        let wanted = if plain_http { 2 } else { 1 };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut urls = Vec::new();
        while urls.len() < wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => bail!(
                    "ssgen serve printed {} of {wanted} \"serving … at\" lines within 20 s; stderr:\n{}",
                    urls.len(),
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                ),
            };
            let Some((what, url)) = line
                .strip_prefix("serving ")
                .and_then(|l| l.rsplit_once(" at "))
            else {
                bail!("ssgen serve printed {line:?} instead of \"serving <root> at <url>\"");
            };
            ensure!(
                Path::new(what) == canonical,
                "ssgen serve says it serves {what}, not {}",
                canonical.display()
            );
            urls.push(url.to_owned());
        }
        let https = urls.remove(0);
        let http = urls.pop();
        ensure!(
            https.starts_with("https://127.0.0.1:"),
            "the first listener is {https}, expected https://127.0.0.1:<port>"
        );
        if let Some(http) = &http {
            ensure!(
                http.starts_with("http://127.0.0.1:")
                    && *http != https.replacen("https", "http", 1),
                "the plain listener is {http}, expected http://127.0.0.1:<another port>"
            );
        }
        Ok(Self {
            guard,
            https,
            http,
            root: root.to_path_buf(),
            ca_cert: tls.ca_cert.clone(),
            token: token.to_owned(),
            stderr_log,
        })
    }

    /// The HTTPS base URL (`https://127.0.0.1:<port>`), what remotes use.
    pub fn url(&self) -> &str {
        &self.https
    }

    /// The plain-HTTP base URL, when started with it.
    pub fn http_url(&self) -> Option<&str> {
        self.http.as_deref()
    }

    /// `127.0.0.1:<port>` of the HTTPS listener.
    pub fn https_addr(&self) -> &str {
        self.https.trim_start_matches("https://")
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's process group (for a watchdog).
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        !self.guard.has_exited()
    }

    /// The last lines the server wrote on stderr (for failure messages).
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `curl URL ARGS` trusting only the test CA; a transport failure
    /// (no HTTP response at all) is an error.
    pub fn curl(&self, url: &str, args: &[&str]) -> Result<Reply> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(&self.ca_cert)
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(url)
            .env_remove("SSL_CERT_FILE")
            .stdin(Stdio::null())
            .output()
            .context("cannot run curl")?;
        if !out.status.success() {
            bail!(
                "curl {url} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut body = out.stdout;
        let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let status = String::from_utf8_lossy(&body[split..]).trim().parse()?;
        body.truncate(split);
        Ok(Reply { status, body })
    }

    /// `GET <https url>/<rel>`.
    pub fn get(&self, rel: &str) -> Result<Reply> {
        self.curl(&format!("{}/{rel}", self.https), &[])
    }

    /// `PUT <https url>/<rel>` of `file`, with the token and the file's
    /// sha256 in `X-Checksum-Sha256`.
    pub fn put(&self, rel: &str, file: &Path) -> Result<Reply> {
        let sha = sha256_files(&[file])?;
        let file = file.to_string_lossy();
        self.curl(
            &format!("{}/{rel}", self.https),
            &[
                "-T",
                &file,
                "-H",
                &format!("Authorization: Bearer {}", self.token),
                "-H",
                &format!("X-Checksum-Sha256: {sha}"),
            ],
        )
    }

    /// One multipart `POST <https url>/images/` with a part
    /// `upload=@FILE;filename=<path under images/>` per file.
    pub fn post_form(&self, files: &[(String, PathBuf)]) -> Result<Reply> {
        let mut args = vec![
            "-H".to_owned(),
            format!("Authorization: Bearer {}", self.token),
        ];
        for (name, file) in files {
            args.push("-F".into());
            args.push(format!("upload=@{};filename={name}", file.display()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(&format!("{}/images/", self.https), &args)
    }

    /// Polls the catalog over HTTPS until `streams/v1/index.json` lists
    /// every product in `products` and the products file it points to has
    /// an item for every path in `paths` (a product is listed as soon as
    /// one version is complete, so the products alone do not say that
    /// every upload is in). Returns how long it took.
    pub fn wait_for_catalog(
        &self,
        products: &BTreeSet<String>,
        paths: &BTreeSet<String>,
        limit: Duration,
    ) -> Result<Duration> {
        let started = Instant::now();
        let mut missing;
        loop {
            missing = self.catalog_lacks(products, paths);
            if missing.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                bail!(
                    "after {limit:?} the catalog still lacks: {}\n--- ssgen serve stderr ---\n{}",
                    missing.join("; "),
                    self.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// What of `products` and `paths` the served catalog does not list yet.
    fn catalog_lacks(&self, products: &BTreeSet<String>, paths: &BTreeSet<String>) -> Vec<String> {
        let json = |rel: &str| -> Result<Value, String> {
            let reply = self.get(rel).map_err(|e| format!("{e:#}"))?;
            if reply.status != 200 {
                return Err(format!("{rel}: HTTP {}", reply.status));
            }
            serde_json::from_slice(&reply.body).map_err(|e| format!("{rel}: {e}"))
        };
        let index = match json("streams/v1/index.json") {
            Ok(v) => v,
            Err(e) => return vec![e],
        };
        let entries: Vec<&Value> = index
            .get("index")
            .and_then(Value::as_object)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        let listed: BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.get("products").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut lacks: Vec<String> = products
            .iter()
            .filter(|p| !listed.contains(p.as_str()))
            .map(|p| format!("product {p} in index.json"))
            .collect();
        let mut items = BTreeSet::new();
        for path in entries
            .iter()
            .filter_map(|e| e.get("path").and_then(Value::as_str))
        {
            match json(path) {
                Err(e) => lacks.push(e),
                Ok(doc) => collect_item_paths(&doc, &mut items),
            }
        }
        lacks.extend(
            paths
                .iter()
                .filter(|p| !items.contains(*p))
                .map(|p| format!("item {p}")),
        );
        lacks
    }
}

fn collect_item_paths(doc: &Value, out: &mut BTreeSet<String>) {
    let products = doc.get("products").and_then(Value::as_object);
    for p in products.into_iter().flat_map(|m| m.values()) {
        let versions = p.get("versions").and_then(Value::as_object);
        for v in versions.into_iter().flat_map(|m| m.values()) {
            let items = v.get("items").and_then(Value::as_object);
            for i in items.into_iter().flat_map(|m| m.values()) {
                if let Some(path) = i.get("path").and_then(Value::as_str) {
                    out.insert(path.to_owned());
                }
            }
        }
    }
}

/// What [`publish`] sent.
#[derive(Debug, Default)]
pub struct Published {
    /// Paths (under the root) stored with `PUT`.
    pub put: Vec<String>,
    /// Paths stored through the multipart form.
    pub posted: Vec<String>,
    /// Side files copied onto the server's disk.
    pub copied: Vec<String>,
}

/// Every file under `dir`, as `/`-separated paths relative to `base`.
fn files_below(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files_below(base, &path, out)?;
        } else {
            let rel = path.strip_prefix(base).context("below base")?;
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Publishes the sample tree at `tree.root` to `server`, whose root must
/// be empty, the way a publisher without shell access would:
///
/// 1. Side files (`.requirements`, `metadata.json`) are **copied onto the
///    server's disk**, because the upload API cannot take them: it only
///    stores `images/<os>/<release>/<arch>/<variant>/<version>/<file>`
///    and refuses hidden names. They go first, so the first rebuild
///    already sees them (the server is not started with `--watch`, so
///    copying them triggers nothing by itself).
/// 2. Every image file of the product whose id is `form_product` goes in
///    one multipart `POST /images/` (the habit of lxd-image-server's
///    users).
/// 3. Every other image file is `PUT` with its `X-Checksum-Sha256`.
///
/// Every upload must be answered `201 Created`.
pub fn publish(server: &SsgenServe, tree: &TreeSpec, form_product: &str) -> Result<Published> {
    let mut files = Vec::new();
    files_below(&tree.root, &tree.root.join("images"), &mut files)?;
    files.sort();
    let form_prefix = format!("images/{}/", form_product.replace(':', "/"));
    let mut done = Published::default();
    let mut form = Vec::new();
    // images/<os>/<release>/<arch>/<variant>/<version>/<file>: 7 parts.
    let (images, side): (Vec<String>, Vec<String>) =
        files.into_iter().partition(|f| f.split('/').count() == 7);
    for rel in side {
        let to = server.root().join(&rel);
        std::fs::create_dir_all(to.parent().context("a side file has a parent")?)?;
        std::fs::copy(tree.root.join(&rel), &to).with_context(|| format!("copy {rel}"))?;
        done.copied.push(rel);
    }
    for rel in images {
        let file = tree.root.join(&rel);
        if rel.starts_with(&form_prefix) {
            let name = rel.trim_start_matches("images/").to_owned();
            form.push((name, file));
            done.posted.push(rel);
            continue;
        }
        let reply = server.put(&rel, &file)?;
        ensure!(
            reply.status == 201,
            "PUT {rel}: HTTP {} ({}), expected 201",
            reply.status,
            reply.text()
        );
        done.put.push(rel);
    }
    ensure!(!form.is_empty(), "no file of {form_product} in the tree");
    let reply = server.post_form(&form)?;
    ensure!(
        reply.status == 201,
        "POST /images/ ({} files): HTTP {} ({}), expected 201",
        form.len(),
        reply.status,
        reply.text()
    );
    // The server answers one `<status> <path>` line per stored part.
    let text = reply.text();
    for rel in &done.posted {
        ensure!(
            text.lines().any(|l| l == format!("201 {rel}")),
            "POST /images/: the answer does not say `201 {rel}`:\n{text}"
        );
    }
    Ok(done)
}

/// What a plain-HTTP request sent to a TLS listener got, the way LXD's
/// first attempt at an image file reaches `https://host:port` (docs/protocol.md#downloads).
#[derive(Debug)]
pub struct PlainProbe {
    /// Time until the server closed the connection.
    pub closed_after: Duration,
    /// The bytes it answered before closing.
    pub answer: Vec<u8>,
}

/// Sends `GET /<rel> HTTP/1.1` in clear text to `addr` and reads until the
/// server closes the connection or `limit` passes (an error: a client
/// would wait there).
pub fn plain_http_to(addr: &str, rel: &str, limit: Duration) -> Result<PlainProbe> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(limit))?;
    // One write, as a client sends it. The listener may close as soon as
    // the first bytes show no TLS handshake: a write that finds it closed
    // is that fast failure, not an error of the probe.
    let request = format!(
        "GET /{rel} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: LXD probe\r\nAccept-Encoding: gzip\r\n\r\n"
    );
    match stream.write_all(request.as_bytes()) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) => {}
        Err(e) => return Err(e).context("send the request"),
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset is as good as a close: the client retries at once.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!(
                    "plain HTTP to the TLS listener {addr}: still open after {limit:?} (a client would hang here)"
                )
            }
            Err(e) => return Err(e).context("read the answer"),
        }
    }
    Ok(PlainProbe {
        closed_after: started.elapsed(),
        answer,
    })
}

/// Kills a process group (by its leader's PID) if it is still running
/// when `limit` passes, unless dropped first: it bounds a part of a test
/// that could hang on the server, because every client request then fails.
/// Dropping it waits for its thread, so once the drop returns it can no
/// longer fire.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    /// Arms the watchdog on process group `pgid`.
    pub fn arm(pgid: u32, limit: Duration) -> Self {
        let (cancel, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                flag.store(true, Ordering::SeqCst);
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pgid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        });
        Self {
            cancel: Some(cancel),
            thread: Some(thread),
            fired,
        }
    }

    /// Whether the limit passed and the group was killed.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn plain_probe_tells_a_close_from_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (release, held_until) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            // First connection: answer and close at once, like a TLS
            // listener sending an alert.
            let (mut first, _) = listener.accept().expect("accept");
            let _ = first.write_all(b"\x15\x03\x03\x00\x02\x02\x0a");
            drop(first);
            // Second: keep the connection open until the probe has given
            // up, however long that takes.
            let (held, _) = listener.accept().expect("accept");
            let _ = held_until.recv();
            drop(held);
        });
        let probe = plain_http_to(&addr, "x", Duration::from_secs(60)).expect("closed");
        assert_eq!(probe.answer, b"\x15\x03\x03\x00\x02\x02\x0a");
        let hung = plain_http_to(&addr, "x", Duration::from_millis(300));
        release.send(()).expect("the server thread waits");
        assert!(hung.is_err(), "a held connection was taken for a close");
        server.join().expect("server thread");
    }

    #[test]
    fn watchdog_kills_the_group_only_when_the_limit_passes() {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let mut slow = ProcessGuard::spawn("sleep", &mut cmd, None).expect("spawn sleep");
        let dog = Watchdog::arm(slow.pid(), Duration::from_millis(200));
        // The event is the process's death; the bound only keeps a broken
        // watchdog from hanging the test.
        let deadline = Instant::now() + Duration::from_secs(50);
        while !slow.has_exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            dog.fired() && slow.has_exited(),
            "the watchdog did not fire"
        );

        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let mut quick = ProcessGuard::spawn("sleep", &mut cmd, None).expect("spawn sleep");
        let dog = Watchdog::arm(quick.pid(), Duration::from_secs(60));
        // Dropped well within its limit; the drop waits for its thread, so
        // after it the watchdog cannot fire any more.
        drop(dog);
        assert!(
            !quick.has_exited(),
            "a cancelled watchdog killed its process"
        );
    }
}
