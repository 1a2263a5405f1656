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
    /// A message when the marker is not `{"since": N, "files": [..]}`, or
    /// when a file it lists is not a plain name of the version directory
    /// (empty, hidden, `..`, or holding a `/` or NUL): such a marker could
    /// only make its reader act outside the version.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let marker: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for name in marker.files.iter().flatten() {
            if name.is_empty()
                || name.starts_with('.')
                || name.contains(['/', '\\', '\0'])
                || name.len() > 255
            {
                return Err(format!(
                    "{name:?} is not the name of a file of the version directory"
                ));
            }
        }
        Ok(marker)
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
        for bad in ["../../victim", "/etc/passwd", ".ssgen", "", "a/b", "a\\b"] {
            let text = serde_json::json!({"since": 1, "files": [bad]}).to_string();
            let err = Withdrawn::parse(text.as_bytes()).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
