//! The tree to publish: every file of a published version and the side
//! files, hashed as `ssgen build` hashes them (cached), and the files that
//! `.withdrawn` markers took out of the catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, anyhow};
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{Level, Sha256, checksums, needs_contents};

use crate::cache::Cache;
use crate::exit::Invalid;
use crate::{hashing, walk};

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

pub fn scan(root: &Path, strict: bool) -> Result<Local> {
    if !root.join("images").is_dir() {
        return Err(Invalid(format!(
            "{}: no images/ directory; give the server root",
            root.display()
        ))
        .into());
    }
    // The time only matters for `updated`, which the bucket's push decides.
    let config = ssgen_core::Config::new(0);
    let mut cache = Cache::load(root);
    let listing = walk::list(root, &cache)?;
    let scan = ssgen_core::scan(&listing.entries(), &config);
    crate::publish::report(&scan.diagnostics, &listing);
    if scan.has_errors() {
        let n = scan
            .diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .count();
        return Err(Invalid(format!(
            "{n} error(s) above; nothing was pushed and the published catalog is unchanged"
        ))
        .into());
    }
    crate::publish::refuse_warnings(strict, &scan.diagnostics)?;
    let mut digests = cache.known(&listing);
    let plan = scan.plan(&digests);
    hashing::run(root, &plan, &mut digests, hashing::Check::Whole)?;
    if strict {
        crate::publish::refuse_catalog_warnings(&scan, &digests, &config, &listing)?;
    }
    cache.update(&listing, &digests);
    // The cache only saves work; failing to write it must not stop a push.
    if let Err(e) = cache.save() {
        eprintln!("warning: {e:#}");
    }

    let mut files = Vec::new();
    let mut published_dirs = BTreeSet::new();
    for f in scan.files() {
        let sha256 = *digests
            .files
            .get(&f.path)
            .ok_or_else(|| anyhow!("{}: not hashed", f.path))?;
        let combined = digests
            .combined
            .iter()
            .filter(|((_, r), _)| *r == f.path)
            .map(|((m, _), d)| (m.rsplit('/').next().unwrap_or(m).to_owned(), *d))
            .collect();
        published_dirs.insert(dir_of(&f.path).to_owned());
        files.push(LocalFile {
            path: f.path.clone(),
            size: f.size,
            sha256,
            combined,
            contents: None,
        });
    }
    let mut withdrawn_files = BTreeSet::new();
    for listed in listing.files.values() {
        let e = &listed.entry;
        let name = e.name();
        if name == withdrawn::FILE_NAME {
            // Markers stay local: the bucket's catalog drops a withdrawn
            // version through `--delete`, and readers never see a marker.
            let marker = Withdrawn::parse(e.contents.as_deref().unwrap_or_default()).ok();
            let dir = dir_of(&e.path);
            for other in listing.files.keys() {
                let other_name = other.rsplit('/').next().unwrap_or(other);
                if dir_of(other) == dir
                    && other_name != withdrawn::FILE_NAME
                    && marker.as_ref().is_none_or(|m| m.covers(other_name))
                {
                    withdrawn_files.insert(other.clone());
                }
            }
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
        withdrawn: withdrawn_files,
    })
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}
