//! `ssgen build`: scan, hash what is new, write the catalogs atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ssgen_core::{Client, Clients, Config, IMAGES_JSON, INDEX_JSON, Level};

use crate::cache::Cache;
use crate::exit::Invalid;
use crate::{fsx, hashing, walk};

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
}

/// Scan ROOT/images, hash what is new and write ROOT/streams/v1/*.json.
///
/// Images live in ROOT/images/<os>/<release>/<arch>/<variant>/<version>/
/// as lxd.tar.xz or incus.tar.xz (metadata) with rootfs.squashfs,
/// root.tar.xz or disk.qcow2. `.requirements` files (JSON objects of
/// strings) apply to everything below them. Versions still being uploaded
/// are reported and skipped; hidden directories are never read.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen build /var/www/html
  ssgen build --dry-run .                      print images.json, write nothing
  ssgen build --only incus --timestamp 1785556800 .
  ssgen build --html --url https://images.example.org /var/www/html
                                               also write index.html for people

Exit status: 0 built, 1 invalid input (nothing written; the published
catalog is kept), 2 a file could not be read or written.")]
pub struct BuildArgs {
    /// The server root (holding images/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Print images.json on stdout and write nothing, not even the cache.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    #[command(flatten)]
    pub options: BuildOptions,

    #[command(flatten)]
    pub page: crate::page::HtmlArgs,
}

/// What a build published.
#[derive(Debug)]
pub struct Built {
    pub images_json: String,
    pub index_json: String,
}

pub fn run(args: &BuildArgs) -> Result<ExitCode> {
    // A bad --url stops the build before anything is written.
    let page = args.page.html.then(|| args.page.options()).transpose()?;
    let built = rebuild(&args.root, &args.options, args.dry_run)?;
    if args.dry_run {
        std::io::stdout()
            .write_all(built.images_json.as_bytes())
            .context("cannot write to stdout")?;
    } else if let Some(options) = &page {
        // After index.json, which rebuild has put in place.
        crate::page::write(&args.root, &built.index_json, &built.images_json, options)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn config(options: &BuildOptions) -> Result<Config> {
    let timestamp = match options.timestamp {
        Some(t) => t,
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v.parse().map_err(|_| {
                Invalid(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds; unset it or fix it"
                ))
            })?,
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        },
    };
    let clients = match options.only {
        None => Clients::Both,
        Some(Only::Lxd) => Clients::Only(Client::Lxd),
        Some(Only::Incus) => Clients::Only(Client::Incus),
    };
    Ok(Config { clients, timestamp })
}

/// Builds the catalogs of `root`; writes them (files first, then
/// images.json, then index.json, each atomically) unless `dry_run`.
/// Diagnostics go to stderr. Errors in the input write nothing.
pub fn rebuild(root: &Path, options: &BuildOptions, dry_run: bool) -> Result<Built> {
    let config = config(options)?;
    if !root.is_dir() {
        return Err(Invalid(format!(
            "{}: not a directory; give the server root (the directory holding images/)",
            root.display()
        ))
        .into());
    }
    let mut cache = Cache::load(root);
    let listing = walk::list(root, &cache)?;
    let scan = ssgen_core::scan(&listing.entries(), &config);
    for d in &scan.diagnostics {
        eprintln!("{d}");
    }
    if scan.has_errors() {
        let n = scan
            .diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .count();
        return Err(Invalid(format!(
            "{n} error(s) above; nothing was written and the published catalog is unchanged"
        ))
        .into());
    }
    let mut digests = cache.known(&listing);
    let plan = scan.plan(&digests);
    hashing::run(root, &plan, &mut digests, hashing::Check::Whole)?;

    let streams = root.join("streams").join("v1");
    let images_path = root.join(IMAGES_JSON);
    let previous = std::fs::read_to_string(&images_path).ok();
    let out = match ssgen_core::build(&scan, &digests, &config, previous.as_deref()) {
        Ok(out) => out,
        Err(ssgen_core::Error::Invalid(problems)) => {
            for d in &problems {
                eprintln!("{d}");
            }
            return Err(Invalid(format!(
                "{} error(s) above; nothing was written and the published catalog is unchanged",
                problems.len()
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    for d in out.diagnostics.iter().skip(scan.diagnostics.len()) {
        eprintln!("{d}");
    }
    let changed = previous.as_deref() != Some(out.images_json.as_str());
    if !dry_run {
        let index_path = root.join(INDEX_JSON);
        // images.json before index.json: a client that sees the new index
        // finds the new products file (spec §11.6).
        if changed {
            fsx::write_atomic(&images_path, out.images_json.as_bytes())?;
        }
        if std::fs::read_to_string(&index_path).ok().as_deref() != Some(out.index_json.as_str()) {
            fsx::write_atomic(&index_path, out.index_json.as_bytes())?;
        }
        if cache.update(&listing, &digests) {
            cache.save()?;
        }
        eprintln!(
            "{}: {} product(s), {} image(s) in {}{}; read {} file(s), {} byte(s)",
            root.display(),
            out.products,
            out.images,
            streams.display(),
            if changed { "" } else { " (unchanged)" },
            plan.jobs().count(),
            plan.total_bytes(),
        );
    }
    Ok(Built {
        images_json: out.images_json,
        index_json: out.index_json,
    })
}
