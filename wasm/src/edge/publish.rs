//! `POST /publish`: rebuild the catalog from the R2 listing through the
//! core, swap it in atomically, and only then let removed files go.
//!
//! 1. Read the pointer `catalog/current.json` from R2 (strongly
//!    consistent) and remember its etag.
//! 2. List the files, the tombstones and the combined fingerprints, turn
//!    them into the core's listing and known digests (all from custom
//!    metadata: nothing is re-read), and build. Missing digests refuse the
//!    publish (409) naming the files, and so does a file the publisher
//!    requires (`{"require": {path: sha256}}`) that is not on the edge as
//!    sent or whose version the catalog would leave out.
//! 3. Write the new snapshot (`catalog/<sha256>` in KV, a copy in R2) and
//!    its alias map before anything points at it.
//! 4. Put the new pointer with `onlyIf: { etagMatches }`. If another
//!    publisher swapped in between, the put does not happen: rebuild from
//!    the (now larger) listing and try again, so neither loses images.
//! 5. Copy the pointer's index into KV for readers, re-checking the R2
//!    pointer afterwards so a slower publisher cannot leave an older index
//!    in KV last.
//! 6. With the catalog swapped in (or unchanged), the tombstones it left
//!    out are stamped `withdrawn` now, unless an earlier publish stamped
//!    them; files stamped more than the grace period ago are purged. A
//!    publish that is refused or stops before this point purges nothing,
//!    and the grace period always counts from a catalog that no longer
//!    lists the file.
//!
//! A publish that stops anywhere before step 4 leaves the old pointer, and
//! so the old catalog, in place; an unreferenced snapshot is harmless.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ssgen_core::{Config, Digests, Entry, Sha256, direct};
use wasm_bindgen::prelude::*;
use web_sys::Request;

use super::js::{self, KvNamespace, R2Bucket, R2Object};
use super::state::{self, COMBINED, DELETED, Record, SHA256, STAGING, Tomb, UPLOADS};
use ssgen_core::serve::{IMAGES_DIR, api};

use super::{Env, Error, INDEX_KEY, Reply, Result, authorize, now_secs, stores};

const POINTER: &str = "catalog/current.json";
/// Six hours: clients keep a catalog for one.
const DEFAULT_GRACE: i64 = 6 * 3600;
/// Swaps lost to concurrent publishers before giving up.
const ATTEMPTS: u32 = 8;
/// A multipart upload record older than this is dropped with its parts
/// (R2 itself aborts uploads left for a week).
const STALE_UPLOAD_MS: f64 = 7.0 * 86_400_000.0;

/// The pointer publishers swap.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pointer {
    /// Publishes so far.
    pub generation: u64,
    /// sha256 of the snapshot (`images.json`).
    pub images: String,
    /// sha256 of `index.json`.
    pub index: String,
    /// `index.json` itself.
    pub index_json: String,
}

/// The grace period, from the `GRACE_SECONDS` var.
pub fn grace_seconds(env: &Env) -> i64 {
    let v = env.grace_seconds();
    v.as_string()
        .and_then(|s| s.trim().parse().ok())
        .or_else(|| {
            #[expect(clippy::cast_possible_truncation, reason = "a number of seconds")]
            v.as_f64().map(|f| f as i64)
        })
        .filter(|g| *g >= 0)
        .unwrap_or(DEFAULT_GRACE)
}

/// The pointer and its etag, if anything was ever published.
pub async fn current(r2: &R2Bucket) -> Result<Option<(Pointer, String)>> {
    let Some(obj) = r2.get(POINTER, None).await? else {
        return Ok(None);
    };
    let text = obj.read_text().await?;
    let p: Pointer = serde_json::from_str(&text)
        .map_err(|e| Error::Internal(format!("{POINTER} is corrupt: {e}")))?;
    Ok(Some((p, obj.etag())))
}

/// What R2 holds, as one publish saw it.
struct Stored {
    /// Files (placeholders of purged paths left out).
    files: BTreeMap<String, R2Object>,
    /// Tombstones, by the file's key.
    tombs: BTreeMap<String, Tomb>,
    /// Computed combined fingerprints.
    records: Vec<Record>,
}

