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

/// The build's refusal of a tree for the errors it found (and printed):
/// an [`Invalid`] that carries them, so that a server can answer them.
#[derive(Debug)]
pub struct Refused {
    /// What the refusal says.
    pub invalid: Invalid,
    /// The errors, each naming its file and the fix.
    pub errors: Vec<ssgen_core::Diagnostic>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.invalid.fmt(f)
    }
}

impl std::error::Error for Refused {}

/// Whether `err` is the input's fault rather than IO's.
pub fn is_invalid(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<Invalid>() || e.is::<Refused>())
}

/// The exit code for an error that reached `main`.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    if is_invalid(err) {
        ExitCode::from(INVALID)
    } else {
        ExitCode::from(FAILURE)
    }
}
