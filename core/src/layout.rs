//! The tree layout `images/<os>/<release>/<arch>/<variant>/<version>/<file>`
//! (`docs/protocol.md#layout`), turned into products and versions, with
//! every file left out reported and never dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use crate::checksums;
use crate::classify::{self, Kind, RootType};
use crate::diag::{Diagnostic, Level};
use crate::digest::{Digests, HashJob, HashPlan, Sha256};
use crate::listing::Entry;
use crate::requirements::{self, Requirements};
use crate::rules::{self, is_url_char};
use crate::side::{METADATA_JSON, ProductFields};
use crate::vocab::{Client, IMAGES, ProductPath};
use crate::withdrawn::{self, Withdrawn};
use crate::{Clients, Config, arch, distro};

/// What a file of a version is in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// A split-image metadata tarball.
    Meta(Client),
    /// A root file.
    Root(RootType),
    /// A unified tarball.
    Unified,
    /// A squashfs VCDIFF delta from the version `base`.
    Delta {
        /// The base version's name.
        base: String,
    },
}

/// One published file of a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionFile {
    /// Path relative to the root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// What it is.
    pub role: FileRole,
}

/// One complete version of a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The version name (directory name), e.g. `20260801_0312`.
    pub name: String,
    /// Its files, sorted by path.
    pub files: Vec<VersionFile>,
    /// The digests its `SHA256SUMS` gives for its files, by path; the
    /// catalog is refused when a file's own digest differs.
    pub sums: BTreeMap<String, Sha256>,
}

impl Version {
    /// The metadata files.
    pub fn metas(&self) -> impl Iterator<Item = (&VersionFile, Client)> {
        self.files.iter().filter_map(|f| match f.role {
            FileRole::Meta(m) => Some((f, m)),
            _ => None,
        })
    }

    /// The root files.
    pub fn roots(&self) -> impl Iterator<Item = (&VersionFile, RootType)> {
        self.files.iter().filter_map(|f| match f.role {
            FileRole::Root(r) => Some((f, r)),
            _ => None,
        })
    }
}

/// One product: an os/release/arch/variant with its versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// `os:release:arch:variant`.
    pub id: String,
    /// The os directory name.
    pub os: String,
    /// The release directory name.
    pub release: String,
    /// The arch directory name (accepted by the clients).
    pub arch: String,
    /// The variant directory name.
    pub variant: String,
    /// `os` shown to users.
    pub os_title: String,
    /// `release_title`.
    pub release_title: String,
    /// `release_codename`, when known.
    pub codename: Option<String>,
    /// Arch-less aliases, in order.
    pub aliases: Vec<String>,
    /// `requirements` (Incus, and LXD ≥ 5.0.3 when no `lxd_requirements`).
    pub requirements: Requirements,
    /// `lxd_requirements` (LXD), when it must be written: empty only when a
    /// `.lxd_requirements` removed every key of `requirements`.
    pub lxd_requirements: Option<Requirements>,
    /// Complete versions, oldest first.
    pub versions: Vec<Version>,
}

impl Product {
    /// Where the product is in the tree.
    #[must_use]
    pub fn path(&self) -> ProductPath {
        ProductPath::new(&self.os, &self.release, &self.arch, &self.variant)
    }
}

/// The result of laying out a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Products, sorted by id.
    pub products: Vec<Product>,
    /// What was left out or looks wrong.
    pub diagnostics: Vec<Diagnostic>,
    /// The diagnostics (by index) that leave their path out of the
    /// catalog: a file, a version or a product.
    left_out: Vec<usize>,
    pub(crate) clients: Clients,
}

/// The diagnostics of a scan, with those that leave something out marked.
#[derive(Default)]
struct Diags {
    list: Vec<Diagnostic>,
    left_out: Vec<usize>,
}

impl Diags {
    fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }

    /// A diagnostic that leaves its path out of the catalog.
    fn skip(&mut self, d: Diagnostic) {
        self.left_out.push(self.list.len());
        self.list.push(d);
    }

    fn contains(&self, d: &Diagnostic) -> bool {
        self.list.contains(d)
    }
}

