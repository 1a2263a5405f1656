//! The upload API's listing and publish step, as the edge Worker answers
//! them (the documents are the core's, [`ssgen_core::serve::api`]), so
//! that `ssgen push` publishes to `ssgen serve` as it does to the edge:
//!
//! - `GET /api/v1/files`: every file under `images/` with its sha256 (the
//!   build cache's, the rest hashed now), the files `.withdrawn` markers
//!   withdraw, and the combined fingerprints of the pairs a build would
//!   publish, computed from the bytes. One page; `whole_files` tells
//!   publishers to send each file in one `PUT`, whatever its size.
//! - `POST /publish`: a rebuild now, under the root lock, and the check
//!   that every file the publisher requires is in the catalog as sent.

use std::collections::BTreeSet;

use ssgen_core::serve::api;
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{HashJob, Sha256};

use super::*;
use crate::cache::Cache;
use crate::confine::Root;
use crate::exit::Refused;
use crate::{hashing, walk};

/// `GET /api/v1/files`.
pub(super) async fn list(server: &Server) -> Result<Response<Body>, HttpError> {
    let lock = crate::upload::take_lock(server).await?;
    let (root, settings) = (server.root.clone(), server.settings.clone());
    let page = tokio::task::spawn_blocking(move || {
        let page = listing(&root, &settings);
        drop(lock);
        page
    })
    .await
    .map_err(internal)?
    .map_err(|e| internal(format!("{e:#}")))?;
    Ok(json(StatusCode::OK, &page))
}

/// What the root holds, hashed as a build hashes (and the cache kept).
fn listing(root: &Path, settings: &crate::publish::Settings) -> Result<api::ListPage> {
    let mut cache = Cache::load(root);
    let listing = walk::list(root, &cache)?;
    let scan = ssgen_core::scan(&listing.entries(), &settings.config());
    let mut digests = cache.known(&listing);
    let mut plan = scan.plan(&digests);
    // The files no published version holds are hashed too: a publisher
    // compares every file it would send.
    let planned: BTreeSet<String> = plan.jobs().map(|j| j.path.clone()).collect();
    for (path, listed) in &listing.files {
        let e = &listed.entry;
        if e.contents.is_none() && !digests.files.contains_key(path) && !planned.contains(path) {
            plan.bodies.push(HashJob {
                path: path.clone(),
                size: e.size,
                is_prefix: false,
                prefixes: Vec::new(),
            });
        }
    }
    hashing::run(root, &plan, &mut digests, hashing::Check::None)?;
    if cache.update(&listing, &digests) {
        // The cache only saves work; failing to write it fails nothing.
        if let Err(e) = cache.save() {
            eprintln!("warning: {e:#}");
        }
    }
    let mut page = api::ListPage {
        whole_files: true,
        ..api::ListPage::default()
    };
    let mut markers = Vec::new();
    for (path, listed) in &listing.files {
        let e = &listed.entry;
        if e.name() == withdrawn::FILE_NAME {
            // As the build reads it: a marker it cannot parse withdraws all.
            let marker =
                Withdrawn::parse(e.contents.as_deref().unwrap_or_default()).unwrap_or(Withdrawn {
                    since: 0,
                    files: None,
                });
            markers.push((path.rsplit_once('/').map_or("", |(d, _)| d), marker));
            continue;
        }
        let sha = match &e.contents {
            Some(bytes) => Some(Sha256::of(bytes)),
            None => digests.files.get(path).copied(),
        };
        page.files.push(api::ListedFile {
            path: path.clone(),
            size: e.size,
            sha256: sha.map(|d| d.to_hex()),
            purged: false,
        });
    }
    for f in &page.files {
        let (dir, name) = f.path.rsplit_once('/').unwrap_or(("", &f.path));
        if let Some((_, m)) = markers.iter().find(|(d, m)| *d == dir && m.covers(name)) {
            page.removed.push(api::ListedRemoval {
                path: f.path.clone(),
                sha256: f.sha256.clone(),
                removed_at: m.since,
                withdrawn_at: Some(m.since),
            });
        }
    }
    for (meta, root_file) in scan.pairs() {
        let key = (meta.path.clone(), root_file.path.clone());
        let (Some(d), Some(m), Some(r)) = (
            digests.combined.get(&key),
            digests.files.get(&meta.path),
            digests.files.get(&root_file.path),
        ) else {
            continue;
        };
        page.combined.push(api::ListedCombined {
            path: root_file.path.clone(),
            meta: meta
                .path
                .rsplit('/')
                .next()
                .unwrap_or(&meta.path)
                .to_owned(),
            sha256: d.to_hex(),
            meta_sha256: m.to_hex(),
            root_sha256: r.to_hex(),
        });
    }
    Ok(page)
}

