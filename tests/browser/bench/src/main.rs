//! Hashes a file with `sha2` as `ssgen build` does (4 MiB reads pushed into
//! one hasher) and prints `{"mb_per_s": …, "mb_per_cpu_s": …, "sha256": "…"}`
//! for the best of a few runs: per second of wall time, and per second this
//! thread was on a CPU (from /proc/thread-self/schedstat), which other load
//! on the machine disturbs less.
//!
//! With DIGESTS = 2 (the default) each chunk also feeds a second hasher
//! forked from a metadata prefix, as `FileHasher` does for a root file
//! paired with one metadata file (its own digest and the combined one).
//!
//! Usage: sha2-bench FILE [RUNS] [DIGESTS]

use std::fs::File;
use std::io::Read;
use std::time::Instant;

use sha2::{Digest, Sha256};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: sha2-bench FILE [RUNS]");
    let runs: u32 = args
        .next()
        .map_or(3, |r| r.parse().expect("RUNS is a number"));
    let digests: usize = args
        .next()
        .map_or(2, |r| r.parse().expect("DIGESTS is a number"));
    let mut prefix = Sha256::new();
    prefix.update([0x5a_u8; 4096]);
    let mut buf = vec![0u8; 4 << 20];
    let mut best = f64::INFINITY;
    let mut best_cpu = f64::INFINITY;
    let mut hex = String::new();
    let mut bytes = 0u64;
    for _ in 0..runs {
        let start = Instant::now();
        let cpu_start = cpu_seconds()?;
        let mut file = File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut forks: Vec<Sha256> = (1..digests).map(|_| prefix.clone()).collect();
        bytes = 0;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            for fork in &mut forks {
                fork.update(&buf[..n]);
            }
            bytes += n as u64;
        }
        for fork in forks {
            std::hint::black_box(fork.finalize());
        }
        hex = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds()? - cpu_start);
    }
    println!(
        "{{\"mb_per_s\": {:.1}, \"mb_per_cpu_s\": {:.1}, \"bytes\": {bytes}, \"sha256\": \"{hex}\"}}",
        bytes as f64 / best / 1e6,
        bytes as f64 / best_cpu / 1e6
    );
    Ok(())
}

/// Time this thread has spent on a CPU.
fn cpu_seconds() -> std::io::Result<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: f64 = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with nanoseconds on CPU");
    Ok(ns / 1e9)
}
