//! `ssgen mirror`: copy chosen images of another simplestreams server
//! (images.linuxcontainers.org, a company server, another ssgen root) into
//! ROOT/images, checked file by file, then build.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::ProgressBar;
use sha2::Digest as _;
use ssgen_core::Client;
use ssgen_core::remote::{Item, Product, Remote};
use ssgen_core::view::{self, Image};
use ssgen_core::vocab::IMAGES;
use ssgen_core::{Ftype, ProductPath, arch, export};

use crate::confine::{self, Place, Renamed, Root};
use crate::exit::{self, Invalid};
use crate::lock::RootLock;
use crate::net;
use crate::publish::{BuildOptions, Only, Settings, rebuild_locked};
use crate::show::TypeArg;
use crate::source::{Catalog, Location, host_arch};

/// Copy images from another simplestreams server into ROOT, then build.
///
/// SOURCE is a server's https:// URL (the one given to `lxc remote add`) or
/// a server root on disk. The images chosen are those LXD or Incus would
/// list from it, filtered by --alias, --arch and --type, and the newest
/// --keep versions of each product. Every file is checked against the
/// sha256 and size the catalog gives before it is filed under
/// ROOT/images/<os>/<release>/<arch>/<variant>/<version>/, and a version
/// appears only once all its files are there, so an interrupted mirror
/// publishes nothing half-copied and the next run resumes where it stopped.
/// The product's os, release title and aliases go into its metadata.json
/// and its requirements into .requirements, unless those files exist. A
/// version's squashfs deltas are copied when their base version is copied
/// in the same run (and checked by decoding, as the build checks every
/// delta).
///
/// After the build, the fingerprints the source advertises are compared
/// with those of the copied files: a source that advertises a wrong one is
/// reported (the copy publishes the right one).
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen mirror https://images.example.org --alias debian/12 /var/www/html
  ssgen mirror https://images.example.org --alias alpine/3.22 --arch amd64 --arch arm64 --keep 2 .
  ssgen mirror --dry-run https://images.example.org --type virtual-machine .
  ssgen mirror /srv/other-root --alias debian/12 .

Run it from cron to follow a source; `ssgen prune --keep N` drops what the
source no longer has. For a private CA, set SSL_CERT_FILE.

Exit status: 0 when every chosen version was copied, 1 when the source
is invalid or a file did not match its catalog, 2 on a network or disk
failure.")]
pub struct MirrorArgs {
    /// The server to copy from: an https:// URL or a server root on disk.
    pub source: String,

    /// The server root to copy into (holding images/ and streams/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Only images with this alias, with or without the /<arch> suffix
    /// (repeatable; default: every image).
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,

    /// Only this architecture: amd64, x86_64, arm64, ... (repeatable;
    /// default: every architecture).
    #[arg(long = "arch", value_name = "ARCH")]
    pub arches: Vec<String>,

    /// Only containers or only virtual machines.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub image_type: Option<TypeArg>,

    /// How many of the newest versions of each product to copy.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub keep: usize,

    /// Print what would be copied; copy and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Give up on a source that sends nothing for this many seconds (while
    /// answering a request or in the middle of a file).
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECONDS",
        env = "SSGEN_STALL_TIMEOUT"
    )]
    pub stall_timeout: u64,

    #[command(flatten)]
    pub options: BuildOptions,
}

/// One version to copy: where it goes and its files.
struct Plan {
    product: String,
    version: String,
    /// Where the product goes in the tree.
    path: ProductPath,
    /// Local file name → the item that fills it.
    files: BTreeMap<&'static str, Item>,
    /// The source's deltas to this version's squashfs from versions this
    /// run copies too (`delta-<base>.vcdiff` → its item): a delta is of use
    /// only beside its base, and a version is complete without them.
    deltas: BTreeMap<String, Item>,
    /// The source's product, for metadata.json and .requirements.
    source: Product,
    /// (client, fingerprint) the source advertises for this version.
    advertised: BTreeSet<(Client, String)>,
}

impl Plan {
    /// Every file to copy, deltas last.
    fn all_files(&self) -> impl Iterator<Item = (&str, &Item)> {
        self.files
            .iter()
            .map(|(n, i)| (*n, i))
            .chain(self.deltas.iter().map(|(n, i)| (n.as_str(), i)))
    }
}

