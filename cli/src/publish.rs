//! Publishing a root's catalog: the rebuild every writer runs (build,
//! watch, serve, import, mirror, prune, remove), the options they share,
//! resolved once into [`Settings`], the root lock they take, and the one
//! scan of a tree that the rebuild and a push both start with
//! ([`scan_tree`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use ssgen_core::vocab::IMAGES;
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{
    Client, Clients, Config, Diagnostic, Digests, IMAGES_JSON, INDEX_JSON, Level, Scan, Sha256,
};

use crate::cache::Cache;
use crate::confine::{Leftover, Root};
use crate::delta::{self, DeltaOptions};
use crate::exit::{Invalid, Refused};
use crate::lock::RootLock;
use crate::page;
use crate::{hashing, walk};

/// Which clients to write the catalog for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// Only LXD (`lxd.tar.xz` items, `lxd_requirements`).
    Lxd,
    /// Only Incus (`incus.tar.xz` items, `requirements`).
    Incus,
}

/// Options shared by every command that rebuilds the catalogs.
#[derive(Debug, Clone, Args)]
pub struct BuildOptions {
    /// Write the catalog for one client only (default: both LXD and Incus).
    #[arg(long, value_enum)]
    pub only: Option<Only>,

    /// The build time as Unix seconds, for `updated` (default: now, or
    /// SOURCE_DATE_EPOCH when set). An unchanged tree keeps its old time.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub timestamp: Option<i64>,

    /// Publish a catalog without any image over one that lists images.
    /// Without it that is refused and the published catalog is kept: it
    /// is nearly always images/ moved away or a volume not mounted.
    #[arg(long)]
    pub allow_empty: bool,

    /// Seconds to wait for another writer of the root (a build, an import,
    /// a prune...) to release the root lock ROOT/.ssgen/lock before giving
    /// up.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 600,
        env = "SSGEN_LOCK_TIMEOUT"
    )]
    pub lock_timeout: u64,

    /// Fail on any warning (a version, product, file or delta left out, or
    /// something a client would mishandle) instead of publishing the rest:
    /// exit 1, nothing written. For CI, where a skipped image is a bug.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub deltas: DeltaOptions,
}

impl Default for BuildOptions {
    /// The options of a command line that gives none.
    fn default() -> Self {
        Self {
            only: None,
            timestamp: None,
            allow_empty: false,
            lock_timeout: 600,
            strict: false,
            deltas: DeltaOptions::default(),
        }
    }
}

/// What a build published.
#[derive(Debug)]
pub struct Built {
    pub images_json: String,
    pub index_json: String,
    pub products: usize,
    pub images: usize,
    /// Whether images.json changed.
    pub changed: bool,
    /// Everything the build reported.
    pub diagnostics: Vec<Diagnostic>,
}

/// The options of a writer, resolved once.
#[derive(Clone, Debug)]
pub struct Settings {
    clients: Clients,
    /// A fixed `updated` time; `None` is the time of each build.
    timestamp: Option<i64>,
    /// How long to wait for the root lock.
    pub lock_wait: Duration,
    /// Whether an empty catalog may replace one with images.
    pub allow_empty: bool,
    /// Whether a warning fails the build.
    pub strict: bool,
    /// The delta flags; each unset one comes from the root's config file
    /// when the rebuild resolves it.
    pub deltas: DeltaOptions,
    /// The page for people to write beside `streams/` after the catalog
    /// (`ssgen build --html`), if any.
    pub page: Option<ssgen_core::html::Options>,
}

/// The build time a command was given, else SOURCE_DATE_EPOCH's, else
/// none (now).
pub fn timestamp(given: Option<i64>) -> Result<Option<i64>> {
    if given.is_some() {
        return Ok(given);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(Some(v.parse().map_err(|_| {
            Invalid(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds; unset it or fix it"
            ))
        })?)),
        Err(_) => Ok(None),
    }
}

