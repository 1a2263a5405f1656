//! `ssgen push` to `ssgen serve --token`, and private feeds of `ssgen
//! serve --read-token`, with the real clients.
//!
//! `ssgen serve` speaks the upload API of the edge Worker (the core's
//! serving contract), so the sample tree of real images is published to
//! an **empty** root of the real binary by `ssgen push`, exactly as to the
//! edge. Then the served catalog must be byte for byte what `ssgen build
//! --deltas 0` writes for the tree, a second push must upload nothing, and
//! `lxc` and `incus` must list every image with the fingerprint the test
//! computed from its own files.
//!
//! A private feed answers reads only under `/<token>/`: the clients and
//! the private LXD and Incus daemons list, copy and import by direct URL
//! through `https://HOST/<token>`, and nothing is readable without it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ssgen_tests::checks::{
    self, add_unified, check_daemons, check_direct_import, check_remote, expected_for,
};
use ssgen_tests::client::{self, Client, ClientEnv, start_daemon};
use ssgen_tests::expect::{ExpectedImage, expected_images};
use ssgen_tests::images::{TreeSpec, sample_tree};
use ssgen_tests::proc::RunDir;
use ssgen_tests::ssgen_serve::{SsgenServe, Watchdog};
use ssgen_tests::tls::TestTls;
use ssgen_tests::{require_tools, ssgen_bin};

const TOKEN: &str = "push-serve-token-0123456789abcdef";
const READ: &str = "reader-token-0123456789abcdef";
/// A reader of the token file, revoked while the server runs.
const REVOKED: &str = "revoked-reader-0123456789abcdef";
const TIMESTAMP: &str = "1767225600";
/// The daemon part with a healthy server takes seconds; past this bound
/// (a hang, not slowness), the server is killed and the test fails.
const DAEMON_LIMIT: Duration = Duration::from_secs(300);

/// `ssgen push TREE --to URL` trusting `ca`.
fn push_output(tree: &Path, url: &str, ca: &Path) -> std::process::Output {
    Command::new(ssgen_bin())
        .arg("push")
        .arg(tree)
        .args(["--to", url, "--token", TOKEN, "--timestamp", TIMESTAMP])
        .env("SSL_CERT_FILE", ca)
        .env_remove("SSGEN_TOKEN")
        .output()
        .expect("run ssgen push")
}

/// [`push_output`], which must succeed; its stderr.
fn push(tree: &Path, url: &str, ca: &Path) -> String {
    let out = push_output(tree, url, ca);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ssgen push to ssgen serve failed: {stderr}"
    );
    stderr
}

/// The real `ssgen serve --token` over HTTPS on an empty root, with
/// `extra` arguments.
fn start_empty(run: &RunDir, tls: &TestTls, extra: &[&str]) -> SsgenServe {
    let www = run.path().join("www");
    std::fs::create_dir(&www).expect("empty server root");
    SsgenServe::start_with(run, &www, tls, TOKEN, false, TIMESTAMP, extra)
        .unwrap_or_else(|e| panic!("starting ssgen serve: {e:#}"))
}

