//! Let's Encrypt's test CA, Debian's `pebble`, for `ssgen serve --acme`:
//! pebble with a listener certificate of its own (from [`TestTls`]), and
//! `pebble-challtestsrv` as its DNS server, answering 127.0.0.1 for every
//! name; all on loopback ports picked here, stopped on drop.
//!
//! The clients (`lxc`, `incus`, `openssl`) must reach the certificate's
//! DNS name too: [`in_hosts_namespace`] runs a test again inside a private
//! mount namespace whose `/etc/hosts` maps the names to 127.0.0.1, so the
//! machine's own file is never touched.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::proc::{ProcessGuard, RunDir};
use crate::tls::TestTls;

/// What pebble checks and issues.
#[derive(Clone, Debug)]
pub struct PebbleConfig {
    /// The port pebble's HTTP-01 checks connect to (on 127.0.0.1).
    pub http_port: u16,
    /// The port pebble's TLS-ALPN-01 checks connect to.
    pub tls_port: u16,
    /// Certificate lifetime in seconds (pebble's default is five years).
    pub validity_secs: Option<u64>,
}

/// A running pebble and its DNS server.
pub struct Pebble {
    _dns: ProcessGuard,
    _acme: ProcessGuard,
    directory: String,
    management: String,
    listener_ca: PathBuf,
    log: PathBuf,
    /// How long pebble took to start and answer.
    pub started_in: Duration,
}

impl Pebble {
    /// Starts pebble-challtestsrv and pebble under `run`, and waits until
    /// both answer. Random validation sleeps are off
    /// (`PEBBLE_VA_NOSLEEP=1`); pebble still rejects 5% of nonces and
    /// reuses authorizations half of the time, as it does by default.
    pub fn start(run: &RunDir, config: &PebbleConfig) -> Result<Self> {
        let started = Instant::now();
        let dir = run.path().join("pebble");
        std::fs::create_dir_all(&dir).context("create the pebble directory")?;
        let tls = TestTls::create(&dir).context("pebble's listener certificate")?;
        let dns_port = free_udp_and_tcp_port()?;
        let dns_management = free_port()?;
        let acme_port = free_port()?;
        let management_port = free_port()?;

        let dns_log = dir.join("challtestsrv.log");
        let mut cmd = Command::new("pebble-challtestsrv");
        cmd.args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&dns_log)?)
            .stderr(Stdio::null());
        let dns = run.spawn("pebble-challtestsrv", &mut cmd)?;
        wait_for_port(dns_management, Duration::from_secs(20), &dns_log)?;

        let mut pebble_config = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": tls.server_cert,
            "privateKey": tls.server_key,
            "httpPort": config.http_port,
            "tlsPort": config.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        });
        if let Some(secs) = config.validity_secs {
            // pebble 2.4 reads the lifetime from its configuration only.
            pebble_config["certificateValidityPeriod"] = secs.into();
        }
        let config_path = dir.join("pebble-config.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&serde_json::json!({ "pebble": pebble_config }))?,
        )?;
        let log = dir.join("pebble.log");
        let mut cmd = Command::new("pebble");
        cmd.arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(Stdio::null());
        let acme = run.spawn("pebble", &mut cmd)?;
        wait_for_port(acme_port, Duration::from_secs(30), &log)?;
        wait_for_port(management_port, Duration::from_secs(30), &log)?;
        Ok(Self {
            _dns: dns,
            _acme: acme,
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management: format!("https://127.0.0.1:{management_port}"),
            listener_ca: tls.ca_cert,
            log,
            started_in: started.elapsed(),
        })
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// The CA of pebble's own listener: what the ACME client trusts
    /// (`SSL_CERT_FILE`) to reach the directory.
    pub fn listener_ca(&self) -> &Path {
        &self.listener_ca
    }

    /// Writes the root of the certificates pebble issues (made anew at each
    /// start) to `path`: what the clients of the served site trust.
    pub fn write_root(&self, path: &Path) -> Result<()> {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
            .arg(&self.listener_ca)
            .arg(format!("{}/roots/0", self.management))
            .output()
            .context("cannot run curl")?;
        ensure!(
            out.status.success() && out.stdout.starts_with(b"-----BEGIN CERTIFICATE-----"),
            "GET {}/roots/0: {}",
            self.management,
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(path, &out.stdout).with_context(|| format!("write {}", path.display()))
    }

    /// How many certificates pebble has issued.
    pub fn issued(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Issued certificate serial")
            .count()
    }

    /// The last lines of pebble's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 25)
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A port free for both UDP and TCP (a DNS server binds both).
fn free_udp_and_tcp_port() -> Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").context("bind udp 127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no port free for both UDP and TCP on 127.0.0.1")
}

