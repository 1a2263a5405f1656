//! What a catalog claims about the files it references — each file's size
//! and sha256, each pair's fingerprint — and how what an adapter measured
//! compares with it. `ssgen verify` is this plus IO: it stats, downloads
//! or walks, and hands the numbers back here.

use std::collections::{BTreeMap, BTreeSet};

use super::{Remote, Version};
use crate::classify::{self, Kind};
use crate::diag::Diagnostic;
use crate::digest::{Digests, HashJob, HashPlan, Sha256};
use crate::layout::Scan;
use crate::lint::Code;
use crate::listing::Entry;
use crate::rules;
use crate::side::METADATA_JSON;
use crate::vocab::{Class, Client, CombinedKey, Ftype};
use crate::withdrawn::{self, Withdrawn};

const BOTH: &[Client] = &Client::ALL;

/// What the catalog says about one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileClaim {
    /// Its size, when an item gives a positive one.
    pub size: Option<u64>,
    /// Its sha256, when an item gives a valid one.
    pub sha256: Option<Sha256>,
    /// Who references it (`product version item`), for messages.
    pub refs: Vec<String>,
}

/// A fingerprint the catalog claims for a (metadata, root) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CombinedClaim {
    /// The metadata file's path.
    pub meta: String,
    /// The root file's path.
    pub root: String,
    /// The key that carries it.
    pub key: CombinedKey,
    /// The value the catalog gives.
    pub expected: String,
    /// Which items claim it (`product version meta+root`, …).
    pub label: String,
}

/// Everything a catalog claims about its files, and what is wrong with
/// the claims themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Each referenced file by its path relative to the root.
    pub files: BTreeMap<String, FileClaim>,
    /// Each claimed fingerprint, once per (metadata, root, key, value).
    pub combined: Vec<CombinedClaim>,
    /// Problems of the catalog: what makes a client refuse it, items whose
    /// path leaves the root or that lack a digest, items that disagree.
    pub problems: Vec<Diagnostic>,
}

impl Claims {
    /// The claims of a decoded remote.
    #[must_use]
    pub fn of(remote: &Remote) -> Claims {
        let mut claims = Claims {
            problems: remote.problems.clone(),
            ..Claims::default()
        };
        if remote.index_ok && !remote.entries.iter().any(super::IndexEntry::is_loaded) {
            claims.problems.push(Diagnostic::coded(
                Code::IndexNothingLoaded,
                BOTH,
                super::INDEX_PATH,
                "lists no products file the clients load, so they would see no image",
            ));
        }
        for file in &remote.files {
            for (pid, product) in &file.products {
                for (vname, version) in &product.versions {
                    claims.version(&file.path, pid, vname, version);
                }
            }
        }
        claims
    }

    fn problem(&mut self, path: impl Into<String>, message: String) {
        self.problems
            .push(Diagnostic::coded(Code::CatalogEntry, BOTH, path, message));
    }

