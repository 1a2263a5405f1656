//! Runs the core's hash plan over real files: each file read once, in large
//! sequential reads, files in parallel up to the number of cores, memory
//! bounded by one buffer per thread. On the same read, files about to be
//! published are checked to be whole: no file cut short by a stopped
//! upload, and metadata tarballs whose `metadata.yaml` the clients can read.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use indicatif::ProgressBar;
use ssgen_core::check::Checked;
use ssgen_core::{Digests, FileHasher, FileResult, HashJob, HashPlan, Prefixes};

use crate::exit::Invalid;

/// Read size: large enough that syscalls vanish next to SHA-256 work.
const CHUNK: usize = 4 << 20;

/// Whether files are checked while they are hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Refuse a file cut short or a metadata tarball the clients cannot
    /// read (for what is about to be published).
    Whole,
    /// Only hash (`verify` reports a damaged file as a digest mismatch).
    None,
}

/// Hashes every job of `plan` under `root`, adding the results to
/// `digests`.
pub fn run(root: &Path, plan: &HashPlan, digests: &mut Digests, check: Check) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let bar = crate::progress::bytes(plan.total_bytes(), "hashing");
    bar.set_message(format!("{} files", plan.jobs().count()));
    let mut prefixes = Prefixes::default();
    for phase in [&plan.prefixes, &plan.bodies] {
        let results = parallel(root, phase, &prefixes, &bar, check)?;
        for r in &results {
            prefixes.insert(r);
            digests.record(r);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn parallel(
    root: &Path,
    jobs: &[HashJob],
    prefixes: &Prefixes,
    bar: &ProgressBar,
    check: Check,
) -> Result<Vec<FileResult>> {
    // Largest first, so that one big file does not start last.
    let mut order: Vec<&HashJob> = jobs.iter().collect();
    order.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(order.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(order.len()));
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = order.get(i) else { break };
                    if lock(&first_error).is_some() {
                        break;
                    }
                    match hash_file(root, job, prefixes, &mut buf, bar, check) {
                        Ok(r) => lock(&results).push(r),
                        Err(e) => {
                            lock(&first_error).get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = lock(&first_error).take() {
        return Err(err);
    }
    let mut results = std::mem::take(&mut *lock(&results));
    results.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(results)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked has already failed the build; its data is
    // still consistent (results are pushed whole).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hash_file(
    root: &Path,
    job: &HashJob,
    prefixes: &Prefixes,
    buf: &mut [u8],
    bar: &ProgressBar,
    check: Check,
) -> Result<FileResult> {
    let path = root.join(&job.path);
    let mut file = File::open(&path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            anyhow!(
                "{}: disappeared while the tree was being built; run the build again",
                path.display()
            )
        } else {
            anyhow!(e).context(format!("cannot open {}", path.display()))
        }
    })?;
    let mut hasher = FileHasher::new(job, prefixes)?;
    let mut whole = (check == Check::Whole).then(|| Checked::new(job.is_prefix));
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        hasher.update(&buf[..n]);
        if let Some(w) = &mut whole {
            w.update(&buf[..n]);
        }
        bar.inc(n as u64);
        if hasher.bytes_seen() > job.size {
            break;
        }
    }
    if let Some(w) = whole {
        w.finish(hasher.bytes_seen())
            .map_err(|why| anyhow!(Invalid(format!("{}: {why}", path.display()))))?;
    }
    Ok(hasher.finish()?)
}