impl Settings {
    /// Resolves `options` (and SOURCE_DATE_EPOCH).
    pub fn new(options: &BuildOptions) -> Result<Self> {
        let timestamp = timestamp(options.timestamp)?;
        let clients = match options.only {
            None => Clients::Both,
            Some(Only::Lxd) => Clients::Only(Client::Lxd),
            Some(Only::Incus) => Clients::Only(Client::Incus),
        };
        Ok(Self {
            clients,
            timestamp,
            lock_wait: Duration::from_secs(options.lock_timeout),
            allow_empty: options.allow_empty,
            strict: options.strict,
            deltas: options.deltas.clone(),
            page: None,
        })
    }

    /// The same settings with `updated` fixed to `timestamp`.
    pub fn at(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The time of a build now: the fixed one, or the clock's.
    pub fn timestamp(&self) -> i64 {
        self.timestamp.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }

    /// The core's configuration for a build now.
    pub fn config(&self) -> Config {
        Config {
            clients: self.clients,
            timestamp: self.timestamp(),
        }
    }

    /// Takes the root lock of `root`, waiting as long as the settings say.
    pub fn lock(&self, root: &Root) -> Result<RootLock> {
        RootLock::acquire(root.path(), self.lock_wait)
    }
}

/// Builds the catalogs of `root` under its root lock; writes them (files
/// first, then images.json, then index.json, each atomically) unless
/// `dry_run` (which takes no lock and writes nothing). Diagnostics go to
/// stderr. Errors in the input write nothing.
pub fn rebuild(root: &Path, settings: &Settings, dry_run: bool) -> Result<Built> {
    let root = Root::open(root)?;
    if dry_run {
        return build(&root, settings, None);
    }
    let lock = settings.lock(&root)?;
    build(&root, settings, Some(&lock))
}

/// [`rebuild`] by a writer that already holds the root lock.
pub fn rebuild_locked(root: &Root, lock: &RootLock, settings: &Settings) -> Result<Built> {
    build(root, settings, Some(lock))
}

/// A tree listed, laid out and hashed: what a rebuild or a push publishes.
pub struct Scanned {
    /// The files under `images/`.
    pub listing: walk::Listing,
    /// Its layout: products, versions, and what is left out.
    pub scan: Scan,
    /// The digests of every file the catalog lists.
    pub digests: Digests,
    /// How many files were read to hash them, and their bytes (the cache
    /// knew the others).
    pub read: (usize, u64),
    cache: Cache,
}

/// One file a catalog of the tree lists, with its digests.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Relative to the root (`images/…`).
    pub path: String,
    pub size: u64,
    pub sha256: Sha256,
    /// For a root: the name of each metadata file it pairs with → the
    /// pair's fingerprint, `sha256(metadata ‖ this file)`.
    pub combined: BTreeMap<String, Sha256>,
}

impl Scanned {
    /// Records the digests in the cache (for the listing as it is now,
    /// deltas made since the scan included) and writes the cache when it
    /// changed.
    pub fn save_cache(&mut self) -> Result<()> {
        save_cache(&mut self.cache, &self.listing, &self.digests)
    }

