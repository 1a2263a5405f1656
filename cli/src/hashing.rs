//! Runs the core's hash plan over real files: each file read once, in large
//! sequential reads, files in parallel up to the number of cores, memory
//! bounded by one buffer per thread.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use ssgen_core::{Digests, FileHasher, FileResult, HashJob, HashPlan, Prefixes};

/// Read size: large enough that syscalls vanish next to SHA-256 work.
const CHUNK: usize = 4 << 20;

/// Hashes every job of `plan` under `root`, adding the results to
/// `digests`.
pub fn run(root: &Path, plan: &HashPlan, digests: &mut Digests, show_progress: bool) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let bar = if show_progress {
        let bar = ProgressBar::new(plan.total_bytes());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} hashing {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!("{} files", plan.jobs().count()));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut prefixes = Prefixes::default();
    for phase in [&plan.prefixes, &plan.bodies] {
        let results = parallel(root, phase, &prefixes, &bar)?;
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
                    match hash_file(root, job, prefixes, &mut buf, bar) {
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
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
        if hasher.bytes_seen() > job.size {
            break;
        }
    }
    Ok(hasher.finish()?)
}