/// `POST /publish[?timestamp=T]` with `{"require": {path: sha256}}`.
pub(super) async fn publish(
    server: &Server,
    query: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, HttpError> {
    let mut settings = server.settings.clone();
    for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
        if k == "timestamp" {
            settings = settings.at(api::timestamp(v).map_err(bad)?);
        }
    }
    let as_json = wants_json(req.headers());
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| bad(format!("the publish body was cut: {e}")))?
        .to_bytes();
    let asked: api::PublishRequest = if body.iter().all(u8::is_ascii_whitespace) {
        api::PublishRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "the publish body is not {{\"require\": {{\"<path>\": \"<sha256>\"}}}}: {e}"
            ))
        })?
    };
    let lock = crate::upload::take_lock(server).await?;
    let root = server.root.clone();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let confined = Root::open(&root)?;
        // The requirement is judged on the tree as this build sees it,
        // under the same lock: nothing changes in between.
        let mut cache = Cache::load(&root);
        let listing = walk::list(&root, &cache)?;
        let scan = ssgen_core::scan(&listing.entries(), &settings.config());
        let mut digests = cache.known(&listing);
        hashing::run(
            &root,
            &scan.plan(&digests),
            &mut digests,
            hashing::Check::None,
        )?;
        for (path, listed) in &listing.files {
            if let Some(bytes) = &listed.entry.contents {
                digests.files.insert(path.clone(), Sha256::of(bytes));
            }
        }
        let unmet = api::unmet(&asked.require, &scan, &digests, "server");
        if !unmet.is_empty() {
            return Ok(Err(unmet));
        }
        // What was just hashed, the build need not hash again.
        if cache.update(&listing, &digests)
            && let Err(e) = cache.save()
        {
            eprintln!("warning: {e:#}");
        }
        let built = crate::publish::rebuild_locked(&confined, &lock, &settings)?;
        drop(lock);
        Ok(Ok(built))
    })
    .await
    .map_err(internal)?;
    let built = match outcome {
        Ok(Ok(built)) => built,
        Ok(Err(unmet)) => {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} file(s) of the publisher are not on the server as sent, or their version would be left out; nothing was published: {}",
                    unmet.len(),
                    unmet.join("; ")
                ),
            ));
        }
        Err(e) => {
            if let Some(refused) = e.chain().find_map(|c| c.downcast_ref::<Refused>()) {
                return Ok(refused_answer(refused, as_json));
            }
            if crate::exit::is_invalid(&e) {
                return Err(HttpError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{e:#}"),
                ));
            }
            return Err(internal(format!("{e:#}")));
        }
    };
    let generation = server.catalog.snapshot().await.generation;
    let answer = api::Published {
        changed: built.changed,
        generation,
        images_sha256: Sha256::of(built.images_json.as_bytes()).to_hex(),
        index_sha256: Sha256::of(built.index_json.as_bytes()).to_hex(),
        products: built.products as u64,
        images: built.images as u64,
        withdrawn: Vec::new(),
        purged: Vec::new(),
        diagnostics: built
            .diagnostics
            .iter()
            .filter_map(|d| serde_json::to_value(d).ok())
            .collect(),
        attempts: 1,
    };
    Ok(json(StatusCode::OK, &answer))
}

/// A publish the build refused: 422 with its errors, each naming its file,
/// why, and the fix (what the server's log says above its refusal).
fn refused_answer(refused: &Refused, as_json: bool) -> Response<Body> {
    let errors: Vec<String> = refused
        .errors
        .iter()
        .map(|d| format!("{} (fix: {})", d.short(), d.help))
        .collect();
    let message = format!(
        "{} error(s) in the tree block publishing; nothing was written and the published catalog is unchanged: {}",
        errors.len(),
        errors.join("; ")
    );
    if !as_json {
        return text(StatusCode::UNPROCESSABLE_ENTITY, &message);
    }
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &serde_json::json!({ "error": message, "diagnostics": refused.errors }),
    )
}
