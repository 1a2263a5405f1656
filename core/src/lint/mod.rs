//! The client-compatibility lint: what LXD and Incus would hide, refuse or
//! mishandle in a catalog, for humans and machines.
//!
//! The lint runs any catalog (ours or a foreign one) through the emulation
//! of both clients ([`crate::remote`], [`crate::view`]) and adds the traps
//! the clients do not report at all (`docs/protocol.md#silent-drops`):
//! images hidden and why, type errors that break the whole remote,
//! duplicate fingerprints, alias clashes, requirement traps, paths, digests
//! and deltas. Every finding has a [`Code`].
//!
//! ```
//! let index = r#"{"index":{"i":{"datatype":"image-downloads",
//!   "path":"streams/v1/images.json","products":["p"]}}}"#;
//! let products = r#"{"products":{"p":{"arch":"x86-64","versions":{}}}}"#;
//! let report = ssgen_core::lint::lint(index, &|_| Some(products.to_owned()));
//! assert!(!report.is_clean());
//! assert!(report.codes().contains(&"hidden-unknown-arch"));
//! println!("{report}");
//! ```

mod code;
mod index;
mod item;
mod product;
#[cfg(test)]
mod tests;
mod views;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use code::Code;

pub use crate::diag::Diagnostic;
use crate::diag::Level;
use crate::remote::{self, Remote, quote};
use crate::view::view_lenient;
use crate::vocab::Client;

/// The lint's name for a finding.
#[doc(hidden)]
// Goes when the page (`wasm/src/page.rs`) says `Diagnostic`.
pub type Finding = Diagnostic;

/// All findings about a catalog, most serious first.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The findings, sorted by severity, then location.
    pub findings: Vec<Diagnostic>,
}

impl Report {
    /// True when nothing is hidden, broken or trapped: notes only.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.level == Level::Note)
    }

    /// How many findings have `severity`.
    #[must_use]
    pub fn count(&self, severity: Level) -> usize {
        self.findings.iter().filter(|f| f.level == severity).count()
    }

    /// `2 errors, 1 warning, 0 notes`.
    #[must_use]
    pub fn summary(&self) -> String {
        let n = |s, one: &str, many: &str| {
            let c = self.count(s);
            format!("{c} {}", if c == 1 { one } else { many })
        };
        format!(
            "{}, {}, {}",
            n(Level::Error, "error", "errors"),
            n(Level::Warning, "warning", "warnings"),
            n(Level::Note, "note", "notes")
        )
    }

    /// The codes of the findings, in order (handy in tests).
    #[must_use]
    pub fn codes(&self) -> Vec<&'static str> {
        self.findings.iter().map(Diagnostic::code_str).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        Ok(())
    }
}

/// Lints a remote given its `index.json` text; `products` returns a
/// products file's text by its path relative to the base URL (see
/// [`crate::remote::load_remote`]).
#[must_use]
pub fn lint(index_json: &str, products: &dyn Fn(&str) -> Option<String>) -> Report {
    lint_remote(&Remote::parse(index_json, products))
}

/// Lints a lone products file (e.g. `images.json` without its index), as if
/// an index listed it at `path` with all its products.
#[must_use]
pub fn lint_products(path: &str, text: &str) -> Report {
    let index = remote::index_for_products(path, text);
    let wanted = remote::clean_path(path);
    lint(&index, &|p| (p == wanted).then(|| text.to_owned()))
}

/// Lints a decoded remote.
#[must_use]
pub fn lint_remote(remote: &Remote) -> Report {
    let mut l = Linter {
        findings: Vec::new(),
        type_errors: remote
            .problems
            .iter()
            .filter(|p| p.code == Some(Code::RemoteTypeError))
            .map(|p| p.path.clone())
            .collect(),
    };
    l.problems(remote);
    l.spellings(remote);
    l.index(remote);
    // One client's view at a time: only what it hides is kept for the
    // merge. The host only decides which short aliases an image lists,
    // which no rule looks at.
    let hidden = Client::ALL.map(|c| {
        let v = view_lenient(remote, c, "x86_64");
        l.view(remote, &v);
        (c, v.hidden)
    });
    l.hidden(&hidden);
    for file in &remote.files {
        for (id, product) in &file.products {
            l.product(file, id, product);
        }
    }
    l.finish()
}

