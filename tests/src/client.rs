//! The real clients, LXD (`lxc`, daemon `lxd`) and Incus (`incus`, daemon
//! `/usr/libexec/incus/incusd`), behind one API, each confined to a run
//! directory: its config dir (`LXD_CONF`/`INCUS_CONF`), its daemon's state
//! dir (`LXD_DIR`/`INCUS_DIR`), `HOME` and the CA all live in it, the
//! environment is cleared so nothing of the caller's leaks in, and proxies
//! point at a closed loopback port so nothing reaches out.
//!
//! A suite that should run against both clients loops over [`Client::ALL`]:
//!
//! ```no_run
//! use ssgen_tests::client::{ClientEnv, start_daemon};
//! use ssgen_tests::expect::Client;
//! # let run = ssgen_tests::proc::RunDir::new().unwrap();
//! # let ca = std::path::Path::new("ca.crt");
//! for client in Client::ALL {
//!     let env = ClientEnv::for_client(client, run.path(), ca).expect("env");
//!     // Fails the test under CI or SSGEN_REQUIRE_DAEMON=1 when the daemon
//!     // cannot run here; elsewhere says SKIPPED loudly and gives None.
//!     if let Some(daemon) = start_daemon(&run, &env, "my test") {
//!         daemon.env().cli(&["image", "list", "local:"]).expect("list");
//!     }
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub use crate::expect::Client;
use crate::proc::{ProcessGuard, RunDir, unmount_below};

impl Client {
    /// Both clients, LXD first.
    pub const ALL: [Client; 2] = [Client::Lxd, Client::Incus];

    /// The command line client (`lxc`, `incus`).
    pub fn cli(self) -> &'static str {
        match self {
            Client::Lxd => "lxc",
            Client::Incus => "incus",
        }
    }

    /// The daemon binary (Incus ships it outside `PATH`).
    pub fn daemon_program(self) -> &'static str {
        match self {
            Client::Lxd => "lxd",
            Client::Incus => "/usr/libexec/incus/incusd",
        }
    }

    /// The name used in messages for the daemon (`LXD daemon`).
    pub fn daemon_name(self) -> &'static str {
        match self {
            Client::Lxd => "LXD daemon",
            Client::Incus => "Incus daemon",
        }
    }

    /// The daemon's administrative command for `verb` (`waitready`,
    /// `init`, `shutdown`): `lxd VERB` for LXD, `incus admin VERB` for
    /// Incus.
    fn admin(self, verb: &str) -> (&'static str, Vec<String>) {
        match self {
            Client::Lxd => ("lxd", vec![verb.to_owned()]),
            Client::Incus => ("incus", vec!["admin".to_owned(), verb.to_owned()]),
        }
    }

    /// The variables naming the client's config dir and the daemon's dir.
    fn env_vars(self) -> (&'static str, &'static str) {
        match self {
            Client::Lxd => ("LXD_CONF", "LXD_DIR"),
            Client::Incus => ("INCUS_CONF", "INCUS_DIR"),
        }
    }

    /// Lower-case name for directory and file names.
    fn slug(self) -> &'static str {
        match self {
            Client::Lxd => "lxd",
            Client::Incus => "incus",
        }
    }
}

/// Environment for every process of one client in one run.
#[derive(Clone, Debug)]
pub struct ClientEnv {
    /// Which client this environment runs.
    pub client: Client,
    /// The throwaway CA (`SSL_CERT_FILE`).
    pub ca_cert: PathBuf,
    /// `LXD_CONF` / `INCUS_CONF` (the client's remotes and cache).
    pub conf: PathBuf,
    /// `LXD_DIR` / `INCUS_DIR` (the daemon's state and unix socket).
    pub state: PathBuf,
    /// `HOME` for the processes.
    pub home: PathBuf,
}

impl ClientEnv {
    /// An LXD environment rooted in `dir` (created here).
    pub fn new(dir: &Path, ca_cert: &Path) -> Result<Self> {
        Self::for_client(Client::Lxd, dir, ca_cert)
    }

    /// An environment for `client` rooted in `dir` (created here). LXD and
    /// Incus environments in the same `dir` do not share any directory.
    pub fn for_client(client: Client, dir: &Path, ca_cert: &Path) -> Result<Self> {
        let slug = client.slug();
        let env = Self {
            client,
            ca_cert: ca_cert.to_path_buf(),
            conf: dir.join(format!("{slug}-conf")),
            state: dir.join(format!("{slug}-dir")),
            home: dir.join(format!("{slug}-home")),
        };
        for d in [&env.conf, &env.state, &env.home] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        Ok(env)
    }

