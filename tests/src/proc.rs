//! Scratch directories and child processes that clean up after themselves,
//! including after a previous run that was killed halfway.
//!
//! Every run gets its own directory `$TMPDIR/ssgen-real-clients-XXXXXX`
//! holding an `owner` file (the test process's PID) and a `pids` file (one
//! line per process started: `pid name`). A [`ProcessGuard`] stops its
//! process group by PID when dropped, and [`RunDir`]'s drop unmounts whatever
//! is mounted under the directory and removes it. When a run is killed with
//! SIGKILL no destructor runs, so [`RunDir::new`] first reaps the leftovers
//! of dead runs: it kills their recorded processes (only after checking that
//! the PID still belongs to that run), lazily unmounts their mounts and
//! deletes their directories. Nothing uses a fixed port or a fixed path, so a
//! leftover can never make a later run fail, only waste memory until reaped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Prefix of every run directory under the system temp dir.
pub const RUN_PREFIX: &str = "ssgen-real-clients-";

/// A unique scratch directory for one test, removed (mounts included) on drop.
pub struct RunDir {
    dir: Option<tempfile::TempDir>,
}

impl RunDir {
    /// Reaps dead runs' leftovers, then creates a fresh run directory.
    pub fn new() -> Result<Self> {
        reap_stale_runs();
        let dir = tempfile::Builder::new()
            .prefix(RUN_PREFIX)
            .tempdir()
            .context("create run directory")?;
        std::fs::write(dir.path().join("owner"), std::process::id().to_string())
            .context("write owner file")?;
        Ok(Self { dir: Some(dir) })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the TempDir is only taken in drop, so it is present here")
            .path()
    }

    /// Spawns `cmd` in a process group of its own, records its PID in this
    /// run's `pids` file (for the reaper) and returns a guard that stops the
    /// whole group on drop.
    pub fn spawn(&self, name: &str, cmd: &mut Command) -> Result<ProcessGuard> {
        ProcessGuard::spawn(name, cmd, Some(&self.path().join("pids")))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // Anything still mounted below would make the removal fail (and
            // leave a mount behind): detach it first.
            unmount_below(dir.path());
            if let Err(e) = dir.close() {
                eprintln!("warning: could not remove run directory: {e}");
            }
        }
    }
}

/// A child process (and its process group) that is stopped when dropped.
pub struct ProcessGuard {
    name: String,
    child: Option<Child>,
}

impl ProcessGuard {
    /// Spawns `cmd` as the leader of a new process group. When `pid_file` is
    /// given, appends `pid name` to it so that a later run can reap the
    /// process if this one dies without running destructors.
    pub fn spawn(name: &str, cmd: &mut Command, pid_file: Option<&Path>) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        // A group of its own: a signal to -PID reaches the process and every
        // helper it forks (lxd forks several), and a Ctrl-C on the test does
        // not hit it before our cleanup runs.
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        if let Some(pid_file) = pid_file {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(pid_file)
                .with_context(|| format!("open {}", pid_file.display()))?;
            writeln!(f, "{} {name}", child.id()).context("record pid")?;
        }
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
        })
    }

    /// The PID of the process (also its process group ID).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Mutable access to the child (e.g. to take its stdout).
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Whether the process has exited (and is reaped).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Stops the process group: SIGTERM, up to `grace` to exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        signal_group(pid, "TERM");
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("{} (pid {pid}) ignored SIGTERM; sending SIGKILL", self.name);
                    signal_group(pid, "KILL");
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // The leader is gone; helpers it forked may still be in the group.
        signal_group(pid, "KILL");
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Sends a signal to process group `pgid` (no error if it is already gone).
fn signal_group(pgid: u32, signal: &str) {
    if pgid == 0 {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

/// Sends a signal to one process.
fn signal_pid(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = table
        .lines()
        // Field 5 is the mount point, with spaces etc. octal-escaped.
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount)
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    found
}

fn unescape_mount(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(char::from(b)),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Lazily unmounts everything mounted at or below `dir` (LXD leaves
/// `shmounts` and `devlxd` tmpfs mounts in its `LXD_DIR` if it dies).
pub fn unmount_below(dir: &Path) {
    for m in mounts_below(dir) {
        let ok = Command::new("umount")
            .arg("-l")
            .arg(&m)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("warning: could not unmount {}", m.display());
        }
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` belongs to the run in `dir`: its command line or
/// environment mentions the directory (every process we start gets a path
/// inside it, e.g. `LXD_DIR` or the served tree). This keeps the reaper from
/// killing an unrelated process that reused a dead run's PID.
fn belongs_to(pid: u32, dir: &Path) -> bool {
    let needle = dir.as_os_str().as_encoded_bytes();
    ["cmdline", "environ"].iter().any(|f| {
        std::fs::read(format!("/proc/{pid}/{f}"))
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

/// Cleans up the run directories of test processes that no longer exist.
pub fn reap_stale_runs() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(RUN_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let owner = std::fs::read_to_string(dir.join("owner"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        match owner {
            // A live owner: another test of this or a concurrent run.
            Some(pid) if process_alive(pid) => continue,
            // No owner file yet: maybe a run that is being created right now;
            // leave it unless it is clearly old.
            None if !older_than(&dir, Duration::from_secs(600)) => continue,
            _ => {}
        }
        eprintln!("reaping leftovers of a killed run in {}", dir.display());
        let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
        for line in pids.lines() {
            let Some(pid) = line
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if process_alive(pid) && belongs_to(pid, &dir) {
                eprintln!("  stopping leftover {line}");
                signal_group(pid, "TERM");
                signal_pid(pid, "TERM");
                let deadline = Instant::now() + Duration::from_secs(5);
                while process_alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                signal_group(pid, "KILL");
                signal_pid(pid, "KILL");
            }
        }
        unmount_below(&dir);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("  warning: could not remove {}: {e}", dir.display());
        }
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|e| e > age)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount(r"/tmp/a\040b/c"), "/tmp/a b/c");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }

    #[test]
    fn guard_stops_its_process_group() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 60 & sleep 60"]);
        let mut guard = ProcessGuard::spawn("sleepers", &mut cmd, None).expect("spawn sh");
        let pgid = guard.pid();
        guard.stop(Duration::from_secs(2));
        // Give the kernel a moment to reap the orphaned background sleep.
        let deadline = Instant::now() + Duration::from_secs(2);
        let alive = || {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    std::fs::read_to_string(e.path().join("stat"))
                        .ok()
                        .and_then(|s| s.rsplit(')').next().map(str::to_owned))
                        .and_then(|rest| rest.split_whitespace().nth(2).map(str::to_owned))
                        .is_some_and(|g| g == pgid.to_string())
                })
        };
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "a process of group {pgid} survived the guard");
    }
}
