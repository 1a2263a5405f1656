//! The root lock, `ROOT/.ssgen/lock`: one writer of a root at a time.
//!
//! Every command that changes what a root publishes (build, watch, serve's
//! rebuilds and upload API, import, mirror, prune, remove) holds it while
//! it reads the tree and writes the result, so that a build that scanned
//! before a version was withdrawn cannot finish last and publish it again.
//! It is an advisory `flock`: the kernel releases it when its holder exits,
//! however it exits, so a killed writer never leaves a root locked. The
//! file is never deleted (a deleted lock file would let two writers lock
//! two different files).

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rustix::fs::{FlockOperation, flock};

use crate::confine::Root;

/// The lock file's path under a root.
pub fn path_for(root: &Path) -> PathBuf {
    root.join(".ssgen").join("lock")
}

/// The root lock stayed held by another writer for the whole wait.
#[derive(Debug)]
pub struct Busy(String);

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Busy {}

/// A held root lock; released when dropped.
#[derive(Debug)]
pub struct RootLock {
    file: File,
}

impl RootLock {
    /// Takes the lock of `root`, waiting up to `wait` for another writer to
    /// finish. A writer that waits says so on stderr, once, naming the
    /// holder (its pid and command line, which it wrote into the file).
    pub fn acquire(root: &Path, wait: Duration) -> Result<Self> {
        let path = path_for(root);
        let mut file = Root::open(root)
            .and_then(|r| r.place(".ssgen/lock", true))
            .and_then(|p| p.open_or_create())
            .with_context(|| {
                format!(
                    "cannot open the root lock {}; a writer of the root needs it: check the permissions of {}",
                    path.display(),
                    root.display()
                )
            })?;
        let started = Instant::now();
        let mut said = false;
        let mut pause = Duration::from_millis(20);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(anyhow!(e))
                        .with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(anyhow!(Busy(format!(
                    "{}: another writer ({}) has held the root lock for more than {} s; wait for it to finish and run this again, or give --lock-timeout SECONDS to wait longer",
                    path.display(),
                    holder(&mut file),
                    wait.as_secs()
                ))));
            }
            if !said {
                eprintln!(
                    "waiting for the root lock {}: another writer ({}) holds it; waiting up to {} s (--lock-timeout)",
                    path.display(),
                    holder(&mut file),
                    wait.as_secs()
                );
                said = true;
            }
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        // Who holds it, for the message of the next writer that waits.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let command: Vec<String> = std::env::args().collect();
        let command: String = command.join(" ").chars().take(200).collect();
        let note = format!(
            "pid {}, `{command}`, since {}\n",
            std::process::id(),
            ssgen_core::time::rfc2822(since)
        );
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(note.as_bytes()));
        Ok(Self { file })
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        // An empty lock file: nobody holds it (and a root's files are the
        // same bytes after every writer). Closing the file releases the
        // lock too; unlocking first makes the release independent of other
        // descriptors of the same file.
        let _ = self.file.set_len(0);
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

/// What the lock file says about its holder.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| {
        std::io::Read::by_ref(file)
            .take(512)
            .read_to_string(&mut text)
    });
    let text = text.trim();
    if text.is_empty() {
        "unknown".into()
    } else {
        text.to_owned()
    }
}
