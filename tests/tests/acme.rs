//! `ssgen serve --acme` against a real ACME CA: Debian's `pebble`, with
//! `pebble-challtestsrv` answering every DNS name with 127.0.0.1, all on
//! loopback. A certificate is really issued (TLS-ALPN-01 on the HTTPS
//! listener, or HTTP-01 on the plain one), the real LXD client (`lxc`) and
//! the real Incus client (`incus`) trust pebble's root through
//! `SSL_CERT_FILE` only and list the images from the server under its DNS
//! name, a short-lived certificate is renewed and swapped in while the
//! same process keeps serving, and a restart serves the stored
//! certificate at once.
//!
//! The clients resolve the name through `/etc/hosts`: each test runs again
//! inside a private mount namespace with a hosts file of its own
//! ([`in_hosts_namespace`]), so the machine's file is never changed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use ssgen_tests::checks;
use ssgen_tests::expect::{Client, ExpectedImage, expected_images};
use ssgen_tests::images::sample_tree;
use ssgen_tests::lxd::ClientEnv;
use ssgen_tests::pebble::{
    Pebble, PebbleConfig, ServedCert, free_port, in_hosts_namespace, served_certificate, tail,
};
use ssgen_tests::proc::{ProcessGuard, RunDir};
use ssgen_tests::{require_tools, ssgen_bin};

/// The name the certificate is for; only the test's hosts file knows it.
const NAME: &str = "images.ssgen.test";
/// A fixed build time, so that `updated` does not depend on the clock.
const TIMESTAMP: &str = "1767225600";
/// Generous bounds on events; passing one is a failure.
const ISSUE_LIMIT: Duration = Duration::from_secs(90);

const TOOLS: &[&str] = &[
    "pebble",
    "pebble-challtestsrv",
    "openssl",
    "curl",
    "lxc",
    "incus",
    "unshare",
    "mksquashfs",
    "qemu-img",
];

/// A running `ssgen serve`, stopped (by process group) on drop.
struct Serve {
    guard: ProcessGuard,
    stderr: PathBuf,
}

impl Serve {
    /// Starts `ssgen serve ARGS ROOT` trusting `ca` for the ACME directory
    /// (the way a user points it at a private CA), and waits for its
    /// "serving … at" lines.
    fn start(run: &RunDir, name: &str, root: &Path, args: &[String], ca: &Path) -> Self {
        let stderr = run.path().join(format!("{name}.stderr"));
        let mut cmd = Command::new(ssgen_bin());
        cmd.arg("serve")
            .args(args)
            .args(["--timestamp", TIMESTAMP])
            .arg(root)
            .env("SSL_CERT_FILE", ca)
            .env_remove("SSGEN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr log"));
        let mut guard = run.spawn(name, &mut cmd).expect("ssgen serve starts");
        let stdout = guard
            .child_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout");
        let wanted = if args.iter().any(|a| a == "--http") {
            2
        } else {
            1
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        for _ in 0..wanted {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("ssgen serve did not start:\n{}", tail(&stderr, 30)));
            assert!(line.starts_with("serving "), "{line}");
        }
        Serve { guard, stderr }
    }

    fn log(&self) -> String {
        tail(&self.stderr, 30)
    }
}

