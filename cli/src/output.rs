//! Data on stdout.

use std::io::Write as _;

use anyhow::Context as _;

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
