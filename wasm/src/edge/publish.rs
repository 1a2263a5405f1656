//! `POST /publish`: rebuild the catalog from the R2 listing through the
//! core, and swap it in atomically.
//!
//! 1. Read the pointer `catalog/current.json` from R2 (strongly
//!    consistent) and remember its etag.
//! 2. List `images/` (and the tombstones), turn it into the core's listing
//!    and known digests (all from custom metadata: nothing is re-read), and
//!    build. Missing digests refuse the publish (409) naming the files.
//! 3. Write the new snapshot (`catalog/<sha256>` in KV, a copy in R2)
//!    before anything points at it.
//! 4. Put the new pointer with `onlyIf: { etagMatches }`. If another
//!    publisher swapped in between, the put does not happen: rebuild from
//!    the (now larger) listing and try again, so neither loses images.
//! 5. Copy the pointer's index into KV for readers, re-checking the R2
//!    pointer afterwards so a slower publisher cannot leave an older index
//!    in KV last.
//!
//! A publish that stops anywhere before step 4 leaves the old pointer, and
//! so the old catalog, in place; an unreferenced snapshot is harmless.

use serde::{Deserialize, Serialize};
use ssgen_core::{Config, Digests, Entry, Sha256, direct};
use wasm_bindgen::prelude::*;
use web_sys::Request;

use super::js::{self, KvNamespace, R2Bucket};
use super::upload::{COMBINED, DELETED, VERIFYING};
use super::{Env, Error, INDEX_KEY, Reply, Result, authorize, now_secs, stores};

const POINTER: &str = "catalog/current.json";
/// Six hours: clients keep a catalog for one (spec §11.6).
const DEFAULT_GRACE: i64 = 6 * 3600;
/// Swaps lost to concurrent publishers before giving up.
const ATTEMPTS: u32 = 8;

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

/// The listing and digests the core needs, from R2 alone.
async fn listing(r2: &R2Bucket) -> Result<(Vec<Entry>, Digests)> {
    // Removed files, and multipart uploads still (or never) verified.
    let mut removed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for prefix in [DELETED, VERIFYING] {
        removed.extend(
            r2.list_all(&format!("{prefix}images/"))
                .await?
                .iter()
                .filter_map(|o| o.key().strip_prefix(prefix).map(str::to_owned)),
        );
    }
    let mut entries = Vec::new();
    let mut digests = Digests::default();
    for obj in r2.list_all("images/").await? {
        let key = obj.key();
        if removed.contains(&key) {
            continue;
        }
        let size = obj.size();
        // Heads were checked at upload (upload::check_magic), so `head` is
        // left out, as for a file whose head the CLI found valid.
        let mut entry = Entry::file(key.clone(), size);
        if ssgen_core::needs_contents(&key)
            && let Some(o) = r2.get(&key, None).await?
        {
            entry.contents = Some(o.read_bytes().await?);
        }
        if let Some(d) = obj.meta("sha256").and_then(|s| Sha256::from_hex(&s).ok()) {
            digests.files.insert(key.clone(), d);
        }
        let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
        for (k, v) in obj.meta_pairs() {
            if let (Some(meta), Ok(d)) = (k.strip_prefix(COMBINED), Sha256::from_hex(&v)) {
                digests
                    .combined
                    .insert((format!("{dir}/{meta}"), key.clone()), d);
            }
        }
        entries.push(entry);
    }
    Ok((entries, digests))
}

/// Deletes the files whose grace period is over, and their tombstones.
async fn purge(r2: &R2Bucket, now: i64, grace: i64) -> Result<Vec<String>> {
    let mut purged = Vec::new();
    for t in r2.list_all(&format!("{DELETED}images/")).await? {
        let at: i64 = t.meta("deleted").and_then(|s| s.parse().ok()).unwrap_or(0);
        if at + grace <= now {
            let tkey = t.key();
            if let Some(key) = tkey.strip_prefix(DELETED) {
                r2.delete(key).await?;
                purged.push(key.to_owned());
            }
            r2.delete(&tkey).await?;
        }
    }
    Ok(purged)
}

async fn snapshot_text(kv: &KvNamespace, r2: &R2Bucket, sha: &str) -> Result<Option<String>> {
    if let Some(t) = kv.get_text(&format!("catalog/{sha}")).await? {
        return Ok(Some(t));
    }
    match r2.get(&format!("catalog/{sha}.json"), None).await? {
        Some(o) => Ok(Some(o.read_text().await?)),
        None => Ok(None),
    }
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

fn missing_digests(plan: &ssgen_core::HashPlan) -> Vec<String> {
    let mut out = Vec::new();
    for job in plan.jobs() {
        if job.prefixes.is_empty() {
            out.push(format!("{}: no sha256 known; upload it again", job.path));
        }
        for meta in &job.prefixes {
            let name = meta.rsplit('/').next().unwrap_or(meta);
            out.push(format!(
                "{}: no combined digest with {meta}; upload it again with X-Ssgen-Combined: {name}=<sha256({name} ‖ root)>",
                job.path
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `POST /publish[?timestamp=UNIX]`.
pub async fn run(req: &Request, env: &Env, url: &web_sys::Url) -> Result<Reply> {
    authorize(req, env)?;
    let (kv, r2) = stores(env)?;
    let now = now_secs();
    let timestamp = match url.search_params().get("timestamp") {
        Some(t) => t
            .parse::<i64>()
            .map_err(|_| Error::BadRequest(format!("timestamp {t:?} is not Unix seconds")))?,
        None => now,
    };
    let grace = grace_seconds(env);
    let purged = purge(&r2, now, grace).await?;
    let config = Config::new(timestamp);

    for attempt in 1..=ATTEMPTS {
        let cur = current(&r2).await?;
        let (entries, digests) = listing(&r2).await?;
        let scan = ssgen_core::scan(&entries, &config);
        let plan = scan.plan(&digests);
        if !plan.is_empty() {
            return Err(Error::Conflict(format!(
                "the catalog needs digests the edge was not given: {}",
                missing_digests(&plan).join("; ")
            )));
        }
        let previous = match &cur {
            Some((p, _)) => snapshot_text(&kv, &r2, &p.images).await?,
            None => None,
        };
        let out = match ssgen_core::build(&scan, &digests, &config, previous.as_deref()) {
            Ok(out) => out,
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
        let summary = |changed: bool, generation: u64| {
            serde_json::json!({
                "changed": changed,
                "generation": generation,
                "images_sha256": images_sha,
                "index_sha256": index_sha,
                "products": out.products,
                "images": out.images,
                "attempts": attempt,
                "purged": purged,
                "diagnostics": out.diagnostics,
            })
        };
        if let Some((p, _)) = &cur
            && p.images == images_sha
            && p.index == index_sha
        {
            sync_index(&kv, &r2).await?;
            return Ok(Reply::json(200, &summary(false, p.generation)));
        }

        // The snapshot first: nothing points at it yet.
        let aliases = direct::alias_map(&out.images_json)
            .map_err(|e| Error::Internal(format!("alias map: {e}")))?;
        let aliases =
            serde_json::to_string(&aliases).map_err(|e| Error::Internal(e.to_string()))?;
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
        kv.put_text(&format!("aliases/{images_sha}"), &aliases, None, None)
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
        return Ok(Reply::json(200, &summary(true, generation)));
    }
    Err(Error::Unavailable(format!(
        "{ATTEMPTS} concurrent publishes in a row won the swap; publish again"
    )))
}