pub fn run(args: &MirrorArgs) -> Result<ExitCode> {
    if args.keep == 0 {
        bail!(Invalid(
            "--keep 0 would copy nothing; give 1 or more".into()
        ));
    }
    let wanted_arches = args
        .arches
        .iter()
        .map(|a| {
            arch::normalise(a).ok_or_else(|| {
                Invalid(format!(
                    "--arch {a}: not an architecture LXD or Incus knows (e.g. amd64, arm64, x86_64)"
                ))
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    if !args.dry_run && fs::symlink_metadata(&args.root).is_ok() && !args.root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root (the folder that holds or will hold images/)",
            args.root.display()
        )));
    }

    let catalog = Catalog::open(&args.source)?;
    let remote = catalog.remote();
    catalog.report_fetch_errors();
    let plans = choose(&remote, args, &wanted_arches)?;
    if plans.is_empty() {
        bail!(Invalid(format!(
            "{}: no image matches; `ssgen list {}` shows what it has",
            args.source, args.source
        )));
    }

    let total: u64 = plans
        .iter()
        .flat_map(Plan::all_files)
        .map(|(_, i)| u64::try_from(i.size).unwrap_or(0))
        .sum();
    if args.dry_run {
        for p in &plans {
            let size: i64 = p.all_files().map(|(_, i)| i.size).sum();
            println!(
                "copy {} {} -> {} ({}, {} bytes)",
                p.product,
                p.version,
                args.root.join(p.path.version_dir(&p.version)).display(),
                p.all_files().map(|(n, _)| n).collect::<Vec<_>>().join(", "),
                size
            );
        }
        println!("{} version(s), {total} bytes at most", plans.len());
        return Ok(ExitCode::SUCCESS);
    }

    let settings = Settings::new(&args.options)?;
    // As for an import, a root that does not exist yet is made.
    if fs::symlink_metadata(&args.root).is_err() {
        fs::create_dir_all(&args.root)
            .with_context(|| format!("cannot create the server root {}", args.root.display()))?;
        eprintln!("created the server root {}", args.root.display());
    }
    let root = Root::open(&args.root)?;
    if settings.strict && args.root.join(IMAGES).is_dir() {
        // A tree that warns already would fail the build after the copy:
        // say so before downloading anything.
        crate::publish::rebuild(&args.root, &settings, true)
            .context("--strict: the root warns before anything is copied; nothing was copied")?;
    }
    // A source that stalls is given up after --stall-timeout, however long
    // a whole file takes.
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let agent: ureq::Agent = net::agent_config()?
        .timeout_recv_response(Some(stall))
        .timeout_per_read(Some(stall))
        .build()
        .into();
    let bar = progress(total);
    let mut failed = 0usize;
    let mut staged: Vec<(&Plan, Staged)> = Vec::new();
    // The versions whose files are (or will be) the source's: only their
    // advertised fingerprints are compared.
    let mut copied: Vec<&Plan> = Vec::new();
    for plan in &plans {
        match stage_version(&root, &catalog, &agent, plan, &bar) {
            Ok(Stage::Staged(s)) => staged.push((plan, s)),
            Ok(Stage::Present) => {
                copied.push(plan);
                say(
                    &bar,
                    format!("{} {}: already here", plan.product, plan.version),
                );
            }
            Ok(Stage::Busy) => say(
                &bar,
                format!(
                    "{} {}: another `ssgen mirror` is copying it (its staging directory is locked); left to it",
                    plan.product, plan.version
                ),
            ),
            Err(e) => {
                failed += 1;
                say(
                    &bar,
                    format!("error: {} {}: {e:#}", plan.product, plan.version),
                );
                if exit::code_for(&e) == ExitCode::from(exit::FAILURE) {
                    // The network or the disk: the next versions would fail the same way.
                    bar.finish_and_clear();
                    return Err(e.context("mirror stopped; run it again to resume"));
                }
            }
        }
    }
    bar.finish_and_clear();

    // Staged versions go into place under the root lock, and the catalog
    // is rebuilt before anyone else writes.
    let lock = settings.lock(&root)?;
    let mut placed = Vec::new();
    for (plan, s) in staged {
        let (renamed, target, side_files) = publish_version(&root, &lock, plan, &s)?;
        match renamed {
            Renamed::Done => {
                eprintln!("copied {} {}", plan.product, plan.version);
                placed.push((target, s, side_files));
            }
            Renamed::Exists => eprintln!(
                "{} {}: published meanwhile by another writer; kept",
                plan.product, plan.version
            ),
        }
        copied.push(plan);
    }
    if let Err(e) = rebuild_locked(&root, &lock, &settings) {
        if settings.strict {
            // Nothing of this run may stay in the tree, where the next
            // build would publish it: the versions go back to their
            // staging directories (a later run resumes from there), and
            // the side files written for them are removed.
            for (target, staged, side_files) in placed.into_iter().rev() {
                target.rename_noreplace(&staged.dir)?;
                for f in side_files {
                    f.remove()?;
                }
            }
            return Err(e.context(
                "the copied versions were put back into staging and nothing was published; fix the warnings (or drop --strict) and run the mirror again, which resumes from there",
            ));
        }
        return Err(e);
    }
    drop(lock);
    let published: Vec<Client> = match args.options.only {
        None => Client::ALL.to_vec(),
        Some(Only::Lxd) => vec![Client::Lxd],
        Some(Only::Incus) => vec![Client::Incus],
    };
    compare_fingerprints(&args.root, &copied, &published)?;
    if failed > 0 {
        eprintln!("{failed} version(s) were not copied (see above); the others are published");
        return Ok(ExitCode::from(exit::INVALID));
    }
    Ok(ExitCode::SUCCESS)
}

