//! The real LXD client (`lxc`) and daemon (`lxd`), confined to a run
//! directory: `LXD_CONF`, `LXD_DIR`, `HOME` and the CA all live in it, the
//! environment is cleared so nothing of the caller's leaks in, and proxies
//! point at a closed loopback port so nothing reaches out (spec §18).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::proc::{ProcessGuard, RunDir, unmount_below};

/// Environment for every client process of one run.
#[derive(Clone, Debug)]
pub struct ClientEnv {
    /// The throwaway CA (`SSL_CERT_FILE`).
    pub ca_cert: PathBuf,
    /// `LXD_CONF` (the client's remotes and cache).
    pub lxd_conf: PathBuf,
    /// `LXD_DIR` (the daemon's state and unix socket).
    pub lxd_dir: PathBuf,
    /// `HOME` for the clients.
    pub home: PathBuf,
}

impl ClientEnv {
    /// An environment rooted in `dir` (created here).
    pub fn new(dir: &Path, ca_cert: &Path) -> Result<Self> {
        let env = Self {
            ca_cert: ca_cert.to_path_buf(),
            lxd_conf: dir.join("lxd-conf"),
            lxd_dir: dir.join("lxd-dir"),
            home: dir.join("home"),
        };
        for d in [&env.lxd_conf, &env.lxd_dir, &env.home] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        Ok(env)
    }

    /// A command for `program` with only this environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("LXD_CONF", &self.lxd_conf)
            .env("LXD_DIR", &self.lxd_dir)
            .env("SSL_CERT_FILE", &self.ca_cert)
            // A closed port: anything that is not the local server fails at
            // once instead of hanging (the daemon tries the internet at start).
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

    /// Runs `lxc ARGS`; returns the output whatever the exit status.
    pub fn lxc_output(&self, args: &[&str]) -> Result<Output> {
        self.command("lxc")
            .args(args)
            .output()
            .context("cannot run lxc")
    }

    /// Runs `lxc ARGS` and returns stdout; failure is an error with stderr.
    pub fn lxc(&self, args: &[&str]) -> Result<String> {
        let out = self.lxc_output(args)?;
        if !out.status.success() {
            bail!(
                "`lxc {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `lxc ARGS` and parses its stdout as JSON.
    pub fn lxc_json(&self, args: &[&str]) -> Result<Value> {
        let text = self.lxc(args)?;
        serde_json::from_str(&text)
            .with_context(|| format!("`lxc {}` printed no JSON: {text}", args.join(" ")))
    }

    /// `lxc remote add NAME URL --protocol=simplestreams --public` (which
    /// does not contact the server), unless `NAME` already points at `URL`.
    pub fn remote_add(&self, name: &str, url: &str) -> Result<()> {
        let remotes = self.lxc_json(&["remote", "list", "--format", "json"])?;
        match remotes
            .get(name)
            .and_then(|r| r.get("Addr"))
            .and_then(Value::as_str)
        {
            Some(addr) if addr == url => Ok(()),
            Some(addr) => bail!("remote {name} already points at {addr}, not {url}"),
            None => {
                self.lxc(&[
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

/// Why the daemon part cannot run here, if it cannot.
pub fn daemon_unavailable() -> Option<String> {
    if !crate::is_root() {
        return Some("not running as root (the LXD daemon needs root)".into());
    }
    for tool in ["lxd", "lxc"] {
        if !crate::on_path(tool) {
            return Some(format!(
                "`{tool}` is not installed (run scripts/setup.sh as root)"
            ));
        }
    }
    None
}

/// Starts a private daemon for `env`, or, where it cannot run, prints a
/// loud `SKIPPED:` line naming `what` and returns `None`.
pub fn daemon_or_skip(run: &RunDir, env: &ClientEnv, what: &str) -> Option<LxdDaemon> {
    if let Some(why) = daemon_unavailable() {
        // Straight to the stderr handle, not eprintln!: the test harness
        // captures eprintln! of passing tests, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED (not passed): the LXD daemon part of `{what}`: {why}\n{bar}\n",
            bar = "*".repeat(72)
        );
        return None;
    }
    Some(LxdDaemon::start(run, env).unwrap_or_else(|e| panic!("starting the LXD daemon: {e:#}")))
}

/// A private LXD daemon in `env.lxd_dir`, stopped on drop: `lxd shutdown`,
/// then its process group by PID, then any mount it left under `LXD_DIR`.
pub struct LxdDaemon {
    env: ClientEnv,
    guard: Option<ProcessGuard>,
    log: PathBuf,
}

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

impl LxdDaemon {
    /// Starts `lxd`, waits until it is ready and initialises it with a `dir`
    /// pool (never `lxd init --auto`: it wants a bridge and iptables).
    pub fn start(run: &RunDir, env: &ClientEnv) -> Result<Self> {
        let log = run.path().join("lxd.log");
        let mut cmd = env.command("lxd");
        cmd.args(["--group", "root", "--logfile"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let guard = run.spawn("lxd", &mut cmd)?;
        let mut daemon = Self {
            env: env.clone(),
            guard: Some(guard),
            log,
        };

        let ready = env
            .command("lxd")
            .args(["waitready", "--timeout", "60"])
            .output()
            .context("cannot run lxd waitready")?;
        if !ready.status.success() {
            bail!(
                "lxd did not become ready: {}\n--- lxd.log ---\n{}",
                String::from_utf8_lossy(&ready.stderr).trim(),
                daemon.log_tail()
            );
        }

        let mut init = env
            .command("lxd")
            .args(["init", "--preseed"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run lxd init")?;
        {
            use std::io::Write;
            let mut stdin = init.stdin.take().context("lxd init stdin")?;
            stdin
                .write_all(PRESEED.as_bytes())
                .context("write preseed")?;
        }
        let out = init.wait_with_output().context("wait for lxd init")?;
        if !out.status.success() {
            bail!(
                "lxd init --preseed failed: {}\n--- lxd.log ---\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                daemon.log_tail()
            );
        }
        if daemon.guard.as_mut().is_some_and(ProcessGuard::has_exited) {
            bail!(
                "lxd exited after init\n--- lxd.log ---\n{}",
                daemon.log_tail()
            );
        }
        Ok(daemon)
    }

    /// The client environment talking to this daemon.
    pub fn env(&self) -> &ClientEnv {
        &self.env
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
        let dir = self.env.lxd_dir.join("images");
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
                .env
                .command("lxd")
                .args(["shutdown", "--timeout", "20"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        guard.stop(Duration::from_secs(5));
        unmount_below(&self.env.lxd_dir);
    }
}

impl Drop for LxdDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
