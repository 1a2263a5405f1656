//! The `.withdrawn` marker of a version directory: the version (or some of
//! its files) is no longer in the catalog, but its files stay where they
//! are for a grace period, because clients keep an old `images.json` for up
//! to an hour and will still ask for them (`docs/protocol.md#caching`). `ssgen prune` and
//! `ssgen remove` write it; `ssgen prune` deletes the files once the grace
//! period is over.

use serde::{Deserialize, Serialize};

/// The marker's file name, in the version directory.
pub const FILE_NAME: &str = ".withdrawn";

/// What a marker says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// When it was withdrawn, in Unix seconds.
    pub since: i64,
    /// The file names withdrawn; `None` is the whole version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

impl Withdrawn {
    /// Parses a marker.
    ///
    /// # Errors
    /// A message when the marker is not `{"since": N, "files": [..]}`.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The marker's text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Whether `name` is withdrawn.
    #[must_use]
    pub fn covers(&self, name: &str) -> bool {
        self.files
            .as_ref()
            .is_none_or(|files| files.iter().any(|f| f == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let w = Withdrawn {
            since: 5,
            files: Some(vec!["disk.qcow2".into()]),
        };
        assert_eq!(Withdrawn::parse(w.to_text().as_bytes()), Ok(w.clone()));
        assert!(w.covers("disk.qcow2"));
        assert!(!w.covers("rootfs.squashfs"));
        let all = Withdrawn::parse(br#"{"since": 1}"#).expect("valid");
        assert!(all.covers("anything"));
        assert!(Withdrawn::parse(b"{}").is_err());
    }
}