/// A line on stderr that does not tear the progress bar.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress(total: u64) -> ProgressBar {
    crate::progress::bytes(total, "copying")
}

/// The versions to copy: what either client lists, filtered.
fn choose(remote: &Remote, args: &MirrorArgs, arches: &BTreeSet<&str>) -> Result<Vec<Plan>> {
    let host = host_arch();
    // (products file, product, version) → the images of that version.
    let mut chosen: BTreeMap<(String, String, String), Vec<Image>> = BTreeMap::new();
    let mut refused = Vec::new();
    for c in Client::ALL {
        let view = view::view(remote, c, &host);
        if let Some(err) = view.error {
            refused.push(format!("{} refuses it: {err}", c.name()));
            continue;
        }
        for image in view.images {
            let Some(product) = find_product(remote, &image.file, &image.product) else {
                continue;
            };
            let type_ok = args.image_type.is_none_or(|t| t.matches(image.image_type));
            let arch_ok = arches.is_empty() || arches.contains(image.architecture.as_str());
            let alias_ok = args.aliases.is_empty()
                || product.alias_entries().iter().any(|a| {
                    args.aliases
                        .iter()
                        .any(|want| want == a || *want == format!("{a}/{}", product.arch))
                });
            if type_ok && arch_ok && alias_ok {
                chosen
                    .entry((
                        image.file.clone(),
                        image.product.clone(),
                        image.version.clone(),
                    ))
                    .or_default()
                    .push(image);
            }
        }
    }
    if refused.len() == Client::ALL.len() {
        bail!(Invalid(format!("{}: {}", args.source, refused.join("; "))));
    }

    // The newest --keep versions of each product (names sort by date: docs/protocol.md#version-names).
    let mut per_product: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (file, product, version) in chosen.keys() {
        per_product
            .entry((file.clone(), product.clone()))
            .or_default()
            .push(version.clone());
    }
    let mut plans = Vec::new();
    // Product directory → the source product mirrored into it: two in one
    // directory would merge their versions and side files.
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for ((file, product_id), mut versions) in per_product {
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions.truncate(args.keep);
        let product = find_product(remote, &file, &product_id)
            .context("a chosen product vanished from the catalog")?;
        let Some(path) = export::mirror_product_path(&product_id, product) else {
            // As for a version whose name cannot be a directory: the rest
            // of the source is still mirrored.
            eprintln!(
                "warning: product {product_id}: its os {:?}, release {:?}, arch {:?} and variant {:?} cannot all be directory names; skipped",
                product.os, product.release, product.arch, product.variant
            );
            continue;
        };
        if let Some(first) = taken.get(&path.dir()) {
            if *first != product_id {
                eprintln!(
                    "warning: products {first} and {product_id} of the source would both go to {}; {product_id} is skipped (give --alias or --arch to choose the one to mirror)",
                    path.dir()
                );
                continue;
            }
        }
        taken.insert(path.dir(), product_id.clone());
        let first = plans.len();
        for version in versions {
            // The name becomes a directory: nothing that could leave it.
            if !ssgen_core::is_dir_name(&version) {
                eprintln!(
                    "note: {product_id} {version:?}: not usable as a directory name; skipped"
                );
                continue;
            }
            let images = &chosen[&(file.clone(), product_id.clone(), version.clone())];
            let plan = plan(product, &product_id, &version, path.clone(), images)?;
            if !plan.files.is_empty() {
                plans.push(plan);
            }
        }
        add_deltas(&mut plans[first..]);
    }
    Ok(plans)
}

