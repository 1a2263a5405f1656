//! `ssgen import`: files an `lxc image export` / `incus image export` (or a
//! folder of the seeds' kind) under `images/…`, then rebuilds the catalog.
//!
//! Everything is checked before anything is written: file types come from
//! magic bytes, `metadata.yaml` is parsed by the core, names are validated
//! and clashes found. Files are then staged in a hidden directory beside the
//! version directory (builds never read hidden directories) and renamed into
//! place; a failure at any step, the rebuild included, undoes the import.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use ssgen_core::classify::RootType;
use ssgen_core::export::{self, ExportFile, Identified};
use ssgen_core::metadata::{self, ImageMetadata, MetadataError, UnifiedKind};
use ssgen_core::side::{METADATA_JSON, ProductFields};
use ssgen_core::vocab::{Class, IMAGES};
use ssgen_core::{Ftype, ProductPath};

use crate::confine::{Place, Renamed, Root};
use crate::exit::Invalid;
use crate::publish::{BuildOptions, Settings, rebuild_locked};

/// Import image exports into ROOT/images and rebuild the catalog.
///
/// SRC is what `lxc image export` or `incus image export` wrote, whatever
/// the file names: a metadata tarball and its root file (meta-<hash>.tar.xz
/// with <hash>.squashfs, or a VM's metadata with its qcow2 disk), or one
/// unified <hash>.tar.gz. A SRC folder holding incus.tar.xz or lxd.tar.xz
/// with rootfs.squashfs, root.tar.xz or disk.qcow2 is one image (the
/// `simplestreams.py -i SRCDIR ROOT` habit). File types are detected from
/// their contents, never from their names.
///
/// Each image goes to
/// ROOT/images/<os>/<release>/<arch>/<variant>/<YYYYMMDD_HHMM>/ with os,
/// release, variant and architecture from metadata.yaml (x86_64 is filed as
/// amd64, aarch64 as arm64, …) and the version from its creation_date, in
/// UTC (as YYYYMMDD_HH:MM or YYYYMMDDhhmm instead when all the product's
/// versions already use that form, so that they sort together). An image
/// the root already publishes, under whatever version or file names, is
/// not imported again (a second copy would publish its fingerprint twice);
/// a different image with the same version is refused. A ROOT that does
/// not exist yet is created. Nothing is left behind on failure.
#[derive(Debug, Args)]
// The doc comments are the --help text, where <os> is a placeholder, not
// HTML. (`expect` would fire `unfulfilled_lint_expectations` outside
// rustdoc, which does not run this lint.)
#[allow(
    rustdoc::invalid_html_tags,
    reason = "help text placeholders such as <os>"
)]
#[command(
    override_usage = "ssgen import [OPTIONS] <SRC>... [ROOT]",
    after_long_help = "Examples:
  ssgen import meta-9e71.tar.xz 9e71.squashfs /var/www/html
  ssgen import ./export-dir /var/www/html      (a folder, like simplestreams.py -i)
  ssgen import --move --alias debian/stable a1b2.tar.gz
  ssgen import --dry-run meta-9e71.tar.xz 9e71.squashfs
  ssgen import --arch amd64 --os myos --release 1.0 output.qcow2   (no metadata: ssgen writes it)"
)]
pub struct ImportArgs {
    /// Export files or folders, then the server root (default: the current
    /// directory). The last argument is the root when it is a folder
    /// holding images/, streams/ or .ssgen/, or no image file, or when it
    /// does not exist and is not named like an image file.
    #[arg(required = true, value_name = "SRC")]
    pub paths: Vec<PathBuf>,

    /// The server root; every positional argument is then a source.
    #[arg(long, value_name = "ROOT")]
    pub root: Option<PathBuf>,

    /// Move the files instead of copying them (sources are removed only
    /// once the import has succeeded).
    #[arg(long = "move")]
    pub move_files: bool,

    /// Use this os instead of metadata.yaml's properties.os.
    #[arg(long, value_name = "NAME")]
    pub os: Option<String>,

    /// Use this release instead of metadata.yaml's properties.release.
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,

    /// Use this variant instead of metadata.yaml's properties.variant
    /// (default when absent: `default`).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,

    /// For a root file given without a metadata tarball (a disk image made
    /// by another tool): its architecture (amd64, arm64, x86_64, ...). With
    /// --os and --release, ssgen writes the metadata tarball itself.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,

    /// Add an alias to the product (repeatable); kept in the product's
    /// metadata.json. Clients add /<arch> themselves.
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,

    /// Print what would be imported and where; write nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    #[command(flatten)]
    pub options: BuildOptions,
}

/// What one source file is.
#[derive(Debug)]
enum Role {
    Meta(Box<ImageMetadata>),
    Unified(Box<ImageMetadata>),
    Root(RootType),
}

#[derive(Debug)]
struct Source {
    path: PathBuf,
    role: Role,
    /// Index of the SRC folder it came from, if any.
    folder: Option<usize>,
}

/// One image to import.
#[derive(Debug)]
struct Image {
    /// (source, the ftype it is published under: its name in the version
    /// directory is [`file_name`]'s).
    files: Vec<(PathBuf, Ftype)>,
    product: ProductPath,
    version: String,
    /// `creation_date`, which names the version.
    created: i64,
    kind: String,
    /// The version directory already holds exactly these files.
    already: bool,
    /// The version directory (relative) of a published version with the
    /// same content, when it is not this image's own.
    published_as: Option<String>,
}

impl Image {
    fn version_dir(&self) -> String {
        self.product.version_dir(&self.version)
    }
}

/// The name a file of `ftype` has in a version directory.
fn file_name_of(ftype: Ftype) -> &'static str {
    // Every ftype an export is placed under has one.
    ftype.file_name().unwrap_or_else(|| ftype.as_str())
}