async fn load(r2: &R2Bucket) -> Result<Stored> {
    let files = r2
        .list_all(IMAGES_DIR)
        .await?
        .into_iter()
        .filter(|o| !state::is_placeholder(o))
        .map(|o| (o.key(), o))
        .collect();
    let tombs = r2
        .list_all(&format!("{DELETED}{IMAGES_DIR}"))
        .await?
        .iter()
        .filter_map(Tomb::of)
        .map(|t| (t.key.clone(), t))
        .collect();
    let records = r2
        .list_all(&format!("{COMBINED}{IMAGES_DIR}"))
        .await?
        .iter()
        .filter_map(Record::of)
        .collect();
    Ok(Stored {
        files,
        tombs,
        records,
    })
}

/// The listing and digests the core needs: every file not removed, with
/// the combined fingerprints computed from the bytes the files hold now.
async fn listing(r2: &R2Bucket, stored: &Stored) -> Result<(Vec<Entry>, Digests)> {
    let mut entries = Vec::new();
    let mut digests = Digests::default();
    let sha_of = |o: &R2Object| o.meta(SHA256).and_then(|s| Sha256::from_hex(&s).ok());
    for (key, obj) in &stored.files {
        if stored.tombs.contains_key(key) {
            continue;
        }
        // Heads were checked before upload, so `head` is left out, as for
        // a file whose head the CLI found valid.
        let mut entry = Entry::file(key.clone(), obj.size());
        if ssgen_core::needs_contents(key)
            && let Some(o) = r2.get(key, None).await?
        {
            entry.contents = Some(o.read_bytes().await?);
        }
        if let Some(d) = sha_of(obj) {
            digests.files.insert(key.clone(), d);
        }
        entries.push(entry);
    }
    for r in &stored.records {
        let meta_key = r.meta_key();
        let current = |k: &str, sha: &str| {
            stored.files.get(k).and_then(|o| o.meta(SHA256)).as_deref() == Some(sha)
        };
        if current(&r.root, &r.root_sha)
            && current(&meta_key, &r.meta_sha)
            && let Ok(d) = Sha256::from_hex(&r.sha)
        {
            digests.combined.insert((meta_key, r.root.clone()), d);
        }
    }
    Ok((entries, digests))
}

/// After a catalog without them is in place: stamps the tombstones seen,
/// purges files whose grace period since their stamp is over, drops
/// stale multipart uploads. Returns (newly withdrawn, purged).
async fn settle_removals(
    r2: &R2Bucket,
    stored: &Stored,
    now: i64,
    grace: i64,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut withdrawn = Vec::new();
    let mut purged = Vec::new();
    for t in stored.tombs.values() {
        match t.withdrawn {
            None => {
                if state::stamp_withdrawn(r2, t, now).await? {
                    withdrawn.push(t.key.clone());
                }
            }
            Some(at) if at + grace <= now => {
                // Only the bytes the tombstone was written for; a file
                // written since (a re-upload) makes the purge not happen.
                if let Some(obj) = stored.files.get(&t.key)
                    && obj.meta(SHA256).as_deref() == Some(t.sha.as_str())
                    && state::purge(r2, &t.key, &t.sha, obj.uploaded_ms(), now).await?
                {
                    purged.push(t.key.clone());
                }
            }
            Some(_) => {}
        }
    }
    #[expect(clippy::cast_precision_loss, reason = "seconds since 1970")]
    let now_ms = now as f64 * 1000.0;
    for rec in r2.list_all(UPLOADS).await? {
        if rec.uploaded_ms() + STALE_UPLOAD_MS > now_ms {
            continue;
        }
        let key = rec.key();
        let id = key.strip_prefix(UPLOADS).unwrap_or_default();
        let staging = format!("{STAGING}{id}");
        if let Some(r2_id) = rec.meta("upload").filter(|s| !s.is_empty())
            && let Ok(up) = r2.resume_multipart(&staging, &r2_id)
        {
            drop(up.abort().await);
        }
        r2.delete(&staging).await?;
        r2.delete(&key).await?;
    }
    Ok((withdrawn, purged))
}