    /// One environment per client ([`Client::ALL`] order), all rooted in
    /// `dir`.
    pub fn for_all(dir: &Path, ca_cert: &Path) -> Result<Vec<Self>> {
        Client::ALL
            .iter()
            .map(|&c| Self::for_client(c, dir, ca_cert))
            .collect()
    }

    /// A command for `program` with only this environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let (conf_var, dir_var) = self.client.env_vars();
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env(conf_var, &self.conf)
            .env(dir_var, &self.state)
            .env("SSL_CERT_FILE", &self.ca_cert)
            // A closed port: anything that is not the local server fails at
            // once instead of hanging (the daemons try the internet at start).
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            // `.test` names (RFC 6761; the ACME suite maps them to
            // 127.0.0.1 in its own hosts file) are local too.
            .env("NO_PROXY", "127.0.0.1,localhost,.test")
            .env("no_proxy", "127.0.0.1,localhost,.test")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the client (`lxc`/`incus`) with `args`; returns the output
    /// whatever the exit status.
    pub fn cli_output(&self, args: &[&str]) -> Result<Output> {
        let cli = self.client.cli();
        self.command(cli)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {cli}"))
    }

    /// Runs the client with `args` and returns stdout; a failure is an
    /// error with the command line and stderr.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self.cli_output(args)?;
        if !out.status.success() {
            bail!(
                "`{} {}` failed ({}): {}",
                self.client.cli(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs the client with `args` and parses its stdout as JSON.
    pub fn cli_json(&self, args: &[&str]) -> Result<Value> {
        let text = self.cli(args)?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "`{} {}` printed no JSON: {text}",
                self.client.cli(),
                args.join(" ")
            )
        })
    }

    /// [`Self::cli_output`] under its older name (it runs this
    /// environment's client, `incus` for an Incus environment).
    pub fn lxc_output(&self, args: &[&str]) -> Result<Output> {
        self.cli_output(args)
    }

    /// [`Self::cli`] under its older name.
    pub fn lxc(&self, args: &[&str]) -> Result<String> {
        self.cli(args)
    }

    /// [`Self::cli_json`] under its older name.
    pub fn lxc_json(&self, args: &[&str]) -> Result<Value> {
        self.cli_json(args)
    }

    /// `remote add NAME URL --protocol=simplestreams --public` (which does
    /// not contact the server), unless `NAME` already points at `URL`.
    pub fn remote_add(&self, name: &str, url: &str) -> Result<()> {
        let remotes = self.cli_json(&["remote", "list", "--format", "json"])?;
        match remotes
            .get(name)
            .and_then(|r| r.get("Addr"))
            .and_then(Value::as_str)
        {
            Some(addr) if addr == url => Ok(()),
            Some(addr) => bail!("remote {name} already points at {addr}, not {url}"),
            None => {
                self.cli(&[
                    "remote",
                    "add",
                    name,
                    url,
                    "--protocol=simplestreams",
                    "--public",
                ])?;
                Ok(())
            }
        }
    }
}

/// What every real-client suite needs on `PATH`: the image makers and
/// both clients.
pub const TOOLS: &[&str] = &[
    "mksquashfs",
    "qemu-img",
    "tar",
    "xz",
    "openssl",
    "lxc",
    "incus",
];

/// Why `client`'s daemon cannot run here, if it cannot.
pub fn daemon_unavailable_for(client: Client) -> Option<String> {
    if !crate::is_root() {
        return Some(format!(
            "not running as root (the {} needs root)",
            client.daemon_name()
        ));
    }
    for tool in [client.cli(), client.daemon_program()] {
        let present = if tool.starts_with('/') {
            Path::new(tool).is_file()
        } else {
            crate::on_path(tool)
        };
        if !present {
            return Some(format!(
                "`{tool}` is not installed (run scripts/setup.sh as root)"
            ));
        }
    }
    None
}

/// Why the LXD daemon cannot run here, if it cannot.
pub fn daemon_unavailable() -> Option<String> {
    daemon_unavailable_for(Client::Lxd)
}

