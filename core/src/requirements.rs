//! `.requirements` and `.lxd_requirements` side files (`docs/protocol.md#requirements`,
//! `docs/protocol.md#decoding`).
//!
//! Each is a JSON object of strings. Files are inherited from `images/`
//! down to the variant directory, the nearer file winning key by key.

use std::collections::BTreeMap;

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

/// Parses one side file. A value that is not a string would break the
/// whole remote for both clients (`docs/protocol.md#decoding`), so it is an error naming the file.
///
/// # Errors
/// A [`Level::Error`] diagnostic when the file is not a JSON object of
/// strings.
pub fn parse(path: &str, bytes: &[u8]) -> Result<(Requirements, Vec<Diagnostic>), Diagnostic> {
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
    let mut out = Requirements::new();
    let mut notes = Vec::new();
    for (key, value) in map {
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
        out.insert(key, text);
    }
    Ok((out, notes))
}

/// The text of a `.requirements` (or `.lxd_requirements`) file holding
/// `requirements`, which [`parse`] reads back as it is.
#[must_use]
pub fn to_text(requirements: &Requirements) -> String {
    // A map of strings always serialises.
    let mut text = serde_json::to_string_pretty(requirements).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_only() {
        let (r, notes) = parse(".requirements", br#"{"secureboot":"false"}"#).expect("valid");
        assert_eq!(r.get("secureboot").map(String::as_str), Some("false"));
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
        assert_eq!(back, r);
    }

    #[test]
    fn unknown_keys_are_noted() {
        let (_, notes) = parse("x", br#"{"secure_boot":"false","foo":"1"}"#).expect("valid");
        assert_eq!(notes.len(), 2);
    }
}
