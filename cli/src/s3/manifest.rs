//! The manifest object (`PREFIX/.ssgen/manifest.json`): what the bucket
//! holds, with every digest the core needs, so that a push builds the
//! bucket's catalog from the bucket (one small read) and not from its own
//! tree alone. It is also the point where concurrent pushes are ordered:
//! it is only ever replaced with a conditional write (`If-Match` on the
//! etag read, `If-None-Match: *` for the first), so of two pushes built on
//! the same manifest one wins and the other rebuilds on the winner's.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use ssgen_core::vocab::IMAGES;
use ssgen_core::{Digests, Entry, Sha256, needs_contents};

/// The manifest's key below the prefix.
pub const KEY: &str = ".ssgen/manifest.json";
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Successful swaps so far; catalog objects carry the generation that
    /// wrote them, so an older push never overwrites a newer catalog.
    pub generation: u64,
    /// Every object below `images/` a catalog may name, by path.
    pub files: BTreeMap<String, FileInfo>,
    /// Files out of the catalog since the given Unix time (still in
    /// `files`, still in the bucket until the grace period is over).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, i64>,
    /// Files whose grace period is over, being deleted: in no catalog, and
    /// no push may add them back until they are gone.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub purging: BTreeSet<String>,
    /// The digests of the catalog this manifest gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Catalog>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub size: u64,
    pub sha256: String,
    /// Metadata file name → sha256(metadata ‖ this file).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub combined: BTreeMap<String, String>,
    /// A side file's text (`.requirements`, `metadata.json`, `SHA256SUMS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub images_sha256: String,
    pub index_sha256: String,
}

impl Manifest {
    pub fn empty() -> Self {
        Self {
            format: FORMAT,
            ..Self::default()
        }
    }

    /// Parses and checks a manifest; `key` names it in errors.
    pub fn parse(bytes: &[u8], key: &str) -> Result<Self> {
        let m: Self = serde_json::from_slice(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{key}: not an ssgen manifest ({e}); if another tool wrote it, push to another prefix"
            )
        })?;
        if m.format != FORMAT {
            bail!(
                "{key}: manifest format {} is not {FORMAT}; push with the ssgen that wrote it, or to another prefix",
                m.format
            );
        }
        for (path, f) in &m.files {
            let digests = std::iter::once(&f.sha256).chain(f.combined.values());
            if digests.clone().any(|d| Sha256::from_hex(d).is_err()) || !is_image_path(path) {
                bail!(
                    "{key}: the entry for {path:?} is damaged; delete {key} and push again to rebuild it from the tree"
                );
            }
        }
        Ok(m)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }

    /// Whether `path` is in the catalog's input.
    pub fn live(&self, path: &str) -> Option<&FileInfo> {
        self.files
            .get(path)
            .filter(|_| !self.removed.contains_key(path))
    }

    /// The core's listing and digests for the live files.
    pub fn listing(&self) -> (Vec<Entry>, Digests) {
        let mut entries = Vec::new();
        let mut digests = Digests::default();
        for (path, f) in &self.files {
            if self.removed.contains_key(path) {
                continue;
            }
            let mut entry = Entry::file(path.clone(), f.size);
            if needs_contents(path) {
                entry.contents = Some(f.contents.clone().unwrap_or_default().into_bytes());
            }
            if let Ok(d) = Sha256::from_hex(&f.sha256) {
                digests.files.insert(path.clone(), d);
            }
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for (meta, d) in &f.combined {
                if let Ok(d) = Sha256::from_hex(d) {
                    digests
                        .combined
                        .insert((format!("{dir}/{meta}"), path.clone()), d);
                }
            }
            entries.push(entry);
        }
        (entries, digests)
    }

    /// Same files, removals and purges (generation and catalog aside).
    pub fn same_contents(&self, other: &Self) -> bool {
        self.files == other.files && self.removed == other.removed && self.purging == other.purging
    }
}

/// A relative path under `images/` with plain components only.
pub fn is_image_path(path: &str) -> bool {
    path.strip_prefix(IMAGES)
        .is_some_and(|rest| rest.starts_with('/'))
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[test]
    fn listing_skips_removed_files_and_keeps_side_contents() {
        let mut m = Manifest::empty();
        let dir = "images/debian/12/amd64/default/20260101_0000";
        m.files.insert(
            format!("{dir}/rootfs.squashfs"),
            FileInfo {
                size: 10,
                sha256: hex('a'),
                combined: [("lxd.tar.xz".to_owned(), hex('b'))].into(),
                contents: None,
            },
        );
        m.files.insert(
            "images/debian/.requirements".into(),
            FileInfo {
                size: 2,
                sha256: hex('c'),
                combined: BTreeMap::new(),
                contents: Some("{}".into()),
            },
        );
        m.files.insert(
            format!("{dir}/root.tar.xz"),
            FileInfo {
                size: 3,
                sha256: hex('d'),
                combined: BTreeMap::new(),
                contents: None,
            },
        );
        m.removed.insert(format!("{dir}/root.tar.xz"), 5);
        let (entries, digests) = m.listing();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "images/debian/.requirements",
                &format!("{dir}/rootfs.squashfs")
            ]
        );
        assert_eq!(entries[0].contents.as_deref(), Some(&b"{}"[..]));
        assert!(digests.combined.contains_key(&(
            format!("{dir}/lxd.tar.xz"),
            format!("{dir}/rootfs.squashfs")
        )));
        let back = Manifest::parse(&m.to_bytes(), KEY).expect("round trip");
        assert_eq!(back, m);
    }

    #[test]
    fn damaged_or_foreign_manifests_are_refused() {
        for bad in [
            &b"<html>"[..],
            br#"{"format": 2, "generation": 1, "files": {}}"#,
            br#"{"format": 1, "generation": 1, "files": {"../x": {"size": 1, "sha256": "00"}}}"#,
        ] {
            let e = Manifest::parse(bad, KEY).expect_err("refused");
            assert!(e.to_string().contains(KEY), "{e}");
        }
    }
}
