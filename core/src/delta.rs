//! Image diffs: which VCDIFF deltas a build makes (from the previous
//! versions of a product to its newest), what they are called, when one
//! saves enough to be published, and how a delta that fails its check is
//! kept out of the catalog.
//!
//! A daemon that holds the base image downloads the delta instead of the
//! root file and patches the base with `xdelta3` (LXD and Incus,
//! `client/simplestreams_images.go`). A delta that downloads but does not
//! apply aborts the whole download, with no fallback to the full file, so
//! every delta the catalog names must first be proved to decode to its
//! target: the adapter does that (it holds the files), and tells the core
//! with [`withhold`] when one does not.
//!
//! Only squashfs deltas are planned. Incus, and LXD before 5.0.4, look up
//! the base of a `disk-kvm.img.vcdiff` by the base version's
//! `combined_squashfs_sha256` (`shared/simplestreams/products.go`), so a VM
//! delta in a version that also has a container patches the wrong file on
//! every host that holds that container; and LXD 5.0.2 ignores VM deltas.

use crate::classify::RootType;
use crate::diag::{Diagnostic, Level};
use crate::layout::{FileRole, Scan, Version, VersionFile};
use crate::listing::Entry;

/// How many previous versions of each product get a delta to the newest,
/// unless the caller says otherwise.
pub const DEFAULT_COUNT: u32 = 1;
/// A delta is published only when smaller than this share of its target
/// (percent), unless the caller says otherwise: past it, the download saved
/// does not pay for the delta's decoding on every host.
pub const DEFAULT_MAX_PERCENT: u32 = 60;

/// What the caller decides about deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Deltas from this many previous versions to the newest (0: none).
    pub count: u32,
    /// Keep a delta only when smaller than this percentage of its target.
    pub max_percent: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            count: DEFAULT_COUNT,
            max_percent: DEFAULT_MAX_PERCENT,
        }
    }
}

impl Settings {
    /// Whether a delta of `delta_size` bytes saves enough on a target of
    /// `target_size` bytes.
    #[must_use]
    pub fn keeps(&self, delta_size: u64, target_size: u64) -> bool {
        u128::from(delta_size) * 100 < u128::from(target_size) * u128::from(self.max_percent)
    }

    /// The largest delta [`Settings::keeps`] for a target of `target_size`
    /// bytes (an encoder can stop once past it).
    #[must_use]
    pub fn size_limit(&self, target_size: u64) -> u64 {
        let bound = u128::from(target_size) * u128::from(self.max_percent);
        // The largest d with d * 100 < bound.
        u64::try_from(bound.div_ceil(100).saturating_sub(1)).unwrap_or(u64::MAX)
    }
}

/// The file name of a squashfs delta from version `base`, as the public
/// servers name it and [`crate::classify::by_name`] reads it back.
#[must_use]
pub fn file_name(base: &str) -> String {
    format!("delta-{base}.vcdiff")
}

/// One delta to make: from the root file of an older version to the root
/// file of the newest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The delta file to write (in the target's version directory),
    /// relative to the root.
    pub path: String,
    /// The base version's name (the item's `delta_base`).
    pub base_version: String,
    /// The base root file, relative to the root.
    pub base: String,
    /// Its size.
    pub base_size: u64,
    /// The target root file, relative to the root.
    pub target: String,
    /// Its size.
    pub target_size: u64,
}

fn squashfs_root(v: &Version) -> Option<&VersionFile> {
    v.roots()
        .find(|(_, r)| *r == RootType::Squashfs)
        .map(|(f, _)| f)
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The deltas a build should make: for each product, from each of the
/// `settings.count` previous versions with a squashfs root to the newest
/// version with one, unless a file of the delta's name is already listed
/// (made before, or by hand: it is never replaced).
#[must_use]
pub fn plan(scan: &Scan, listing: &[Entry], settings: Settings) -> Vec<Job> {
    let listed: std::collections::BTreeSet<&str> =
        listing.iter().map(|e| e.path.as_str()).collect();
    let mut jobs = Vec::new();
    for product in &scan.products {
        let with_root: Vec<(&Version, &VersionFile)> = product
            .versions
            .iter()
            .filter_map(|v| squashfs_root(v).map(|r| (v, r)))
            .collect();
        let Some(((_, target), older)) = with_root.split_last() else {
            continue;
        };
        let count = usize::try_from(settings.count).unwrap_or(usize::MAX);
        for (base_version, base) in older.iter().rev().take(count) {
            let path = format!("{}/{}", parent(&target.path), file_name(&base_version.name));
            if listed.contains(path.as_str()) {
                continue;
            }
            jobs.push(Job {
                path,
                base_version: base_version.name.clone(),
                base: base.path.clone(),
                base_size: base.size,
                target: target.path.clone(),
                target_size: target.size,
            });
        }
    }
    jobs
}

/// A delta the catalog would name, with the files it must decode from and
/// to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The delta file, relative to the root.
    pub path: String,
    /// The base version's root file it patches.
    pub base: String,
    /// The root file it must decode to.
    pub target: String,
}