/// What `ssgen build --deltas 0` writes for the images of `tree`, built on
/// a copy (no old catalog reused): (index.json, images.json).
fn built(tree: &Path, work: &Path) -> (Vec<u8>, Vec<u8>) {
    let copy = work.join("reference");
    std::fs::create_dir_all(&copy).expect("reference dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(tree.join("images"))
        .arg(&copy)
        .status();
    assert!(status.is_ok_and(|s| s.success()), "copy the tree");
    let out = Command::new(ssgen_bin())
        .arg("build")
        .arg(&copy)
        .args(["--deltas", "0", "--timestamp", TIMESTAMP])
        .output()
        .expect("run ssgen build");
    assert!(
        out.status.success(),
        "ssgen build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |rel: &str| std::fs::read(copy.join(rel)).expect("built catalog");
    (
        read("streams/v1/index.json"),
        read("streams/v1/images.json"),
    )
}

/// What both tests start from: the tools checked, a run directory, the
/// sample tree of real images, the images each client must list, a CA.
struct Setup {
    run: RunDir,
    tree: TreeSpec,
    lxd: Vec<ExpectedImage>,
    incus: Vec<ExpectedImage>,
    tls: TestTls,
}

fn setup() -> Setup {
    require_tools(client::TOOLS)
        .and_then(|()| require_tools(&["curl"]))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("run dir");
    let tree = sample_tree(&run.path().join("tree")).expect("sample tree");
    let lxd = expected_images(&tree, Client::Lxd).expect("expected LXD images");
    let incus = expected_images(&tree, Client::Incus).expect("expected Incus images");
    let tls = TestTls::create(run.path()).expect("throwaway CA");
    Setup {
        run,
        tree,
        lxd,
        incus,
        tls,
    }
}

#[test]
fn push_publishes_a_tree_to_ssgen_serve_as_to_the_edge() {
    let Setup {
        run,
        tree,
        lxd,
        incus,
        tls,
    } = setup();
    let server = start_empty(&run, &tls, &["--deltas", "0", "--allow-delete"]);

    let first = push(&tree.root, server.url(), &tls.ca_cert);
    assert!(first.contains("published generation"), "{first}");
    let (index, images) = built(&tree.root, run.path());
    let served = |rel: &str| {
        let r = server.get(rel).expect("GET");
        assert_eq!(r.status, 200, "{rel}: {}", r.text());
        r.body
    };
    assert!(
        served("streams/v1/images.json") == images,
        "the served images.json is not what ssgen build --deltas 0 writes for the tree"
    );
    assert!(
        served("streams/v1/index.json") == index,
        "the served index.json is not what ssgen build --deltas 0 writes for the tree"
    );
    let second = push(&tree.root, server.url(), &tls.ca_cert);
    assert!(
        second.contains(" 0 to upload (0 bytes)") && second.contains("unchanged"),
        "a second push sent something or changed the catalog:\n{second}"
    );

    let envs = ClientEnv::for_all(&run.path().join("clients"), &tls.ca_cert).expect("client envs");
    let mut problems = Vec::new();
    for env in &envs {
        if let Err(p) = check_remote(
            env,
            "pushed",
            server.url(),
            expected_for(env.client, &lxd, &incus),
        ) {
            problems.extend(p);
        }
    }
    if let Err(p) = checks::into_result(problems) {
        panic!(
            "real clients against the pushed ssgen serve:\n  {}",
            p.join("\n  ")
        );
    }
}

#[test]
fn a_private_feed_is_read_through_its_token_and_nothing_without() {
    let Setup {
        run,
        tree,
        lxd,
        incus,
        tls,
    } = setup();
    let readers = run.path().join("readers");
    std::fs::write(&readers, format!("# readers\n{REVOKED}\n")).expect("token file");
    let readers_arg = readers.to_str().expect("utf-8 path");
    let server = start_empty(
        &run,
        &tls,
        &[
            "--deltas",
            "0",
            "--read-token",
            READ,
            "--read-token-file",
            readers_arg,
        ],
    );
    // The upload API stays at the root, behind its own token.
    push(&tree.root, server.url(), &tls.ca_cert);
    let feed = format!("{}/{READ}", server.url());

    // Nothing readable without the token: the catalogs, an image file, the
    // page, and the upload API's listing (to one without the upload token).
    let file = &lxd[0].root.rel;
    for rel in [
        "streams/v1/index.json",
        "streams/v1/images.json",
        file.as_str(),
        "",
    ] {
        let bare = server.get(rel).expect("GET");
        assert_eq!(
            bare.status,
            404,
            "/{rel} without the token: {}",
            bare.text()
        );
        let through = server.curl(&format!("{feed}/{rel}"), &[]).expect("GET");
        assert_eq!(through.status, 200, "{feed}/{rel}: {}", through.text());
    }

    let listing = server.get("api/v1/files").expect("GET");
    assert_eq!(
        listing.status,
        404,
        "the listing without the upload token: {}",
        listing.text()
    );
    assert!(!listing.text().contains("images/"), "{}", listing.text());

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
        if let Err(p) = checks::check_bare_unlisted(env, "bare", server.url()) {
            problems.push(p);
        }
    }
    let daemons: Vec<_> = envs
        .iter()
        .filter_map(|env| start_daemon(&run, env, "real daemons against a private ssgen serve"))
        .collect();
    let watchdog = Watchdog::arm(server.pid(), DAEMON_LIMIT);
    problems.extend(check_daemons(
        &daemons,
        "private",
        &feed,
        (&lxd, &incus),
        &run.path().join("stored"),
    ));
    // Direct-URL import needs a unified tarball: add one and push again.
    // Its URL, as the image files', answers only under the token.
    let tarball = add_unified(&tree.root);
    push(&tree.root, server.url(), &tls.ca_cert);
    let bare = server.get("aliases/alpine/3.20").expect("GET");
    assert_eq!(
        bare.status,
        404,
        "direct-URL import without the token: {}",
        bare.text()
    );
    let through = server
        .curl(&format!("{feed}/aliases/alpine/3.20"), &["-I"])
        .expect("HEAD");
    assert_eq!(
        through.status,
        200,
        "{feed}/aliases/alpine/3.20: {}",
        through.text()
    );
    for daemon in &daemons {
        if let Err(p) = check_direct_import(daemon, &feed, "alpine/3.20", &tarball) {
            problems.push(p);
        }
        if let Err(p) =
            checks::check_bare_import_refused(daemon, server.url(), "alpine/3.20", &tarball)
        {
            problems.push(p);
        }
    }
    // A reader revoked in the token file, without a restart: its URL
    // worked, and then neither the clients nor the daemons get anything
    // through it (first asked after the revocation, so no client cache
    // of its catalog hides the answer).
    let revoked = format!("{}/{REVOKED}", server.url());
    let index = format!("{revoked}/streams/v1/index.json");
    let before = server.curl(&index, &[]).expect("GET");
    assert_eq!(
        before.status,
        200,
        "{index} before the revocation: {}",
        before.text()
    );
    let replaced = run.path().join("readers.new");
    std::fs::write(&replaced, "# readers\nanother-reader-0123456789abcdef\n").expect("token file");
    std::fs::rename(&replaced, &readers).expect("replace the token file");
    let start = std::time::Instant::now();
    while server.curl(&index, &[]).expect("GET").status != 404 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the revoked token still opens {index} 30 s after the token file changed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for env in &envs {
        if let Err(p) = checks::check_bare_unlisted(env, "revoked", &revoked) {
            problems.push(p);
        }
    }
    for daemon in &daemons {
        if let Err(p) = checks::check_bare_import_refused(daemon, &revoked, "alpine/3.20", &tarball)
        {
            problems.push(p);
        }
    }
    assert!(
        !watchdog.fired(),
        "the daemons did not finish within {DAEMON_LIMIT:?}: ssgen serve was killed"
    );
    if let Err(p) = checks::into_result(problems) {
        panic!(
            "real clients against a private ssgen serve:\n  {}",
            p.join("\n  ")
        );
    }
    eprintln!(
        "{} daemon(s) listed, copied and imported through {feed}; nothing without the token",
        daemons.len()
    );

    // This server has no --allow-delete: a push that must withdraw an
    // image is refused with the flag to add, and the catalog stays.
    let before = server
        .curl(&format!("{feed}/streams/v1/images.json"), &[])
        .expect("GET");
    let out = Command::new(ssgen_bin())
        .arg("build")
        .arg(&tree.root)
        .args(["--deltas", "0", "--timestamp", TIMESTAMP])
        .output()
        .expect("run ssgen build");
    assert!(
        out.status.success(),
        "ssgen build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(ssgen_bin())
        .args(["remove", &lxd[0].fingerprint])
        .arg(&tree.root)
        .output()
        .expect("run ssgen remove");
    assert!(
        out.status.success(),
        "ssgen remove: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = push_output(&tree.root, server.url(), &tls.ca_cert);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--allow-delete"),
        "a push that withdraws, to a server without --allow-delete:\n{stderr}"
    );
    let after = server
        .curl(&format!("{feed}/streams/v1/images.json"), &[])
        .expect("GET");
    assert!(
        after.body == before.body,
        "a refused withdraw changed the catalog"
    );
}
