//! Hashes a file with `sha2` as `ssgen build` does (4 MiB reads pushed into
//! one hasher) and prints `{"mb_per_s": …, "sha256": "…"}` for the best of
//! a few runs.
//!
//! Usage: sha2-bench FILE [RUNS]

use std::fs::File;
use std::io::Read;
use std::time::Instant;

use sha2::{Digest, Sha256};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: sha2-bench FILE [RUNS]");
    let runs: u32 = args.next().map_or(3, |r| r.parse().expect("RUNS is a number"));
    let mut buf = vec![0u8; 4 << 20];
    let mut best = f64::INFINITY;
    let mut hex = String::new();
    let mut bytes = 0u64;
    for _ in 0..runs {
        let start = Instant::now();
        let mut file = File::open(&path)?;
        let mut hasher = Sha256::new();
        bytes = 0;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        hex = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{{\"mb_per_s\": {:.1}, \"bytes\": {bytes}, \"sha256\": \"{hex}\"}}",
        bytes as f64 / best / 1e6
    );
    Ok(())
}