struct Linter {
    findings: Vec<Diagnostic>,
    /// Where the remote has a value of the wrong type, which the decoder
    /// left at its zero value: no other finding is made of that zero.
    type_errors: BTreeSet<String>,
}

fn who(clients: &[Client]) -> String {
    let names: Vec<&str> = clients.iter().map(|c| c.name()).collect();
    names.join(" and ")
}

/// Messages of findings found per client say `{who}` where the clients go,
/// filled in once the findings of both clients are merged; `(s)` becomes
/// the verb ending for one client.
fn fill_who(message: &str, clients: &[Client]) -> String {
    if !message.contains("{who}") {
        return message.to_owned();
    }
    let ending = if clients.len() == 1 { "s" } else { "" };
    message
        .replace("{who}", &who(clients))
        .replace("(s)", ending)
}

const BOTH: &[Client] = &Client::ALL;

impl Linter {
    /// A finding of `code` at its usual level.
    fn push(
        &mut self,
        code: Code,
        clients: &[Client],
        location: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.findings
            .push(Diagnostic::coded(code, clients, location, message).with_help(help));
    }

    /// A finding of `code` at its usual level, with its usual fix.
    fn report(
        &mut self,
        code: Code,
        clients: &[Client],
        location: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.findings
            .push(Diagnostic::coded(code, clients, location, message));
    }

    /// A finding graver or milder than its code usually is.
    fn push_at(
        &mut self,
        level: Level,
        code: Code,
        clients: &[Client],
        location: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.findings.push(
            Diagnostic::coded(code, clients, location, message)
                .with_help(help)
                .at(level),
        );
    }

    /// Sorts (by level, location, code, message), and merges findings that
    /// differ only in their clients.
    fn finish(self) -> Report {
        type Key = (Level, String, &'static str, String, String);
        let mut merged: BTreeMap<Key, (Code, BTreeSet<Client>)> = BTreeMap::new();
        for f in self.findings {
            let Some(code) = f.code else { continue };
            merged
                .entry((f.level, f.path, code.as_str(), f.message, f.help))
                .or_insert_with(|| (code, BTreeSet::new()))
                .1
                .extend(f.clients);
        }
        let findings = merged
            .into_iter()
            .map(|((level, path, _, message, help), (code, clients))| {
                let clients: Vec<Client> = clients.into_iter().collect();
                Diagnostic {
                    level,
                    code: Some(code),
                    message: fill_who(&message, &clients),
                    clients,
                    path,
                    help,
                }
            })
            .collect();
        Report { findings }
    }

    fn problems(&mut self, remote: &Remote) {
        for p in &remote.problems {
            let verb = if p.clients.len() == 1 {
                "refuses"
            } else {
                "refuse"
            };
            let mut finding = p.clone();
            finding.message = format!(
                "{}; {} {verb} the whole remote (\"Failed parsing products\")",
                p.message,
                who(&p.clients)
            );
            self.findings.push(finding);
        }
    }

    fn spellings(&mut self, remote: &Remote) {
        for s in &remote.spellings {
            let location = if s.location.is_empty() {
                s.file.clone()
            } else {
                format!("{}#{}", s.file, s.location)
            };
            if s.spellings.len() > 1 {
                let list: Vec<String> = s.spellings.iter().map(|k| quote(k)).collect();
                self.push(
                    Code::DuplicateKey,
                    BOTH,
                    location,
                    format!(
                            "key {} is given {} times ({}); Go's decoder matches keys case-insensitively and keeps the last one, other tools may keep another",
                            quote(&s.field),
                            s.spellings.len(),
                            list.join(", ")
                    ),
                    format!("keep exactly one key, spelt {}", quote(&s.field)),
                );
            } else {
                let spelt = s.spellings.first().map_or("", String::as_str);
                self.push(
                    Code::KeyCase,
                    BOTH,
                    location,
                    format!(
                            "key {} is read as {} by LXD and Incus (Go matches keys case-insensitively), but not by other tools",
                            quote(spelt),
                            quote(&s.field)
                    ),
                    format!("spell it {}", quote(&s.field)),
                );
            }
        }
    }
}
