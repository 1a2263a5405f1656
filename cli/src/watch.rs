//! Rebuilds on change, shared by `ssgen watch` and `ssgen serve --watch`
//! (whose upload API asks for rebuilds through the same channel): one
//! rebuild at a time, started once the changes have settled.

use std::path::{Path, PathBuf};
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
            let root = root.clone();
            let settings = settings.clone();
            let done = tokio::task::spawn_blocking(move || rebuild(&root, &settings, false)).await;
            match done {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("error: rebuild failed: {e:#}"),
                Err(e) => eprintln!("error: rebuild panicked: {e}"),
            }
        }
    })
}

/// Sends on `tx` for every change under `root/images` (reads excepted).
/// The catalog and the cache live outside `images/`, so a rebuild does not
/// trigger itself. Watching stops when the returned watcher is dropped.
pub fn watch_images(
    root: &Path,
    tx: mpsc::UnboundedSender<()>,
) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let images = root.join("images");
    std::fs::create_dir_all(&images)
        .with_context(|| format!("cannot create {}", images.display()))?;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    })
    .context("cannot watch the tree")?;
    watcher
        .watch(&images, notify::RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", images.display()))?;
    Ok(watcher)
}
