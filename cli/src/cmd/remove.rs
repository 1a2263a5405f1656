//! `ssgen remove`: withdraw one image, found by fingerprint or alias, and
//! rebuild.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use clap::ValueEnum as _;
use ssgen_core::view::{self, Image, View};
use ssgen_core::vocab::ImageType;
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{Client, INDEX_JSON};

use crate::cache::Cache;
use crate::confine::Root;
use crate::exit::Invalid;
use crate::publish::{BuildOptions, Settings, rebuild_locked};
use crate::show::TypeArg;
use crate::source::{Catalog, host_arch};
use crate::walk;

/// Remove one image from the catalog, by fingerprint (or a unique prefix)
/// or by alias, and rebuild.
///
/// The image's root file (or its whole version, when nothing else is left
/// in it) is withdrawn with a `.withdrawn` marker: it leaves the catalog
/// now, and `ssgen prune` deletes the files after the grace period, since
/// clients may still download what their cached catalog lists. An alias
/// that names several images is refused with the candidates listed: choose
/// between a container and a VM with --type, between architectures with
/// the `<alias>/<arch>` form, or give the fingerprint.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen remove 3f138cfda346 /var/www/html
  ssgen remove debian/12/cloud/amd64 .
  ssgen remove --type virtual-machine debian/12/amd64 .
  ssgen remove --dry-run debian/12 .")]
pub struct RemoveArgs {
    /// A fingerprint, a unique fingerprint prefix, or an alias.
    pub target: String,

    /// The server root (holding images/ and streams/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Only the container or only the VM that TARGET names (an alias
    /// names both when a version holds a squashfs and a qcow2 disk).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub image_type: Option<TypeArg>,

    /// Print what would be withdrawn and change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    #[command(flatten)]
    pub options: BuildOptions,
}

/// The shortest fingerprint prefix taken: a shorter one would name an
/// image by accident.
const PREFIX_MIN: usize = 4;

/// One image's files, whichever client lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    version_dir: String,
    /// The root file's (or unified tarball's) name.
    file: String,
    describe: String,
    image_type: ImageType,
    arch: String,
}

fn target_of(image: &Image) -> Option<Target> {
    let path = image.root_path.as_deref().unwrap_or(&image.meta_path);
    let (dir, file) = path.rsplit_once('/')?;
    Some(Target {
        version_dir: dir.to_owned(),
        file: file.to_owned(),
        describe: format!(
            "{} {} {} {} ({})",
            &image.fingerprint[..image.fingerprint.len().min(12)],
            image.product,
            image.version,
            image.image_type,
            image.architecture
        ),
        image_type: image.image_type,
        arch: image.raw_arch.clone(),
    })
}

/// Every client's images and aliases, as they would list this root.
fn load_views(root: &Path) -> Result<Vec<View>> {
    if !root.join(INDEX_JSON).is_file() {
        return Err(Invalid(format!(
            "{}: no {INDEX_JSON}; run `ssgen build` first",
            root.display()
        ))
        .into());
    }
    let remote = Catalog::open(&root.display().to_string())?.remote();
    let host = host_arch();
    Ok(Client::ALL
        .iter()
        .map(|c| view::view(&remote, *c, &host))
        .collect())
}

/// How to name one of several `targets` that `target` names: by what
/// tells them apart.
fn choose_hint(target: &str, targets: &BTreeSet<Target>) -> String {
    let types: BTreeSet<ImageType> = targets.iter().map(|t| t.image_type).collect();
    let arches: BTreeSet<&str> = targets.iter().map(|t| t.arch.as_str()).collect();
    let mut ways = Vec::new();
    if types.len() > 1 {
        ways.push(format!(
            "add --type container or --type virtual-machine (`ssgen remove --type virtual-machine {target}`)"
        ));
    }
    if arches.len() > 1 {
        let first = arches.first().copied().unwrap_or("amd64");
        ways.push(format!("add the architecture (`{target}/{first}`)"));
    }
    ways.push("give the fingerprint".to_owned());
    ways.join(", or ")
}