    /// Every file of a published version, with its digests.
    pub fn files(&self) -> Result<Vec<TreeFile>> {
        let mut combined: BTreeMap<&str, BTreeMap<String, Sha256>> = BTreeMap::new();
        for ((meta, root), digest) in &self.digests.combined {
            combined
                .entry(root.as_str())
                .or_default()
                .insert(file_name(meta).to_owned(), *digest);
        }
        self.scan
            .files()
            .map(|f| {
                let sha256 = *self
                    .digests
                    .files
                    .get(&f.path)
                    .ok_or_else(|| anyhow!("{}: not hashed", f.path))?;
                Ok(TreeFile {
                    path: f.path.clone(),
                    size: f.size,
                    sha256,
                    combined: combined.remove(f.path.as_str()).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The files of the listing that `.withdrawn` markers take out of the
    /// catalog (the markers aside), as the build reads the markers: one it
    /// cannot parse withdraws its whole version.
    pub fn withdrawn(&self) -> BTreeSet<String> {
        let files = &self.listing.files;
        let mut out = BTreeSet::new();
        for (path, listed) in files {
            if file_name(path) != withdrawn::FILE_NAME {
                continue;
            }
            let dir = dir_of(path);
            let marker =
                Withdrawn::parse(listed.entry.contents.as_deref().unwrap_or_default()).ok();
            out.extend(
                files
                    .keys()
                    .filter(|p| dir_of(p) == dir)
                    .filter(|p| {
                        let name = file_name(p);
                        name != withdrawn::FILE_NAME
                            && marker.as_ref().is_none_or(|m| m.covers(name))
                    })
                    .cloned(),
            );
        }
        out
    }
}

fn save_cache(cache: &mut Cache, listing: &walk::Listing, digests: &Digests) -> Result<()> {
    if cache.update(listing, digests) {
        cache.save()?;
    }
    Ok(())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The one scan of a tree every writer and a push start with: lists
/// `root` (taking the first bytes and digests the cache still has), lays
/// it out, prints what the layout reports, refuses an error (and, with
/// `--strict`, a warning), and hashes what the cache does not know,
/// checking each file as a build does. Under the root `lock`, what killed
/// writers left is deleted first. The cache is the caller's to save
/// ([`Scanned::save_cache`]), once what it publishes is written.
pub fn scan_tree(root: &Root, settings: &Settings, lock: Option<&RootLock>) -> Result<Scanned> {
    let cache = Cache::load(root.path());
    let listing = walk::list(root.path(), &cache)?;
    if lock.is_some() {
        clean_leftovers(root, &listing.leftovers)?;
    }
    let scan = ssgen_core::scan(&listing.entries(), &settings.config());
    report(&scan.diagnostics, &listing);
    if scan.has_errors() {
        let n = scan
            .diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .count();
        return Err(Refused {
            invalid: Invalid(format!(
                "{n} error(s) above; nothing was written and the published catalog is unchanged"
            )),
            errors: scan
                .diagnostics
                .iter()
                .filter(|d| d.level == Level::Error)
                .cloned()
                .collect(),
        }
        .into());
    }
    refuse_warnings(settings.strict, &scan.diagnostics)?;
    let mut digests = cache.known(&listing);
    let plan = scan.plan(&digests);
    hashing::run(root.path(), &plan, &mut digests, hashing::Check::Whole)?;
    Ok(Scanned {
        listing,
        scan,
        digests,
        read: (plan.jobs().count(), plan.total_bytes()),
        cache,
    })
}

/// [`scan_tree`] for a push, which sends the tree as it is (to a bucket or
/// an edge): a root without `images/` is refused, with `--strict` so is
/// a warning the catalog would give, and the cache is saved at once (a
/// failure to save it is only a warning: it saves work, nothing more).
pub fn scan_to_push(root: &Path, settings: &Settings) -> Result<Scanned> {
    if !root.join(IMAGES).is_dir() {
        return Err(Invalid(format!(
            "{}: no {IMAGES}/ directory; give the server root",
            root.display()
        ))
        .into());
    }
    let confined = Root::open(root)?;
    let mut tree = scan_tree(&confined, settings, None)?;
    // A push names no delta a build would withhold.
    tree.scan = delta::proved(
        &confined,
        &mut tree.listing,
        tree.scan,
        &mut tree.digests,
        &settings.config(),
    )?;
    if settings.strict {
        refuse_catalog_warnings(&tree.scan, &tree.digests, &settings.config(), &tree.listing)?;
    }
    if let Err(e) = tree.save_cache() {
        eprintln!("warning: {e:#}");
    }
    Ok(tree)
}

fn build(root: &Root, settings: &Settings, lock: Option<&RootLock>) -> Result<Built> {
    let config = settings.config();
    let no_images = !root.join(IMAGES).is_dir();
    if no_images {
        eprintln!(
            "warning: {}: has no images/ directory, so there is nothing to publish (fix: give the server root, the directory holding images/, or put the images in ROOT/images/<os>/<release>/<arch>/<variant>/<version>/)",
            root.path().display()
        );
    }
    let Scanned {
        mut listing,
        scan,
        mut digests,
        read,
        mut cache,
    } = scan_tree(root, settings, lock)?;
    if settings.strict && no_images {
        return Err(Invalid(format!(
            "--strict: a warning above; nothing was written (give the server root, or create {})",
            root.join(IMAGES).display()
        ))
        .into());
    }
    let images_path = root.join(IMAGES_JSON);
    let previous = std::fs::read_to_string(&images_path).ok();
    if settings.strict && lock.is_some() {
        // Everything the catalog would warn about, found before the deltas
        // step writes anything: the deltas already there are checked
        // without making new ones, and the catalog is built without
        // writing it.
        let checked = delta::Step {
            root,
            options: &settings.deltas,
            config: &config,
            dry_run: true,
            announce: false,
        }
        .run(&mut listing, scan.clone(), &mut digests)?;
        refuse_catalog_warnings(&checked, &digests, &config, &listing)?;
    }
    // Deltas are made (and checked) only under the lock; a dry run checks
    // the ones on disk and makes none.
    let scan = delta::Step {
        root,
        options: &settings.deltas,
        config: &config,
        dry_run: lock.is_none(),
        announce: lock.is_none(),
    }
    .run(&mut listing, scan, &mut digests)?;

    let streams = root.join("streams").join("v1");
    let out = match ssgen_core::build(&scan, &digests, &config, previous.as_deref()) {
        Ok(out) => out,
        Err(ssgen_core::Error::Invalid(problems)) => {
            for d in &problems {
                eprintln!("{d}");
            }
            return Err(Refused {
                invalid: Invalid(format!(
                    "{} error(s) above; nothing was written and the published catalog is unchanged",
                    problems.len()
                )),
                errors: problems,
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    report(
        out.diagnostics
            .get(scan.diagnostics.len()..)
            .unwrap_or_default(),
        &listing,
    );
    refuse_warnings(settings.strict, &out.diagnostics)?;
    if out.products == 0 && !settings.allow_empty {
        let published = previous.as_deref().map_or(0, product_count);
        if published > 0 {
            return Err(Invalid(format!(
                "{}: the new catalog would list no image, but the published one lists {published} product(s); nothing was written. If {} was moved away or its volume is not mounted, put it back; to publish an empty catalog, run again with --allow-empty",
                root.path().display(),
                root.join(IMAGES).display()
            ))
            .into());
        }
    }
    let changed = previous.as_deref() != Some(out.images_json.as_str());
    if lock.is_some() {
        let index_path = root.join(INDEX_JSON);
        // images.json before index.json: a client that sees the new index
        // finds the new products file.
        if changed {
            root.place(IMAGES_JSON, true)?
                .write_atomic(out.images_json.as_bytes())?;
        }
        if std::fs::read_to_string(&index_path).ok().as_deref() != Some(out.index_json.as_str()) {
            root.place(INDEX_JSON, true)?
                .write_atomic(out.index_json.as_bytes())?;
        }
        // The page lists the catalog, so it follows it.
        if let Some(options) = &settings.page {
            let page = page::render(&out.index_json, &out.images_json, options);
            let path = root.join(ssgen_core::html::FILE_NAME);
            if std::fs::read(&path).ok().as_deref() != Some(page.as_bytes()) {
                root.place(ssgen_core::html::FILE_NAME, true)?
                    .write_atomic(page.as_bytes())?;
            }
        }
        save_cache(&mut cache, &listing, &digests)?;
        eprintln!(
            "{}: {} product(s), {} image(s) in {}{}; read {} file(s), {} byte(s)",
            root.path().display(),
            out.products,
            out.images,
            streams.display(),
            if changed { "" } else { " (unchanged)" },
            read.0,
            read.1,
        );
    }
    Ok(Built {
        images_json: out.images_json,
        index_json: out.index_json,
        products: out.products,
        images: out.images,
        changed,
        diagnostics: out.diagnostics,
    })
}

/// With `strict`, refuses `diagnostics` that hold a warning: something
/// would be left out of the catalog or mishandled by a client.
pub fn refuse_warnings(strict: bool, diagnostics: &[Diagnostic]) -> Result<()> {
    let n = diagnostics
        .iter()
        .filter(|d| d.level == Level::Warning)
        .count();
    if strict && n > 0 {
        return Err(Invalid(format!(
            "--strict: {n} warning(s) above; nothing was written and the published catalog is unchanged (fix them, or drop --strict to publish the rest)"
        ))
        .into());
    }
    Ok(())
}

/// For `--strict`: builds the catalog of `scan` without writing it,
/// prints what only the build finds (duplicate fingerprints, alias
/// clashes), and refuses any warning. A build that fails is left to the
/// caller's own build to report.
pub fn refuse_catalog_warnings(
    scan: &Scan,
    digests: &Digests,
    config: &Config,
    listing: &walk::Listing,
) -> Result<()> {
    let Ok(out) = ssgen_core::build(scan, digests, config, None) else {
        return Ok(());
    };
    report(
        out.diagnostics
            .get(scan.diagnostics.len()..)
            .unwrap_or_default(),
        listing,
    );
    refuse_warnings(true, &out.diagnostics)
}

/// Prints `diagnostics` on stderr, the notes of versions withdrawn whole
/// folded into one line: after a prune there can be dozens, on every
/// rebuild.
pub fn report(diagnostics: &[Diagnostic], listing: &walk::Listing) {
    let withdrawn: BTreeSet<&str> = listing
        .files
        .keys()
        .filter_map(|p| p.strip_suffix(withdrawn::FILE_NAME)?.strip_suffix('/'))
        .collect();
    let mut folded = Vec::new();
    for d in diagnostics {
        if d.level == Level::Note && withdrawn.contains(d.path.as_str()) {
            folded.push(d);
        } else {
            eprintln!("{}", escaped(d));
        }
    }
    match folded[..] {
        [] => {}
        [one] => eprintln!("{}", escaped(one)),
        [first, ..] => eprintln!(
            "note: {} withdrawn versions are left out of the catalog (e.g. {}); their files stay until `ssgen prune` deletes them after the grace period (`ssgen prune --dry-run` lists them)",
            folded.len(),
            first.path
        ),
    }
}

/// A diagnostic as one line per line it means: a control character of a
/// file name (a newline could fake a line of the report) is escaped.
fn escaped(d: &Diagnostic) -> String {
    let escape = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let mut d = d.clone();
    d.path = escape(&d.path);
    d.message = escape(&d.message);
    d.help = escape(&d.help);
    d.to_string()
}

/// How many products a published images.json lists (0 when it cannot be
/// read: then there is nothing to protect).
fn product_count(text: &str) -> usize {
    #[derive(serde::Deserialize)]
    struct Products {
        products: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Products>(text).map_or(0, |p| p.products.len())
}

/// Deletes what killed writers left: the temporary files of atomic writes
/// (written only under the root lock, which the caller holds, so none is
/// live) and upload staging files whose writer is gone (a live upload
/// holds a lock on its file).
fn clean_leftovers(root: &Root, found: &[(String, Leftover)]) -> Result<()> {
    let mut removed = Vec::new();
    let mut candidates = found.to_vec();
    // The catalog's and the cache's own directories, which the walk of
    // images/ does not see.
    for dir in [ssgen_core::STREAMS_DIR, ".ssgen"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if crate::confine::is_leftover(name) == Some(Leftover::Temp) {
                    candidates.push((format!("{dir}/{name}"), Leftover::Temp));
                }
            }
        }
    }
    for (rel, kind) in candidates {
        let stale = match kind {
            Leftover::Temp => true,
            Leftover::Upload => crate::upload::is_abandoned(&root.join(&rel)),
            Leftover::Staging => {
                if staging_is_stale(&rel) {
                    put_back_moved(root, &rel)?;
                }
                continue;
            }
        };
        if stale && root.place(&rel, false)?.remove()? {
            removed.push(rel.clone());
        }
    }
    if !removed.is_empty() {
        eprintln!(
            "removed {} leftover(s) of interrupted writers: {}",
            removed.len(),
            removed.join(", ")
        );
    }
    Ok(())
}

/// Whether the staging directory `rel` is a killed import's: its process
/// is gone (an import stages only under the root lock, which the caller
/// holds, so a live one is another process's mistake to keep).
fn staging_is_stale(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let Some(pid) = crate::confine::staging_pid(name) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let gone = |pid: u32| {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        pid.is_some_and(|pid| {
            rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
        })
    };
    gone(pid)
}

/// Cleans up the staging directory `rel` of a killed import: a file it
/// had moved (`--move`, listed in its manifest) goes back to its source
/// when that is free, and the directory is removed once nothing of a
/// user's is left in it; a line says what was done, or where the files
/// are.
fn put_back_moved(root: &Root, rel: &str) -> Result<()> {
    let manifest = root.join(&format!("{rel}/{}", crate::confine::MOVED_MANIFEST));
    let moved: BTreeMap<String, String> = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut kept = Vec::new();
    for (name, src) in &moved {
        let Ok(place) = root.place(&format!("{rel}/{name}"), false) else {
            continue;
        };
        if std::fs::symlink_metadata(place.path()).is_err() {
            continue;
        }
        let src = Path::new(src);
        if std::fs::symlink_metadata(src).is_err() && place.rename_out(src).is_ok() {
            eprintln!(
                "note: {}: put back {name}, which a killed import had moved from there",
                src.display()
            );
        } else {
            kept.push(format!(
                "{} (from {})",
                place.path().display(),
                src.display()
            ));
        }
    }
    if kept.is_empty() {
        root.place(rel, false)?.remove()?;
        eprintln!("note: removed {rel}, left by a killed import");
    } else {
        eprintln!(
            "note: {rel} was left by a killed import and holds files it moved that could not go back: {}; move them where they belong, then delete {rel}",
            kept.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// The scan gives each published file with its digests and pairs, and
    /// the files markers withdraw: all of a version whose marker does not
    /// parse, only the listed ones of another.
    #[test]
    fn a_scan_gives_the_published_and_the_withdrawn_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let product = ssgen_core::ProductPath::new("d", "12", "amd64", "default");
        let yaml = b"architecture: x86_64\ncreation_date: 1785556800\nproperties:\n  os: d\n";
        let meta = crate::tarball::tar_xz(&[("metadata.yaml", yaml)], 0).expect("tarball");
        let version = |name: &str, root_bytes: &[u8], marker: Option<&str>| {
            let dir = root.join(product.version_dir(name));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("incus.tar.xz"), &meta).expect("meta");
            // A whole superblock's length, so that the file is not cut short.
            let mut bytes = root_bytes.to_vec();
            bytes.resize(96, 0);
            std::fs::write(dir.join("rootfs.squashfs"), bytes).expect("root");
            if let Some(text) = marker {
                std::fs::write(dir.join(withdrawn::FILE_NAME), text).expect("marker");
            }
            product.version_dir(name)
        };
        let new = version("20260801_0000", b"hsqs new", None);
        let old = version("20260701_0000", b"hsqs old", Some("not a marker"));
        let part = version(
            "20260601_0000",
            b"hsqs part",
            Some(r#"{"since": 1, "files": ["rootfs.squashfs"]}"#),
        );
        let settings = Settings::new(&BuildOptions::default()).expect("settings");
        let tree = scan_tree(&Root::open(root).expect("root"), &settings, None).expect("scan");

        let files = tree.files().expect("hashed");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let meta_path = format!("{new}/incus.tar.xz");
        let root_path = format!("{new}/rootfs.squashfs");
        assert_eq!(paths, [meta_path.as_str(), root_path.as_str()]);
        assert_eq!(files[0].sha256, Sha256::of(&meta));
        assert!(files[0].combined.is_empty());
        let pair = tree.digests.combined[&(meta_path.clone(), root_path.clone())];
        assert_eq!(
            files[1].combined,
            BTreeMap::from([("incus.tar.xz".to_owned(), pair)])
        );
        assert_eq!(
            tree.withdrawn(),
            BTreeSet::from([
                format!("{old}/incus.tar.xz"),
                format!("{old}/rootfs.squashfs"),
                format!("{part}/rootfs.squashfs"),
            ])
        );
    }

    #[derive(clap::Parser)]
    struct Line {
        #[command(flatten)]
        options: BuildOptions,
    }

    #[test]
    fn the_default_options_are_those_of_an_empty_command_line() {
        let parsed = Line::parse_from(["ssgen"]).options;
        let default = BuildOptions::default();
        assert_eq!(
            (parsed.only, parsed.timestamp, parsed.allow_empty),
            (default.only, default.timestamp, default.allow_empty)
        );
        // Without SSGEN_LOCK_TIMEOUT in the environment clap gives 600.
        if std::env::var_os("SSGEN_LOCK_TIMEOUT").is_none() {
            assert_eq!(parsed.lock_timeout, default.lock_timeout);
        }
    }
}
