//! `ssgen serve` in front of the real clients, filled through its own
//! upload API.
//!
//! The main real-client test (`real_clients.rs`) proves the catalog that
//! `ssgen build` writes, served by a plain Python server. This one proves
//! the server and the publishing path: `ssgen serve` starts on an **empty**
//! root with the suite's throwaway CA-signed certificate (`--tls-cert`,
//! `--tls-key`; clients trust it by `SSL_CERT_FILE` only), the sample tree
//! of real images is published through the upload API (`PUT` with
//! `X-Checksum-Sha256`, one product through the multipart form), the server
//! rebuilds the catalog by itself, and then exactly the checks of the main
//! test run against it ([`checks::check_served_tree`]): `lxc` and `incus`
//! `image list/info/alias list` against expectations the test computed from
//! its own files, the private LXD and Incus daemons' `image copy` of every
//! image with export and re-import, and `sstream-mirror`; then each daemon
//! imports a unified image by direct URL.
//!
//! The clients fetch every image file first over `http://<host:port of the
//! HTTPS URL>` and fall back to HTTPS; the test checks that this first
//! attempt is closed by the TLS listener (not held open), that the `--http`
//! listener serves the same tree, and bounds the daemon part with a
//! watchdog, so a hang fails the test instead of stalling it. Nothing here
//! asserts how fast: the bounds are generous, and their expiry is a
//! failure.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ssgen_tests::checks::{self, ServedTree};
use ssgen_tests::client::{self, Client, ClientEnv, Daemon};
use ssgen_tests::expect::expected_images;
use ssgen_tests::images::sample_tree;
use ssgen_tests::proc::RunDir;
use ssgen_tests::ssgen_serve::{SsgenServe, Watchdog, plain_http_to, publish};
use ssgen_tests::tls::TestTls;
use ssgen_tests::{require_tools, sha256_files};

