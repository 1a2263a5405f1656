//! `.requirements` and `.lxd_requirements` side files (`docs/protocol.md#requirements`,
//! `docs/protocol.md#decoding`).
//!
//! Each is a JSON object of strings. Files are inherited from `images/`
//! down to the variant directory, the nearer file winning key by key; a
//! key set to `null` removes what a farther file (or, in a
//! `.lxd_requirements`, the `.requirements` beside and above it) set, so a
//! product can say that a client applies fewer requirements, or none.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Level};

/// The side file whose requirements both clients read, in `images/` or
/// any directory below it down to a variant's.
pub const FILE_NAME: &str = ".requirements";

/// The side file whose requirements only LXD reads, layered on
/// [`FILE_NAME`]'s.
pub const LXD_FILE_NAME: &str = ".lxd_requirements";

/// Requirement keys the clients act on (`docs/protocol.md#requirements`); others are published but a
/// note says no client reads them.
pub const KNOWN_KEYS: &[&str] = &[
    "secureboot",
    "cgroup",
    "nesting",
    "privileged",
    "cdrom_agent",
    "cdrom_cloud_init",
];

/// A requirements map, ordered for output.
pub type Requirements = BTreeMap<String, String>;

/// What one side file says: the keys it sets, and the inherited keys it
/// removes (written as `null`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// The keys set, with their values.
    pub set: Requirements,
    /// The keys removed from what farther files set.
    pub removed: BTreeSet<String>,
}

impl Layer {
    /// Lays this file over `below`: its removals, then its keys.
    pub fn apply(&self, below: &mut Requirements) {
        below.retain(|k, _| !self.removed.contains(k));
        below.extend(self.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Parses one side file. A value that is neither a string nor `null`
/// would break the whole remote for both clients if published
/// (`docs/protocol.md#decoding`), so it is an error naming the file.
///
/// # Errors
/// A [`Level::Error`] diagnostic when the file is not a JSON object of
/// strings and `null`s.
pub fn parse(path: &str, bytes: &[u8]) -> Result<(Layer, Vec<Diagnostic>), Diagnostic> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Diagnostic::new(
            Level::Error,
            path,
            format!("is not valid JSON ({e})"),
            r#"write a JSON object of strings, e.g. {"secureboot": "false"}"#,
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(Diagnostic::new(
            Level::Error,
            path,
            "is not a JSON object",
            r#"write a JSON object of strings, e.g. {"secureboot": "false"}"#,
        ));
    };
    let mut out = Layer::default();
    let mut notes = Vec::new();
    for (key, value) in map {
        if value.is_null() {
            out.removed.insert(key);
            continue;
        }
        let serde_json::Value::String(text) = value else {
            return Err(Diagnostic::new(
                Level::Error,
                path,
                format!(
                    "value of {key:?} is {value}, not a string; LXD and Incus would reject the whole catalog"
                ),
                format!(
                    "quote it: \"{key}\": \"{}\"",
                    value.to_string().trim_matches('"')
                ),
            ));
        };
        if key == "secure_boot" {
            notes.push(Diagnostic::new(
                Level::Warning,
                path,
                "key \"secure_boot\" is read by no client",
                "the clients read \"secureboot\"",
            ));
        } else if !KNOWN_KEYS.contains(&key.as_str()) {
            notes.push(Diagnostic::new(
                Level::Note,
                path,
                format!("key {key:?} is not one the clients act on"),
                format!("known keys: {}", KNOWN_KEYS.join(", ")),
            ));
        }
        out.set.insert(key, text);
    }
    Ok((out, notes))
}

/// The text of a `.requirements` (or `.lxd_requirements`) file holding
/// `requirements`, which [`parse`] reads back as it is.
#[must_use]
pub fn to_text(requirements: &Requirements) -> String {
    layer_text(&Layer {
        set: requirements.clone(),
        removed: BTreeSet::new(),
    })
}

/// The text of a side file saying `layer` (its removals as `null`), which
/// [`parse`] reads back as it is.
#[must_use]
pub fn layer_text(layer: &Layer) -> String {
    let map: BTreeMap<&str, Option<&str>> = layer
        .removed
        .iter()
        .map(|k| (k.as_str(), None))
        .chain(
            layer
                .set
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str()))),
        )
        .collect();
    // A map of strings and nulls always serialises.
    let mut text = serde_json::to_string_pretty(&map).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_only() {
        let (r, notes) = parse(".requirements", br#"{"secureboot":"false"}"#).expect("valid");
        assert_eq!(r.set.get("secureboot").map(String::as_str), Some("false"));
        assert!(notes.is_empty());
        let err = parse("images/.requirements", br#"{"secureboot": false}"#).unwrap_err();
        assert_eq!(err.level, Level::Error);
        assert_eq!(err.path, "images/.requirements");
        assert!(err.message.contains("not a string"), "{}", err.message);
        assert!(
            err.help.contains(r#""secureboot": "false""#),
            "{}",
            err.help
        );
        assert!(parse("x", b"[1]").is_err());
        assert!(parse("x", b"{").is_err());
    }

    #[test]
    fn reads_back_what_it_writes() {
        let r: Requirements = [("secureboot", "false"), ("odd \"key\"", "a\nb")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (back, _) = parse("x", to_text(&r).as_bytes()).expect("valid");
        assert_eq!(back.set, r);
        assert!(back.removed.is_empty());
        let layer = Layer {
            set: [("nesting".to_owned(), "true".to_owned())].into(),
            removed: ["secureboot".to_owned()].into(),
        };
        let text = layer_text(&layer);
        assert_eq!(
            text,
            "{\n  \"nesting\": \"true\",\n  \"secureboot\": null\n}\n"
        );
        assert_eq!(parse("x", text.as_bytes()).expect("valid").0, layer);
    }

    #[test]
    fn null_removes_an_inherited_key() {
        let mut below: Requirements = [("secureboot", "false"), ("nesting", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (layer, notes) =
            parse("x", br#"{"secureboot": null, "privileged": "true"}"#).expect("valid");
        assert!(notes.is_empty());
        layer.apply(&mut below);
        assert_eq!(
            below.into_iter().collect::<Vec<_>>(),
            [
                ("nesting".to_owned(), "true".to_owned()),
                ("privileged".to_owned(), "true".to_owned())
            ]
        );
    }

    #[test]
    fn unknown_keys_are_noted() {
        let (_, notes) = parse("x", br#"{"secure_boot":"false","foo":"1"}"#).expect("valid");
        assert_eq!(notes.len(), 2);
    }
}
