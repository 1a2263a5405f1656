//! `ssgen watch`: build, then rebuild whenever `images/` changes, for a
//! tree that another web server serves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::sync::mpsc;

use crate::exit::Invalid;
use crate::publish::{BuildOptions, Settings, rebuild};
use crate::watch;

/// Build ROOT, then rebuild its catalog whenever files under ROOT/images
/// change, until stopped (Ctrl-C).
///
/// For a tree served by nginx, Caddy or any static server: versions copied
/// in by scp, rsync or a CI job are published without a cron job, and
/// withdrawn or deleted ones leave the catalog. Changes are batched: a
/// rebuild starts once nothing has changed for --settle seconds, and only
/// new or changed files are hashed. A rebuild that fails (a malformed
/// .requirements, say) is reported and leaves the published catalog as it
/// was; the next change tries again.
///
/// Copy each version into a hidden directory (.20260801_0312/) and rename
/// it when complete: a file still being written could otherwise be
/// published half-way if the copy pauses longer than --settle.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen watch /var/www/html                 build, then rebuild on every change
  ssgen watch --settle 15 /var/www/html     wait for 15 s of quiet (slow uploads)

To serve the tree too, use `ssgen serve --watch` instead.")]
pub struct WatchArgs {
    /// The server root (holding images/ and streams/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Seconds without a change before a rebuild starts.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub settle: f64,

    #[command(flatten)]
    pub options: BuildOptions,
}

pub fn run(args: &WatchArgs) -> Result<ExitCode> {
    if !args.root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root (the directory holding images/)",
            args.root.display()
        )));
    }
    let settle = Duration::try_from_secs_f64(args.settle)
        .ok()
        .filter(|d| *d <= Duration::from_secs(3600))
        .ok_or_else(|| {
            Invalid(format!(
                "--settle {}: give a number of seconds from 0 to 3600",
                args.settle
            ))
        })?;
    let settings = Settings::new(&args.options)?;
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("cannot resolve {}", args.root.display()))?;

    // A first build that fails is reported like any later one: the fix is
    // usually made while watching.
    if let Err(e) = rebuild(&root, &settings, false) {
        eprintln!("error: {e:#}");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        let _watcher = watch::watch_images(&root, tx)?;
        watch::spawn_rebuilder(root.clone(), settings.clone(), rx, settle);
        eprintln!(
            "watching {} for changes (Ctrl-C stops)",
            root.join(ssgen_core::vocab::IMAGES).display()
        );
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        eprintln!("stopping");
        Ok(ExitCode::SUCCESS)
    })
}