const TOKEN: &str = "real-clients-serve-token-0123456789";
/// A fixed build time, so that `updated` does not depend on the clock.
const TIMESTAMP: &str = "1767225600";
/// Published through the multipart form: the product with a container and
/// a VM sharing one metadata tarball (three files in one request).
const FORM_PRODUCT: &str = "myos:1.0:arm64:cloud";
/// The daemon part with a healthy server takes seconds; past this bound
/// (a hang, not slowness), the server is killed and the test fails.
const DAEMON_LIMIT: Duration = Duration::from_secs(300);
/// How long the TLS listener may hold a plain-HTTP connection before the
/// probe calls it held open (a client would hang there).
const PROBE_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn real_clients_accept_what_ssgen_serve_publishes_through_its_api() {
    require_tools(client::TOOLS)
        .and_then(|()| require_tools(&["curl"]))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let started = Instant::now();
    let run = RunDir::new().expect("run dir");
    // The publisher's copy: expectations are computed from these files,
    // never from what the server writes.
    let tree = sample_tree(&run.path().join("source")).expect("sample tree");
    let lxd = expected_images(&tree, Client::Lxd).expect("expected LXD images");
    let incus = expected_images(&tree, Client::Incus).expect("expected Incus images");
    let tls = TestTls::create(run.path()).expect("throwaway CA");
    let www = run.path().join("www");
    std::fs::create_dir(&www).expect("empty server root");

    let made = started.elapsed();
    let mut server = SsgenServe::start(&run, &www, &tls, TOKEN, true, TIMESTAMP)
        .unwrap_or_else(|e| panic!("starting ssgen serve: {e:#}"));
    // Includes building ssgen when its sources are newer than the binary.
    let server_up = started.elapsed() - made;
    let http = server.http_url().expect("started with --http").to_owned();

    // Why side files are copied rather than uploaded: the API refuses them.
    let hidden = "images/debian/12/amd64/default/20260101_0000/.requirements";
    let refused = server
        .put(hidden, &tree.root.join("images/debian/.requirements"))
        .expect("PUT a hidden name");
    assert!(
        refused.status >= 400 && !www.join(hidden).exists(),
        "PUT {hidden} was answered {} ({}) and stored: hidden names must be refused",
        refused.status,
        refused.text()
    );

    let publishing = Instant::now();
    let published = publish(&server, &tree, FORM_PRODUCT)
        .unwrap_or_else(|e| panic!("publishing through the upload API: {e:#}"));
    assert!(
        !published.put.is_empty() && published.posted.len() >= 3,
        "{published:?}"
    );
    let products: BTreeSet<String> = tree.products.iter().map(|p| p.id()).collect();
    let paths: BTreeSet<String> = lxd
        .iter()
        .chain(&incus)
        .flat_map(|e| [e.meta.rel.clone(), e.root.rel.clone()])
        .collect();
    let uploads_took = publishing.elapsed();
    let rebuilt = server
        .wait_for_catalog(&products, &paths, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("waiting for the rebuilt catalog: {e:#}"));

    // The same tree on the plain listener, byte for byte: a client (or a
    // caching proxy) that asks there first gets what HTTPS has.
    for rel in [
        "streams/v1/index.json",
        "streams/v1/images.json",
        &lxd[0].root.rel,
    ] {
        let secure = server.get(rel).expect("GET over HTTPS");
        let plain = server
            .curl(&format!("{http}/{rel}"), &[])
            .expect("GET over plain HTTP");
        assert!(
            secure.status == 200 && plain.status == 200 && plain.body == secure.body,
            "{rel}: HTTPS answered {} ({} bytes), the --http listener {} ({} bytes): not the same tree",
            secure.status,
            secure.body.len(),
            plain.status,
            plain.body.len()
        );
    }
    let file = &lxd[0].root;
    assert_eq!(
        sha256_files(&[&www.join(&file.rel)]).expect("hash the stored file"),
        file.sha256,
        "{}: the stored upload differs from the publisher's file",
        file.rel
    );
    // The clients' first attempt at an image file: http:// on the port of
    // the HTTPS URL. The listener must close it (they then retry over
    // HTTPS), not hold it open: a held connection is an error of the probe.
    let probe = plain_http_to(server.https_addr(), &file.rel, PROBE_LIMIT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !probe.answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP to the TLS listener was answered {:?}; it must be refused",
        String::from_utf8_lossy(&probe.answer[..probe.answer.len().min(40)])
    );

    let clients = run.path().join("clients");
    let envs = ClientEnv::for_all(&clients, &tls.ca_cert).expect("client envs");
    let daemon_starting = Instant::now();
    let daemons: Vec<Daemon> = envs
        .iter()
        .filter_map(|env| client::start_daemon(&run, env, "real clients against ssgen serve"))
        .collect();
    let daemon_start = daemon_starting.elapsed();
    let watchdog = Watchdog::arm(server.pid(), DAEMON_LIMIT);
    let outcome = checks::check_served_tree(
        &ServedTree {
            clients: &envs.iter().collect::<Vec<_>>(),
            remote: "t",
            url: server.url(),
            root: server.root(),
            lxd: &lxd,
            incus: &incus,
            work: run.path(),
        },
        &daemons.iter().collect::<Vec<_>>(),
    );
    let hung = watchdog.fired();
    drop(watchdog);
    assert!(
        !hung,
        "the checks did not finish within {DAEMON_LIMIT:?}: ssgen serve was killed; problems:\n  - {}",
        outcome.problems.join("\n  - ")
    );
    assert!(
        server.is_running(),
        "ssgen serve exited during the checks:\n{}",
        server.stderr_tail()
    );
    let mut problems = outcome.problems.clone();
    // Direct-URL import (`image import https://HOST/aliases/ALIAS`) needs a
    // unified tarball: publish one through the API, then let each daemon
    // import it by its alias.
    if !daemons.is_empty() {
        let tarball = checks::add_unified(&tree.root);
        let rel = tarball
            .strip_prefix(&tree.root)
            .expect("inside the tree")
            .to_string_lossy()
            .into_owned();
        let put = server.put(&rel, &tarball).expect("PUT the unified tarball");
        assert!(put.status < 300, "PUT {rel}: {} {}", put.status, put.text());
        let mut with_unified = products.clone();
        with_unified.insert("alpine:3.20:amd64:default".into());
        server
            .wait_for_catalog(
                &with_unified,
                &BTreeSet::from([rel]),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("waiting for the unified image: {e:#}"));
        let watchdog = Watchdog::arm(server.pid(), DAEMON_LIMIT);
        for daemon in &daemons {
            if let Err(p) =
                checks::check_direct_import(daemon, server.url(), "alpine/3.20", &tarball)
            {
                problems.push(p);
            }
        }
        assert!(
            !watchdog.fired(),
            "the direct-URL import did not finish within {DAEMON_LIMIT:?}: ssgen serve was killed"
        );
    }
    if let Err(problems) = checks::into_result(problems) {
        panic!(
            "real clients against ssgen serve ({}): {} problem(s):\n  - {}",
            server.url(),
            problems.len(),
            problems.join("\n  - ")
        );
    }
    eprintln!(
        "ssgen serve at {} (and {http}): sample tree made in {:.1}s; server up in {:.1}s; published {} files by PUT, \
         {} by one multipart POST, {} side files copied, in {:.1}s; catalog rebuilt {:.1}s after \
         the last upload; plain HTTP to the TLS port answered {} ({} bytes) and closed in {:?}; {} daemon(s) started in {:.1}s; \
         checked {} LXD and {} Incus images ({}); {:.1}s in all",
        server.url(),
        made.as_secs_f64(),
        server_up.as_secs_f64(),
        published.put.len(),
        published.posted.len(),
        published.copied.len(),
        uploads_took.as_secs_f64(),
        rebuilt.as_secs_f64(),
        ssgen_tests::hex(&probe.answer[..probe.answer.len().min(7)]),
        probe.answer.len(),
        probe.closed_after,
        daemons.len(),
        daemon_start.as_secs_f64(),
        lxd.len(),
        incus.len(),
        outcome.timings_line(),
        started.elapsed().as_secs_f64()
    );
}