/// Every delta of the scan, with its base and target root files.
#[must_use]
pub fn published(scan: &Scan) -> Vec<Published> {
    let mut out = Vec::new();
    for product in &scan.products {
        for version in &product.versions {
            let Some(target) = squashfs_root(version) else {
                continue;
            };
            for f in &version.files {
                let FileRole::Delta { base } = &f.role else {
                    continue;
                };
                let base_root = product
                    .versions
                    .iter()
                    .find(|v| v.name == *base)
                    .and_then(squashfs_root);
                if let Some(base_root) = base_root {
                    out.push(Published {
                        path: f.path.clone(),
                        base: base_root.path.clone(),
                        target: target.path.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The deltas of `scan` that must leave the catalog with the files for
/// which `leaves` is true: those whose base or target root leaves, unless
/// the delta leaves too (its version directory goes with it). Without its
/// base a delta is no use, and without its target it names a download no
/// catalog lists any more; either way the build would leave it out with a
/// warning on every run, so a writer that withdraws files withdraws these
/// with them.
#[must_use]
pub fn orphaned_by(scan: &Scan, leaves: impl Fn(&str) -> bool) -> Vec<Published> {
    published(scan)
        .into_iter()
        .filter(|p| !leaves(&p.path) && (leaves(&p.base) || leaves(&p.target)))
        .collect()
}

/// A delta a catalog names, with the files it decodes from and to, as a
/// client resolves them: the base version's root item of the ftype the
/// delta patches, and its own version's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The delta file, relative to the root.
    pub path: String,
    /// The base root file, relative to the root.
    pub base: String,
    /// The root file it must decode to, relative to the root.
    pub target: String,
    /// The target's size, as the catalog gives it.
    pub target_size: u64,
    /// The target's sha256, as the catalog gives it (hex).
    pub target_sha256: String,
}

/// Every delta item of `remote` whose base and target root items exist;
/// the lint reports the others.
#[must_use]
pub fn claimed(remote: &crate::remote::Remote) -> Vec<Claimed> {
    let clean = crate::remote::clean_path;
    let mut out = Vec::new();
    for file in &remote.files {
        for product in file.products.values() {
            for version in product.versions.values() {
                for item in version.items.values() {
                    let Some(root_ftype) = item.ftype.strip_suffix(".vcdiff") else {
                        continue;
                    };
                    let root_of = |v: &crate::remote::Version| {
                        v.items
                            .values()
                            .find(|i| i.ftype == root_ftype && !i.path.is_empty())
                            .cloned()
                    };
                    let base = product.versions.get(&item.delta_base).and_then(root_of);
                    let (Some(base), Some(target)) = (base, root_of(version)) else {
                        continue;
                    };
                    let Ok(target_size) = u64::try_from(target.size) else {
                        continue;
                    };
                    out.push(Claimed {
                        path: clean(&item.path),
                        base: clean(&base.path),
                        target: clean(&target.path),
                        target_size,
                        target_sha256: target.sha256.clone(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// Leaves the delta at `path` out of the catalog, with a warning saying
/// `why` (it failed its check, so publishing it would break the download
/// of its version on every host that holds the base).
pub fn withhold(scan: &mut Scan, path: &str, why: &str) {
    for product in &mut scan.products {
        for version in &mut product.versions {
            version.files.retain(|f| f.path != path);
        }
    }
    scan.diagnostics.push(Diagnostic::new(
        Level::Warning,
        path,
        format!("delta left out: {why}; a delta that fails to apply aborts the download of its version on every host that holds the base"),
        "delete the file; `ssgen build` makes a correct one",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Entry, scan};

    fn tree(paths: &[&str]) -> Vec<Entry> {
        paths.iter().map(|p| Entry::file(*p, 100)).collect()
    }

    const P: &str = "images/debian/12/amd64/default";

    #[test]
    fn deltas_go_from_previous_versions_to_the_newest() {
        let mut paths = Vec::new();
        for v in ["20260801_0000", "20260802_0000", "20260803_0000"] {
            paths.push(format!("{P}/{v}/incus.tar.xz"));
            paths.push(format!("{P}/{v}/rootfs.squashfs"));
        }
        // A newer VM-only version is no target for squashfs deltas, and a
        // VM product gets none: Incus would patch the wrong base.
        paths.push(format!("{P}/20260804_0000/incus.tar.xz"));
        paths.push(format!("{P}/20260804_0000/disk.qcow2"));
        for v in ["20260801_0000", "20260802_0000"] {
            paths.push(format!("images/debian/12/amd64/cloud/{v}/incus.tar.xz"));
            paths.push(format!("images/debian/12/amd64/cloud/{v}/disk.qcow2"));
        }
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let listing = tree(&refs);
        let s = scan(&listing, &Config::new(0));
        let two = Settings {
            count: 2,
            ..Settings::default()
        };
        let jobs = plan(&s, &listing, two);
        let made: Vec<(&str, &str)> = jobs
            .iter()
            .map(|j| (j.path.as_str(), j.base.as_str()))
            .collect();
        assert_eq!(
            made,
            [
                (
                    "images/debian/12/amd64/default/20260803_0000/delta-20260802_0000.vcdiff",
                    "images/debian/12/amd64/default/20260802_0000/rootfs.squashfs"
                ),
                (
                    "images/debian/12/amd64/default/20260803_0000/delta-20260801_0000.vcdiff",
                    "images/debian/12/amd64/default/20260801_0000/rootfs.squashfs"
                ),
            ]
        );
        assert_eq!(jobs[0].target, format!("{P}/20260803_0000/rootfs.squashfs"));
        assert_eq!(jobs[0].base_version, "20260802_0000");
        assert_eq!(plan(&s, &listing, Settings::default()).len(), 1);
        let none = Settings {
            count: 0,
            ..Settings::default()
        };
        assert!(plan(&s, &listing, none).is_empty());
    }

    #[test]
    fn an_existing_file_is_never_planned_over() {
        let listing = tree(&[
            &format!("{P}/20260801_0000/incus.tar.xz"),
            &format!("{P}/20260801_0000/rootfs.squashfs"),
            &format!("{P}/20260802_0000/incus.tar.xz"),
            &format!("{P}/20260802_0000/rootfs.squashfs"),
            &format!("{P}/20260802_0000/delta-20260801_0000.vcdiff"),
        ]);
        let s = scan(&listing, &Config::new(0));
        assert!(plan(&s, &listing, Settings::default()).is_empty());
        let p = published(&s);
        assert_eq!(
            p,
            [Published {
                path: format!("{P}/20260802_0000/delta-20260801_0000.vcdiff"),
                base: format!("{P}/20260801_0000/rootfs.squashfs"),
                target: format!("{P}/20260802_0000/rootfs.squashfs"),
            }]
        );
        let mut s = s;
        withhold(&mut s, &p[0].path, "it decodes to other bytes");
        assert!(published(&s).is_empty());
        assert!(
            s.diagnostics
                .iter()
                .any(|d| d.path == p[0].path && d.message.contains("other bytes"))
        );
    }

    #[test]
    fn deltas_leave_with_their_base_or_target() {
        let mut paths = Vec::new();
        for v in ["20260801_0000", "20260802_0000", "20260803_0000"] {
            paths.push(format!("{P}/{v}/incus.tar.xz"));
            paths.push(format!("{P}/{v}/rootfs.squashfs"));
        }
        paths.push(format!("{P}/20260803_0000/disk.qcow2"));
        paths.push(format!("{P}/20260803_0000/delta-20260801_0000.vcdiff"));
        paths.push(format!("{P}/20260803_0000/delta-20260802_0000.vcdiff"));
        paths.push(format!("{P}/20260802_0000/delta-20260801_0000.vcdiff"));
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let s = scan(&tree(&refs), &Config::new(0));
        let under = |dir: &'static str| move |p: &str| p.starts_with(&format!("{P}/{dir}/"));
        let names = |v: Vec<Published>| -> Vec<String> { v.into_iter().map(|p| p.path).collect() };
        // The base version goes: every delta from it, not the one beside it.
        assert_eq!(
            names(orphaned_by(&s, under("20260801_0000"))),
            [
                format!("{P}/20260802_0000/delta-20260801_0000.vcdiff"),
                format!("{P}/20260803_0000/delta-20260801_0000.vcdiff"),
            ]
        );
        // A middle version goes: its own delta goes with it, the one from
        // it stays behind and must be withdrawn.
        assert_eq!(
            names(orphaned_by(&s, under("20260802_0000"))),
            [format!("{P}/20260803_0000/delta-20260802_0000.vcdiff")]
        );
        // Only the target's squashfs goes (the VM stays): its deltas go.
        let root = format!("{P}/20260803_0000/rootfs.squashfs");
        assert_eq!(orphaned_by(&s, |p| p == root).len(), 2);
        // A file deltas do not hang on changes nothing.
        let vm = format!("{P}/20260803_0000/disk.qcow2");
        assert!(orphaned_by(&s, |p| p == vm).is_empty());
    }

    #[test]
    fn the_threshold_is_strict() {
        let s = Settings {
            count: 1,
            max_percent: 60,
        };
        assert!(s.keeps(59, 100));
        assert!(!s.keeps(60, 100));
        assert_eq!(s.size_limit(100), 59);
        assert_eq!(s.size_limit(101), 60);
        assert!(s.keeps(s.size_limit(101), 101));
        assert!(!s.keeps(s.size_limit(101) + 1, 101));
        let all = Settings {
            count: 1,
            max_percent: 100,
        };
        assert!(all.keeps(99, 100) && !all.keeps(100, 100));
    }
}
