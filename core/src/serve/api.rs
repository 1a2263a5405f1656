//! The JSON documents of the upload API, as both servers write them and
//! `ssgen push` reads them:
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/files[?cursor=C]` | [`ListPage`] |
//! | `PUT /images/…` (and a completed multipart upload) | [`Stored`] |
//! | `POST /images/<root>?combined` | [`Stored`] without `stored` |
//! | `DELETE /images/…` | [`Removed`] |
//! | `POST /publish[?timestamp=T]` with [`PublishRequest`] | [`Published`] |
//!
//! An error is `{"error": "<why>"}` with a 4xx or 5xx status.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{Digests, Scan, Sha256};

/// One page of what a server holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// Files under `images/`.
    pub files: Vec<ListedFile>,
    /// Files removed (withdrawn), waiting for their grace period.
    #[serde(default)]
    pub removed: Vec<ListedRemoval>,
    /// Combined fingerprints the server computed from the bytes it holds.
    #[serde(default)]
    pub combined: Vec<ListedCombined>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// Whether the server takes a file of any size in one `PUT` (it has
    /// no cap on a request body): a publisher then never sends parts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub whole_files: bool,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde passes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// A file a server holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFile {
    /// Its path, `images/…`.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, when known.
    pub sha256: Option<String>,
    /// Removed and deleted: the path holds nothing, and remembers the
    /// sha256 it held.
    #[serde(default)]
    pub purged: bool,
}

/// A file removed from the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedRemoval {
    /// Its path.
    pub path: String,
    /// The sha256 it held when it was removed.
    #[serde(default)]
    pub sha256: Option<String>,
    /// When it was removed (Unix seconds).
    #[serde(default)]
    pub removed_at: i64,
    /// When a catalog without it was first published.
    #[serde(default)]
    pub withdrawn_at: Option<i64>,
}

/// A combined fingerprint, `sha256(metadata ‖ root)`, computed by the
/// server from the bytes of two files it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedCombined {
    /// The root file's path.
    pub path: String,
    /// The metadata file's name (in the same directory).
    pub meta: String,
    /// The fingerprint.
    pub sha256: String,
    /// The metadata file's sha256 it was computed from.
    pub meta_sha256: String,
    /// The root file's sha256 it was computed from.
    pub root_sha256: String,
}

/// The answer for a file stored, or already there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Its path.
    pub path: String,
    /// Its sha256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// Whether this request stored it (`false`: the path held these bytes
    /// already). Absent in a `?combined` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<bool>,
    /// Why nothing was stored, when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a root file: its combined fingerprints, by metadata file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<BTreeMap<String, String>>,
}

impl Stored {
    /// The reason given for a file already there.
    pub const ALREADY: &str = "already present with this sha256";
}

/// The answer for a file removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Its path.
    pub path: String,
    /// When it was removed (Unix seconds).
    pub removed_at: i64,
    /// When a catalog without it was first published, if one was.
    #[serde(default)]
    pub withdrawn_at: Option<i64>,
    /// How long it stays downloadable after that publish.
    pub grace_seconds: i64,
    /// What happens next, in words.
    pub note: String,
}

/// The body of `POST /publish`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRequest {
    /// Files the catalog must list (side files: that the server holds),
    /// each with its sha256; otherwise nothing is published (409).
    #[serde(default)]
    pub require: BTreeMap<String, String>,
}

/// What a publisher's `require` asks that a publish would not give: each
/// file on the server with its sha256, and in the catalog unless it is a
/// side file. `digests` are the server's, `scan` its tree; `server` names
/// it in the messages (`edge`, `server`).
#[must_use]
pub fn unmet(
    require: &BTreeMap<String, String>,
    scan: &Scan,
    digests: &Digests,
    server: &str,
) -> Vec<String> {
    let in_catalog: BTreeSet<&str> = scan.files().map(|f| f.path.as_str()).collect();
    let mut out = Vec::new();
    for (path, sha) in require {
        match digests.files.get(path).map(Sha256::to_hex) {
            None => out.push(format!("{path}: not on the {server}, or removed")),
            Some(have) if have != *sha => {
                out.push(format!(
                    "{path}: the {server} holds sha256 {have}, not {sha}"
                ));
            }
            Some(_) if !crate::needs_contents(path) && !in_catalog.contains(path.as_str()) => {
                out.push(format!(
                    "{path}: its version would be left out of the catalog (see the diagnostics)"
                ));
            }
            Some(_) => {}
        }
    }
    out
}

/// The latest `updated` a publish takes: the last second of year 9999,
/// the last one the catalog's RFC 2822 dates can say.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Reads a publish's `?timestamp=`: whole Unix seconds from 1970 to the
/// year 9999.
///
/// # Errors
/// Anything else, in words.
pub fn timestamp(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|t| (0..=MAX_TIMESTAMP).contains(t))
        .ok_or_else(|| {
            format!(
                "timestamp {text:?} is not Unix seconds between 0 and {MAX_TIMESTAMP} (year 9999)"
            )
        })
}

/// The answer of a publish.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// Whether the catalog changed.
    #[serde(default)]
    pub changed: bool,
    /// The catalog's generation after the publish.
    pub generation: u64,
    /// sha256 of the `images.json` published.
    #[serde(default)]
    pub images_sha256: String,
    /// sha256 of the `index.json` published.
    #[serde(default)]
    pub index_sha256: String,
    /// Products in the catalog.
    #[serde(default)]
    pub products: u64,
    /// Images in the catalog.
    #[serde(default)]
    pub images: u64,
    /// Files that left the catalog with this publish.
    #[serde(default)]
    pub withdrawn: Vec<String>,
    /// Files deleted (their grace period over) by this publish.
    #[serde(default)]
    pub purged: Vec<String>,
    /// What the build reported, as the core writes diagnostics.
    #[serde(default)]
    pub diagnostics: Vec<serde_json::Value>,
    /// How many times the catalog was built (more than once when
    /// concurrent publishes swapped theirs in first).
    #[serde(default)]
    pub attempts: u32,
}

impl Published {
    /// Each diagnostic as (level, path, message), from either of the two
    /// shapes diagnostics are written in (a build's `level`/`path`, a
    /// finding's `severity`/`location`).
    #[must_use]
    pub fn notes(&self) -> Vec<(String, String, String)> {
        let text = |d: &serde_json::Value, keys: [&str; 2]| {
            keys.iter()
                .find_map(|k| d[*k].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        self.diagnostics
            .iter()
            .map(|d| {
                (
                    text(d, ["level", "severity"]),
                    text(d, ["path", "location"]),
                    text(d, ["message", "message"]),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_bounded() {
        assert_eq!(timestamp("1785556800"), Ok(1_785_556_800));
        assert_eq!(timestamp("0"), Ok(0));
        assert!(timestamp("9223372036854775807").is_err());
        assert!(timestamp("253402300800").is_err());
        assert!(timestamp("-1").is_err());
        assert!(timestamp("1e9").is_err());
    }

    #[test]
    fn documents_read_back_and_old_answers_still_read() {
        let page = ListPage {
            files: vec![ListedFile {
                path: "images/a".into(),
                size: 1,
                sha256: Some("x".into()),
                purged: false,
            }],
            next: Some("1:".into()),
            ..ListPage::default()
        };
        let text = serde_json::to_string(&page).expect("json");
        assert!(!text.contains("whole_files"), "{text}");
        assert_eq!(serde_json::from_str::<ListPage>(&text).expect("back"), page);
        let old: ListPage = serde_json::from_str(
            r#"{"files": [{"path": "images/a", "size": 1, "sha256": null}], "next": null}"#,
        )
        .expect("an answer without the newer fields");
        assert!(!old.whole_files && old.removed.is_empty());
        let published: Published = serde_json::from_value(serde_json::json!({
            "changed": true, "generation": 3, "products": 1, "images": 2,
            "diagnostics": [
                {"level": "warning", "path": "images/x", "message": "m", "help": "h"},
                {"severity": "note", "code": "c", "clients": [], "location": "images.json#x", "message": "n", "help": ""},
            ],
        }))
        .expect("published");
        assert_eq!(
            published.notes(),
            [
                ("warning".into(), "images/x".into(), "m".into()),
                ("note".into(), "images.json#x".into(), "n".into())
            ]
        );
    }
}