fn find_product<'r>(remote: &'r Remote, file: &str, id: &str) -> Option<&'r Product> {
    remote
        .files
        .iter()
        .find(|f| f.path == file)
        .and_then(|f| f.products.get(id))
}

fn plan(
    product: &Product,
    id: &str,
    version: &str,
    path: ProductPath,
    images: &[Image],
) -> Result<Plan> {
    let items = &product
        .versions
        .get(version)
        .context("a chosen version vanished from the catalog")?
        .items;
    let mut files: BTreeMap<&'static str, Item> = BTreeMap::new();
    let mut by_path: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut advertised = BTreeSet::new();
    for image in images {
        let keys = std::iter::once(&image.meta_item).chain(image.root_item.as_ref());
        let mut usable = true;
        let mut mine = Vec::new();
        for key in keys {
            let item = items
                .get(key)
                .with_context(|| format!("item {key} vanished from the catalog"))?;
            match Ftype::parse(&item.ftype).and_then(Ftype::file_name) {
                Some(name) => mine.push((name, item)),
                None => usable = false,
            }
        }
        if !usable {
            eprintln!(
                "note: {id} {version}: {} ({}) has an ftype ssgen does not publish; skipped",
                image.fingerprint, image.root_ftype
            );
            continue;
        }
        for (name, item) in mine {
            // One file may serve several ftypes (one metadata tarball for
            // both clients): copy it once.
            if by_path.contains_key(&item.path) {
                continue;
            }
            if let Some(other) = files.get(name) {
                if other.sha256 != item.sha256 {
                    bail!(Invalid(format!(
                        "{id} {version}: two different files would both be {name} ({} and {})",
                        other.path, item.path
                    )));
                }
                continue;
            }
            by_path.insert(item.path.clone(), name);
            files.insert(name, item.clone());
        }
        advertised.insert((image.client, image.fingerprint.clone()));
    }
    Ok(Plan {
        product: id.to_owned(),
        version: version.to_owned(),
        path,
        files,
        source: product.clone(),
        advertised,
        deltas: BTreeMap::new(),
    })
}

/// Adds to each of `plans` (the versions of one product this run copies)
/// the source's squashfs deltas whose base is another of them: named as
/// the build names its own, they are proved by decoding like any delta
/// before the catalog names them. VM deltas are never copied: the build
/// does not publish them.
fn add_deltas(plans: &mut [Plan]) {
    let squashfs = Ftype::Squashfs.file_name().unwrap_or("rootfs.squashfs");
    let copied: BTreeSet<String> = plans
        .iter()
        .filter(|p| p.files.contains_key(squashfs))
        .map(|p| p.version.clone())
        .collect();
    for plan in plans.iter_mut() {
        if !plan.files.contains_key(squashfs) {
            continue;
        }
        let Some(version) = plan.source.versions.get(&plan.version) else {
            continue;
        };
        for item in version.items.values() {
            if Ftype::parse(&item.ftype) == Some(Ftype::SquashfsDelta)
                && item.delta_base < plan.version
                && copied.contains(&item.delta_base)
            {
                plan.deltas
                    .insert(ssgen_core::delta::file_name(&item.delta_base), item.clone());
            }
        }
    }
}

enum Stage {
    /// Every file is in the staging directory, checked.
    Staged(Staged),
    /// The version is here already.
    Present,
    /// Another mirror holds its staging directory.
    Busy,
}