fn wait_for_port(port: u16, limit: Duration, log: &Path) -> Result<()> {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "nothing listens on 127.0.0.1:{port} after {limit:?}; {}:\n{}",
                log.display(),
                tail(log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The certificate a TLS server presents, as a client that checks it sees
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedCert {
    /// The serial number (hex, as openssl prints it).
    pub serial: String,
    /// `subject=…` and `issuer=…` lines.
    pub subject_issuer: String,
    /// The leaf certificate (PEM).
    pub pem: String,
}

/// Connects to `addr` with SNI `name`, verifies the chain against `ca`
/// and the name, and returns the leaf; an error when the handshake or the
/// verification fails.
pub fn served_certificate(addr: &str, name: &str, ca: &Path) -> Result<ServedCert> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-servername",
            name,
            "-verify_hostname",
            name,
        ])
        .args(["-verify_return_error", "-CAfile"])
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .context("cannot run openssl s_client")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text.contains("Verify return code: 0 (ok)"),
        "TLS to {addr} as {name}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .context("no certificate in the handshake")?;
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .context("a cut certificate")?
        + begin
        + "-----END CERTIFICATE-----".len();
    let pem = format!("{}\n", &text[begin..end]);
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-subject", "-issuer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run openssl x509")?;
    {
        use std::io::Write;
        x509.stdin
            .take()
            .context("stdin")?
            .write_all(pem.as_bytes())?;
    }
    let info = x509.wait_with_output()?;
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let serial = info
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .context("no serial")?
        .to_owned();
    Ok(ServedCert {
        serial,
        subject_issuer: info
            .lines()
            .filter(|l| !l.starts_with("serial="))
            .collect::<Vec<_>>()
            .join("\n"),
        pem,
    })
}

/// The environment variable that marks the inner run of
/// [`in_hosts_namespace`]; its value is the hosts file.
const INNER: &str = "SSGEN_TEST_HOSTS_FILE";

/// Runs the test named `test` (this test binary's current one) again,
/// inside a private mount namespace where `/etc/hosts` maps `names` to
/// 127.0.0.1, and fails if that run fails. Returns `true` in that inner
/// run, where the caller does the work, and `false` in the outer one once
/// the inner run has passed.
pub fn in_hosts_namespace(test: &str, names: &[&str]) -> bool {
    if let Some(file) = std::env::var_os(INNER) {
        // Make sure the namespace is what it claims to be.
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !want.is_empty() && hosts == want,
            "the inner run's /etc/hosts is not the test's hosts file"
        );
        return true;
    }
    let dir = tempfile::tempdir().expect("a temp dir for the hosts file");
    let hosts = dir.path().join("hosts");
    let mut text = "127.0.0.1 localhost\n::1 localhost\n".to_owned();
    for n in names {
        text.push_str(&format!("127.0.0.1 {n}\n"));
    }
    std::fs::write(&hosts, text).expect("write the hosts file");
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new("unshare");
    if !crate::is_root() {
        // Without root, a user namespace gives the mount namespace.
        cmd.args(["--user", "--map-root-user"]);
    }
    let out = cmd
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#)
        .arg("sh")
        .arg(&hosts)
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, &hosts)
        .output()
        .expect("cannot run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Straight to the handles: the harness would hide a passing test's
    // output, and the inner run's timings belong in the log.
    {
        use std::io::Write;
        let _ = std::io::stdout().write_all(&out.stdout);
        let _ = std::io::stderr().write_all(&out.stderr);
    }
    assert!(
        out.status.success(),
        "{test} failed inside its mount namespace ({}); its output is above",
        out.status
    );
    // A name that matches no test would pass with nothing run.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the inner run of {test} did not run exactly that test"
    );
    false
}