impl Scan {
    /// Whether an error blocks publishing.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == Level::Error)
    }

    /// Why the build leaves `path` (a file under `images/`) out of the
    /// catalog: the diagnostic that left out the file itself, its version
    /// or its product, nearest first.
    #[must_use]
    pub fn left_out(&self, path: &str) -> Option<&Diagnostic> {
        let mut places = vec![path.to_owned()];
        if let Some((product, rest)) = ProductPath::split_path(path) {
            if let Some((version, _)) = rest.split_once('/') {
                places.push(product.version_dir(version));
            }
            places.push(product.dir());
        }
        places.iter().find_map(|place| {
            self.left_out
                .iter()
                .map(|i| &self.diagnostics[*i])
                .find(|d| d.path == *place)
        })
    }

    /// The (metadata, root) pairs whose combined digest the catalog needs.
    pub fn pairs(&self) -> impl Iterator<Item = (&VersionFile, &VersionFile)> {
        self.products.iter().flat_map(|p| {
            p.versions.iter().flat_map(|v| {
                v.metas()
                    .flat_map(move |(m, _)| v.roots().map(move |(r, _)| (m, r)))
            })
        })
    }

    /// All files the catalog references.
    pub fn files(&self) -> impl Iterator<Item = &VersionFile> {
        self.products
            .iter()
            .flat_map(|p| p.versions.iter().flat_map(|v| v.files.iter()))
    }

    /// The files that must be read, given the digests already known. A file
    /// whose own digest and combined digests are all known is not read; a
    /// metadata file is re-read (it is small) when a pair it belongs to is
    /// new.
    #[must_use]
    pub fn plan(&self, known: &Digests) -> HashPlan {
        let mut need_prefix: BTreeMap<&str, &VersionFile> = BTreeMap::new();
        let mut bodies: BTreeMap<&str, (&VersionFile, BTreeSet<String>)> = BTreeMap::new();
        for (meta, root) in self.pairs() {
            let key = (meta.path.clone(), root.path.clone());
            if !known.combined.contains_key(&key) {
                need_prefix.insert(&meta.path, meta);
                bodies
                    .entry(&root.path)
                    .or_insert_with(|| (root, BTreeSet::new()))
                    .1
                    .insert(meta.path.clone());
            }
        }
        for file in self.files() {
            if known.files.contains_key(&file.path) {
                continue;
            }
            if matches!(file.role, FileRole::Meta(_)) {
                need_prefix.insert(&file.path, file);
            } else {
                bodies
                    .entry(&file.path)
                    .or_insert_with(|| (file, BTreeSet::new()));
            }
        }
        HashPlan {
            prefixes: need_prefix
                .into_values()
                .map(|f| HashJob {
                    path: f.path.clone(),
                    size: f.size,
                    is_prefix: true,
                    prefixes: Vec::new(),
                })
                .collect(),
            bodies: bodies
                .into_values()
                .map(|(f, metas)| HashJob {
                    path: f.path.clone(),
                    size: f.size,
                    is_prefix: false,
                    prefixes: metas.into_iter().collect(),
                })
                .collect(),
        }
    }
}

/// The reasons the scan gives, shared with [`unpublishable`] so an upload
/// is refused in the build's own words.
const ARCH_HELP: &str = "rename the directory to a known name such as amd64, arm64, armhf, i386, ppc64el, s390x or riscv64";
const BAD_VERSION: &str =
    "version name does not start with a valid YYYYMMDD date, so LXD and Incus would hide it";
const VERSION_HELP: &str = "rename it like 20260801_0312 (UTC, YYYYMMDD_HHMM)";
const VM_DELTA: &str = "VM (disk-kvm.img) deltas are paired with the wrong base by Incus";

fn arch_problem(arch_dir: &str) -> Option<String> {
    arch::normalise(arch_dir).is_none().then(|| {
        format!("architecture {arch_dir:?} is unknown to LXD and Incus, which would hide the product silently")
    })
}

/// Why a build would never publish a file stored at `path` (relative to
/// the root), if it would not: the rules the scan applies to one file of
/// `images/<os>/<release>/<arch>/<variant>/<version>/<file>`, for an
/// upload to refuse at once what would otherwise be stored and then
/// silently left out. Whether the version is complete is not judged.
#[must_use]
pub fn unpublishable(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let [top, os, release, arch_dir, variant, version, name] = parts[..] else {
        return Some(format!(
            "is not a file of a version directory; files go to {IMAGES}/<os>/<release>/<arch>/<variant>/<version>/<file>"
        ));
    };
    if top != IMAGES {
        return Some(format!("is not under {IMAGES}/"));
    }
    for part in [os, release, arch_dir, variant, version, name] {
        if !rules::is_dir_name(part) {
            return Some(format!(
                "{part:?} is empty, hidden or has characters outside [A-Za-z0-9._~:-], which the clients escape differently"
            ));
        }
    }
    if let Some(why) = arch_problem(arch_dir) {
        return Some(format!("{why}; {ARCH_HELP}"));
    }
    if !rules::is_version_name(version) {
        return Some(format!("{version:?}: {BAD_VERSION}; {VERSION_HELP}"));
    }
    match classify::by_name(name) {
        Kind::Other if name != checksums::FILE_NAME => Some(format!(
            "{name:?} is a file name the build never publishes; give it the name of what it is: incus.tar.xz or lxd.tar.xz (metadata), rootfs.squashfs, root.tar.xz or disk.qcow2 (root), NAME_combined.tar.gz (unified), delta-<version>.vcdiff, or SHA256SUMS"
        )),
        Kind::Delta {
            root: RootType::DiskKvm,
            ..
        } => Some(format!("{name:?}: {VM_DELTA}")),
        _ => None,
    }
}

