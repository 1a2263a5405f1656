//! Diagnostics: what the core noticed about the input, with a fix.

use std::fmt;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Blocks publishing: nothing is written.
    Error,
    /// Something is left out of the catalog (a version, a product, a file),
    /// or a client would mishandle it; the rest is published.
    Warning,
    /// For information.
    Note,
}

/// One finding about the input, naming the path and the fix.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// How serious.
    pub level: Level,
    /// The file or directory concerned, relative to the root.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Diagnostic {
    pub(crate) fn new(
        level: Level,
        path: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Self {
            level,
            path: path.into(),
            message: message.into(),
            help: help.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        };
        write!(f, "{level}: {}: {}", self.path, self.message)?;
        if !self.help.is_empty() {
            write!(f, " (fix: {})", self.help)?;
        }
        Ok(())
    }
}
