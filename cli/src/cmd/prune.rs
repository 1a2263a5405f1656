//! `ssgen prune`: withdraw old versions from the catalog, then delete the
//! files of versions withdrawn longer ago than the grace period.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use ssgen_core::withdrawn::{self, Withdrawn};

use crate::cache::Cache;
use crate::publish::{BuildOptions, rebuild};
use crate::exit::Invalid;
use crate::{fsx, walk};

/// Withdraw old versions and delete files no client can still ask for.
///
/// A pruned version leaves the catalog at once, but its files stay where
/// they are for the grace period: clients cache images.json for up to an
/// hour and still download what it lists. A `.withdrawn` marker in the
/// version directory records when; a later `ssgen prune` (run it from cron)
/// deletes the files once the grace period is over. The newest version of
/// each product is always kept.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen prune --keep 3 /var/www/html
  ssgen prune --older-than 30 --dry-run .
  ssgen prune .            only delete what the grace period allows (run it from cron)")]
pub struct PruneArgs {
    /// The server root (holding images/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Keep the N newest versions of each product.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,

    /// Withdraw versions whose date (the YYYYMMDD of the name) is more than
    /// DAYS days old.
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,

    /// Hours a withdrawn version's files stay before they are deleted.
    #[arg(long, value_name = "HOURS", default_value_t = 6)]
    pub grace: u32,

    /// Print what would be withdrawn and deleted, and change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    #[command(flatten)]
    pub options: BuildOptions,
}

pub fn run(args: &PruneArgs) -> Result<ExitCode> {
    if args.keep == Some(0) {
        return Err(
            Invalid("--keep 0 would withdraw every version; keep at least 1".into()).into(),
        );
    }
    let root = &args.root;
    let now = crate::publish::config(&args.options)?.timestamp;
    let listing = walk::list(root, &Cache::load(root))?;
    let scan = ssgen_core::scan(&listing.entries(), &ssgen_core::Config::new(now));

    // 1. Versions to withdraw.
    let mut withdraw: Vec<(String, String)> = Vec::new();
    for product in &scan.products {
        let dir = format!(
            "images/{}/{}/{}/{}",
            product.os, product.release, product.arch, product.variant
        );
        let newest_first: Vec<&str> = product
            .versions
            .iter()
            .rev()
            .map(|v| v.name.as_str())
            .collect();
        for (i, name) in newest_first.iter().enumerate().skip(1) {
            let beyond_keep = args.keep.is_some_and(|k| i >= k);
            let too_old = args.older_than.is_some_and(|days| {
                ssgen_core::time::version_date(name).is_some_and(|(y, m, d)| {
                    ssgen_core::time::days_from_civil(y, m, d) * 86_400 + i64::from(days) * 86_400
                        < now
                })
            });
            let why = match (beyond_keep, too_old) {
                (true, _) => format!("beyond --keep {}", args.keep.unwrap_or_default()),
                (false, true) => format!("older than {} days", args.older_than.unwrap_or_default()),
                (false, false) => continue,
            };
            withdraw.push((format!("{dir}/{name}"), why));
        }
    }

    // 2. Withdrawn versions (or files) whose grace period is over.
    let grace = i64::from(args.grace) * 3600;
    let mut delete: Vec<(PathBuf, String)> = Vec::new();
    for (path, listed) in &listing.files {
        if listed.entry.name() != withdrawn::FILE_NAME {
            continue;
        }
        let Some(bytes) = listed.entry.contents.as_deref() else {
            continue;
        };
        let Ok(marker) = Withdrawn::parse(bytes) else {
            eprintln!("warning: {path}: not a valid marker; left alone");
            continue;
        };
        if marker.since + grace > now {
            continue;
        }
        let dir = Path::new(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let age = format!("withdrawn {}h ago", (now - marker.since) / 3600);
        match &marker.files {
            None => delete.push((dir, age)),
            Some(files) => {
                for f in files {
                    if root.join(&dir).join(f).exists() {
                        delete.push((dir.join(f), age.clone()));
                    }
                }
            }
        }
    }

    for (dir, why) in &withdraw {
        println!("withdraw {dir} ({why})");
    }
    for (path, why) in &delete {
        println!("delete   {} ({why})", path.display());
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }

    // The catalog first, the files after (spec §11.6): markers, rebuild,
    // then deletion.
    let marker = Withdrawn {
        since: now,
        files: None,
    }
    .to_text();
    for (dir, _) in &withdraw {
        fsx::write_atomic(
            &root.join(dir).join(withdrawn::FILE_NAME),
            marker.as_bytes(),
        )?;
    }
    rebuild(root, &args.options, false)?;
    for (path, _) in &delete {
        let full = root.join(path);
        if full.is_dir() {
            fs::remove_dir_all(&full)
        } else {
            fs::remove_file(&full)
        }
        .with_context(|| format!("cannot delete {}", full.display()))?;
    }
    if !withdraw.is_empty() || !delete.is_empty() {
        eprintln!(
            "withdrew {} version(s); deleted {} path(s)",
            withdraw.len(),
            delete.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