#[derive(Default)]
struct ProductFiles<'a> {
    versions: BTreeMap<&'a str, Vec<&'a Entry>>,
    metadata_json: Option<&'a Entry>,
}

/// Lays out a listing into products and versions.
#[must_use]
pub fn scan(entries: &[Entry], config: &Config) -> Scan {
    let mut diags = Diags::default();
    let mut side: BTreeMap<String, (Option<&Entry>, Option<&Entry>)> = BTreeMap::new();
    let mut products: BTreeMap<[&str; 4], ProductFiles<'_>> = BTreeMap::new();

    for entry in entries {
        let Some(rest) = entry
            .path
            .strip_prefix(IMAGES)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            diags.skip(Diagnostic::new(
                Level::Warning,
                &entry.path,
                "has an empty, `.` or `..` path component; ignored",
                "use plain relative paths under images/",
            ));
            continue;
        }
        let (dirs, name) = parts.split_at(parts.len() - 1);
        let name = name[0];
        // Hidden directories are staging areas (uploads in progress).
        if dirs.iter().any(|d| d.starts_with('.')) {
            continue;
        }
        if name == requirements::FILE_NAME || name == requirements::LXD_FILE_NAME {
            if dirs.len() <= 4 {
                let dir = std::iter::once(IMAGES)
                    .chain(dirs.iter().copied())
                    .collect::<Vec<_>>()
                    .join("/");
                let slot = side.entry(dir).or_default();
                if name == requirements::FILE_NAME {
                    slot.0 = Some(entry);
                } else {
                    slot.1 = Some(entry);
                }
            } else {
                diags.push(Diagnostic::new(
                    Level::Warning,
                    &entry.path,
                    "requirements below the variant directory apply to nothing; ignored",
                    "move it to the variant directory or higher",
                ));
            }
            continue;
        }
        if name == withdrawn::FILE_NAME {
            if let [os, release, arch, variant, version] = dirs {
                products
                    .entry([os, release, arch, variant])
                    .or_default()
                    .versions
                    .entry(version)
                    .or_default()
                    .push(entry);
            }
            continue;
        }
        if name.starts_with('.') {
            continue;
        }
        match dirs {
            [os, release, arch, variant] if name == METADATA_JSON => {
                products
                    .entry([os, release, arch, variant])
                    .or_default()
                    .metadata_json = Some(entry);
            }
            [os, release, arch, variant, version] => {
                products
                    .entry([os, release, arch, variant])
                    .or_default()
                    .versions
                    .entry(version)
                    .or_default()
                    .push(entry);
            }
            // An image file out of place is an image left out (a warning);
            // anything else (a README) is only noted.
            _ if classify::by_name(name) != Kind::Other => {
                let help = match dirs {
                    [os, release, arch, version] if rules::is_version_name(version) => {
                        format!(
                            "the variant directory is missing: move it to images/{os}/{release}/{arch}/default/{version}/"
                        )
                    }
                    _ => "move it into a version directory images/<os>/<release>/<arch>/<variant>/<version>/".to_owned(),
                };
                diags.skip(Diagnostic::new(
                    Level::Warning,
                    &entry.path,
                    "is an image file outside the layout images/<os>/<release>/<arch>/<variant>/<version>/<file>; left out",
                    help,
                ));
            }
            _ => diags.skip(Diagnostic::new(
                Level::Note,
                &entry.path,
                "is outside the layout images/<os>/<release>/<arch>/<variant>/<version>/<file>; ignored",
                "move it into a version directory if it belongs to an image",
            )),
        }
    }

    // `:` joins the four names into the id, so `a:b/c` and `a/b:c` give
    // one: a catalog holding both would merge them under one product (and
    // the clients would show one of them). Both are named and neither is
    // published.
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for [os, release, arch_dir, variant] in products.keys() {
        let path = ProductPath::new(*os, *release, *arch_dir, *variant);
        by_id.entry(path.id()).or_default().push(path.dir());
    }
    let mut out = Vec::new();
    for ([os, release, arch_dir, variant], files) in products {
        let path = ProductPath::new(os, release, arch_dir, variant);
        if let Some(dirs) = by_id.get(&path.id()).filter(|d| d.len() > 1) {
            let others: Vec<&str> = dirs
                .iter()
                .map(String::as_str)
                .filter(|d| *d != path.dir())
                .collect();
            diags.skip(Diagnostic::new(
                Level::Error,
                path.dir(),
                format!(
                    "gives the product id {} as {} does (\":\" joins os, release, arch and variant into the id); neither is published",
                    path.id(),
                    others.join(" and ")
                ),
                "rename the directory so that its os, release and variant hold no \":\"",
            ));
            continue;
        }
        if let Some(p) = product(&path, &files, &side, &mut diags) {
            out.push(p);
        }
    }
    Scan {
        products: out,
        diagnostics: diags.list,
        left_out: diags.left_out,
        clients: config.clients,
    }
}

