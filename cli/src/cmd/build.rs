//! `ssgen build`: scan, hash what is new, write the catalogs atomically.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::publish::{BuildOptions, Settings, rebuild};

/// Scan ROOT/images, hash what is new and write ROOT/streams/v1/*.json.
///
/// Images live in ROOT/images/<os>/<release>/<arch>/<variant>/<version>/
/// as lxd.tar.xz or incus.tar.xz (metadata) with rootfs.squashfs,
/// root.tar.xz or disk.qcow2. `.requirements` files (JSON objects of
/// strings) apply to everything below them. Versions still being uploaded
/// are reported and skipped; hidden directories are never read.
///
/// Each product's newest squashfs gets a VCDIFF delta from the previous
/// --deltas versions (`delta-<base>.vcdiff` in its version directory),
/// published only when it decodes to its target and saves enough
/// (--delta-max-percent); defaults from ROOT/.ssgen/config.json.
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

    /// Print images.json on stdout and write nothing, not even the cache
    /// or a delta: the deltas a build would make are named on stderr, and
    /// those already there are checked.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    #[command(flatten)]
    pub options: BuildOptions,

    #[command(flatten)]
    pub page: crate::page::HtmlArgs,
}

pub fn run(args: &BuildArgs) -> Result<ExitCode> {
    let mut settings = Settings::new(&args.options)?;
    // A bad --url stops the build before anything is written.
    settings.page = args.page.html.then(|| args.page.options()).transpose()?;
    let built = rebuild(&args.root, &settings, args.dry_run)?;
    if args.dry_run {
        std::io::stdout()
            .write_all(built.images_json.as_bytes())
            .context("cannot write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}
