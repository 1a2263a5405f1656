//! The tree to publish: every file of a published version and the side
//! files, hashed as `ssgen build` hashes them (cached), and the files that
//! `.withdrawn` markers took out of the catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use ssgen_core::{Sha256, checksums, needs_contents, withdrawn};

use crate::exit::Invalid;
use crate::publish::{self, Settings};

/// One file the bucket should hold.
#[derive(Clone, Debug)]
pub struct LocalFile {
    /// Relative path (`images/…`), the object's key below the prefix.
    pub path: String,
    pub size: u64,
    pub sha256: Sha256,
    /// Metadata file name → sha256(metadata ‖ this file).
    pub combined: BTreeMap<String, Sha256>,
    /// A side file's text.
    pub contents: Option<String>,
}

pub struct Local {
    pub files: Vec<LocalFile>,
    /// Files in the tree that a `.withdrawn` marker covers.
    pub withdrawn: BTreeSet<String>,
}

pub fn scan(root: &Path, settings: &Settings) -> Result<Local> {
    let tree = publish::scan_to_push(root, settings)?;
    let mut files = Vec::new();
    let mut published_dirs = BTreeSet::new();
    for f in tree.files()? {
        published_dirs.insert(dir_of(&f.path).to_owned());
        files.push(LocalFile {
            path: f.path,
            size: f.size,
            sha256: f.sha256,
            combined: f.combined,
            contents: None,
        });
    }
    for listed in tree.listing.files.values() {
        let e = &listed.entry;
        let name = e.name();
        // Markers stay local: the bucket's catalog drops a withdrawn
        // version through `--delete`, and readers never see a marker.
        if name == withdrawn::FILE_NAME {
            continue;
        }
        let Some(contents) = e.contents.as_deref().filter(|_| needs_contents(&e.path)) else {
            continue;
        };
        // A SHA256SUMS goes with its version, and only when the version
        // is published: alone it would hold back nothing but show noise.
        if name == checksums::FILE_NAME && !published_dirs.contains(dir_of(&e.path)) {
            continue;
        }
        let text = String::from_utf8(contents.to_vec()).map_err(|_| {
            Invalid(format!(
                "{}: not UTF-8 text; side files are JSON or sha256sum lists",
                e.path
            ))
        })?;
        files.push(LocalFile {
            path: e.path.clone(),
            size: e.size,
            sha256: Sha256::of(contents),
            combined: BTreeMap::new(),
            contents: Some(text),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Local {
        files,
        withdrawn: tree.withdrawn(),
    })
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}