fn product(
    path: &ProductPath,
    files: &ProductFiles<'_>,
    side: &BTreeMap<String, (Option<&Entry>, Option<&Entry>)>,
    diags: &mut Diags,
) -> Option<Product> {
    let dir = &path.dir();
    let [os, release, arch_dir, variant] =
        [&path.os, &path.release, &path.arch, &path.variant].map(String::as_str);
    if let Some(why) = arch_problem(arch_dir) {
        diags.skip(Diagnostic::new(
            Level::Warning,
            dir,
            format!("{why}; skipped"),
            ARCH_HELP,
        ));
        return None;
    }
    if let Some(client) = arch::only_known_to(arch_dir) {
        diags.push(Diagnostic::new(
            Level::Warning,
            dir,
            format!("architecture {arch_dir:?} is known only to {client}"),
            "use a name both clients know, such as amd64",
        ));
    }
    if !dir.chars().all(is_url_char) {
        diags.skip(Diagnostic::new(
            Level::Warning,
            dir,
            "has characters outside [A-Za-z0-9._~/:-], which the clients escape differently; skipped",
            "rename the directories",
        ));
        return None;
    }

    let (requirements, lxd_requirements) = inherited_requirements(dir, side, diags);
    let known = distro::lookup(os, release);
    let mut p = Product {
        id: path.id(),
        os: os.to_owned(),
        release: release.to_owned(),
        arch: arch_dir.to_owned(),
        variant: variant.to_owned(),
        os_title: known.os_title,
        release_title: known.release_title,
        codename: known.codename,
        aliases: Vec::new(),
        requirements,
        lxd_requirements,
        versions: Vec::new(),
    };
    let mut aliases = default_aliases(os, release, variant, &known.other_names);
    if let Some(entry) = files.metadata_json {
        apply_metadata_json(entry, &mut p, &mut aliases, diags);
    }
    p.aliases = valid_aliases(dir, arch_dir, aliases, diags);

    for (name, entries) in &files.versions {
        if let Some(v) = version(dir, name, entries, diags) {
            p.versions.push(v);
        }
    }
    check_version_formats(dir, &p.versions, diags);
    resolve_deltas(dir, &mut p.versions, diags);
    if p.versions.is_empty() {
        diags.skip(Diagnostic::new(
            Level::Warning,
            dir,
            "has no complete version; the product is left out",
            "add a version directory with a metadata tarball and a root file",
        ));
        return None;
    }
    Some(p)
}

/// Merges the side files of `images/`, `images/os`, … down to the variant,
/// the nearer winning key by key (a `null` removes a key). `.lxd_requirements`
/// layers on top of `.requirements` at each level, for LXD only. An error is recorded for a
/// malformed file (it blocks publishing).
fn inherited_requirements(
    dir: &str,
    side: &BTreeMap<String, (Option<&Entry>, Option<&Entry>)>,
    diags: &mut Diags,
) -> (Requirements, Option<Requirements>) {
    let mut common = Requirements::new();
    let mut lxd = Requirements::new();
    let mut lxd_file_seen = false;
    let mut prefix = String::new();
    for part in dir.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        let Some((req, lxd_req)) = side.get(&prefix) else {
            continue;
        };
        for (entry, is_lxd) in [(req, false), (lxd_req, true)] {
            let Some(entry) = entry else { continue };
            let parsed = entry
                .contents
                .as_deref()
                .map(|bytes| requirements::parse(&entry.path, bytes));
            match parsed {
                Some(Ok((map, notes))) => {
                    // Report each file's notes once, for its first product.
                    for n in notes {
                        if !diags.contains(&n) {
                            diags.push(n);
                        }
                    }
                    if is_lxd {
                        lxd_file_seen = true;
                    } else {
                        map.apply(&mut common);
                    }
                    map.apply(&mut lxd);
                }
                Some(Err(d)) => {
                    if !diags.contains(&d) {
                        diags.push(d);
                    }
                }
                None => diags.push(Diagnostic::new(
                    Level::Error,
                    &entry.path,
                    "contents were not provided by the adapter",
                    "this is a bug in the program that called ssgen-core",
                )),
            }
        }
    }
    // LXD reads `lxd_requirements` whenever the key is present, even `{}`
    // (`docs/protocol.md#requirements`): write it only when it says something, and always when
    // old LXD (≤ 5.0.2, which reads nothing else) must see requirements.
    // An empty one beside requirements says LXD applies none of them: only
    // a `.lxd_requirements` that removes every key says that.
    let lxd_out = (!common.is_empty() || (lxd_file_seen && !lxd.is_empty())).then_some(lxd);
    if lxd_file_seen && common.is_empty() && lxd_out.is_some() {
        diags.push(Diagnostic::new(
            Level::Note,
            dir,
            "has .lxd_requirements but no .requirements: Incus sees no requirements",
            "add a .requirements file (it serves both clients)",
        ));
    }
    (common, lxd_out)
}

