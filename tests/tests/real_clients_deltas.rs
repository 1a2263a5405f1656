//! Image diffs with real daemons: a daemon that holds version 1 copies
//! version 2 through the delta `ssgen build` made (the server's request
//! log shows the `.vcdiff` fetched and the root file not), and refuses a
//! delta that decodes to the wrong bytes (`ssgen_tests::deltas`).
//!
//! Where the daemon cannot run (not root, no `lxd`), the test prints a
//! loud `SKIPPED:` line.

use ssgen_tests::deltas::update_through_delta;
use ssgen_tests::https::StaticHttpsServer;
use ssgen_tests::lxd::{self, ClientEnv};
use ssgen_tests::proc::RunDir;
use ssgen_tests::require_tools;
use ssgen_tests::tls::TestTls;

#[test]
fn lxd_daemon_updates_through_the_delta_and_refuses_a_wrong_one() {
    require_tools(&["mksquashfs", "tar", "xz", "openssl", "lxc", "xdelta3"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let run = RunDir::new().expect("create run dir");
    let tls = TestTls::create(run.path()).unwrap_or_else(|e| panic!("{e:#}"));
    let www = run.path().join("www");
    std::fs::create_dir_all(www.join("deltas")).expect("create www");
    let server = StaticHttpsServer::start(&run, &www, &tls).unwrap_or_else(|e| panic!("{e:#}"));
    let env = ClientEnv::new(run.path(), &tls.ca_cert).expect("client env");
    let Some(daemon) = lxd::daemon_or_skip(&run, &env, "LXD updates through a delta") else {
        return;
    };
    let seen = update_through_delta(&daemon, &server, "deltas", run.path())
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "LXD copied version 2 with {} bytes through the delta instead of {} ({:.1} %); a wrong delta was refused: {}",
        seen.with_delta,
        seen.without_delta,
        100.0 * seen.with_delta as f64 / seen.without_delta as f64,
        seen.refusal
    );
}
