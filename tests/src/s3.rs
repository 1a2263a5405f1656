//! A real S3 implementation on `127.0.0.1` for the S3 push suites, and what
//! sits around it in the tests: moto's S3 emulator in server mode (it
//! stands in for AWS S3, R2 and the other stores, which cannot run here),
//! a fault-injecting proxy between `ssgen push` and moto, and Debian's
//! nginx as the TLS proxy a CDN would be in front of the bucket.
//!
//! moto checks SigV4 signatures against an IAM user it is given (so wrong
//! credentials fail as on AWS), conditional writes (`If-Match`,
//! `If-None-Match: *`), multipart uploads with their 5 MiB minimum part,
//! and `ListParts`. It does not check a body against `x-amz-content-sha256`
//! (AWS, R2 and MinIO do), and it cannot answer anonymous reads while it
//! checks signatures: [`Moto::enforce_auth`] turns the checks off for the
//! reading clients, as a public bucket would let them read.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::proc::{ProcessGuard, RunDir};
use crate::tls::TestTls;

/// The moto driver: starts the server in-process, creates the IAM user and
/// the bucket, prints one JSON line, then answers commands on stdin.
const MOTO_PY: &str = r#"
import json, os, sys, threading, time, urllib.request
import boto3
from moto.server import ThreadedMotoServer

bucket = sys.argv[1]
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
ep = "http://127.0.0.1:%d" % port

def auth(on):
    req = urllib.request.Request(ep + "/moto-api/reset-auth", data=(b"0" if on else b"inf"),
                                 method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()

iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="pusher")
iam.put_user_policy(UserName="pusher", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="pusher")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
# Public reads, as a bucket behind a CDN is configured.
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % bucket}]}))

def watchdog():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)
threading.Thread(target=watchdog, daemon=True).start()