fn default_aliases(os: &str, release: &str, variant: &str, other_names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for rel in std::iter::once(release).chain(other_names.iter().map(String::as_str)) {
        out.push(format!("{os}/{rel}/{variant}"));
        if variant == "default" {
            out.push(format!("{os}/{rel}"));
        }
    }
    // lxc-ci and imagebuilder give rolling releases named `current` the
    // bare os name (`docs/protocol.md#aliases`).
    if release == "current" {
        out.push(if variant == "default" {
            os.to_owned()
        } else {
            format!("{os}/{variant}")
        });
    }
    out
}

fn apply_metadata_json(
    entry: &Entry,
    p: &mut Product,
    aliases: &mut Vec<String>,
    diags: &mut Diags,
) {
    match ProductFields::parse(&entry.path, entry.contents.as_deref().unwrap_or_default()) {
        Ok((fields, notes)) => {
            if let Some(os) = fields.os {
                p.os_title = os;
            }
            if let Some(title) = fields.release_title {
                p.release_title = title;
            }
            aliases.extend(fields.aliases);
            for n in notes {
                diags.push(n);
            }
        }
        Err(errors) => {
            for e in errors {
                diags.push(e);
            }
        }
    }
}

/// Keeps the aliases a local server would accept when an image is copied
/// with them (`docs/protocol.md#aliases`), dropping duplicates.
fn valid_aliases(
    dir: &str,
    arch_dir: &str,
    aliases: Vec<String>,
    diags: &mut Diags,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for alias in aliases {
        if out.contains(&alias) {
            continue;
        }
        let problems = rules::alias_problems(&alias, arch_dir);
        if problems.is_empty() {
            out.push(alias);
        } else {
            diags.push(Diagnostic::new(
                Level::Warning,
                dir,
                format!("alias {alias:?}: {}; dropped", rules::describe(&problems)),
                "aliases are 64 characters at most with the /<arch> suffix, start and end with an ASCII letter or digit, and have no spaces, control characters, commas, colons or $?&+\"'*`",
            ));
        }
    }
    out
}

