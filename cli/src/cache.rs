//! The digest cache, `ROOT/.ssgen/cache.json`: each file's sha256, first
//! bytes and combined digests, valid while the file's (size, mtime, ctime,
//! inode) stamp is unchanged. With it, a rebuild of an unchanged tree reads
//! no image bytes.
//!
//! The cache checks itself: it carries the sha256 of its records, and a
//! record's first bytes must be as long as its file allows. A damaged
//! cache (a disk error, an edit, a bug of an older version) is ignored as
//! a whole, so it costs one full hashing, never a wrong catalog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use ssgen_core::{Digests, Sha256};

use crate::confine::Root;
use crate::walk::Listing;

/// 2: stamps with the ctime, and the records' checksum.
const FORMAT: u32 = 2;

/// What identifies a file's contents without reading them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

impl Stamp {
    /// The stamp of a file as `stat` gives it.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            // An edit in place followed by `touch -r` puts the mtime back,
            // but not the ctime.
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    stamp: Stamp,
    sha256: String,
    head: String,
    /// `sha256(meta ‖ this file)` by metadata path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    combined: BTreeMap<String, String>,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct File {
    format: u32,
    /// sha256 of the JSON of `files`.
    #[serde(default)]
    check: String,
    files: BTreeMap<String, Record>,
}

impl File {
    fn checksum(files: &BTreeMap<String, Record>) -> String {
        let json = serde_json::to_vec(files).unwrap_or_default();
        ssgen_core::Sha256(<sha2::Sha256 as sha2::Digest>::digest(&json).into()).to_hex()
    }

    /// Why the cache cannot be trusted, if it cannot.
    fn damage(&self) -> Option<String> {
        if self.check != Self::checksum(&self.files) {
            return Some("its checksum does not match its records".into());
        }
        for (path, r) in &self.files {
            let head = hex_decode(&r.head);
            let want = usize::try_from(r.stamp.size)
                .map_or(ssgen_core::HEAD_LEN, |s| s.min(ssgen_core::HEAD_LEN));
            if head.is_none_or(|h| h.len() != want) || Sha256::from_hex(&r.sha256).is_err() {
                return Some(format!("the record of {path} is malformed"));
            }
        }
        None
    }
}

/// The cache of one root.
#[derive(Debug, Default)]
pub struct Cache {
    path: PathBuf,
    data: File,
}

impl Cache {
    pub fn path_for(root: &Path) -> PathBuf {
        root.join(".ssgen").join("cache.json")
    }

    /// Loads the cache; a missing, unreadable or outdated one is empty (it
    /// only saves work), and so is a damaged one, with a note.
    pub fn load(root: &Path) -> Self {
        let path = Self::path_for(root);
        let data = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<File>(&bytes).ok())
            .filter(|f| f.format == FORMAT)
            .unwrap_or_default();
        let data = match data.damage() {
            Some(why) if !data.files.is_empty() => {
                eprintln!(
                    "note: {}: {why}; the cache is ignored and every file is hashed again",
                    path.display()
                );
                File::default()
            }
            _ => data,
        };
        Self { path, data }
    }

    fn valid(&self, path: &str, stamp: &Stamp) -> Option<&Record> {
        self.data.files.get(path).filter(|r| r.stamp == *stamp)
    }

    /// The cached first bytes of a file whose stamp is unchanged.
    pub fn head(&self, path: &str, stamp: &Stamp) -> Option<Vec<u8>> {
        let record = self.valid(path, stamp)?;
        hex_decode(&record.head)
    }

    /// The digests still valid for the files of `listing`.
    pub fn known(&self, listing: &Listing) -> Digests {
        let mut digests = Digests::default();
        for (path, listed) in &listing.files {
            let Some(record) = self.valid(path, &listed.stamp) else {
                continue;
            };
            let Ok(sha) = Sha256::from_hex(&record.sha256) else {
                continue;
            };
            digests.files.insert(path.clone(), sha);
            for (meta, combined) in &record.combined {
                let meta_valid = listing
                    .files
                    .get(meta)
                    .is_some_and(|m| self.valid(meta, &m.stamp).is_some());
                if let (true, Ok(c)) = (meta_valid, Sha256::from_hex(combined)) {
                    digests.combined.insert((meta.clone(), path.clone()), c);
                }
            }
        }
        digests
    }

    /// Replaces the cache's contents with what is known now of `listing`;
    /// returns whether they changed (and so need saving).
    pub fn update(&mut self, listing: &Listing, digests: &Digests) -> bool {
        let mut files = BTreeMap::new();
        for (path, listed) in &listing.files {
            let Some(sha) = digests.files.get(path) else {
                continue;
            };
            // Side files (read whole on every scan, and hashed only for the
            // upload API's listing) have no head to keep: a record of one
            // would be malformed and void the whole cache at the next load.
            if listed.entry.head.is_none() && listed.entry.contents.is_some() {
                continue;
            }
            files.insert(
                path.clone(),
                Record {
                    stamp: listed.stamp,
                    sha256: sha.to_hex(),
                    head: hex_encode(listed.entry.head.as_deref().unwrap_or_default()),
                    combined: BTreeMap::new(),
                },
            );
        }
        for ((meta, root), digest) in &digests.combined {
            if let Some(record) = files.get_mut(root) {
                record.combined.insert(meta.clone(), digest.to_hex());
            }
        }
        let data = File {
            format: FORMAT,
            check: File::checksum(&files),
            files,
        };
        let changed = data != self.data;
        self.data = data;
        changed
    }

    /// Writes the cache atomically, inside its root.
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_vec(&self.data).context("cannot serialise the cache")?;
        let root = self
            .path
            .parent()
            .and_then(Path::parent)
            .context("the cache has no root")?;
        Root::open(root)?
            .place(".ssgen/cache.json", true)?
            .write_atomic(&text)
            .with_context(|| format!("cannot write the cache {}", self.path.display()))
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::Listed;
    use ssgen_core::Entry;

    #[test]
    fn a_hashed_side_file_does_not_void_the_cache() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let listed = |rel: &str, bytes: &[u8], side: bool| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(&path, bytes).expect("write");
            let stamp = Stamp::of(&std::fs::metadata(&path).expect("stat"));
            let mut entry = if side {
                Entry::side(rel, bytes)
            } else {
                Entry::file(rel, bytes.len() as u64)
            };
            if !side {
                entry.head = Some(bytes[..ssgen_core::HEAD_LEN].to_vec());
            }
            (rel.to_owned(), Listed { entry, stamp })
        };
        let image = "images/d/12/amd64/default/20260801_0000/rootfs.squashfs";
        let side = "images/d/12/amd64/default/metadata.json";
        let listing = Listing {
            files: BTreeMap::from([
                listed(image, b"hsqs and the rest", false),
                listed(side, br#"{"aliases": "d"}"#, true),
            ]),
            leftovers: Vec::new(),
        };
        let mut digests = Digests::default();
        digests.files.insert(image.to_owned(), Sha256([1; 32]));
        digests.files.insert(side.to_owned(), Sha256([2; 32]));
        let mut cache = Cache::load(root);
        assert!(cache.update(&listing, &digests));
        cache.save().expect("save");
        let known = Cache::load(root).known(&listing);
        assert_eq!(
            known.files.get(image),
            Some(&Sha256([1; 32])),
            "the cache was voided"
        );
    }
}