/// Waits until the server at `addr` presents a certificate for [`NAME`]
/// that verifies against `root` and that `accept` takes.
fn wait_for_cert(
    serve: &mut Serve,
    pebble: &Pebble,
    addr: &str,
    root: &Path,
    limit: Duration,
    accept: impl Fn(&ServedCert) -> bool,
) -> ServedCert {
    let deadline = Instant::now() + limit;
    loop {
        let last = match served_certificate(addr, NAME, root) {
            Ok(c) if accept(&c) => return c,
            Ok(c) => format!("serial {}", c.serial),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            !serve.guard.has_exited(),
            "ssgen serve exited:\n{}",
            serve.log()
        );
        assert!(
            Instant::now() < deadline,
            "no fitting certificate after {limit:?} (last: {last})\n--- ssgen serve ---\n{}\n--- pebble ---\n{}",
            serve.log(),
            pebble.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn build_tree(run: &RunDir) -> (PathBuf, Vec<ExpectedImage>, Vec<ExpectedImage>) {
    let tree = sample_tree(&run.path().join("www")).expect("sample tree");
    let lxd = expected_images(&tree, Client::Lxd).expect("expected LXD images");
    let incus = expected_images(&tree, Client::Incus).expect("expected Incus images");
    let built = Command::new(ssgen_bin())
        .args(["build", "--timestamp", TIMESTAMP])
        .arg(&tree.root)
        .output()
        .expect("ssgen build runs");
    assert!(
        built.status.success(),
        "ssgen build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    (tree.root, lxd, incus)
}

/// `incus remote add` and `incus image list` of the client alone (no
/// daemon), in a configuration directory of its own, trusting `ca` only.
fn incus_lists(dir: &Path, ca: &Path, url: &str) -> Result<Vec<(String, String, String)>, String> {
    let conf = dir.join("incus-conf");
    let home = dir.join("incus-home");
    for d in [&conf, &home] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let incus = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("incus")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("INCUS_CONF", &conf)
            .env("SSL_CERT_FILE", ca)
            // Anything but the local server fails at once.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", format!("127.0.0.1,localhost,{NAME}"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run incus: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "`incus {}`: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    let remotes = incus(&["remote", "list", "--format", "json"])?;
    if !remotes.contains("\"acme\"") {
        incus(&[
            "remote",
            "add",
            "acme",
            url,
            "--protocol",
            "simplestreams",
            "--public",
        ])?;
    }
    let list: Value =
        serde_json::from_str(&incus(&["image", "list", "acme:", "--format", "json"])?)
            .map_err(|e| e.to_string())?;
    let mut out: Vec<(String, String, String)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (s("fingerprint"), s("type"), s("architecture"))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn expected_listing(expected: &[ExpectedImage]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = expected
        .iter()
        .map(|e| {
            (
                e.fingerprint.clone(),
                e.image_type.to_owned(),
                e.arch_norm.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `curl` to `https://NAME:PORT/REL` trusting `ca`; (status, body).
fn get(port: u16, rel: &str, ca: &Path) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg(format!("https://{NAME}:{port}/{rel}"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (status.trim().parse().expect("a status"), body.to_owned())
}

#[test]
fn tls_alpn_01_certificate_serves_lxc_and_incus_and_is_renewed_in_place() {
    if !in_hosts_namespace(
        "tls_alpn_01_certificate_serves_lxc_and_incus_and_is_renewed_in_place",
        &[NAME],
    ) {
        return;
    }
    require_tools(TOOLS).unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("run dir");
    let (root, lxd, incus) = build_tree(&run);
    let https = free_port().expect("a port");
    // HTTP-01 checks go to a closed port: only TLS-ALPN-01 can succeed.
    let closed = free_port().expect("a port");
    let pebble = Pebble::start(
        &run,
        &PebbleConfig {
            http_port: closed,
            tls_port: https,
            // Renewed after two thirds, so about every 30 s.
            validity_secs: Some(45),
        },
    )
    .unwrap_or_else(|e| panic!("starting pebble: {e:#}"));
    let trust = run.path().join("pebble-root.pem");
    pebble.write_root(&trust).expect("pebble's root");

    let started = Instant::now();
    let mut serve = Serve::start(
        &run,
        "ssgen-serve",
        &root,
        &[
            "--listen".into(),
            format!("127.0.0.1:{https}"),
            "--acme".into(),
            NAME.into(),
            "--acme-email".into(),
            "admin@ssgen.test".into(),
            "--acme-directory".into(),
            pebble.directory().into(),
        ],
        pebble.listener_ca(),
    );
    let addr = format!("127.0.0.1:{https}");
    let first = wait_for_cert(&mut serve, &pebble, &addr, &trust, ISSUE_LIMIT, |_| true);
    let first_cert = started.elapsed();
    assert!(
        first.subject_issuer.contains("Pebble"),
        "{}",
        first.subject_issuer
    );
    assert_eq!(pebble.issued(), 1, "{}", pebble.log_tail());

    // The state: a private directory of private files, never served.
    let state = root.join(".ssgen/acme");
    assert_eq!(mode(&state), 0o700);
    for f in ["account.json", "certificate.json"] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
        let (status, body) = get(https, &format!(".ssgen/acme/{f}"), &trust);
        assert!(status == 404 && !body.contains("PRIVATE"), "{f}: {status}");
    }
    let stored = std::fs::read_to_string(state.join("certificate.json")).expect("stored");
    assert!(stored.contains(&first.pem.trim().lines().nth(1).expect("a PEM line")[..40]));

    // The real clients, trusting pebble's root only, through the name.
    let url = format!("https://{NAME}:{https}");
    let env = ClientEnv::new(&run.path().join("lxd"), &trust).expect("client env");
    let lxc_started = Instant::now();
    checks::check_remote(&env, "acme", &url, &lxd)
        .unwrap_or_else(|p| panic!("lxc against ssgen serve --acme:\n  {}", p.join("\n  ")));
    let lxc_took = lxc_started.elapsed();
    let listed = incus_lists(run.path(), &trust, &url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed, expected_listing(&incus), "incus image list");

    // Renewal: another certificate, served by the same process.
    let pid = serve.guard.pid();
    let second = wait_for_cert(&mut serve, &pebble, &addr, &trust, ISSUE_LIMIT, |c| {
        c.serial != first.serial
    });
    let renewed_after = started.elapsed();
    assert!(!serve.guard.has_exited() && serve.guard.pid() == pid);
    assert!(
        serve
            .log()
            .contains("acme: certificate for images.ssgen.test issued")
    );
    let stored_now = std::fs::read_to_string(state.join("certificate.json")).expect("stored");
    assert_ne!(stored, stored_now, "the renewed certificate is not stored");
    assert_eq!(mode(&state.join("certificate.json")), 0o600);
    // The clients go on working with the renewed certificate.
    let observed = checks::client_observed(&env, "acme").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(observed.len(), lxd.len(), "lxc after the renewal");
    let listed = incus_lists(run.path(), &trust, &url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed, expected_listing(&incus), "incus after the renewal");
    assert!(second.subject_issuer.contains("Pebble"));

    eprintln!(
        "acme timings: pebble up in {:.2} s; first certificate {:.2} s after ssgen serve started; \
         lxc checks {:.2} s; renewed certificate served {:.1} s after start (45 s lifetime)",
        pebble.started_in.as_secs_f64(),
        first_cert.as_secs_f64(),
        lxc_took.as_secs_f64(),
        renewed_after.as_secs_f64()
    );
}

#[test]
fn http_01_on_the_plain_listener_and_a_restart_serves_the_stored_certificate() {
    if !in_hosts_namespace(
        "http_01_on_the_plain_listener_and_a_restart_serves_the_stored_certificate",
        &[NAME],
    ) {
        return;
    }
    require_tools(TOOLS).unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("run dir");
    let (root, lxd, _) = build_tree(&run);
    let https = free_port().expect("a port");
    let http = free_port().expect("a port");
    // TLS-ALPN-01 checks go to a closed port: only HTTP-01 can succeed.
    let closed = free_port().expect("a port");
    let pebble = Pebble::start(
        &run,
        &PebbleConfig {
            http_port: http,
            tls_port: closed,
            validity_secs: None,
        },
    )
    .unwrap_or_else(|e| panic!("starting pebble: {e:#}"));
    let trust = run.path().join("pebble-root.pem");
    pebble.write_root(&trust).expect("pebble's root");
    let args = [
        "--listen".to_owned(),
        format!("127.0.0.1:{https}"),
        "--http".into(),
        format!("127.0.0.1:{http}"),
        "--acme".into(),
        NAME.into(),
        "--acme-challenge".into(),
        "http-01".into(),
        "--acme-directory".into(),
        pebble.directory().into(),
    ];
    let addr = format!("127.0.0.1:{https}");
    let started = Instant::now();
    let mut serve = Serve::start(&run, "ssgen-serve-1", &root, &args, pebble.listener_ca());
    let first = wait_for_cert(&mut serve, &pebble, &addr, &trust, ISSUE_LIMIT, |_| true);
    let took = started.elapsed();
    assert_eq!(pebble.issued(), 1, "{}", pebble.log_tail());

    // The page names the server as the client reached it.
    let (status, page) = get(https, "", &trust);
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("images https://{NAME}:{https} ")),
        "the page's remote add line does not name https://{NAME}:{https}"
    );
    let env = ClientEnv::new(&run.path().join("lxd"), &trust).expect("client env");
    checks::check_remote(&env, "acme", &format!("https://{NAME}:{https}"), &lxd)
        .unwrap_or_else(|p| panic!("lxc:\n  {}", p.join("\n  ")));
    drop(serve);

    // A restart serves the stored certificate from its first handshake:
    // had it ordered a new one, HTTPS would have had none until then.
    let mut again = Serve::start(&run, "ssgen-serve-2", &root, &args, pebble.listener_ca());
    let served = served_certificate(&addr, NAME, &trust)
        .unwrap_or_else(|e| panic!("right after the restart: {e:#}\n{}", again.log()));
    assert_eq!(served.serial, first.serial);
    assert!(
        again
            .log()
            .contains("acme: serving the certificate for images.ssgen.test")
    );
    assert!(!again.guard.has_exited());
    assert_eq!(pebble.issued(), 1);
    eprintln!(
        "acme timings: HTTP-01 certificate {:.2} s after ssgen serve started",
        took.as_secs_f64()
    );
}

#[test]
fn bad_acme_flags_stop_the_server_before_it_writes_anything() {
    let run = RunDir::new().expect("run dir");
    let root = run.path().join("www");
    std::fs::create_dir_all(&root).expect("root");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--acme", "localhost"], 1, "give a DNS name"),
        (&["--acme", "*.example.org"], 1, "wildcards"),
        (&["--acme", "192.0.2.1"], 1, "IP addresses"),
        (
            &["--acme", "a.example.org", "--acme-challenge", "http-01"],
            1,
            "add --http",
        ),
        (
            &[
                "--acme",
                "a.example.org",
                "--acme-directory",
                "http://ca.example/dir",
            ],
            1,
            "https:// URL",
        ),
        (
            &["--acme", "a.example.org", "--acme-email", "nobody"],
            1,
            "--acme-email",
        ),
        (
            &["--acme", "a.example.org", "--self-signed"],
            2,
            "cannot be used with",
        ),
    ];
    let no_pem = run.path().join("empty.pem");
    std::fs::write(&no_pem, "").expect("empty file");
    for (args, code, want) in cases {
        let out = Command::new(ssgen_bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(*args)
            .arg(&root)
            .env_remove("SSL_CERT_FILE")
            .stdin(Stdio::null())
            .output()
            .expect("ssgen serve runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!root.join(".ssgen").exists(), "{args:?} wrote state");
    }
    // A private CA's file that holds no certificate is caught at start too.
    let out = Command::new(ssgen_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--acme",
            "a.example.org",
        ])
        .arg(&root)
        .env("SSL_CERT_FILE", &no_pem)
        .stdin(Stdio::null())
        .output()
        .expect("ssgen serve runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

#[test]
fn an_unreachable_ca_is_reported_and_the_server_keeps_running() {
    let run = RunDir::new().expect("run dir");
    let root = run.path().join("www");
    std::fs::create_dir_all(&root).expect("root");
    let closed = free_port().expect("a port");
    let tls = ssgen_tests::tls::TestTls::create(run.path()).expect("a CA");
    let mut serve = Serve::start(
        &run,
        "ssgen-serve",
        &root,
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--acme".into(),
            NAME.into(),
            "--acme-directory".into(),
            format!("https://127.0.0.1:{closed}/dir"),
        ],
        &tls.ca_cert,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serve.log().contains("error: acme:") {
        assert!(
            Instant::now() < deadline,
            "no error after 30 s:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = serve.log();
    assert!(
        log.contains(&format!("https://127.0.0.1:{closed}/dir"))
            && log.contains("Connection refused")
            && log.contains("HTTPS has no certificate until then; trying again in 60 s"),
        "{log}"
    );
    assert!(!serve.guard.has_exited(), "the server stopped:\n{log}");
}