fn version(dir: &str, name: &str, entries: &[&Entry], diags: &mut Diags) -> Option<Version> {
    let vdir = format!("{dir}/{name}");
    if !rules::is_version_name(name) {
        diags.skip(Diagnostic::new(
            Level::Warning,
            &vdir,
            format!("{BAD_VERSION}; skipped"),
            VERSION_HELP,
        ));
        return None;
    }
    if !name.chars().all(is_url_char) {
        diags.skip(Diagnostic::new(
            Level::Warning,
            &vdir,
            "version name has characters outside [A-Za-z0-9._~:-]; skipped",
            "rename it like 20260801_0312",
        ));
        return None;
    }
    let mut files = Vec::new();
    let marker = entries.iter().find(|e| e.name() == withdrawn::FILE_NAME);
    let withdrawn = match marker
        .map(|m| Withdrawn::parse(m.contents.as_deref().unwrap_or_default()))
    {
        None => None,
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            diags.push(Diagnostic::new(
                Level::Warning,
                marker.map_or(String::new(), |m| m.path.clone()),
                format!("is not a valid marker ({e}); the whole version is treated as withdrawn"),
                "delete the marker to publish the version again",
            ));
            Some(Withdrawn {
                since: 0,
                files: None,
            })
        }
    };
    if withdrawn.as_ref().is_some_and(|w| w.files.is_none()) {
        diags.push(Diagnostic::new(
            Level::Note,
            &vdir,
            "is withdrawn (.withdrawn marker); its files stay until `ssgen prune` deletes them after the grace period",
            "delete the .withdrawn file to publish it again",
        ));
        return None;
    }
    let sums_file = entries.iter().find(|e| e.name() == checksums::FILE_NAME);
    let sums = match sums_file.and_then(|e| e.contents.as_deref().map(|c| (e, c))) {
        // No file, or an adapter that cannot read it: nothing to compare.
        None => BTreeMap::new(),
        Some((entry, bytes)) => {
            match std::str::from_utf8(bytes)
                .map_err(|_| "it is not text".to_owned())
                .and_then(checksums::parse)
            {
                Ok(sums) => sums,
                // Another tool's file of that name: say so, and compare nothing.
                Err(why) => {
                    diags.push(Diagnostic::new(
                    Level::Warning,
                    &entry.path,
                    format!("is not a checksum list ({why}), so the files are not checked against it"),
                    "write it with `sha256sum FILE... > SHA256SUMS`, or rename it",
                ));
                    BTreeMap::new()
                }
            }
        }
    };
    let mut problems: Vec<(String, &str)> = Vec::new();
    for listed in sums.keys() {
        if !entries.iter().any(|e| e.name() == listed) {
            problems.push((
                format!("SHA256SUMS lists {listed}, which is not here (yet)"),
                "finish the upload, or remove the line from SHA256SUMS",
            ));
        }
    }
    for entry in entries {
        let name = entry.name();
        if name == withdrawn::FILE_NAME || withdrawn.as_ref().is_some_and(|w| w.covers(name)) {
            continue;
        }
        if !name.chars().all(is_url_char) {
            diags.skip(Diagnostic::new(
                Level::Note,
                &entry.path,
                "file name has characters outside [A-Za-z0-9._~:-]; ignored",
                "rename it",
            ));
            continue;
        }
        let kind = classify::by_name(name);
        if let Err(why) = classify::check_magic(&kind, entry.head.as_deref()) {
            problems.push((
                format!("{name} {why}"),
                "replace it with the real file (the clients check every byte)",
            ));
            continue;
        }
        let role = match kind {
            Kind::Meta(m) => FileRole::Meta(m),
            Kind::Root(r) => FileRole::Root(r),
            Kind::Unified => FileRole::Unified,
            Kind::Delta {
                root: RootType::Squashfs,
                base,
            } => FileRole::Delta { base },
            Kind::Delta { .. } => {
                diags.skip(Diagnostic::new(
                    Level::Warning,
                    &entry.path,
                    format!("{VM_DELTA}; not published"),
                    "publish only squashfs deltas",
                ));
                continue;
            }
            Kind::Other => continue,
        };
        if entry.size == 0 {
            problems.push((format!("{name} is empty"), "upload the file again"));
            continue;
        }
        files.push(VersionFile {
            path: entry.path.clone(),
            size: entry.size,
            role,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let mut root_types = BTreeMap::new();
    for f in &files {
        if let FileRole::Root(r) = f.role {
            if let Some(other) = root_types.insert(r, &f.path) {
                problems.push((
                    format!(
                        "two {} roots ({} and {}) would share one fingerprint",
                        r.ftype(),
                        other.rsplit('/').next().unwrap_or(other),
                        f.path.rsplit('/').next().unwrap_or(&f.path),
                    ),
                    "keep one of them",
                ));
            }
        }
    }
    let has_meta = files.iter().any(|f| matches!(f.role, FileRole::Meta(_)));
    let has_root = !root_types.is_empty();
    let has_unified = files.iter().any(|f| f.role == FileRole::Unified);
    const STAGE: &str = "finish the upload; to keep clients from seeing a version before it is complete, upload into a hidden directory (.NAME) and rename it";
    if problems.is_empty() && !has_unified {
        if has_meta && !has_root {
            problems.push((
                "has a metadata tarball but no root file (rootfs.squashfs, root.tar.xz or disk.qcow2)".into(),
                STAGE,
            ));
        } else if has_root && !has_meta {
            problems.push((
                "has a root file but no lxd.tar.xz or incus.tar.xz".into(),
                STAGE,
            ));
        } else if !has_meta {
            problems.push((
                "has no image files".into(),
                "add lxd.tar.xz or incus.tar.xz with rootfs.squashfs, root.tar.xz or disk.qcow2",
            ));
        }
    }
    if !problems.is_empty() {
        let mut helps: Vec<&str> = problems.iter().map(|(_, h)| *h).collect();
        helps.dedup();
        let what: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        diags.skip(Diagnostic::new(
            Level::Warning,
            &vdir,
            format!("{}; version skipped", what.join("; ")),
            helps.join("; "),
        ));
        return None;
    }
    let sums = files
        .iter()
        .filter_map(|f| {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            sums.get(name).map(|d| (f.path.clone(), *d))
        })
        .collect();
    Some(Version {
        name: name.to_owned(),
        files,
        sums,
    })
}

/// Byte-wise sorting decides which version is newest (`docs/protocol.md#aliases`, `docs/protocol.md#version-names`): mixed
/// formats (`YYYYMMDDhhmm` beside `YYYYMMDD_hhmm`) sort wrongly.
fn check_version_formats(dir: &str, versions: &[Version], diags: &mut Diags) {
    let shapes = rules::version_shapes(versions.iter().map(|v| v.name.as_str()));
    if shapes.len() > 1 {
        diags.push(Diagnostic::new(
            Level::Warning,
            dir,
            format!(
                "version names mix formats ({}); clients sort them byte-wise, so the newest may not win the aliases",
                shapes.into_iter().collect::<Vec<_>>().join(", ")
            ),
            "name every version YYYYMMDD_HHMM",
        ));
    }
}

/// A delta needs its base version (older, same product, with a squashfs
/// root) and a squashfs root in its own version (`docs/protocol.md#deltas`); otherwise it is
/// left out, since a delta that fails to apply aborts the download.
fn resolve_deltas(dir: &str, versions: &mut [Version], diags: &mut Diags) {
    let with_squashfs: BTreeSet<String> = versions
        .iter()
        .filter(|v| v.roots().any(|(_, r)| r == RootType::Squashfs))
        .map(|v| v.name.clone())
        .collect();
    for v in versions.iter_mut() {
        let own_squashfs = with_squashfs.contains(&v.name);
        let name = v.name.clone();
        v.files.retain(|f| {
            let FileRole::Delta { base } = &f.role else {
                return true;
            };
            let why = if !own_squashfs {
                Some("its version has no squashfs root".to_owned())
            } else if base >= &name {
                Some(format!("its base {base:?} is not older than {name:?}"))
            } else if !with_squashfs.contains(base) {
                Some(format!(
                    "its base version {base:?} does not exist with a squashfs root in {dir}"
                ))
            } else {
                None
            };
            if let Some(why) = why {
                diags.skip(Diagnostic::new(
                    Level::Warning,
                    &f.path,
                    format!("delta left out: {why}"),
                    "name deltas delta-<base version>.vcdiff against an older published version",
                ));
                return false;
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> Vec<Entry> {
        paths.iter().map(|p| Entry::file(*p, 10)).collect()
    }

    #[test]
    fn half_uploaded_and_bad_versions_are_reported() {
        let d = "images/debian/12/amd64/default";
        let entries = tree(&[
            &format!("{d}/20260801_0312/incus.tar.xz"),
            &format!("{d}/20260801_0312/rootfs.squashfs"),
            &format!("{d}/20260802_0312/incus.tar.xz"),
            &format!("{d}/latest/incus.tar.xz"),
            &format!("{d}/.20260803_0000/incus.tar.xz"),
            "images/debian/12/x86-64/default/20260801_0312/incus.tar.xz",
        ]);
        let scan = scan(&entries, &Config::new(0));
        assert_eq!(scan.products.len(), 1);
        assert_eq!(scan.products[0].versions.len(), 1);
        let text: Vec<String> = scan.diagnostics.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("20260802_0312") && t.contains("no root file")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("latest") && t.contains("YYYYMMDD")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("x86-64") && t.contains("unknown")),
            "{text:?}"
        );
        assert!(!text.iter().any(|t| t.contains(".20260803")), "{text:?}");
    }

    /// The side files a mirror writes for a source product are read back
    /// by a build as the requirements each client read of the source, for
    /// every shape the merge of `.requirements` and `.lxd_requirements`
    /// could not say before `null` removed a key.
    #[test]
    fn mirrored_requirements_read_back_as_each_client_read_them() {
        let d = "images/debian/12/amd64/default";
        let map = |pairs: &[(&str, &str)]| -> Requirements {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let sb = map(&[("secureboot", "false")]);
        let both = map(&[("secureboot", "false"), ("nesting", "true")]);
        let nesting = map(&[("nesting", "true")]);
        let cases = [
            (Some(sb.clone()), Some(nesting.clone())),
            (Some(both.clone()), Some(Requirements::new())),
            (Some(both.clone()), Some(map(&[("secureboot", "true")]))),
            (None, Some(sb.clone())),
            (Some(sb.clone()), None),
            (Some(both), Some(nesting)),
            (Some(Requirements::new()), Some(Requirements::new())),
            (None, None),
        ];
        for (req, lxd) in cases {
            let source = crate::remote::Product {
                requirements: req.clone(),
                lxd_requirements: lxd.clone(),
                ..crate::remote::Product::default()
            };
            let mut entries = tree(&[
                &format!("{d}/20260801_0312/incus.tar.xz"),
                &format!("{d}/20260801_0312/rootfs.squashfs"),
            ]);
            for (name, text) in crate::export::mirror_side_files(&source) {
                entries.push(Entry {
                    contents: Some(text.into_bytes()),
                    ..Entry::file(format!("{d}/{name}"), 1)
                });
            }
            let scan = scan(&entries, &Config::new(0));
            let [p] = &scan.products[..] else {
                panic!("one product: {:?}", scan.diagnostics)
            };
            let built = crate::remote::Product {
                requirements: Some(p.requirements.clone()).filter(|r| !r.is_empty()),
                lxd_requirements: p.lxd_requirements.clone(),
                ..crate::remote::Product::default()
            };
            for c in Client::ALL {
                assert_eq!(
                    built.requirements_for(c).cloned().unwrap_or_default(),
                    source.requirements_for(c).cloned().unwrap_or_default(),
                    "{c:?} of requirements {req:?}, lxd_requirements {lxd:?}"
                );
            }
        }
    }

    #[test]
    fn two_directories_giving_one_product_id_are_an_error_naming_both() {
        let a = "images/x:y/z/amd64/default";
        let b = "images/x/y:z/amd64/default";
        let entries = tree(&[
            &format!("{a}/20260801_0312/incus.tar.xz"),
            &format!("{a}/20260801_0312/rootfs.squashfs"),
            &format!("{b}/20260802_0312/incus.tar.xz"),
            &format!("{b}/20260802_0312/rootfs.squashfs"),
        ]);
        let scan = scan(&entries, &Config::new(0));
        assert!(scan.has_errors());
        assert!(scan.products.is_empty(), "{:?}", scan.products);
        for (dir, other) in [(a, b), (b, a)] {
            assert!(
                scan.diagnostics.iter().any(|d| d.path == dir
                    && d.level == Level::Error
                    && d.message.contains(other)
                    && d.message.contains("x:y:z:amd64:default")),
                "{:?}",
                scan.diagnostics
            );
        }
    }

    #[test]
    fn aliases_from_table_and_current() {
        assert_eq!(
            default_aliases("debian", "12", "default", &["bookworm".into()]),
            [
                "debian/12/default",
                "debian/12",
                "debian/bookworm/default",
                "debian/bookworm"
            ]
        );
        assert_eq!(
            default_aliases("archlinux", "current", "cloud", &[]),
            ["archlinux/current/cloud", "archlinux/cloud"]
        );
    }

    #[test]
    fn uploads_the_build_would_leave_out_are_named() {
        let d = "images/debian/12/amd64/default";
        assert_eq!(
            unpublishable(&format!("{d}/20260801_0312/lxd.tar.xz")),
            None
        );
        assert_eq!(
            unpublishable(&format!("{d}/20260801_0312/SHA256SUMS")),
            None
        );
        let why = |p: String| unpublishable(&p).unwrap_or_default();
        assert!(why(format!("{d}/latest/lxd.tar.xz")).contains("YYYYMMDD"));
        assert!(why(format!("{d}/20260801_0312/notes.txt")).contains("\"notes.txt\""));
        assert!(
            why("images/debian/12/x86-64/default/20260801_0312/lxd.tar.xz".into())
                .contains("x86-64")
        );
        assert!(
            why(format!("{d}/20260801_0312/disk.20260701_0000.qcow2.vcdiff"))
                .contains("wrong base")
        );
        assert!(
            why("images/debian/12/amd64/default/lxd.tar.xz".into()).contains("version directory")
        );
    }

    #[test]
    fn plan_skips_known_files() {
        let d = "images/debian/12/amd64/default/20260801_0312";
        let entries = tree(&[
            &format!("{d}/incus.tar.xz"),
            &format!("{d}/rootfs.squashfs"),
        ]);
        let scan = scan(&entries, &Config::new(0));
        let plan = scan.plan(&Digests::default());
        assert_eq!(plan.prefixes.len(), 1);
        assert_eq!(plan.bodies.len(), 1);
        assert_eq!(plan.bodies[0].prefixes, vec![format!("{d}/incus.tar.xz")]);

        let mut known = Digests::default();
        let z = crate::Sha256([0; 32]);
        known.files.insert(format!("{d}/incus.tar.xz"), z);
        known.files.insert(format!("{d}/rootfs.squashfs"), z);
        // The pair is new: both are read again.
        assert_eq!(scan.plan(&known).bodies.len(), 1);
        known.combined.insert(
            (format!("{d}/incus.tar.xz"), format!("{d}/rootfs.squashfs")),
            z,
        );
        assert!(scan.plan(&known).is_empty());
    }
}
