//! Rebuilds on change, shared by `ssgen watch` and `ssgen serve --watch`
//! (whose upload API asks for rebuilds through the same channel): one
//! rebuild at a time, started once the changes have settled.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use crate::publish::{Settings, rebuild};

/// How long `ssgen serve` waits for quiet before a rebuild. Its own uploads
/// are renamed into place whole, so a short wait only batches them.
pub const SERVE_SETTLE: Duration = Duration::from_millis(700);

/// Runs a rebuild of `root` for every burst of messages on `rx`: after a
/// message, it waits until `settle` passes with no new one, then rebuilds
/// (on a blocking thread; messages that arrive meanwhile make the next
/// burst). A failed rebuild is reported on stderr and leaves the published
/// catalog as it was; the loop goes on.
pub fn spawn_rebuilder(
    root: PathBuf,
    settings: Settings,
    mut rx: mpsc::UnboundedReceiver<()>,
    settle: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            loop {
                tokio::time::sleep(settle).await;
                let mut more = false;
                while rx.try_recv().is_ok() {
                    more = true;
                }
                if !more {
                    break;
                }
            }
            loop {
                let root = root.clone();
                let settings = settings.clone();
                let done =
                    tokio::task::spawn_blocking(move || rebuild(&root, &settings, false)).await;
                match done {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) if e.is::<crate::lock::Busy>() => {
                        // Another writer kept the root all along: the
                        // change is still to be published.
                        eprintln!("warning: {e:#}; trying again");
                        tokio::time::sleep(settle.max(Duration::from_secs(1))).await;
                        continue;
                    }
                    Ok(Err(e)) => eprintln!("error: rebuild failed: {e:#}"),
                    Err(e) => eprintln!("error: rebuild panicked: {e}"),
                }
                break;
            }
        }
    })
}

/// Watching of a root's `images/`; stops when dropped.
pub struct Watch {
    _watcher: Arc<Mutex<notify::RecommendedWatcher>>,
}

/// Sends on `tx` for every change under `root/images` (reads excepted).
/// The catalog and the cache live outside `images/`, so a rebuild does not
/// trigger itself. The root itself is watched too: when `images/` is
/// replaced (`mv images images.old; mv images.new images`) or comes back
/// (a volume mounted again), the new one is watched, and a rebuild runs.
pub fn watch_images(root: &Path, tx: mpsc::UnboundedSender<()>) -> Result<Watch> {
    use notify::Watcher as _;
    let images = root.join("images");
    std::fs::create_dir_all(&images)
        .with_context(|| format!("cannot create {}", images.display()))?;
    let (swap_tx, swap_rx) = std::sync::mpsc::channel::<()>();
    let top = images.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        // Of the root's own entries only images/ matters.
        let about_images = event.paths.contains(&top);
        if about_images {
            let _ = swap_tx.send(());
        }
        if about_images || event.paths.iter().any(|p| p.starts_with(&top)) {
            let _ = tx.send(());
        }
    })
    .context("cannot watch the tree")?;
    let watcher = Arc::new(Mutex::new(watcher));
    {
        let mut w = lock(&watcher);
        w.watch(&images, notify::RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", images.display()))?;
        w.watch(root, notify::RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", root.display()))?;
    }
    // Watches are changed off the watcher's own thread (which delivers the
    // events), and end with it: the thread stops once the watcher is gone.
    let weak = Arc::downgrade(&watcher);
    std::thread::spawn(move || {
        while swap_rx.recv().is_ok() {
            let Some(watcher) = weak.upgrade() else { break };
            let mut w = lock(&watcher);
            let _ = w.unwatch(&images);
            if images.is_dir() {
                if let Err(e) = w.watch(&images, notify::RecursiveMode::Recursive) {
                    eprintln!("warning: cannot watch {}: {e}", images.display());
                }
            }
        }
    });
    Ok(Watch { _watcher: watcher })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