/// A version's staging directory, locked by this run until it is
/// published or given up.
struct Staged {
    dir: Place,
    _lock: fs::File,
}

/// Copies one version into its staging directory beside the version,
/// `.mirror-<version>`, which this run locks: a second mirror of the same
/// version leaves it alone, and files an earlier, interrupted run checked
/// there are reused.
fn stage_version(
    root: &Root,
    catalog: &Catalog,
    agent: &ureq::Agent,
    plan: &Plan,
    bar: &ProgressBar,
) -> Result<Stage> {
    let target = root.join(&plan.path.version_dir(&plan.version));
    if target.exists() {
        let same = plan.files.iter().all(|(name, item)| {
            fs::metadata(target.join(name))
                .is_ok_and(|m| i64::try_from(m.len()).is_ok_and(|len| len == item.size))
        });
        if !same {
            bail!(Invalid(format!(
                "{} exists with other files; remove it to copy the source's version",
                target.display()
            )));
        }
        bar.inc(
            plan.all_files()
                .map(|(_, i)| u64::try_from(i.size).unwrap_or(0))
                .sum(),
        );
        return Ok(Stage::Present);
    }
    let staging = root.place(
        &format!("{}/.mirror-{}", plan.path.dir(), plan.version),
        true,
    )?;
    staging.make_dir()?;
    let lock = staging.open_dir()?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(Stage::Busy),
        Err(e) => {
            return Err(anyhow!(e))
                .with_context(|| format!("cannot lock {}", staging.path().display()));
        }
    }
    // Leftovers of an interrupted run (a half-written part file) go first.
    for entry in fs::read_dir(staging.path())
        .with_context(|| format!("cannot read {}", staging.path().display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", staging.path().display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !plan.all_files().any(|(n, _)| name == n) {
            staging.child(&name)?.remove()?;
        }
    }
    for (name, item) in plan.all_files() {
        let dest = staging.child(name)?;
        // A file is renamed into the staging directory only once checked
        // (and only by the run holding its lock), so one of the right size
        // is this item.
        if dest.stat()?.is_some_and(|st| st.st_size == item.size) {
            bar.inc(u64::try_from(item.size).unwrap_or(0));
            continue;
        }
        copy_file(catalog, agent, item, &staging, &dest, bar)?;
    }
    Ok(Stage::Staged(Staged {
        dir: staging,
        _lock: lock,
    }))
}

/// Renames a staged version into place, unless another writer put one
/// there meanwhile (then the staging directory goes), with its product's
/// side files.
/// Puts a staged version into place, with the product's side files when
/// it has none; returns the version's place and the side files written.
fn publish_version(
    root: &Root,
    _lock: &RootLock,
    plan: &Plan,
    staged: &Staged,
) -> Result<(Renamed, Place, Vec<Place>)> {
    let side_files = write_side_files(root, plan)?;
    let target = root.place(&plan.path.version_dir(&plan.version), false)?;
    let renamed = staged.dir.rename_noreplace(&target)?;
    if renamed == Renamed::Exists {
        staged.dir.remove()?;
    }
    Ok((renamed, target, side_files))
}