pub async fn snapshot_text(kv: &KvNamespace, r2: &R2Bucket, sha: &str) -> Result<Option<String>> {
    if let Some(t) = kv.get_text(&format!("catalog/{sha}")).await? {
        return Ok(Some(t));
    }
    match r2.get(&format!("catalog/{sha}.json"), None).await? {
        Some(o) => Ok(Some(o.read_text().await?)),
        None => Ok(None),
    }
}

/// The direct-URL import map of a snapshot, as KV stores it.
pub fn alias_text(images_json: &str) -> Result<String> {
    let aliases =
        direct::alias_map(images_json).map_err(|e| Error::Internal(format!("alias map: {e}")))?;
    serde_json::to_string(&aliases).map_err(|e| Error::Internal(e.to_string()))
}

/// Copies the R2 pointer's index into KV until what KV got is what R2
/// holds after the write.
async fn sync_index(kv: &KvNamespace, r2: &R2Bucket) -> Result<()> {
    for _ in 0..ATTEMPTS {
        let Some((p, etag)) = current(r2).await? else {
            return Ok(());
        };
        #[expect(clippy::cast_precision_loss, reason = "a publish counter")]
        let meta = js::obj(&[
            ("sha256", JsValue::from_str(&p.index)),
            ("images", JsValue::from_str(&p.images)),
            ("generation", JsValue::from_f64(p.generation as f64)),
        ])?;
        // KV allows one write per second to a key: a publish right after
        // another may be told to slow down.
        let meta: JsValue = meta.into();
        let mut tries = 0;
        while let Err(e) = kv
            .put_text(INDEX_KEY, &p.index_json, Some(&meta), None)
            .await
        {
            tries += 1;
            if tries >= 3 {
                return Err(e.into());
            }
            js::sleep_ms(1100).await?;
        }
        match r2.head(POINTER).await? {
            Some(o) if o.etag() == etag => return Ok(()),
            _ => {}
        }
    }
    Err(Error::Unavailable(
        "the catalog keeps changing; publish again".into(),
    ))
}

/// Root files stored after their metadata file whose combined fingerprint
/// is not recorded yet. The request that stored such a file writes the
/// record just after the file, from its bytes; a publish in between would
/// otherwise refuse every publisher's images for another one's upload in
/// flight. Their versions wait for a later publish, as a half-uploaded
/// version on disk waits for the next build, and a publisher that requires
/// one of them is still refused (its files would be left out). A root
/// stored *before* its metadata file never gets a record by itself, and
/// the publish is refused as before, saying how to ask for one. Empty
/// unless every missing digest is of this kind.
fn in_flight(
    plan: &ssgen_core::HashPlan,
    stored: &Stored,
    digests: &Digests,
) -> std::collections::BTreeSet<String> {
    let mut roots = std::collections::BTreeSet::new();
    for job in plan.jobs() {
        let known = digests.files.contains_key(&job.path);
        if job.prefixes.is_empty() {
            if job.is_prefix && known {
                // Read only to feed a root's combined fingerprint.
                continue;
            }
            return std::collections::BTreeSet::new();
        }
        let Some(root) = stored.files.get(&job.path).filter(|_| known) else {
            return std::collections::BTreeSet::new();
        };
        let after_meta = job.prefixes.iter().all(|meta| {
            stored
                .files
                .get(meta)
                .is_some_and(|m| root.uploaded_ms() > m.uploaded_ms())
        });
        if !after_meta {
            return std::collections::BTreeSet::new();
        }
        roots.insert(job.path.clone());
    }
    roots
}