    fn version(&mut self, file: &str, pid: &str, vname: &str, version: &Version) {
        let mut usable: Vec<(&str, Ftype, &super::Item)> = Vec::new();
        for (key, item) in &version.items {
            let label = format!("{pid} {vname} {key}");
            if item.path.is_empty() {
                self.problem(file, format!("{label}: has no path"));
                continue;
            }
            if !rules::is_relative_path(&item.path) {
                self.problem(
                    file,
                    format!(
                        "{label}: path {:?} is not a relative path under the server root",
                        item.path
                    ),
                );
                continue;
            }
            let size = u64::try_from(item.size).ok().filter(|s| *s > 0);
            if item.size < 0 {
                self.problem(
                    file,
                    format!("{label}: size is {}, not a number of bytes", item.size),
                );
            }
            let sha256 = if item.sha256.is_empty() {
                self.problem(
                    file,
                    format!("{label}: has no sha256; clients cannot download it"),
                );
                None
            } else if let Ok(d) = Sha256::from_hex(&item.sha256) {
                Some(d)
            } else {
                self.problem(
                    file,
                    format!(
                        "{label}: sha256 {:?} is not 64 lower-case hex digits",
                        item.sha256
                    ),
                );
                None
            };
            let claim = self.files.entry(item.path.clone()).or_default();
            let mut disagree = Vec::new();
            if let (Some(old), Some(new)) = (claim.size, size)
                && old != new
            {
                disagree.push(format!(
                    "items disagree on its size ({old} and {new}, the latter in {label})"
                ));
            }
            if let (Some(old), Some(new)) = (claim.sha256, sha256)
                && old != new
            {
                disagree.push(format!(
                    "items disagree on its sha256 ({old} and {new}, the latter in {label})"
                ));
            }
            claim.size = claim.size.or(size);
            claim.sha256 = claim.sha256.or(sha256);
            claim.refs.push(label);
            for why in disagree {
                self.problem(item.path.clone(), why);
            }
            if let Some(ftype) = item.kind() {
                usable.push((key, ftype, item));
            }
        }
        // Each metadata item against each root item of the version.
        for (mkey, mtype, meta) in &usable {
            if mtype.class() != Class::Metadata {
                continue;
            }
            for (rkey, rtype, root) in &usable {
                for key in CombinedKey::for_root(*rtype) {
                    let expected = meta.combined(*key);
                    if expected.is_empty() {
                        continue;
                    }
                    // lxd.tar.xz and incus.tar.xz items often share one
                    // file: one claim, both labels.
                    if let Some(same) = self.combined.iter_mut().find(|c| {
                        c.meta == meta.path
                            && c.root == root.path
                            && c.key == *key
                            && c.expected == expected
                    }) {
                        same.label.push_str(&format!(", {mkey}+{rkey}"));
                        continue;
                    }
                    self.combined.push(CombinedClaim {
                        meta: meta.path.clone(),
                        root: root.path.clone(),
                        key: *key,
                        expected: expected.to_owned(),
                        label: format!("{pid} {vname} {mkey}+{rkey}"),
                    });
                }
            }
        }
    }

    /// The hash plan for the files whose real size is in `sizes` (those
    /// the adapter could stat): metadata files first, each root forking
    /// the metadata files it pairs with, every file read once.
    #[must_use]
    pub fn plan(&self, sizes: &BTreeMap<String, u64>) -> HashPlan {
        let metas: BTreeSet<&str> = self
            .combined
            .iter()
            .filter(|c| sizes.contains_key(&c.root) && sizes.contains_key(&c.meta))
            .map(|c| c.meta.as_str())
            .collect();
        let mut pairs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for c in &self.combined {
            if metas.contains(c.meta.as_str()) && sizes.contains_key(&c.root) {
                pairs.entry(&c.root).or_default().insert(c.meta.clone());
            }
        }
        let mut plan = HashPlan::default();
        for (path, size) in sizes {
            let job = HashJob {
                path: path.clone(),
                size: *size,
                is_prefix: metas.contains(path.as_str()),
                prefixes: pairs
                    .get(path.as_str())
                    .map(|m| m.iter().cloned().collect())
                    .unwrap_or_default(),
            };
            if job.is_prefix {
                plan.prefixes.push(job);
            } else {
                plan.bodies.push(job);
            }
        }
        plan
    }

    /// A file the catalog references and the adapter did not find; `how`
    /// says what it saw (`missing`, `the server answered 404`).
    #[must_use]
    pub fn missing(&self, path: &str, how: &str) -> Diagnostic {
        let refs = self
            .files
            .get(path)
            .map(|c| c.refs.join(", "))
            .unwrap_or_default();
        Diagnostic::coded(
            Code::FileMissing,
            BOTH,
            path,
            format!("{how} (referenced by {refs})"),
        )
    }