print(json.dumps({"port": port, "access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}), flush=True)
for line in sys.stdin:
    cmd = line.split()
    try:
        if cmd[0] == "auth":
            auth(cmd[1] == "on")
            out = {"ok": True}
        elif cmd[0] == "dump":
            prefix, target = cmd[1], cmd[2]
            keys = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    rel = o["Key"][len(prefix):]
                    path = os.path.join(target, rel)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as f:
                        f.write(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
                    keys.append(rel)
            out = {"keys": keys}
        elif cmd[0] == "head":
            try:
                h = s3.head_object(Bucket=bucket, Key=cmd[1])
                out = {"content_type": h.get("ContentType"), "cache_control": h.get("CacheControl"),
                       "metadata": h.get("Metadata", {}), "etag": h.get("ETag")}
            except s3.exceptions.ClientError:
                out = {"missing": True}
        elif cmd[0] == "uploads":
            r = s3.list_multipart_uploads(Bucket=bucket)
            out = {"uploads": [u["Key"] for u in r.get("Uploads", [])]}
        else:
            out = {"error": "unknown command %r" % cmd[0]}
    except Exception as e:
        out = {"error": repr(e)}
    print(json.dumps(out), flush=True)
"#;

/// moto's S3 emulator with one bucket and one IAM user.
pub struct Moto {
    guard: ProcessGuard,
    port: u16,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    control: Mutex<(
        std::process::ChildStdin,
        BufReader<std::process::ChildStdout>,
    )>,
}

/// The venv `scripts/setup.sh s3` makes.
pub fn venv_python() -> Result<PathBuf> {
    let python = crate::workspace_root().join(".work/s3-venv/bin/python");
    if !python.is_file() {
        bail!(
            "{} is missing: run `scripts/setup.sh s3` (moto's S3 emulator)",
            python.display()
        );
    }
    Ok(python)
}

impl Moto {
    /// Starts moto with `bucket`, checking signatures from the start.
    pub fn start(run: &RunDir, bucket: &str) -> Result<Self> {
        let script = run.path().join("moto_s3.py");
        std::fs::write(&script, MOTO_PY).context("write the moto driver")?;
        let log = std::fs::File::create(run.path().join(format!("moto-{bucket}.log")))?;
        let mut cmd = Command::new(venv_python()?);
        cmd.arg(&script)
            .arg(bucket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut guard = run.spawn("moto", &mut cmd)?;
        let child = guard.child_mut().context("moto child")?;
        let stdin = child.stdin.take().context("moto stdin")?;
        let stdout = child.stdout.take().context("moto stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let (line, reader) = rx
            .recv_timeout(Duration::from_secs(60))
            .context("moto did not start within 60 s")?;
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("moto did not start (printed {line:?})"))?;
        let moto = Self {
            guard,
            port: u16::try_from(v["port"].as_u64().context("port")?)?,
            access_key: v["access_key"].as_str().context("key")?.to_owned(),
            secret_key: v["secret_key"].as_str().context("secret")?.to_owned(),
            bucket: bucket.to_owned(),
            control: Mutex::new((stdin, reader)),
        };
        moto.enforce_auth(true)?;
        Ok(moto)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    fn command(&self, line: &str) -> Result<Value> {
        let mut c = self
            .control
            .lock()
            .map_err(|_| anyhow::anyhow!("moto control poisoned"))?;
        writeln!(c.0, "{line}").context("write to moto")?;
        c.0.flush()?;
        let mut answer = String::new();
        c.1.read_line(&mut answer).context("read from moto")?;
        let v: Value = serde_json::from_str(&answer)
            .with_context(|| format!("moto answered {answer:?} to {line}"))?;
        if let Some(e) = v.get("error") {
            bail!("moto: {line}: {e}");
        }
        Ok(v)
    }

    /// Signature checks on (as for the pushes) or off (anonymous readers).
    pub fn enforce_auth(&self, on: bool) -> Result<()> {
        self.command(if on { "auth on" } else { "auth off" })
            .map(drop)
    }

    /// Downloads every object below `prefix` into `dir`; returns the keys
    /// (relative to `prefix`).
    pub fn dump(&self, prefix: &str, dir: &Path) -> Result<Vec<String>> {
        let v = self.command(&format!("dump {prefix} {}", dir.display()))?;
        Ok(v["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect())
    }

    /// An object's content type, cache policy, metadata and ETag (`None`
    /// when there is no such object).
    pub fn head(&self, key: &str) -> Result<Option<Value>> {
        let v = self.command(&format!("head {key}"))?;
        Ok(if v.get("missing").is_some() {
            None
        } else {
            Some(v)
        })
    }

    /// Keys with a multipart upload in progress.
    pub fn uploads(&self) -> Result<Vec<String>> {
        let v = self.command("uploads")?;
        Ok(v["uploads"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect())
    }
}

/// `ssgen push ROOT --to s3://BUCKET/PREFIX --endpoint E` with these
/// credentials and nothing else of the caller's environment (no `~/.aws`).
pub fn push_command(
    home: &Path,
    root: &Path,
    to: &str,
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
) -> Command {
    let mut cmd = Command::new(crate::ssgen_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .arg("push")
        .arg(root)
        .args(["--to", to, "--endpoint", endpoint])
        .stdin(Stdio::null());
    cmd
}

/// What the proxy does with a request that matches a rule.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer this instead of the store.
    Respond {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Never answer (the request is logged with status 0).
    Stall,
    /// Hold until `n` requests matched, then forward them all.
    Gather(usize),
}

/// A fault for requests whose method is `method` (any when empty) and
/// whose path and query contain every part of `contains`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub contains: Vec<String>,
    pub action: Action,
    /// How many requests it applies to (`None`: all).
    pub times: Option<usize>,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The status answered (0: stalled or broken off).
    pub status: u16,
    /// Whether a rule answered it rather than the store.
    pub injected: bool,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<(Rule, usize)>,
    log: Vec<Logged>,
    gathered: BTreeMap<usize, usize>,
}

/// A plain-HTTP proxy on `127.0.0.1` in front of the store that logs every
/// request and injects the faults of its rules. The `Host` header passes
/// unchanged, so signatures made for the proxy's address still verify.
pub struct FaultProxy {
    port: u16,
    state: Arc<(Mutex<ProxyState>, Condvar)>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the proxy")?;
        let port = listener.local_addr()?.port();
        let state: Arc<(Mutex<ProxyState>, Condvar)> = Arc::default();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream_port, &state);
                });
            }
        });
        Ok(Self { port, state })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the rules.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let (lock, _) = &*self.state;
        if let Ok(mut s) = lock.lock() {
            s.rules = rules.into_iter().map(|r| (r, 0)).collect();
            s.gathered.clear();
        }
    }

    /// The log so far, and clears it.
    pub fn take_log(&self) -> Vec<Logged> {
        let (lock, _) = &*self.state;
        lock.lock()
            .map(|mut s| std::mem::take(&mut s.log))
            .unwrap_or_default()
    }

    /// Waits until a logged request satisfies `pred`; false after `limit`.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&Logged) -> bool) -> bool {
        let (lock, cvar) = &*self.state;
        let deadline = Instant::now() + limit;
        let Ok(mut s) = lock.lock() else { return false };
        loop {
            if s.log.iter().any(&pred) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match cvar.wait_timeout(s, left) {
                Ok((g, _)) => s = g,
                Err(_) => return false,
            }
        }
    }
}

fn log(state: &(Mutex<ProxyState>, Condvar), entry: Logged) {
    let (lock, cvar) = state;
    if let Ok(mut s) = lock.lock() {
        s.log.push(entry);
    }
    cvar.notify_all();
}

fn serve(conn: TcpStream, upstream: u16, state: &(Mutex<ProxyState>, Condvar)) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut length: u64 = 0;
    let mut forwarded = format!("{request_line}\r\n");
    for h in lines.filter(|l| !l.is_empty()) {
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().unwrap_or(0);
        }
        if !name.eq_ignore_ascii_case("connection") {
            forwarded.push_str(h);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");

    let action = {
        let (lock, _) = state;
        let mut s = lock
            .lock()
            .map_err(|_| anyhow::anyhow!("proxy state poisoned"))?;
        let found = s.rules.iter_mut().enumerate().find(|(_, (r, used))| {
            (r.method.is_empty() || r.method == method)
                && r.contains.iter().all(|c| target.contains(c.as_str()))
                && r.times.is_none_or(|t| *used < t)
        });
        found.map(|(i, (r, used))| {
            *used += 1;
            (i, r.action.clone())
        })
    };
    let mut client = conn;
    match action {
        Some((
            _,
            Action::Respond {
                status,
                content_type,
                body,
            },
        )) => {
            std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink())?;
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes())?;
            log(
                state,
                Logged {
                    method,
                    target,
                    status,
                    injected: true,
                },
            );
            return Ok(());
        }
        Some((_, Action::Stall)) => {
            log(
                state,
                Logged {
                    method,
                    target,
                    status: 0,
                    injected: true,
                },
            );
            // Until the client goes away (or two minutes pass).
            let mut sink = [0u8; 65536];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            return Ok(());
        }
        Some((i, Action::Gather(n))) => {
            let (lock, cvar) = state;
            let mut s = lock
                .lock()
                .map_err(|_| anyhow::anyhow!("proxy state poisoned"))?;
            *s.gathered.entry(i).or_default() += 1;
            cvar.notify_all();
            let deadline = Instant::now() + Duration::from_secs(90);
            while s.gathered.get(&i).copied().unwrap_or(0) < n && Instant::now() < deadline {
                s = cvar
                    .wait_timeout(s, Duration::from_millis(200))
                    .map_err(|_| anyhow::anyhow!("proxy state poisoned"))?
                    .0;
            }
        }
        None => {}
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).context("connect upstream")?;
    up.write_all(forwarded.as_bytes())?;
    std::io::copy(&mut (&mut reader).take(length), &mut up)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let status = String::from_utf8_lossy(&answer[..answer.len().min(20)])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Logged before the client has it: a killed client does not change
    // what the store did.
    log(
        state,
        Logged {
            method,
            target,
            status,
            injected: false,
        },
    );
    client.write_all(&answer)?;
    Ok(())
}

