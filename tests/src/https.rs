//! A plain static HTTPS file server for tests, on `127.0.0.1` and a port the
//! kernel picks.
//!
//! It is **not** the thing under test: it only puts a tree that ssgen built
//! in front of real clients, which refuse plain HTTP for simplestreams. It is
//! Python's `http.server` wrapped in `ssl`, run with Debian's
//! `/usr/bin/python3` (a pyenv `python3` shim would fork, and then the PID we
//! hold would not be the server's; toolchain.md pitfall 15).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::proc::{ProcessGuard, RunDir};
use crate::tls::TestTls;

/// The server program. The TLS handshake runs in the per-connection thread,
/// so the clients' plain-HTTP first attempt (docs/protocol.md#downloads) or a stalled
/// connection cannot block `accept`. It prints its port once listening, and
/// exits by itself if its parent (the test) disappears, so a killed test
/// leaves no server behind.
const SERVER_PY: &str = r#"
import http.server, os, ssl, sys, threading, time
root, cert, key, log_path = sys.argv[1:5]
parent = os.getppid()
log = open(log_path, "a", buffering=1)

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=root, **kw)
    def log_message(self, fmt, *args):
        log.write("%s\n" % (fmt % args))

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            log.write("tls handshake failed (expected for plain-http probes): %r\n" % (e,))
            return
        super().finish_request(request, client_address)
    def handle_error(self, request, client_address):
        log.write("error serving %r: %r\n" % (client_address, sys.exc_info()[1]))

def watchdog():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = Server(("127.0.0.1", 0), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
threading.Thread(target=watchdog, daemon=True).start()
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A running static HTTPS server; stopped (by process group) on drop.
pub struct StaticHttpsServer {
    guard: ProcessGuard,
    port: u16,
    root: PathBuf,
    log: PathBuf,
}

impl StaticHttpsServer {
    /// Serves `root` over HTTPS with `tls`. The script and the request log
    /// live in `run`'s directory.
    pub fn start(run: &RunDir, root: &Path, tls: &TestTls) -> Result<Self> {
        let script = run.path().join("static_https_server.py");
        std::fs::write(&script, SERVER_PY).context("write server script")?;
        let log = run.path().join("https-server.log");
        let python = Path::new("/usr/bin/python3");
        if !python.is_file() {
            bail!("/usr/bin/python3 is missing: run scripts/setup.sh");
        }
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg(root)
            .arg(&tls.server_cert)
            .arg(&tls.server_key)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut guard = run.spawn("static-https-server", &mut cmd)?;
        let stdout = guard
            .child_mut()
            .and_then(|c| c.stdout.take())
            .context("server stdout was not captured")?;
        // The first line is the port; EOF means the server died at start-up.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .context("the HTTPS server did not report its port within 20 s")?;
        let port: u16 = line
            .trim()
            .parse()
            .with_context(|| format!("the HTTPS server did not start (printed {line:?})"))?;
        Ok(Self {
            guard,
            port,
            root: root.to_path_buf(),
            log,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The request log (one line per request, plus TLS failures).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `https://127.0.0.1:<port>/<prefix>` without a trailing slash.
    pub fn url(&self, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("https://127.0.0.1:{}", self.port)
        } else {
            format!("https://127.0.0.1:{}/{prefix}", self.port)
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        !self.guard.has_exited()
    }
}