fn missing_digests(plan: &ssgen_core::HashPlan) -> Vec<String> {
    let mut out = Vec::new();
    for job in plan.jobs() {
        if job.prefixes.is_empty() {
            out.push(format!("{}: no sha256 known; upload it again", job.path));
        }
        for meta in &job.prefixes {
            let name = meta.rsplit('/').next().unwrap_or(meta);
            out.push(format!(
                "{}: no combined fingerprint with {name} (the root file was stored before it): \
                 POST /{}?combined with X-Ssgen-Combined: {name}=<sha256({name} ‖ root)>, \
                 which the edge checks against the files",
                job.path, job.path
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A test hook, inert unless the `FAULT_POINT` var is set (never in
/// `wrangler.toml`): `hang:<step>` stops a request at `<step>` for good,
/// so a test can kill the Worker there; `yield:<step>` makes the first
/// publish to get there wait until another one has swapped the pointer,
/// so its own swap is lost for certain. Each logs when it is reached.
pub(super) async fn fault_point(
    env: &Env,
    r2: &R2Bucket,
    step: &str,
    seen: Option<&str>,
) -> Result<()> {
    let Some(spec) = env.fault_point().as_string() else {
        return Ok(());
    };
    match spec.split_once(':') {
        Some(("hang", at)) if at == step => {
            js::log(&format!("ssgen fault point {step}: hanging"));
            for _ in 0..600 {
                js::sleep_ms(1000).await?;
            }
        }
        Some(("yield", at)) if at == step => {
            let first = js::obj(&[(
                "onlyIf",
                js::obj(&[("etagDoesNotMatch", JsValue::from_str("*"))])?.into(),
            )])?;
            if r2
                .put(&format!("fault/{step}"), &JsValue::from_str(""), &first)
                .await?
                .is_none()
            {
                return Ok(());
            }
            js::log(&format!(
                "ssgen fault point {step}: waiting for another publish"
            ));
            for _ in 0..1200 {
                let now = current(r2).await?.map(|(_, etag)| etag);
                if now.as_deref() != seen {
                    break;
                }
                js::sleep_ms(50).await?;
            }
            js::log(&format!("ssgen fault point {step}: resumed"));
        }
        _ => {}
    }
    Ok(())
}

/// `POST /publish[?timestamp=UNIX]`, with an optional JSON body
/// `{"require": {"<path>": "<sha256>", …}}`.
pub async fn run(req: &Request, env: &Env, url: &web_sys::Url) -> Result<Reply> {
    authorize(req, env)?;
    let (kv, r2) = stores(env)?;
    let now = now_secs();
    let timestamp = match url.search_params().get("timestamp") {
        Some(t) => api::timestamp(&t).map_err(Error::BadRequest)?,
        None => now,
    };
    let text = wasm_bindgen_futures::JsFuture::from(req.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    let asked: api::PublishRequest = if text.trim().is_empty() {
        api::PublishRequest::default()
    } else {
        serde_json::from_str(&text).map_err(|e| {
            Error::BadRequest(format!(
                "the publish body is not {{\"require\": {{\"<path>\": \"<sha256>\"}}}}: {e}"
            ))
        })?
    };
    let grace = grace_seconds(env);
    let config = Config::new(timestamp);

    for attempt in 1..=ATTEMPTS {
        let cur = current(&r2).await?;
        let stored = load(&r2).await?;
        let (mut entries, digests) = listing(&r2, &stored).await?;
        let mut scan = ssgen_core::scan(&entries, &config);
        let mut plan = scan.plan(&digests);
        let pending = in_flight(&plan, &stored, &digests);
        if !pending.is_empty() {
            entries.retain(|e| !pending.contains(&e.path));
            scan = ssgen_core::scan(&entries, &config);
            plan = scan.plan(&digests);
        }
        if !plan.is_empty() {
            return Err(Error::Conflict(format!(
                "the catalog needs digests the edge does not have: {}",
                missing_digests(&plan).join("; ")
            )));
        }
        let unmet = api::unmet(&asked.require, &scan, &digests, "edge");
        if !unmet.is_empty() {
            return Err(Error::ConflictWith(serde_json::json!({
                "error": format!(
                    "{} file(s) of the publisher are not on the edge as sent, or their version would \
                     be left out; nothing was published: {}",
                    unmet.len(),
                    unmet.join("; ")
                ),
                "unmet": unmet,
                "diagnostics": scan.diagnostics,
            })));
        }
        let previous = match &cur {
            Some((p, _)) => snapshot_text(&kv, &r2, &p.images).await?,
            None => None,
        };
        let out = match ssgen_core::build(&scan, &digests, &config, previous.as_deref()) {
            Ok(mut out) => {
                out.diagnostics.extend(pending.iter().map(|root| {
                    ssgen_core::Diagnostic::new(
                        ssgen_core::Level::Warning,
                        root.clone(),
                        "its version waits: the request that stored it is still computing its \
                         combined fingerprint",
                        "publish again once its upload has answered",
                    )
                }));
                out
            }
            Err(ssgen_core::Error::Invalid(diags)) => {
                return Err(Error::Unprocessable(serde_json::json!({
                    "error": "problems in the uploaded tree block publishing; the old catalog stays",
                    "diagnostics": diags,
                })));
            }
            Err(e) => return Err(Error::Conflict(e.to_string())),
        };
        let images_sha = Sha256::of(out.images_json.as_bytes()).to_hex();
        let index_sha = Sha256::of(out.index_json.as_bytes()).to_hex();
        let summary = |changed: bool, generation: u64, settled: &(Vec<String>, Vec<String>)| {
            let answer = api::Published {
                changed,
                generation,
                images_sha256: images_sha.clone(),
                index_sha256: index_sha.clone(),
                products: out.products as u64,
                images: out.images as u64,
                withdrawn: settled.0.clone(),
                purged: settled.1.clone(),
                diagnostics: out
                    .diagnostics
                    .iter()
                    .filter_map(|d| serde_json::to_value(d).ok())
                    .collect(),
                attempts: attempt,
            };
            serde_json::to_value(&answer).unwrap_or_default()
        };
        let alias_key = format!("aliases/{images_sha}");
        if let Some((p, _)) = &cur
            && p.images == images_sha
            && p.index == index_sha
        {
            // Unchanged: mend what a publish that died after its swap
            // may have left unwritten.
            if kv.get_text(&alias_key).await?.is_none() {
                kv.put_text(&alias_key, &alias_text(&out.images_json)?, None, None)
                    .await?;
            }
            sync_index(&kv, &r2).await?;
            let settled = settle_removals(&r2, &stored, now, grace).await?;
            return Ok(Reply::json(200, &summary(false, p.generation, &settled)));
        }

        // The snapshot first: nothing points at it yet.
        let json_type = js::obj(&[(
            "httpMetadata",
            js::obj(&[("contentType", JsValue::from_str("application/json"))])?.into(),
        )])?;
        r2.put(
            &format!("catalog/{images_sha}.json"),
            &JsValue::from_str(&out.images_json),
            &json_type,
        )
        .await?;
        kv.put_text(
            &format!("catalog/{images_sha}"),
            &out.images_json,
            None,
            None,
        )
        .await?;
        kv.put_text(&alias_key, &alias_text(&out.images_json)?, None, None)
            .await?;
        fault_point(
            env,
            &r2,
            "before-swap",
            cur.as_ref().map(|(_, e)| e.as_str()),
        )
        .await?;

        // Then the pointer, only if nobody swapped since step 1.
        let generation = cur.as_ref().map_or(0, |(p, _)| p.generation) + 1;
        let next = Pointer {
            generation,
            images: images_sha.clone(),
            index: index_sha.clone(),
            index_json: out.index_json.clone(),
        };
        let text = serde_json::to_string(&next).map_err(|e| Error::Internal(e.to_string()))?;
        let only_if = match &cur {
            Some((_, etag)) => js::obj(&[("etagMatches", JsValue::from_str(etag))])?,
            None => js::obj(&[("etagDoesNotMatch", JsValue::from_str("*"))])?,
        };
        let opts = js::obj(&[("onlyIf", only_if.into())])?;
        if r2
            .put(POINTER, &JsValue::from_str(&text), &opts)
            .await?
            .is_none()
        {
            continue;
        }
        fault_point(env, &r2, "after-swap", None).await?;
        sync_index(&kv, &r2).await?;
        // Readers at other locations may hold the old index for a while:
        // keep the old snapshot that long, then let it go.
        if let Some((old, _)) = &cur
            && old.images != images_sha
            && let Some(t) = snapshot_text(&kv, &r2, &old.images).await?
        {
            #[expect(clippy::cast_precision_loss, reason = "seconds")]
            let ttl = grace.max(3600) as f64;
            kv.put_text(&format!("catalog/{}", old.images), &t, None, Some(ttl))
                .await?;
        }
        fault_point(env, &r2, "before-purge", None).await?;
        let settled = settle_removals(&r2, &stored, now, grace).await?;
        return Ok(Reply::json(200, &summary(true, generation, &settled)));
    }
    Err(Error::Unavailable(format!(
        "{ATTEMPTS} concurrent publishes in a row won the swap; publish again"
    )))
}