    /// Compares what the adapter measured (`sizes` of the files it found,
    /// `digests` of those it read) with the claims: every difference, not
    /// just the first.
    #[must_use]
    pub fn compare(&self, digests: &Digests, sizes: &BTreeMap<String, u64>) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (path, claim) in &self.files {
            let Some(&size) = sizes.get(path) else {
                continue;
            };
            if let Some(claimed) = claim.size
                && claimed != size
            {
                out.push(Diagnostic::coded(
                    Code::SizeMismatch,
                    BOTH,
                    path,
                    format!("is {size} bytes, the catalog says {claimed}"),
                ));
            }
            if let (Some(claimed), Some(actual)) = (claim.sha256, digests.files.get(path))
                && claimed != *actual
            {
                out.push(Diagnostic::coded(
                    Code::Sha256Mismatch,
                    BOTH,
                    path,
                    format!("sha256 is {actual}, the catalog says {claimed}"),
                ));
            }
        }
        for c in &self.combined {
            let Some(actual) = digests.combined.get(&(c.meta.clone(), c.root.clone())) else {
                continue;
            };
            let actual = actual.to_hex();
            if actual != c.expected {
                let root_name = c.root.rsplit('/').next().unwrap_or(&c.root);
                out.push(Diagnostic::coded(
                    Code::CombinedMismatch,
                    BOTH,
                    format!("{} + {root_name}", c.meta),
                    format!(
                        "{} is {actual}, the catalog says {} ({}); clients will refuse the download",
                        c.key, c.expected, c.label
                    ),
                ));
            }
        }
        out
    }

    /// The files of a tree (its listing, as for a build) that no item
    /// references, judged: files withdrawn by `ssgen prune` or `ssgen
    /// remove` and waiting for their grace period are no problem; an image
    /// file that a build leaves out gets the build's reason and fix; one
    /// the build would publish means the catalog is stale. Files that are
    /// no image file's (checksums, logs) are only listed.
    #[must_use]
    pub fn unreferenced(&self, listing: &[Entry], scan: &Scan) -> Unreferenced {
        let withdrawn = withdrawn_files(listing);
        let mut out = Unreferenced::default();
        for entry in listing {
            let name = entry.name();
            // Hidden files (markers, requirements, staging) and metadata.json
            // are side files, never published.
            if self.files.contains_key(&entry.path)
                || name.starts_with('.')
                || name == METADATA_JSON
            {
                continue;
            }
            if withdrawn.contains(entry.path.as_str()) {
                out.withdrawn.push(entry.path.clone());
                continue;
            }
            if classify::by_name(name) == Kind::Other {
                out.others.push(entry.path.clone());
                continue;
            }
            let problem = match scan.left_out(&entry.path) {
                Some(why) => Diagnostic::coded(
                    Code::FileUnreferenced,
                    BOTH,
                    entry.path.clone(),
                    format!(
                        "is not referenced by the catalog, because a build leaves out {}: {} (fix: {})",
                        why.path, why.message, why.help
                    ),
                )
                .with_help(why.help.clone()),
                None => Diagnostic::coded(
                    Code::FileUnreferenced,
                    BOTH,
                    entry.path.clone(),
                    "is not referenced by the catalog (run `ssgen build` to publish it, or remove it)",
                ),
            };
            out.problems.push(problem);
        }
        out
    }
}

/// The unreferenced files of a tree, judged by [`Claims::unreferenced`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unreferenced {
    /// Image files that should be published or removed.
    pub problems: Vec<Diagnostic>,
    /// Files withdrawn from the catalog, kept for their grace period.
    pub withdrawn: Vec<String>,
    /// Files that are no image file's (checksums, logs, signatures).
    pub others: Vec<String>,
}

/// The paths a `.withdrawn` marker covers, as the build reads them: a
/// marker that does not parse withdraws its whole version.
fn withdrawn_files(listing: &[Entry]) -> BTreeSet<&str> {
    let mut markers: BTreeMap<&str, Withdrawn> = BTreeMap::new();
    for entry in listing {
        if entry.name() != withdrawn::FILE_NAME {
            continue;
        }
        // Only a version's marker counts, as in a build.
        let Some((dir, _)) = entry.path.rsplit_once('/') else {
            continue;
        };
        if !crate::vocab::ProductPath::split_path(dir)
            .is_some_and(|(_, version)| !version.is_empty() && !version.contains('/'))
        {
            continue;
        }
        let marker =
            Withdrawn::parse(entry.contents.as_deref().unwrap_or_default()).unwrap_or(Withdrawn {
                since: 0,
                files: None,
            });
        markers.insert(dir, marker);
    }
    listing
        .iter()
        .filter(|e| {
            e.path
                .rsplit_once('/')
                .is_some_and(|(dir, name)| markers.get(dir).is_some_and(|m| m.covers(name)))
        })
        .map(|e| e.path.as_str())
        .collect()
}
