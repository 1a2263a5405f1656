//! A bucket filled by `ssgen push --to s3://` and served over HTTPS the way
//! a CDN fronts it: moto's S3 emulator (standing in for the cloud store)
//! behind Debian's nginx as a TLS proxy, both on 127.0.0.1. Through nginx
//! the real `lxc` and `incus` clients list every image with the
//! fingerprint the test hashed itself, python-simplestreams mirrors every
//! file, the real LXD and Incus daemons copy every image (checking each
//! sha256 and the fingerprint), and `ssgen verify --deep` downloads and
//! checks everything.
//!
//! The clients are checked by `checks::check_served_tree`, whatever serves
//! the tree.

use std::process::Command;

use ssgen_tests::checks::{ServedTree, check_served_tree, into_result};
use ssgen_tests::client::{self, ClientEnv, Daemon, TOOLS};
use ssgen_tests::expect::{Client, expected_images};
use ssgen_tests::images::sample_tree;
use ssgen_tests::proc::RunDir;
use ssgen_tests::s3::{Moto, Nginx, push_command};
use ssgen_tests::tls::TestTls;
use ssgen_tests::{require_tools, run, ssgen_bin};

const T: &str = "1767225600";

#[test]
fn lxd_and_incus_list_and_copy_every_image_from_the_bucket_behind_nginx() {
    require_tools(&[TOOLS, &["nginx"]].concat()).unwrap_or_else(|e| panic!("{e:#}"));
    let run_dir = RunDir::new().expect("run dir");
    let tree = sample_tree(&run_dir.path().join("tree")).expect("sample tree");
    run(Command::new(ssgen_bin())
        .args(["build", "--timestamp", T])
        .arg(&tree.root))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let moto = Moto::start(&run_dir, "images").unwrap_or_else(|e| panic!("starting moto: {e:#}"));
    std::fs::create_dir_all(run_dir.path().join("home")).expect("home");
    let out = push_command(
        &run_dir.path().join("home"),
        &tree.root,
        "s3://images/lxd",
        &moto.endpoint(),
        &moto.access_key,
        &moto.secret_key,
    )
    .args(["--timestamp", T])
    .output()
    .expect("run ssgen push");
    assert!(
        out.status.success(),
        "ssgen push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Readers are anonymous, as for a public bucket behind a CDN.
    moto.enforce_auth(false).expect("auth off");
    let tls = TestTls::create(run_dir.path()).expect("throwaway CA");
    let nginx = Nginx::start(&run_dir, &tls, moto.port(), "images/lxd")
        .unwrap_or_else(|e| panic!("starting nginx: {e:#}"));
    let url = nginx.url();

    let envs =
        ClientEnv::for_all(&run_dir.path().join("clients"), &tls.ca_cert).expect("client envs");
    let lxd = expected_images(&tree, Client::Lxd).expect("expected images");
    let incus = expected_images(&tree, Client::Incus).expect("expected images");
    let daemons: Vec<Daemon> = envs
        .iter()
        .filter_map(|env| {
            client::start_daemon(&run_dir, env, "image copy from the bucket behind nginx")
        })
        .collect();
    let work = run_dir.path().join("work");
    let outcome = check_served_tree(
        &ServedTree {
            clients: &envs.iter().collect::<Vec<_>>(),
            remote: "bucket",
            url: &url,
            // The bucket holds these bytes (s3_push checks it object by
            // object); the models read the catalog from here.
            root: &tree.root,
            lxd: &lxd,
            incus: &incus,
            work: &work,
        },
        &daemons.iter().collect::<Vec<_>>(),
    );
    let mut problems = outcome.problems.clone();
    let verify = Command::new(ssgen_bin())
        .args(["verify", "--deep", &url])
        .env("SSL_CERT_FILE", &tls.ca_cert)
        .output()
        .expect("run ssgen verify");
    if !verify.status.success() {
        problems.push(format!(
            "ssgen verify --deep {url}: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        ));
    }
    if let Err(p) = into_result(problems) {
        panic!(
            "real clients against the bucket behind nginx:\n  {}\n--- nginx access log ---\n{}",
            p.join("\n  "),
            nginx.access_log()
        );
    }
    eprintln!(
        "LXD and Incus listed and copied {} and {} image(s) from the bucket through nginx at {url} ({})",
        lxd.len(),
        incus.len(),
        outcome.timings_line()
    );
}