/// Debian's nginx as an HTTPS reverse proxy to the bucket's prefix, as a
/// CDN fronts a bucket: `https://127.0.0.1:PORT/streams/v1/index.json` is
/// `BUCKET/PREFIX/streams/v1/index.json` in the store. Only GET and HEAD
/// pass. Its own config, logs and PID file live in a directory of the run;
/// it is stopped by PID.
pub struct Nginx {
    guard: ProcessGuard,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    pub fn start(run: &RunDir, tls: &TestTls, upstream_port: u16, path: &str) -> Result<Self> {
        let dir = run.path().join("nginx");
        for d in ["", "tmp"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = dir.display();
        let conf = format!(
            "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;\n\
                 location / {{\n      limit_except GET {{ deny all; }}\n\
                   proxy_pass http://127.0.0.1:{upstream_port}/{}/;\n      proxy_set_header Host 127.0.0.1:{upstream_port};\n\
                   proxy_http_version 1.1;\n      proxy_buffering off;\n    }}\n  }}\n}}\n",
            tls.server_cert.display(),
            tls.server_key.display(),
            path.trim_matches('/'),
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut guard = run.spawn("nginx", &mut cmd)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if guard.has_exited() || Instant::now() > deadline {
                bail!(
                    "nginx did not start: {}",
                    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { guard, port, dir })
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The access log (for failure messages).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}
