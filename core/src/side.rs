//! A product's `metadata.json`: the fields a build takes from it (`os`,
//! `release_title`, `aliases`), read here and written by the inverse of the
//! reader, so what `ssgen import`, `ssgen mirror` or the page write is what
//! a build reads back. (`.requirements` files are read and written by
//! [`crate::requirements`].)

use std::collections::BTreeMap;

use serde_json::Value;

use crate::diag::{Diagnostic, Level};

/// The file name, in a variant directory.
pub const METADATA_JSON: &str = "metadata.json";

const HELP: &str = r#"write e.g. {"os": "Debian", "release_title": "12 (bookworm)", "aliases": ["debian/stable"]}"#;

/// What a `metadata.json` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductFields {
    /// `os`: the name shown to users.
    pub os: Option<String>,
    /// `release_title`.
    pub release_title: Option<String>,
    /// `aliases`, in order (a list, or one comma-separated string).
    pub aliases: Vec<String>,
    /// Keys a build does not read, kept as they are when the file is
    /// written again.
    pub other: BTreeMap<String, Value>,
}

impl ProductFields {
    /// Reads `metadata.json` at `path` (for messages). Keys a build does
    /// not read are kept in [`ProductFields::other`] and noted.
    ///
    /// # Errors
    /// Every error found (an [`Level::Error`] each, naming `path`): the
    /// file is not a JSON object, or a known key has the wrong type.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        let error = |message: String| Diagnostic::new(Level::Error, path, message, HELP);
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
            return Err(vec![error("is not a JSON object".to_owned())]);
        };
        let mut out = ProductFields::default();
        let mut errors = Vec::new();
        let mut notes = Vec::new();
        for (key, value) in map {
            match (key.as_str(), value) {
                ("os", Value::String(s)) => out.os = Some(s),
                ("release_title", Value::String(s)) => out.release_title = Some(s),
                ("aliases", Value::String(s)) => {
                    out.aliases
                        .extend(s.split(',').map(|a| a.trim().to_owned()));
                }
                ("aliases", Value::Array(items)) => {
                    for item in items {
                        if let Value::String(s) = item {
                            out.aliases.push(s);
                        } else {
                            errors.push(error(format!("alias {item} is not a string")));
                        }
                    }
                }
                (key @ ("os" | "release_title" | "aliases"), value) => {
                    errors.push(error(format!("{key:?} is {value}, not a string")));
                }
                (_, value) => {
                    notes.push(Diagnostic::new(
                        Level::Warning,
                        path,
                        format!("key {key:?} is not understood; ignored"),
                        "known keys: os, release_title, aliases",
                    ));
                    out.other.insert(key, value);
                }
            }
        }
        if errors.is_empty() {
            Ok((out, notes))
        } else {
            Err(errors)
        }
    }

    /// The file's text, which [`ProductFields::parse`] reads back as it
    /// is: sorted keys, aliases as a list, a final newline.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut map: BTreeMap<String, Value> = self.other.clone();
        if let Some(os) = &self.os {
            map.insert("os".into(), os.clone().into());
        }
        if let Some(title) = &self.release_title {
            map.insert("release_title".into(), title.clone().into());
        }
        if !self.aliases.is_empty() {
            map.insert("aliases".into(), self.aliases.clone().into());
        }
        let mut text = serde_json::to_string_pretty(&map).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Adds `aliases` not yet listed; whether any was new.
    pub fn add_aliases<'a>(&mut self, aliases: impl IntoIterator<Item = &'a str>) -> bool {
        let before = self.aliases.len();
        for alias in aliases {
            if !self.aliases.iter().any(|a| a == alias) {
                self.aliases.push(alias.to_owned());
            }
        }
        self.aliases.len() > before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let fields = ProductFields {
            os: Some("IATS".into()),
            release_title: Some("Xenial \"build\"".into()),
            aliases: vec!["iats".into(), "iats/xenial".into()],
            other: [("colour".to_owned(), Value::from("blue"))].into(),
        };
        let text = fields.to_text();
        let (back, notes) = ProductFields::parse("m", text.as_bytes()).expect("valid");
        assert_eq!(back, fields);
        assert_eq!(notes.len(), 1, "the unknown key is noted");
        assert_eq!(ProductFields::default().to_text(), "{}\n");
    }

    #[test]
    fn every_bad_key_is_named() {
        let errors =
            ProductFields::parse("images/a/metadata.json", br#"{"os": 1, "aliases": [2]}"#)
                .expect_err("two errors");
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.path == "images/a/metadata.json"));
        assert!(ProductFields::parse("m", b"[]").is_err());
        let (f, _) = ProductFields::parse("m", br#"{"aliases": "a, b"}"#).expect("valid");
        assert_eq!(f.aliases, ["a", "b"]);
    }
}