/// Whether a daemon that cannot run must fail the test rather than be
/// skipped: under CI (`CI` set to anything but empty, `0` or `false`) or
/// with `SSGEN_REQUIRE_DAEMON=1`.
pub fn daemon_required() -> bool {
    let set = |name: &str| {
        std::env::var(name)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("SSGEN_REQUIRE_DAEMON") || set("CI")
}

/// Starts a private daemon for `env` (its own client's). Where it cannot
/// run here, it panics when [`daemon_required`], and otherwise prints a
/// loud `SKIPPED (not passed)` block naming `what` and returns `None`. A
/// daemon that can run but fails to start always panics.
pub fn start_daemon(run: &RunDir, env: &ClientEnv, what: &str) -> Option<Daemon> {
    if let Some(why) = daemon_unavailable_for(env.client) {
        if daemon_required() {
            panic!(
                "the {} part of `{what}` cannot run: {why}; it is required here \
                 (CI or SSGEN_REQUIRE_DAEMON=1 is set), so this is a failure, not a skip",
                env.client.daemon_name()
            );
        }
        // Straight to the stderr handle, not eprintln!: the test harness
        // captures eprintln! of passing tests, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED (not passed): the {} part of `{what}`: {why}\n\
             (set SSGEN_REQUIRE_DAEMON=1 to make this a failure)\n{bar}\n",
            env.client.daemon_name(),
            bar = "*".repeat(72)
        );
        return None;
    }
    Some(
        Daemon::start(run, env)
            .unwrap_or_else(|e| panic!("starting the {}: {e:#}", env.client.daemon_name())),
    )
}

/// [`start_daemon`] under its older name.
pub fn daemon_or_skip(run: &RunDir, env: &ClientEnv, what: &str) -> Option<Daemon> {
    start_daemon(run, env, what)
}

/// A private daemon in `env.state`, stopped on drop: the client's
/// `shutdown`, then its process group by PID, then any mount it left under
/// its state dir.
pub struct Daemon {
    env: ClientEnv,
    guard: Option<ProcessGuard>,
    log: PathBuf,
}

/// The daemon's former name, from when only LXD ran here.
pub type LxdDaemon = Daemon;

/// One `dir` pool and a default profile with a root disk: what the daemon
/// needs to store images, and nothing that wants a network bridge.
const PRESEED: &str = "\
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
";

impl Daemon {
    /// Starts `env`'s daemon, waits until it is ready and initialises it
    /// with a `dir` pool (never `init --auto`: it wants a bridge and
    /// iptables).
    pub fn start(run: &RunDir, env: &ClientEnv) -> Result<Self> {
        let client = env.client;
        let log = run.path().join(format!("{}.log", client.slug()));
        let mut cmd = env.command(client.daemon_program());
        cmd.args(["--group", "root", "--logfile"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let guard = run.spawn(client.daemon_program(), &mut cmd)?;
        let mut daemon = Self {
            env: env.clone(),
            guard: Some(guard),
            log,
        };

        let ready = daemon
            .admin("waitready", &["--timeout", "60"])
            .output()
            .context("cannot run waitready")?;
        if !ready.status.success() {
            bail!(
                "the {} did not become ready: {}\n--- its log ---\n{}",
                client.daemon_name(),
                String::from_utf8_lossy(&ready.stderr).trim(),
                daemon.log_tail()
            );
        }

        let mut init = daemon
            .admin("init", &["--preseed"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run init --preseed")?;
        {
            use std::io::Write;
            let mut stdin = init.stdin.take().context("init stdin")?;
            stdin
                .write_all(PRESEED.as_bytes())
                .context("write preseed")?;
        }
        let out = init.wait_with_output().context("wait for init")?;
        if !out.status.success() {
            bail!(
                "init --preseed of the {} failed: {}\n--- its log ---\n{}",
                client.daemon_name(),
                String::from_utf8_lossy(&out.stderr).trim(),
                daemon.log_tail()
            );
        }
        if daemon.guard.as_mut().is_some_and(ProcessGuard::has_exited) {
            bail!(
                "the {} exited after init\n--- its log ---\n{}",
                client.daemon_name(),
                daemon.log_tail()
            );
        }
        Ok(daemon)
    }

    /// `lxd VERB ARGS` or `incus admin VERB ARGS` in this environment.
    fn admin(&self, verb: &str, args: &[&str]) -> Command {
        let (program, mut full) = self.env.client.admin(verb);
        full.extend(args.iter().map(|a| (*a).to_owned()));
        let mut cmd = self.env.command(program);
        cmd.args(full);
        cmd
    }

    /// The client environment talking to this daemon.
    pub fn env(&self) -> &ClientEnv {
        &self.env
    }

    /// Which client's daemon this is.
    pub fn client(&self) -> Client {
        self.env.client
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.guard.as_ref().map(ProcessGuard::pid).unwrap_or(0)
    }

    /// The last lines of the daemon's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Where the daemon stores an image's files: `(metadata, rootfs)`.
    pub fn stored_files(&self, fingerprint: &str) -> (PathBuf, PathBuf) {
        let dir = self.env.state.join("images");
        (
            dir.join(fingerprint),
            dir.join(format!("{fingerprint}.rootfs")),
        )
    }

    /// Stops the daemon (also done on drop).
    pub fn stop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if !guard.has_exited() {
            let _ = self
                .admin("shutdown", &["--timeout", "20"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        guard.stop(Duration::from_secs(5));
        unmount_below(&self.env.state);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