pub fn run(args: &ImportArgs) -> Result<ExitCode> {
    let settings = Settings::new(&args.options)?;
    let (sources, root, mut files) = split_root(args)?;
    let new_root = fs::symlink_metadata(&root).is_err();
    if !new_root && !root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root (the folder that holds or will hold images/)",
            root.display()
        )));
    }
    if files.is_empty() {
        files = identify(&sources)?;
    }
    let _generated = generate_metadata(&mut files, args, &settings)?;
    let mut images = group(files, args)?;
    for (src, _) in images.iter().flat_map(|i| &i.files) {
        check_whole(src)?;
    }
    if args.dry_run {
        check_targets(&root, &mut images)?;
        let aliases = alias_plan(&root, &images, &args.aliases)?;
        print_plan(&root, &images, &aliases)?;
        if new_root {
            println!(
                "({} does not exist yet: the import would create it)",
                root.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // A root that does not exist yet is made, and removed again if the
    // import fails (only what the import left empty).
    if new_root {
        fs::create_dir_all(&root)
            .with_context(|| format!("cannot create the server root {}", root.display()))?;
        eprintln!("created the server root {}", root.display());
    }
    let result = import(args, &settings, &root, images);
    if result.is_err() && new_root {
        remove_new_root(&root);
    }
    result
}

/// Refuses a source cut short (a copy or download that stopped half-way)
/// by the core's rule, naming the source rather than its staged copy.
fn check_whole(src: &Path) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    const TAIL: u64 = 1 << 16;
    let mut file = File::open(src).map_err(|e| open_error(src, e))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot stat {}", src.display()))?
        .len();
    let mut head = Vec::new();
    Read::by_ref(&mut file)
        .take(ssgen_core::classify::WHOLE_HEAD as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", src.display()))?;
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(size.saturating_sub(TAIL)))
        .and_then(|_| file.read_to_end(&mut tail))
        .with_context(|| format!("cannot read {}", src.display()))?;
    let why = if tail.iter().all(|b| *b == 0) && size > TAIL {
        // Zero padding longer than the tail read: count it all.
        let mut ends = ssgen_core::classify::Ends::default();
        let mut file = File::open(src).map_err(|e| open_error(src, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = read_full(&mut file, &mut buf)
                .with_context(|| format!("cannot read {}", src.display()))?;
            if n == 0 {
                break;
            }
            ends.update(&buf[..n]);
        }
        ends.cut_short(size)
    } else {
        ssgen_core::classify::cut_short(&head, &tail, size)
    };
    match why {
        Some(why) => bail!(Invalid(format!(
            "{}: {why}; give the whole file (export or copy it again)",
            src.display()
        ))),
        None => Ok(()),
    }
}

/// Removes what an import that failed left of the root it created: its
/// lock and empty directories, never a file someone else put there.
fn remove_new_root(root: &Path) {
    let _ = fs::remove_file(root.join(".ssgen/lock"));
    let streams = ssgen_core::STREAMS_DIR;
    let parent = streams.rsplit_once('/').map_or("", |(p, _)| p);
    for dir in [".ssgen", streams, parent, IMAGES, ""] {
        let _ = fs::remove_dir(root.join(dir));
    }
}

fn import(
    args: &ImportArgs,
    settings: &Settings,
    root: &Path,
    mut images: Vec<Image>,
) -> Result<ExitCode> {
    let root = root.to_path_buf();
    let confined = Root::open(&root)?;
    // From the check of the targets to the rebuild, no other writer.
    let lock = settings.lock(&confined)?;
    check_targets(&root, &mut images)?;
    let aliases = alias_plan(&root, &images, &args.aliases)?;
    let todo: Vec<&Image> = images.iter().filter(|i| !i.already).collect();
    for image in images.iter().filter(|i| i.already) {
        eprintln!("{}", already_message(&root, image));
    }
    if todo.is_empty() && aliases.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut txn = Transaction::new(confined, args.move_files);
    let result = (|| {
        for image in &todo {
            txn.stage(image)?;
        }
        for image in &todo {
            txn.commit_image(image)?;
        }
        for (rel, bytes) in &aliases {
            txn.write_side_file(rel, bytes)?;
        }
        rebuild_locked(&txn.root, &lock, settings).context(
            "the catalog could not be rebuilt, so the import was undone and the published catalog is unchanged",
        )
    })();
    match result {
        Ok(_) => {
            txn.finish();
            for image in &todo {
                eprintln!(
                    "imported {} {} ({}) into {}",
                    image.product.id(),
                    image.version,
                    image.kind,
                    root.join(image.version_dir()).display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            txn.rollback();
            Err(e)
        }
    }
}

/// What an import that has nothing to do says about `image`.
fn already_message(root: &Path, image: &Image) -> String {
    let dir = root.join(image.version_dir());
    let withdrawn = if dir.join(ssgen_core::withdrawn::FILE_NAME).exists() {
        format!(
            "; it is withdrawn: delete {} to publish it again",
            dir.join(ssgen_core::withdrawn::FILE_NAME).display()
        )
    } else {
        String::new()
    };
    match &image.published_as {
        Some(vdir) => format!(
            "{} {}: already published as {} (the same image); nothing to do",
            image.product.id(),
            image.version,
            root.join(vdir).display()
        ),
        None => format!(
            "{} {}: already imported in {} (the same image); nothing to do{withdrawn}",
            image.product.id(),
            image.version,
            dir.display()
        ),
    }
}

/// Splits the positional arguments into sources and the root. A last
/// argument that does not exist is a root to create when it is not named
/// like an image file and the others are a whole import without it (then
/// their identification is returned, so it is done once); otherwise it is
/// a source, and its absence is reported as one.
fn split_root(args: &ImportArgs) -> Result<(Vec<PathBuf>, PathBuf, Vec<Source>)> {
    if let Some(root) = &args.root {
        return Ok((args.paths.clone(), root.clone(), Vec::new()));
    }
    match args.paths.as_slice() {
        [sources @ .., last]
            if !sources.is_empty()
                && last.is_dir()
                && (is_a_root(last) || !holds_images(last)?) =>
        {
            Ok((sources.to_vec(), last.clone(), Vec::new()))
        }
        [sources @ .., last]
            if !sources.is_empty()
                && fs::symlink_metadata(last).is_err()
                && !named_like_an_image_file(last) =>
        {
            match identify(sources) {
                Ok(files) if group_check(&files, args) => {
                    Ok((sources.to_vec(), last.clone(), files))
                }
                _ => Ok((args.paths.clone(), PathBuf::from("."), Vec::new())),
            }
        }
        all => {
            if let [_, .., last] = all
                && last.is_dir()
            {
                eprintln!(
                    "note: {} holds image files and no {IMAGES}/, so it is read as a source and the root is the current directory; give --root ROOT to say otherwise",
                    last.display()
                );
            }
            Ok((all.to_vec(), PathBuf::from("."), Vec::new()))
        }
    }
}

/// Whether a folder is a server root already: it holds `images/`,
/// `streams/` or `.ssgen/` (whatever else lies at its top).
fn is_a_root(dir: &Path) -> bool {
    [IMAGES, "streams", ".ssgen"]
        .iter()
        .any(|d| fs::symlink_metadata(dir.join(d)).is_ok_and(|m| m.is_dir()))
}

/// Whether `files` make whole images (each metadata tarball with its root
/// file, or a unified tarball), as [`group`] would accept them.
fn group_check(files: &[Source], args: &ImportArgs) -> bool {
    let has_meta = files
        .iter()
        .any(|s| matches!(s.role, Role::Meta(_) | Role::Unified(_)));
    let has_root = files.iter().any(|s| matches!(s.role, Role::Root(_)));
    let unified_only = files.iter().all(|s| matches!(s.role, Role::Unified(_)));
    (has_meta && (has_root || unified_only)) || (args.arch.is_some() && has_root)
}

/// Whether a path is named like a file of an export (`….tar.xz`,
/// `….squashfs`, `….qcow2`, …): a missing one is a mistyped source, not a
/// new root.
fn named_like_an_image_file(path: &Path) -> bool {
    let name = file_name(path).to_ascii_lowercase();
    [
        ".xz",
        ".gz",
        ".tar",
        ".squashfs",
        ".qcow2",
        ".img",
        ".bz2",
        ".zst",
        ".tgz",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

/// Whether a folder holds an image file at its top (then it is a source,
/// not a server root).
fn holds_images(dir: &Path) -> Result<bool> {
    for path in folder_files(dir)? {
        if !matches!(export::identify(&head(&path)?, None), Identified::Not(_)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The regular, non-hidden files at the top of a folder, sorted.
fn folder_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The first bytes of a file, enough for [`export::identify`] to tell a
/// tarball without compression.
fn head(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let mut head = Vec::with_capacity(512);
    Read::by_ref(&mut file)
        .take(512)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(head)
}

fn open_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    if e.kind() == ErrorKind::NotFound {
        anyhow!(Invalid(format!(
            "{}: no such file or folder; give the files of an image export",
            path.display()
        )))
    } else {
        anyhow!(e).context(format!("cannot open {}", path.display()))
    }
}

/// Detects what every source file is.
fn identify(sources: &[PathBuf]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        if src.is_dir() {
            let mut found = false;
            for path in folder_files(src)? {
                // A folder may hold checksums, logs or image.yaml: skip
                // what is no image file, but report it.
                match identify_file(&path, Some(i))? {
                    Some(s) => {
                        found = true;
                        out.push(s);
                    }
                    None => eprintln!("{}: not an image file; skipped", path.display()),
                }
            }
            if !found {
                bail!(Invalid(format!(
                    "{}: holds no image file (a metadata tarball with a squashfs, qcow2 or root.tar.xz, or a unified tarball)",
                    src.display()
                )));
            }
        } else {
            match identify_file(src, None)? {
                Some(s) => out.push(s),
                None => bail!(Invalid(format!(
                    "{}: not an image file (neither an xz or gzip tarball, a squashfs nor a qcow2 disk); give the files `lxc image export` wrote",
                    src.display()
                ))),
            }
        }
    }
    Ok(out)
}

/// What one file is, by [`export::identify`]: `None` for a file that is
/// no image file at all, an error for a tarball no client could use.
fn identify_file(path: &Path, folder: Option<usize>) -> Result<Option<Source>> {
    let head = head(path)?;
    let role = match export::identify(&head, None) {
        Identified::Not(_) => return Ok(None),
        Identified::Root(root) => Role::Root(root),
        _ => {
            let file = File::open(path).map_err(|e| open_error(path, e))?;
            let read = metadata::read_from(file);
            if let Err(MetadataError::Read(e)) = read {
                return Err(anyhow!(e).context(format!("cannot read {}", path.display())));
            }
            match (export::identify(&head, Some(&read)), read) {
                (Identified::Root(root), _) => Role::Root(root),
                (Identified::Metadata, Ok(meta)) => Role::Meta(Box::new(meta)),
                (Identified::Unified(_), Ok(meta)) => Role::Unified(Box::new(meta)),
                (Identified::Not(why), _) => {
                    bail!(Invalid(format!("{}: {why}", path.display())))
                }
                (other, _) => bail!(
                    "internal error: {}: identified as {other:?} from its metadata",
                    path.display()
                ),
            }
        }
    };
    Ok(Some(Source {
        path: path.to_path_buf(),
        role,
        folder,
    }))
}

/// A folder of generated files, removed when dropped.
struct Generated(PathBuf);

impl Drop for Generated {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// For root files given without any metadata tarball and with --arch: a
/// metadata tarball written by ssgen (os, release and variant from the
/// flags, the creation date from --timestamp, SOURCE_DATE_EPOCH or now),
/// added to `files` from a temporary folder that lives as long as the
/// returned guard.
fn generate_metadata(
    files: &mut Vec<Source>,
    args: &ImportArgs,
    settings: &Settings,
) -> Result<Option<Generated>> {
    let has_meta = files
        .iter()
        .any(|s| matches!(s.role, Role::Meta(_) | Role::Unified(_)));
    let Some(raw_arch) = &args.arch else {
        return Ok(None);
    };
    if has_meta {
        bail!(Invalid(
            "--arch is for root files without a metadata tarball; with one, the architecture comes from its metadata.yaml".into()
        ));
    }
    let folders: BTreeSet<Option<usize>> = files.iter().map(|s| s.folder).collect();
    let [folder] = folders.into_iter().collect::<Vec<_>>()[..] else {
        bail!(Invalid(
            "--arch: the root files come from several folders; import one image at a time".into()
        ));
    };
    let (Some(os), Some(release)) = (&args.os, &args.release) else {
        bail!(Invalid(
            "--arch: give --os and --release too, for the metadata.yaml ssgen writes".into()
        ));
    };
    let Some(kernel_arch) = ssgen_core::arch::normalise(raw_arch) else {
        bail!(Invalid(format!(
            "--arch {raw_arch}: not an architecture LXD or Incus knows (e.g. amd64, arm64, x86_64)"
        )));
    };
    let variant = args.variant.as_deref().unwrap_or("default");
    let creation_date = settings.timestamp();
    let properties: BTreeMap<String, String> = [
        ("architecture", kernel_arch),
        ("os", os.as_str()),
        ("release", release.as_str()),
        ("variant", variant),
        (
            "description",
            &format!("{os} {release} {kernel_arch} ({variant})"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let yaml = metadata::generated_yaml(kernel_arch, creation_date, &properties);
    let tarball = crate::tarball::tar_xz(
        &[("metadata.yaml", yaml.as_bytes())],
        u64::try_from(creation_date).unwrap_or(0),
    )?;
    let dir = std::env::temp_dir().join(format!(
        "ssgen-import-{}-{}",
        std::process::id(),
        creation_date
    ));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let guard = Generated(dir);
    let path = guard.0.join(file_name_of(Ftype::IncusMeta));
    fs::write(&path, &tarball).with_context(|| format!("cannot write {}", path.display()))?;
    let meta = metadata::read(&tarball)
        .map_err(|e| anyhow!("the generated metadata does not read back: {e}"))?;
    eprintln!(
        "writing the metadata tarball: {kernel_arch}, {os} {release} ({variant}), created {}",
        ssgen_core::time::rfc2822(creation_date)
    );
    files.push(Source {
        path,
        role: Role::Meta(Box::new(meta)),
        folder,
    });
    Ok(Some(guard))
}

/// Groups the source files into images.
fn group(sources: Vec<Source>, args: &ImportArgs) -> Result<Vec<Image>> {
    let mut groups: BTreeMap<Option<usize>, Vec<Source>> = BTreeMap::new();
    let mut images = Vec::new();
    for s in sources {
        if let Role::Unified(meta) = &s.role {
            images.push(unified_image(&s, meta, args)?);
        } else {
            groups.entry(s.folder).or_default().push(s);
        }
    }
    for (folder, members) in groups {
        if folder.is_some() {
            images.push(split_image(members, args)?);
        } else {
            for members in pair_loose(members)? {
                images.push(split_image(members, args)?);
            }
        }
    }
    let mut seen = BTreeSet::new();
    for image in &images {
        if !seen.insert(image.version_dir()) {
            bail!(Invalid(format!(
                "two of the images given would both go to {}; import them one at a time, with --variant to tell them apart",
                image.version_dir()
            )));
        }
    }
    Ok(images)
}

/// Loose files: one metadata tarball takes every loose root; with several,
/// `meta-<hash>.tar.*` pairs with `<hash>.*` (the export's names).
fn pair_loose(members: Vec<Source>) -> Result<Vec<Vec<Source>>> {
    let (metas, roots): (Vec<Source>, Vec<Source>) = members
        .into_iter()
        .partition(|s| matches!(s.role, Role::Meta(_)));
    if metas.len() <= 1 {
        let mut all = metas;
        all.extend(roots);
        return Ok(vec![all]);
    }
    let stem = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.split('.').next().unwrap_or_default().to_owned()
    };
    let mut out: Vec<Vec<Source>> = metas.into_iter().map(|m| vec![m]).collect();
    for root in roots {
        let root_stem = stem(&root.path);
        let Some(slot) = out.iter_mut().find(|g| {
            stem(&g[0].path)
                .strip_prefix("meta-")
                .is_some_and(|h| h == root_stem)
        }) else {
            bail!(Invalid(format!(
                "{}: cannot tell which of the metadata tarballs given it goes with; import one image at a time (its meta-<hash> file and its root file)",
                root.path.display()
            )));
        };
        slot.push(root);
    }
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where each of `members`, the files of one image, goes in the version
/// directory ([`export::place`]), in a fixed order: metadata first (the
/// tarball serving both clients before `lxd.tar.xz`), then the roots.
fn place<'a>(members: &[&'a Source]) -> Result<Vec<(&'a Source, Ftype)>> {
    let mut files = Vec::new();
    for s in members {
        let size = fs::metadata(&s.path)
            .with_context(|| format!("cannot stat {}", s.path.display()))?
            .len();
        files.push(ExportFile {
            name: file_name(&s.path),
            size,
            identified: match &s.role {
                Role::Meta(_) => Identified::Metadata,
                Role::Unified(meta) => {
                    Identified::Unified(meta.unified.unwrap_or(UnifiedKind::Container))
                }
                Role::Root(root) => Identified::Root(*root),
            },
        });
    }
    let mut placed = Vec::new();
    for (s, p) in members.iter().zip(export::place(&files)) {
        match (p.target, p.reason) {
            (Some(ftype), _) => placed.push((*s, ftype)),
            (None, why) => {
                // The file of the same kind it loses to, to name both.
                let same_kind = |o: &&&Source| match (&o.role, &s.role) {
                    (Role::Root(a), Role::Root(b)) => a == b,
                    (Role::Meta(_), Role::Meta(_)) | (Role::Unified(_), Role::Unified(_)) => true,
                    _ => false,
                };
                let both = match members.iter().find(same_kind) {
                    Some(other) if other.path != s.path => {
                        format!("{} and {}", other.path.display(), s.path.display())
                    }
                    _ => s.path.display().to_string(),
                };
                bail!(Invalid(format!("{both}: {}", why.unwrap_or_default())));
            }
        }
    }
    placed.sort_by_key(|&(_, ftype)| (ftype != Ftype::IncusMeta, ftype));
    Ok(placed)
}

fn split_image(members: Vec<Source>, args: &ImportArgs) -> Result<Image> {
    let members: Vec<&Source> = members.iter().collect();
    let placed = place(&members)?;
    let roots: Vec<Ftype> = placed
        .iter()
        .map(|&(_, f)| f)
        .filter(|f| f.class() == Class::Root)
        .collect();
    // The tarball that serves both clients names the image (the seeds'
    // `lxd.tar.xz` beside it is LXD's only).
    let Some((meta_path, meta)) = placed.iter().find_map(|(s, f)| match &s.role {
        Role::Meta(meta) if *f == Ftype::IncusMeta => Some((&s.path, meta.as_ref())),
        _ => None,
    }) else {
        let root = placed
            .first()
            .map_or_else(String::new, |(s, _)| s.path.display().to_string());
        bail!(Invalid(format!(
            "{root}: a root file without its metadata tarball; give the meta-<hash>.tar.xz file of the same export too, or --os, --release and --arch to have ssgen write one"
        )));
    };
    // The seeds' `lxd.tar.xz` beside it describes the same image.
    for (s, f) in &placed {
        if let (Role::Meta(lxd), Ftype::LxdMeta) = (&s.role, *f) {
            let norm =
                |m: &ImageMetadata| ssgen_core::arch::normalise(m.image_arch()).map(str::to_owned);
            let names = |m: &ImageMetadata| {
                [
                    norm(m),
                    m.property("os").map(str::to_owned),
                    m.property("release").map(str::to_owned),
                    m.property("variant").map(str::to_owned),
                ]
            };
            let fields = ["architecture", "os", "release", "variant"];
            let differ: Vec<&str> = fields
                .iter()
                .zip(names(meta).iter().zip(names(lxd).iter()))
                .filter(|(_, (a, b))| a != b)
                .map(|(f, _)| *f)
                .collect();
            if !differ.is_empty() {
                bail!(Invalid(format!(
                    "{} and {}: their metadata.yaml disagree on {}, so they are not one image; give the two metadata tarballs of one build",
                    meta_path.display(),
                    s.path.display(),
                    differ.join(", ")
                )));
            }
        }
    }
    if roots.is_empty() {
        bail!(Invalid(format!(
            "{}: a metadata tarball without a root file; give the root file of the same export too (its <hash>.squashfs or qcow2 disk)",
            meta_path.display()
        )));
    }
    let kinds: Vec<String> = roots
        .iter()
        .map(|root| {
            if root.is_vm() {
                "virtual-machine, qcow2".to_owned()
            } else {
                format!("container, {root}")
            }
        })
        .collect();
    image(meta_path, meta, paths(&placed), kinds.join(" + "), args)
}

fn paths(placed: &[(&Source, Ftype)]) -> Vec<(PathBuf, Ftype)> {
    placed.iter().map(|(s, f)| (s.path.clone(), *f)).collect()
}

fn unified_image(source: &Source, meta: &ImageMetadata, args: &ImportArgs) -> Result<Image> {
    let kind = match meta.unified {
        Some(UnifiedKind::VirtualMachine) => "virtual-machine, unified tarball",
        _ => "container, unified tarball",
    };
    let placed = place(&[source])?;
    image(&source.path, meta, paths(&placed), kind.to_owned(), args)
}

fn field(
    meta_path: &Path,
    meta: &ImageMetadata,
    key: &str,
    given: Option<&String>,
    default: Option<&str>,
) -> Result<String> {
    let (value, from_flag) = match given {
        Some(v) => (v.as_str(), true),
        None => match meta.property(key).or(default) {
            Some(v) => (v, false),
            None => bail!(Invalid(format!(
                "{}: metadata.yaml has no properties.{key}; give it with --{key} NAME",
                meta_path.display()
            ))),
        },
    };
    let origin = || {
        if from_flag {
            format!("--{key}")
        } else {
            format!("{}: metadata.yaml properties.{key}", meta_path.display())
        }
    };
    if !ssgen_core::is_dir_name(value) {
        bail!(Invalid(format!(
            "{} {value:?} has characters outside [A-Za-z0-9._~-] (or starts with a dot), which cannot be a directory name in a URL; give --{key} NAME",
            origin()
        )));
    }
    // NAME_MAX of the filesystems a root lives on.
    if value.len() > 255 {
        bail!(Invalid(format!(
            "{} is {} bytes, longer than the 255 a directory name may have; give --{key} NAME",
            origin(),
            value.len()
        )));
    }
    if !ssgen_core::is_product_name(value) {
        bail!(Invalid(format!(
            "{} {value:?} holds \":\", which joins os, release, arch and variant into the product id (so two products could get one id); give --{key} NAME without \":\"",
            origin()
        )));
    }
    Ok(value.to_owned())
}

fn image(
    meta_path: &Path,
    meta: &ImageMetadata,
    files: Vec<(PathBuf, Ftype)>,
    kind: String,
    args: &ImportArgs,
) -> Result<Image> {
    let os = field(meta_path, meta, "os", args.os.as_ref(), None)?;
    let release = field(meta_path, meta, "release", args.release.as_ref(), None)?;
    let variant = field(
        meta_path,
        meta,
        "variant",
        args.variant.as_ref(),
        Some("default"),
    )?;
    if !ssgen_core::time::is_version_second(meta.creation_date) {
        bail!(Invalid(format!(
            "{}: metadata.yaml creation_date {} is outside 1970-01-01 to 9999-12-31, so its version name would be no date the clients read; fix creation_date (Unix seconds, UTC)",
            meta_path.display(),
            meta.creation_date
        )));
    }
    let raw_arch = meta.image_arch();
    let Some(arch) = ssgen_core::arch::debian_name(raw_arch) else {
        bail!(Invalid(format!(
            "{}: metadata.yaml architecture {raw_arch:?} is unknown to LXD and Incus, so no client could use this image; fix the architecture in metadata.yaml (e.g. x86_64, aarch64)",
            meta_path.display()
        )));
    };
    if let Some(top) = ssgen_core::arch::normalise(&meta.architecture)
        && Some(top) != ssgen_core::arch::normalise(raw_arch)
    {
        eprintln!(
            "warning: {}: metadata.yaml architecture {:?} and properties.architecture {raw_arch:?} disagree; filed under {arch}",
            meta_path.display(),
            meta.architecture
        );
    }
    Ok(Image {
        files,
        product: ProductPath::new(os, release, arch, variant),
        version: export::version_name(meta.creation_date, &[]),
        created: meta.creation_date,
        kind,
        already: false,
        published_as: None,
    })
}

/// Finds versions that exist already: identical files make the image a
/// no-op, anything else is a clash.
fn check_targets(root: &Path, images: &mut [Image]) -> Result<()> {
    let mut published = Published::scan(root)?;
    for image in images.iter_mut() {
        let existing = version_names(&root.join(image.product.dir()))?;
        let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
        image.version = export::version_name(image.created, &existing);
        if let Some(vdir) = published.copy_of(root, image)? {
            if vdir != image.version_dir() {
                image.published_as = Some(vdir);
            }
            image.already = true;
            continue;
        }
        let dir = root.join(image.version_dir());
        if !dir.exists() {
            continue;
        }
        let existing: BTreeSet<String> = folder_files(&dir)?.iter().map(|p| file_name(p)).collect();
        let wanted: BTreeSet<String> = image
            .files
            .iter()
            .map(|&(_, f)| file_name_of(f).to_owned())
            .collect();
        let mut same = existing == wanted;
        if same {
            for (src, ftype) in &image.files {
                if !same_contents(src, &dir.join(file_name_of(*ftype)))? {
                    same = false;
                    break;
                }
            }
        }
        if !same {
            bail!(Invalid(format!(
                "{}: this version already exists with other files (same os, release, arch, variant and creation_date); remove that folder first to replace it, or give --variant to import it beside it",
                dir.display()
            )));
        }
        image.already = true;
    }
    Ok(())
}

/// The versions of the root that a build publishes, for finding an
/// image's content there under another version or file name: importing it
/// again would publish one fingerprint twice, and the build would drop
/// one of the two, perhaps the version already published.
struct Published {
    /// (version directory, its files).
    versions: Vec<(String, Vec<PublishedFile>)>,
    /// (source, file under the root) → same bytes.
    same: BTreeMap<(PathBuf, String), bool>,
}

/// (path, size, is a metadata tarball, is a unified tarball).
type PublishedFile = (String, u64, bool, bool);

impl Published {
    fn scan(root: &Path) -> Result<Self> {
        let mut versions = Vec::new();
        if root.join(IMAGES).is_dir() {
            let listing = crate::walk::list(root, &crate::cache::Cache::load(root))?;
            let scan = ssgen_core::scan(&listing.entries(), &ssgen_core::Config::new(0));
            for p in &scan.products {
                for v in &p.versions {
                    let dir = p.path().version_dir(&v.name);
                    let files = v
                        .files
                        .iter()
                        .filter(|f| !matches!(f.role, ssgen_core::FileRole::Delta { .. }))
                        .map(|f| {
                            (
                                f.path.clone(),
                                f.size,
                                matches!(f.role, ssgen_core::FileRole::Meta(_)),
                                f.role == ssgen_core::FileRole::Unified,
                            )
                        })
                        .collect();
                    versions.push((dir, files));
                }
            }
        }
        Ok(Self {
            versions,
            same: BTreeMap::new(),
        })
    }

    fn same(&mut self, root: &Path, src: &Path, size: u64, path: &str, their: u64) -> Result<bool> {
        if size != their {
            return Ok(false);
        }
        let key = (src.to_path_buf(), path.to_owned());
        if let Some(&known) = self.same.get(&key) {
            return Ok(known);
        }
        let same = same_contents(src, &root.join(path))?;
        self.same.insert(key, same);
        Ok(same)
    }

    /// The published version that already gives every image of `image`
    /// (each metadata and root pair, or the unified tarball), by content,
    /// whatever the file names. An image of which only a part is
    /// published is refused: importing the rest beside it would publish
    /// the published part twice.
    fn copy_of(&mut self, root: &Path, image: &Image) -> Result<Option<String>> {
        let mut metas = Vec::new();
        let mut others = Vec::new();
        for (src, ftype) in &image.files {
            let size = fs::metadata(src)
                .with_context(|| format!("cannot stat {}", src.display()))?
                .len();
            if ftype.class() == Class::Metadata {
                metas.push((src, size));
            } else {
                others.push((src, size));
            }
        }
        // The pairs (or unified tarballs) of the import found, by version.
        let mut found: BTreeMap<String, BTreeSet<(usize, usize)>> = BTreeMap::new();
        let versions = std::mem::take(&mut self.versions);
        for (dir, files) in &versions {
            let mut has = |want_meta: bool, src: &Path, size: u64| -> Result<bool> {
                for (path, their, is_meta, is_unified) in files {
                    let kind_ok = if metas.is_empty() {
                        *is_unified
                    } else {
                        *is_meta == want_meta && !*is_unified
                    };
                    if kind_ok && self.same(root, src, size, path, *their)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            };
            let meta_hits: Vec<usize> = (0..metas.len())
                .filter_map(|i| {
                    has(true, metas[i].0, metas[i].1)
                        .map(|h| h.then_some(i))
                        .transpose()
                })
                .collect::<Result<_>>()?;
            if !metas.is_empty() && meta_hits.is_empty() {
                continue;
            }
            for (j, (src, size)) in others.iter().enumerate() {
                if has(false, src, *size)? {
                    let hits = found.entry(dir.clone()).or_default();
                    if metas.is_empty() {
                        hits.insert((0, j));
                    }
                    for &i in &meta_hits {
                        hits.insert((i, j));
                    }
                }
            }
        }
        self.versions = versions;
        let wanted = metas.len().max(1) * others.len();
        let all: BTreeSet<(usize, usize)> = found.values().flatten().copied().collect();
        if all.is_empty() {
            return Ok(None);
        }
        let own = image.version_dir();
        match found.iter().find(|(_, hits)| hits.len() == wanted) {
            // Its own version first: then it is there under its own name.
            Some(_) if found.get(&own).is_some_and(|h| h.len() == wanted) => Ok(Some(own)),
            Some((dir, _)) => Ok(Some(dir.clone())),
            None => {
                let dirs: Vec<&str> = found.keys().map(String::as_str).collect();
                bail!(Invalid(format!(
                    "{} {}: part of this image is already published in {} (the same files); importing the rest beside it would publish one fingerprint twice, and clients could download neither: import only the files that are new, or withdraw that version first (`ssgen remove`)",
                    image.product.id(),
                    image.version,
                    dirs.join(", ")
                )))
            }
        }
    }
}

/// The versions a product directory holds (none when it does not exist
/// yet); hidden staging directories are no versions.
fn version_names(product: &Path) -> Result<Vec<String>> {
    let Ok(entries) = fs::read_dir(product) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", product.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    Ok(names)
}

fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let (ma, mb) = (
        fs::metadata(a).with_context(|| format!("cannot stat {}", a.display()))?,
        fs::metadata(b).with_context(|| format!("cannot stat {}", b.display()))?,
    );
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = File::open(a).with_context(|| format!("cannot open {}", a.display()))?;
    let mut fb = File::open(b).with_context(|| format!("cannot open {}", b.display()))?;
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n =
            read_full(&mut fa, &mut ba).with_context(|| format!("cannot read {}", a.display()))?;
        let m =
            read_full(&mut fb, &mut bb).with_context(|| format!("cannot read {}", b.display()))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The product `metadata.json` files to write for `--alias`: (path,
/// bytes), read and written by the core's [`ProductFields`] as a build
/// reads them.
fn alias_plan(root: &Path, images: &[Image], aliases: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    if aliases.is_empty() {
        return Ok(Vec::new());
    }
    check_aliases(root, images, aliases)?;
    // An image published under another product gets the aliases there.
    let products: BTreeSet<String> = images
        .iter()
        .map(|i| match &i.published_as {
            Some(vdir) => vdir
                .rsplit_once('/')
                .map_or(vdir.as_str(), |(p, _)| p)
                .to_owned(),
            None => i.product.dir(),
        })
        .collect();
    let mut out = Vec::new();
    for product in products {
        let rel = format!("{product}/{METADATA_JSON}");
        let path = root.join(&rel);
        let mut fields = match fs::read(&path) {
            Ok(bytes) => match ProductFields::parse(&path.display().to_string(), &bytes) {
                Ok((fields, _notes)) => fields,
                Err(errors) => {
                    let why: Vec<String> = errors.iter().map(|d| d.message.clone()).collect();
                    bail!(Invalid(format!(
                        "{}: {}; fix it before adding aliases",
                        path.display(),
                        why.join("; ")
                    )))
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => ProductFields::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        fields.aliases.retain(|a| !a.is_empty());
        if !fields.add_aliases(aliases.iter().map(String::as_str)) {
            continue;
        }
        out.push((rel, fields.to_text().into_bytes()));
    }
    Ok(out)
}

/// Refuses an `--alias` the build would drop: one a local server refuses
/// (the build's own rules), or one another product of the same
/// architecture already gives (the clients would take that one).
fn check_aliases(root: &Path, images: &[Image], aliases: &[String]) -> Result<()> {
    use ssgen_core::rules;
    for image in images {
        for alias in aliases {
            let problems = rules::alias_problems(alias, &image.product.arch);
            if !problems.is_empty() {
                bail!(Invalid(format!(
                    "--alias {alias:?}: {}; give an alias a local server accepts (up to {} bytes with /<arch>, ASCII letters or digits at both ends, no spaces, commas or colons)",
                    rules::describe(&problems),
                    rules::ALIAS_MAX
                )));
            }
        }
    }
    if !root.join(IMAGES).is_dir() {
        return Ok(());
    }
    let listing = crate::walk::list(root, &crate::cache::Cache::load(root))?;
    let scan = ssgen_core::scan(&listing.entries(), &ssgen_core::Config::new(0));
    let norm = ssgen_core::arch::normalise;
    for image in images {
        let mine = match &image.published_as {
            Some(vdir) => vdir
                .rsplit_once('/')
                .map_or(vdir.as_str(), |(p, _)| p)
                .to_owned(),
            None => image.product.dir(),
        };
        for p in &scan.products {
            if p.path().dir() == mine || norm(&p.arch) != norm(&image.product.arch) {
                continue;
            }
            if let Some(alias) = aliases.iter().find(|a| p.aliases.contains(a)) {
                bail!(Invalid(format!(
                    "--alias {alias:?}: {} already gives this alias for {}, and the clients would keep taking that one; give another alias, or remove it from {} first",
                    p.id,
                    p.arch,
                    p.path().dir()
                )));
            }
        }
    }
    Ok(())
}

fn print_plan(root: &Path, images: &[Image], aliases: &[(String, Vec<u8>)]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for image in images {
        let note = match (&image.published_as, image.already) {
            (Some(vdir), _) => format!(" — already published as {vdir}, nothing to do"),
            (None, true) => " — already imported, nothing to do".to_owned(),
            (None, false) => String::new(),
        };
        writeln!(
            out,
            "{} {} ({}){note}",
            image.product.id(),
            image.version,
            image.kind
        )?;
        for (src, ftype) in &image.files {
            let name = file_name_of(*ftype);
            writeln!(out, "  {} -> {}/{name}", src.display(), image.version_dir())?;
        }
    }
    for (rel, bytes) in aliases {
        writeln!(out, "write {}:", root.join(rel).display())?;
        out.write_all(bytes)?;
    }
    writeln!(out, "(dry run: nothing was written)")?;
    Ok(())
}

/// Everything an import has done so far, undone on rollback (or on drop
/// without `finish`, e.g. a panic). Every write and deletion in the root
/// goes through its confined places.
struct Transaction {
    root: Root,
    move_files: bool,
    /// Folders this import created, shallowest first (relative paths).
    created_dirs: Vec<String>,
    /// Staging or version folders this import filled (relative paths).
    filled_dirs: Vec<String>,
    /// (source, staged path, final path) of files moved by rename.
    moved: Vec<(PathBuf, String, String)>,
    /// Sources copied that `--move` removes once all is done.
    copied_sources: Vec<PathBuf>,
    /// Side files written (relative paths), with their previous contents.
    side_files: Vec<(String, Option<Vec<u8>>)>,
    /// Version folder → staging folder, per image.
    staged: BTreeMap<String, String>,
    done: bool,
}

impl Transaction {
    fn new(root: Root, move_files: bool) -> Self {
        Self {
            root,
            move_files,
            created_dirs: Vec::new(),
            filled_dirs: Vec::new(),
            moved: Vec::new(),
            copied_sources: Vec::new(),
            side_files: Vec::new(),
            staged: BTreeMap::new(),
            done: false,
        }
    }

    fn stage(&mut self, image: &Image) -> Result<()> {
        let staging_rel = format!(
            "{}/{}",
            image.product.dir(),
            crate::confine::staging_name(self.staged.len())
        );
        let staging = self.root.place(&staging_rel, true)?;
        self.created_dirs.extend(staging.created.iter().cloned());
        staging.make_dir()?;
        self.filled_dirs.push(staging_rel.clone());
        let final_dir = image.version_dir();
        let mut manifest: BTreeMap<&str, String> = BTreeMap::new();
        for (src, ftype) in &image.files {
            let name = file_name_of(*ftype);
            let dst = staging.child(name)?;
            // Moving a link would move the link, not the image: a relative
            // one would point elsewhere, an absolute one out of the root.
            let link = fs::symlink_metadata(src).is_ok_and(|m| m.file_type().is_symlink());
            if self.move_files && link {
                eprintln!(
                    "note: {} is a symbolic link: the file it points to is copied, and both are left in place",
                    src.display()
                );
            }
            if self.move_files && !link {
                // Written before each move, so that the next writer after
                // a kill knows where every moved file came from.
                if let Some(from) = std::path::absolute(src)
                    .ok()
                    .and_then(|p| p.to_str().map(str::to_owned))
                {
                    manifest.insert(name, from);
                    let bytes =
                        serde_json::to_vec(&manifest).context("internal error: manifest")?;
                    staging
                        .child(crate::confine::MOVED_MANIFEST)?
                        .write_atomic(&bytes)?;
                }
                match dst.rename_from(src) {
                    Ok(()) => {
                        self.moved.push((
                            src.clone(),
                            format!("{staging_rel}/{name}"),
                            format!("{final_dir}/{name}"),
                        ));
                        continue;
                    }
                    // Another filesystem: copy, and remove the source at the end.
                    Err(e) if e.kind() == ErrorKind::CrossesDevices => {}
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot move {} to {}", src.display(), dst.path().display())
                        });
                    }
                }
                self.copied_sources.push(src.clone());
            }
            copy_durable(src, &dst)?;
        }
        self.staged.insert(image.version_dir(), staging_rel);
        Ok(())
    }

    fn commit_image(&mut self, image: &Image) -> Result<()> {
        let staging_rel = self
            .staged
            .get(&image.version_dir())
            .context("internal error: the image was not staged")?
            .clone();
        let staging = self.root.place(&staging_rel, false)?;
        let target = self.root.place(&image.version_dir(), false)?;
        if staging.rename_noreplace(&target)? == Renamed::Exists {
            bail!(Invalid(format!(
                "{}: appeared while importing (another import?); nothing was changed",
                target.path().display()
            )));
        }
        if let Some(slot) = self.filled_dirs.iter_mut().find(|d| **d == staging_rel) {
            *slot = image.version_dir();
        }
        // Its files are in place: nothing to put back any more.
        self.root
            .place(
                &format!("{}/{}", image.version_dir(), crate::confine::MOVED_MANIFEST),
                false,
            )?
            .remove()?;
        Ok(())
    }

    fn write_side_file(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(rel);
        let previous = match fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        self.side_files.push((rel.to_owned(), previous));
        self.root.place(rel, false)?.write_atomic(bytes)
    }

    fn finish(mut self) {
        self.done = true;
        for src in &self.copied_sources {
            if let Err(e) = fs::remove_file(src) {
                eprintln!(
                    "warning: {}: imported, but the source could not be removed: {e}",
                    src.display()
                );
            }
        }
    }

    fn rollback(mut self) {
        self.undo();
        self.done = true;
    }

    fn undo(&mut self) {
        for (src, staged, fin) in std::mem::take(&mut self.moved).into_iter().rev() {
            let back = |rel: &str| {
                self.root
                    .place(rel, false)
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))
                    .and_then(|p| p.rename_out(&src))
            };
            if let Err(e) = back(&fin).or_else(|_| back(&staged)) {
                eprintln!(
                    "warning: could not move {} back to {}: {e}",
                    self.root.join(&fin).display(),
                    src.display()
                );
            }
        }
        for dir in std::mem::take(&mut self.filled_dirs).into_iter().rev() {
            let _ = self.root.place(&dir, false).and_then(|p| p.remove());
        }
        for (rel, previous) in std::mem::take(&mut self.side_files).into_iter().rev() {
            let _ = self.root.place(&rel, false).and_then(|p| match previous {
                Some(bytes) => p.write_atomic(&bytes),
                None => p.remove().map(|_| ()),
            });
        }
        // Only the empty ones: never remove what someone else put there.
        self.root
            .remove_empty_dirs(&std::mem::take(&mut self.created_dirs));
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.done {
            self.undo();
        }
    }
}

fn copy_durable(src: &Path, dst: &Place) -> Result<()> {
    let mut from = File::open(src).map_err(|e| open_error(src, e))?;
    let mut to = dst.create_new()?;
    std::io::copy(&mut from, &mut to)
        .and_then(|_| to.sync_all())
        .map_err(|e| open_error_or(src, dst.path(), e))
}

fn open_error_or(src: &Path, dst: &Path, e: std::io::Error) -> anyhow::Error {
    if e.kind() == ErrorKind::NotFound && !src.exists() {
        open_error(src, e)
    } else {
        anyhow!(e).context(format!(
            "cannot copy {} to {}",
            src.display(),
            dst.display()
        ))
    }
}
