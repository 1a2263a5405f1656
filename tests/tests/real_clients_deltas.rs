//! Image diffs with real daemons (LXD 5.0 and Incus 6.0): a daemon that
//! holds version 1 copies
//! version 2 through the delta `ssgen build` made (the server's request
//! log shows the `.vcdiff` fetched and the root file not), and refuses a
//! delta that decodes to the wrong bytes (`ssgen_tests::deltas`).
//!
//! Where a daemon cannot run (not root, no `lxd` or `incusd`), its test
//! prints a loud `SKIPPED` block; under CI it fails instead.

use ssgen_tests::client::{Client, ClientEnv, start_daemon};
use ssgen_tests::deltas::{Daemon as _, update_through_delta};
use ssgen_tests::https::StaticHttpsServer;
use ssgen_tests::proc::RunDir;
use ssgen_tests::require_tools;
use ssgen_tests::tls::TestTls;

/// The proof against `client`'s daemon, in a run of its own.
fn updates_through_the_delta(client: Client) {
    // xdelta3 is on the PATH the daemon inherits: both clients run it to
    // patch the base.
    require_tools(&[
        "mksquashfs",
        "tar",
        "xz",
        "openssl",
        client.cli(),
        "xdelta3",
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("create run dir");
    let tls = TestTls::create(run.path()).unwrap_or_else(|e| panic!("{e:#}"));
    let www = run.path().join("www");
    std::fs::create_dir_all(www.join("deltas")).expect("create www");
    let server = StaticHttpsServer::start(&run, &www, &tls).unwrap_or_else(|e| panic!("{e:#}"));
    let env = ClientEnv::for_client(client, run.path(), &tls.ca_cert).expect("client env");
    let what = format!("{} updates through a delta", client.cli());
    let Some(daemon) = start_daemon(&run, &env, &what) else {
        return;
    };
    let seen = update_through_delta(&daemon, &server, "deltas", run.path())
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Straight to stderr, so that the numbers show in a passing run.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{} copied version 2 with {} bytes through the delta instead of {} ({:.1} %); a wrong delta was refused: {}",
        daemon.name(),
        seen.with_delta,
        seen.without_delta,
        100.0 * seen.with_delta as f64 / seen.without_delta as f64,
        seen.refusal
    );
}

#[test]
fn lxd_daemon_updates_through_the_delta_and_refuses_a_wrong_one() {
    updates_through_the_delta(Client::Lxd);
}

#[test]
fn incus_daemon_updates_through_the_delta_and_refuses_a_wrong_one() {
    updates_through_the_delta(Client::Incus);
}