/// Streams one item's file to `dest` in `staging`, through a part file of
/// its own, checking size and sha256 against the catalog. No more than the
/// catalog's size is read: a source that sends more is refused at once.
fn copy_file(
    catalog: &Catalog,
    agent: &ureq::Agent,
    item: &Item,
    staging: &Place,
    dest: &Place,
    bar: &ProgressBar,
) -> Result<()> {
    let (what, reader): (String, Box<dyn Read>) = match catalog.locate(&item.path) {
        Location::File(path) => {
            let file = fs::File::open(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow!(Invalid(format!(
                        "{}: its catalog lists this file, but it is missing; the source is incomplete",
                        path.display()
                    )))
                } else {
                    anyhow!(e).context(format!("cannot open {}", path.display()))
                }
            })?;
            (path.display().to_string(), Box::new(file))
        }
        Location::Url(url) => {
            let resp = agent
                .get(&url)
                .call()
                .map_err(|e| net::unreachable(&url, &e))?;
            if resp.status() != 200 {
                bail!(Invalid(format!(
                    "{url}: the server answered {} for a file its catalog lists",
                    resp.status()
                )));
            }
            (url, Box::new(resp.into_body().into_reader()))
        }
    };
    let Ok(expected) = u64::try_from(item.size) else {
        bail!(Invalid(format!(
            "{what}: the catalog gives the size {}; the source's catalog is broken",
            item.size
        )));
    };
    let mut reader = reader.take(expected.saturating_add(1));
    let part = staging.child(&confine::temp_name(dest.name()))?;
    let result = (|| {
        let mut out = part.create_new()?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size: u64 = 0;
        loop {
            let n = reader.read(&mut buf).with_context(|| {
                format!("{what}: the transfer broke off, or stalled for --stall-timeout seconds")
            })?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > expected {
                bail!(Invalid(format!(
                    "{what}: the source sends more than the {expected} bytes its catalog gives; nothing of it is kept (the source is broken or changed while copying)"
                )));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", part.path().display()))?;
            bar.inc(n as u64);
        }
        out.sync_all()
            .with_context(|| format!("cannot write {}", part.path().display()))?;
        // What is on disk, not only what was received: the file is this
        // run's own (created new, in a staging directory it holds locked).
        let on_disk = out
            .metadata()
            .with_context(|| format!("cannot stat {}", part.path().display()))?
            .len();
        let sha = format!("{:x}", hasher.finalize());
        if size != expected || on_disk != expected || sha != item.sha256 {
            bail!(Invalid(format!(
                "{what}: {size} bytes with sha256 {sha}, but the catalog says {} bytes with sha256 {}; the source is broken or changed while copying",
                item.size, item.sha256
            )));
        }
        part.rename_over(dest)
    })();
    if result.is_err() {
        let _ = part.remove();
    }
    result
}

/// The product's side files (its titles, aliases and requirements, as
/// the core writes them for a mirrored product), unless present.
fn write_side_files(root: &Root, plan: &Plan) -> Result<Vec<Place>> {
    let mut written = Vec::new();
    for (name, text) in export::mirror_side_files(&plan.source) {
        let place = root.place(&format!("{}/{name}", plan.path.dir()), true)?;
        if place.stat()?.is_some() {
            continue;
        }
        place.write_atomic(text.as_bytes())?;
        written.push(place);
    }
    Ok(written)
}

/// Reports every fingerprint the source advertises that the copied files
/// do not have.
fn compare_fingerprints(root: &Path, plans: &[&Plan], clients: &[Client]) -> Result<()> {
    let catalog = Catalog::open(&root.display().to_string())?;
    let remote = catalog.remote();
    let host = host_arch();
    let mut local = BTreeSet::new();
    for &c in clients {
        for image in view::view(&remote, c, &host).images {
            local.insert((c, image.fingerprint));
        }
    }
    for plan in plans {
        for (c, fp) in plan.advertised.iter().filter(|(c, _)| clients.contains(c)) {
            if !local.contains(&(*c, fp.clone())) {
                eprintln!(
                    "warning: {} {}: the source advertises fingerprint {fp} to {}, but the copied files give another; the copy publishes the files' own",
                    plan.product,
                    plan.version,
                    c.name()
                );
            }
        }
    }
    // The side files say the source's requirements, but side files the
    // root already had (kept, or above the product) may change them.
    let mut told = BTreeSet::new();
    for plan in plans {
        let id = plan.path.id();
        let Some(mine) = remote.files.iter().find_map(|f| f.products.get(&id)) else {
            continue;
        };
        for &c in clients {
            let read = |p: &Product| p.requirements_for(c).cloned().unwrap_or_default();
            let (have, want) = (read(mine), read(&plan.source));
            if have != want && told.insert((id.clone(), c)) {
                eprintln!(
                    "warning: {}: the copy gives {} the requirements {}, the source {}: side files of the root ({}/.requirements, .lxd_requirements, or one above) say otherwise; fix or remove them, then run `ssgen build`",
                    plan.product,
                    c.name(),
                    serde_json::to_string(&have).unwrap_or_default(),
                    serde_json::to_string(&want).unwrap_or_default(),
                    plan.path.dir()
                );
            }
        }
    }
    Ok(())
}