/// A multipart upload that ends before its closing boundary (a dropped
/// connection, a killed curl) must leave nothing behind: multipart parts
/// carry no checksum, so only the form's own end tells a whole file from a
/// truncated one. Were the partial staging file renamed into place, it
/// would answer 200 and the publisher's retry with the whole file would be
/// refused with 409 (published files never change).
#[test]
fn an_interrupted_multipart_upload_leaves_nothing_behind() {
    require_tools(&["openssl", "curl"]).unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("run dir");
    let tls = TestTls::create(run.path()).expect("throwaway CA");
    let www = run.path().join("www");
    std::fs::create_dir(&www).expect("empty server root");
    let server = SsgenServe::start(&run, &www, &tls, TOKEN, false, TIMESTAMP)
        .unwrap_or_else(|e| panic!("starting ssgen serve: {e:#}"));

    let name = "debian/12/amd64/default/20260101_0000/rootfs.squashfs";
    let rel = format!("images/{name}");
    let whole = run.path().join("rootfs.squashfs");
    // A squashfs's magic first, as the server checks an upload's first
    // bytes against its name.
    let mut bytes = b"hsqs".to_vec();
    bytes.resize(64 * 1024, b's');
    std::fs::write(&whole, bytes).expect("write the file");
    // What curl -F sends, cut off before the part's data and the closing
    // boundary arrive.
    let cut = run.path().join("cut-form");
    std::fs::write(
        &cut,
        format!(
            "--cut\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nhsqsssss"
        ),
    )
    .expect("write the cut form");
    let cut_arg = format!("@{}", cut.display());
    let reply = server
        .curl(
            &format!("{}/images/", server.url()),
            &[
                "-H",
                &format!("Authorization: Bearer {TOKEN}"),
                "-H",
                "Content-Type: multipart/form-data; boundary=cut",
                "--data-binary",
                &cut_arg,
            ],
        )
        .expect("POST the cut form");
    assert!(
        reply.status >= 400,
        "a form without its closing boundary was answered {} ({})",
        reply.status,
        reply.text()
    );
    let served = server.get(&rel).expect("GET the file");
    let stored = std::fs::metadata(www.join(&rel)).map(|m| m.len()).ok();
    // The publisher retries with the whole file, as anyone would after a 400.
    let retry = server
        .post_form(&[(name.to_owned(), whole.clone())])
        .expect("POST the whole file");
    assert!(
        served.status == 404 && stored.is_none() && retry.status == 201,
        "after a multipart upload answered {} ({}): GET {rel} answers {} with {} bytes \
         (stored on disk: {stored:?} bytes), and the retry with the whole file is answered {} ({}); \
         expected 404, nothing on disk and 201",
        reply.status,
        reply.text(),
        served.status,
        served.body.len(),
        retry.status,
        retry.text()
    );
}
