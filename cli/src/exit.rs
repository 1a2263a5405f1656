//! Exit codes: 0 success, 1 invalid input or findings, 2 IO or internal
//! failure.

use std::fmt;
use std::process::ExitCode;

/// The input is invalid, or a check found problems.
pub const INVALID: u8 = 1;
/// Reading, writing or the network failed, or a bug.
pub const FAILURE: u8 = 2;

/// An error caused by the user's input rather than by IO: exits with 1.
#[derive(Debug)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The exit code for an error that reached `main`.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.is::<Invalid>()) {
        ExitCode::from(INVALID)
    } else {
        ExitCode::from(FAILURE)
    }
}
