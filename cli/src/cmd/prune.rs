//! `ssgen prune`: withdraw old versions from the catalog, then delete the
//! files of versions withdrawn longer ago than the grace period.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ssgen_core::withdrawn::{self, Withdrawn};

use crate::cache::Cache;
use crate::confine::Root;
use crate::exit::Invalid;
use crate::publish::{BuildOptions, Settings, rebuild_locked};
use crate::walk;

/// Withdraw old versions and delete files no client can still ask for.
///
/// A pruned version leaves the catalog at once, but its files stay where
/// they are for the grace period: clients cache images.json for up to an
/// hour and still download what it lists. A `.withdrawn` marker in the
/// version directory records when; a later `ssgen prune` (run it from cron)
/// deletes the files once the grace period is over. The newest version of
/// each product is always kept. A marker that is not valid, or not in a
/// version directory, deletes nothing and is warned about (exit 0, the rest
/// is pruned); with --strict, prune exits 1 before it changes anything.
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

    /// Print what would be withdrawn and deleted, and the versions already
    /// withdrawn whose files wait for the grace period; change nothing.
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
    let settings = Settings::new(&args.options)?;
    let root = Root::open(&args.root)?;
    // Read, decide and act under one lock: a build that scanned before a
    // withdrawal cannot publish the version again after it.
    let lock = if args.dry_run {
        None
    } else {
        Some(settings.lock(&root)?)
    };
    let now = settings.timestamp();
    let listing = walk::list(root.path(), &Cache::load(root.path()))?;
    let scan = ssgen_core::scan(&listing.entries(), &ssgen_core::Config::new(now));

    // 1. Versions to withdraw.
    let mut withdraw: Vec<(String, String)> = Vec::new();
    for product in &scan.products {
        let dir = product.path().dir();
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

    // 1b. Deltas from a withdrawn version to one that stays.
    let orphans = ssgen_core::delta::orphaned_by(&scan, |path| {
        withdraw.iter().any(|(dir, _)| {
            path.strip_prefix(dir.as_str())
                .is_some_and(|r| r.starts_with('/'))
        })
    });

    // 2. Withdrawn versions (or files) whose grace period is over.
    let grace = i64::from(args.grace) * 3600;
    let mut delete: Vec<(String, String)> = Vec::new();
    // Withdrawn, still within the grace period: listed by a dry run.
    let mut pending: Vec<(String, String)> = Vec::new();
    // Markers that delete nothing: a warning each (exit 0, the rest is
    // pruned), or with --strict a refusal before anything changes.
    let mut bad_markers = 0_usize;
    for (path, listed) in &listing.files {
        if listed.entry.name() != withdrawn::FILE_NAME {
            continue;
        }
        // images/<os>/<release>/<arch>/<variant>/<version>/.withdrawn: a
        // marker anywhere else withdraws nothing from the catalog, so it
        // must delete nothing either.
        let Some(dir) = path
            .strip_suffix(withdrawn::FILE_NAME)
            .and_then(|d| d.strip_suffix('/'))
            .filter(|d| d.split('/').count() == 6)
        else {
            eprintln!(
                "warning: {}: a .withdrawn marker outside a version directory (images/<os>/<release>/<arch>/<variant>/<version>/) withdraws nothing; left alone (delete it)",
                root.join(path).display()
            );
            bad_markers += 1;
            continue;
        };
        let Some(bytes) = listed.entry.contents.as_deref() else {
            continue;
        };
        let marker = match Withdrawn::parse(bytes) {
            Ok(m) => m,
            Err(why) => {
                eprintln!(
                    "warning: {}: not a valid marker ({why}); nothing is deleted for it (fix or delete it)",
                    root.join(path).display()
                );
                bad_markers += 1;
                continue;
            }
        };
        // A time far in the future is never due (and cannot overflow).
        let due = marker.since.saturating_add(grace);
        if due > now {
            let what = match &marker.files {
                None => dir.to_owned(),
                Some(files) => format!("{dir}/{{{}}}", files.join(",")),
            };
            pending.push((
                what,
                format!(
                    "withdrawn {}h ago; deleted in {}h",
                    now.saturating_sub(marker.since) / 3600,
                    (due - now + 3599) / 3600
                ),
            ));
            continue;
        }
        let age = format!("withdrawn {}h ago", now.saturating_sub(marker.since) / 3600);
        match &marker.files {
            None => delete.push((dir.to_owned(), age)),
            Some(files) => {
                for f in files {
                    let rel = format!("{dir}/{f}");
                    if root.place(&rel, false)?.stat()?.is_some() {
                        delete.push((rel, age.clone()));
                    }
                }
            }
        }
    }

    if settings.strict && bad_markers > 0 {
        return Err(Invalid(format!(
            "--strict: {bad_markers} marker warning(s) above; nothing was withdrawn or deleted (fix or delete the markers, or drop --strict)"
        ))
        .into());
    }

    let mut out = String::new();
    for (dir, why) in &withdraw {
        out.push_str(&format!("withdraw {dir} ({why})\n"));
    }
    for p in &orphans {
        out.push_str(&format!(
            "withdraw {} (its base {} is withdrawn)\n",
            p.path, p.base
        ));
    }
    for (path, why) in &delete {
        out.push_str(&format!("delete   {path} ({why})\n"));
    }
    if args.dry_run {
        for (path, why) in &pending {
            out.push_str(&format!("pending  {path} ({why})\n"));
        }
    }
    crate::output::emit(out.as_bytes())?;
    let Some(lock) = lock else {
        return Ok(ExitCode::SUCCESS);
    };

    // The catalog first, the files after: markers, rebuild, then deletion.
    let marker = Withdrawn {
        since: now,
        files: None,
    }
    .to_text();
    for (dir, _) in &withdraw {
        root.place(&format!("{dir}/{}", withdrawn::FILE_NAME), false)?
            .write_atomic(marker.as_bytes())?;
    }
    crate::delta::withdraw(&root, &orphans, now)?;
    rebuild_locked(&root, &lock, &settings)?;
    for (path, _) in &delete {
        root.place(path, false)?.remove()?;
    }
    if !withdraw.is_empty() || !orphans.is_empty() || !delete.is_empty() {
        eprintln!(
            "withdrew {} version(s) and {} delta(s); deleted {} path(s)",
            withdraw.len(),
            orphans.len(),
            delete.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
