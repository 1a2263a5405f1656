//! Diagnostics: what the core noticed, where, and the fix. One shape for
//! everything: the build's notes about a tree, what a client hides or
//! refuses in a catalog, the lint's findings and what `verify` compares.

use std::fmt;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::lint::Code;
use crate::rules::escape_controls;
use crate::vocab::Client;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Blocks publishing, or a client refuses the remote or cannot
    /// download an image.
    Error,
    /// Something is left out (a version, a product, a file) or hidden from
    /// a client, or a trap; the rest is published.
    Warning,
    /// For information (older client releases, other tools).
    Note,
}

impl Level {
    /// `error`, `warning` or `note`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding, naming the place and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious.
    pub level: Level,
    /// The kind, for findings about a catalog (`None` for the build's notes
    /// about a tree, whose messages are their own).
    pub code: Option<Code>,
    /// The clients affected; empty when it is not about one client.
    pub clients: Vec<Client>,
    /// Where: a path relative to the root, or in a catalog
    /// `file#products["p"].versions["v"].items["i"]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Diagnostic {
    /// A diagnostic of the build about a path of the tree (adapters use it
    /// for what they find themselves, so every message has one shape).
    #[must_use]
    pub fn new(
        level: Level,
        path: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Self {
            level,
            code: None,
            clients: Vec::new(),
            path: path.into(),
            message: message.into(),
            help: help.into(),
        }
    }

    /// A finding of `code` at its usual level and with its usual fix.
    #[must_use]
    pub fn coded(
        code: Code,
        clients: &[Client],
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            level: code.level(),
            code: Some(code),
            clients: clients.to_vec(),
            path: path.into(),
            message: message.into(),
            help: code.help().to_owned(),
        }
    }

    /// The same finding with another fix.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// The same finding at another level.
    #[must_use]
    pub fn at(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// `path: message`, with a catalog location as `file: location`.
    #[must_use]
    pub fn short(&self) -> String {
        match self.path.split_once('#') {
            Some((file, location)) => format!("{file}: {location}: {}", self.message),
            None => format!("{}: {}", self.path, self.message),
        }
    }

    /// The stable id of the code, if any.
    #[must_use]
    pub fn code_str(&self) -> &'static str {
        self.code.map_or("", Code::as_str)
    }
}

/// One line per finding (a coded one with its help on a second): a path,
/// a message or a help that carries a remote's or a file name's control
/// characters has them written visibly, so that it cannot fake a line or
/// drive the terminal.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, message, help) = (
            escape_controls(&self.path),
            escape_controls(&self.message),
            escape_controls(&self.help),
        );
        match self.code {
            Some(code) => {
                write!(f, "{}[{code}] {path}: {message}", self.level)?;
                if !help.is_empty() {
                    write!(f, "\n  help: {help}")?;
                }
            }
            None => {
                write!(f, "{}: {path}: {message}", self.level)?;
                if !help.is_empty() {
                    write!(f, " (fix: {help})")?;
                }
            }
        }
        Ok(())
    }
}

/// A finding with a code is written with the lint's field names
/// (`severity`, `code`, `clients`, `location`), a build diagnostic with the
/// build's (`level`, `path`): the page, the edge and `--json` read both.
impl Serialize for Diagnostic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.code {
            Some(code) => {
                let mut out = s.serialize_struct("Finding", 6)?;
                out.serialize_field("severity", &self.level)?;
                out.serialize_field("code", &code)?;
                out.serialize_field("clients", &self.clients)?;
                out.serialize_field("location", &self.path)?;
                out.serialize_field("message", &self.message)?;
                out.serialize_field("help", &self.help)?;
                out.end()
            }
            None => {
                let mut out = s.serialize_struct("Diagnostic", 4)?;
                out.serialize_field("level", &self.level)?;
                out.serialize_field("path", &self.path)?;
                out.serialize_field("message", &self.message)?;
                out.serialize_field("help", &self.help)?;
                out.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file name with a newline cannot fake a second finding.
    #[test]
    fn control_characters_are_shown_inert() {
        let d = Diagnostic::new(
            Level::Warning,
            "images/a\nerror: fake/\u{1b}[2J",
            "is odd\r",
            "rename it",
        );
        let text = d.to_string();
        assert_eq!(
            text,
            "warning: images/a\\nerror: fake/\\u{1b}[2J: is odd\\r (fix: rename it)"
        );
    }
}