pub fn run(args: &RemoveArgs) -> Result<ExitCode> {
    let settings = Settings::new(&args.options)?;
    let root = &args.root;
    let confined = Root::open(root)?;
    // The catalog read, the marker written and the rebuild under one lock.
    let lock = if args.dry_run {
        None
    } else {
        Some(settings.lock(&confined)?)
    };
    let views = load_views(root)?;
    let images: Vec<&Image> = views.iter().flat_map(|v| &v.images).collect();
    let wanted = args.target.to_ascii_lowercase();
    let mut matches: Vec<&Image> = images
        .iter()
        .copied()
        .filter(|i| wanted.len() >= PREFIX_MIN && i.fingerprint.starts_with(&wanted))
        .collect();
    if matches.is_empty() {
        // An alias resolves as the clients resolve it: to the image it was
        // registered for (the newest version), per type and architecture.
        let hits: BTreeSet<(&str, &str)> = views
            .iter()
            .flat_map(|v| &v.aliases)
            .filter(|a| a.name == args.target)
            .map(|a| (a.fingerprint.as_str(), a.product.as_str()))
            .collect();
        matches = images
            .iter()
            .copied()
            .filter(|i| hits.contains(&(i.fingerprint.as_str(), i.product.as_str())))
            .collect();
    }
    if let Some(t) = args.image_type {
        matches.retain(|i| t.matches(i.image_type));
    }
    let targets: BTreeSet<Target> = matches.iter().filter_map(|i| target_of(i)).collect();
    let target = match targets.len() {
        0 => {
            let of_type = args
                .image_type
                .map(|t| {
                    format!(
                        " of type {}",
                        t.to_possible_value()
                            .map_or_else(String::new, |v| v.get_name().to_owned())
                    )
                })
                .unwrap_or_default();
            let prefixed: BTreeSet<&str> = images
                .iter()
                .filter(|i| i.fingerprint.starts_with(&wanted))
                .map(|i| i.fingerprint.as_str())
                .collect();
            if wanted.len() < PREFIX_MIN && !wanted.is_empty() && !prefixed.is_empty() {
                return Err(Invalid(format!(
                    "{:?} is too short a fingerprint prefix ({} image(s) start with it): give more characters, at least {PREFIX_MIN}; `ssgen list {}` shows the fingerprints",
                    args.target,
                    prefixed.len(),
                    root.display()
                ))
                .into());
            }
            return Err(Invalid(format!(
                "no image{of_type} has the fingerprint or alias {:?}; `ssgen list {}` shows them",
                args.target,
                root.display()
            ))
            .into());
        }
        1 => targets.into_iter().next().context("one target")?,
        _ => {
            let list: Vec<String> = targets
                .iter()
                .map(|t| format!("  {}", t.describe))
                .collect();
            return Err(Invalid(format!(
                "{:?} names {} images; {}:\n{}",
                args.target,
                list.len(),
                choose_hint(&args.target, &targets),
                list.join("\n")
            ))
            .into());
        }
    };

    // Withdraw the whole version when nothing else of it stays listed.
    let others: BTreeSet<String> = images
        .iter()
        .filter_map(|i| target_of(i))
        .filter(|t| t.version_dir == target.version_dir && t.file != target.file)
        .map(|t| t.file)
        .collect();
    let now = settings.timestamp();
    let marker_rel = format!("{}/{}", target.version_dir, withdrawn::FILE_NAME);
    let marker_path = root.join(&marker_rel);
    let previous = std::fs::read(&marker_path)
        .ok()
        .and_then(|b| Withdrawn::parse(&b).ok());
    let marker = if others.is_empty() {
        Withdrawn {
            since: now,
            files: None,
        }
    } else {
        let mut files = previous.and_then(|p| p.files).unwrap_or_default();
        files.push(target.file.clone());
        files.sort();
        files.dedup();
        Withdrawn {
            since: now,
            files: Some(files),
        }
    };
    let what = if others.is_empty() {
        target.version_dir.clone()
    } else {
        format!("{}/{}", target.version_dir, target.file)
    };
    println!("withdraw {what} ({})", target.describe);
    // The deltas that hang on what leaves go with it.
    let listing = walk::list(root, &Cache::load(root))?;
    let scan = ssgen_core::scan(&listing.entries(), &ssgen_core::Config::new(now));
    let orphans = ssgen_core::delta::orphaned_by(&scan, |path| {
        path.strip_prefix(what.as_str())
            .is_some_and(|rest| rest.is_empty() || (others.is_empty() && rest.starts_with('/')))
    });
    for p in &orphans {
        println!("withdraw {} (a delta of {what})", p.path);
    }
    let Some(lock) = lock else {
        return Ok(ExitCode::SUCCESS);
    };
    confined
        .place(&marker_rel, false)?
        .write_atomic(marker.to_text().as_bytes())?;
    crate::delta::withdraw(&confined, &orphans, now)?;
    rebuild_locked(&confined, &lock, &settings)?;
    Ok(ExitCode::SUCCESS)
}
