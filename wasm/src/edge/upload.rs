//! The write side: `PUT` and `DELETE` under `/images/`, and the listing the
//! publisher compares against. All behind the bearer token.
//!
//! A `PUT` streams the body straight into R2 (never buffered in the
//! Worker) with `sha256` in the put options, so R2 itself refuses a body
//! whose digest differs from `X-Ssgen-Sha256`. The publisher also sends
//! `X-Ssgen-Combined: <meta name>=<sha256>, …` with a root file: the
//! fingerprint `sha256(meta ‖ root)` cannot be recomputed here without
//! reading both files again, so it is stored as given, checked for form and
//! for consistency (a re-sent digest must equal the stored one), and the
//! publish step refuses a catalog in which any pair lacks one.
//!
//! Files larger than one request body go up as R2 multipart uploads
//! (`?uploads`, `?upload_id=&part=`, `?upload_id=`). R2 checks no digest
//! for those, so completing one reads the joined object once through
//! workerd's native `crypto.DigestStream`, under a `verifying/` marker that
//! keeps it out of any publish until the digest matched.

use std::collections::BTreeMap;

use ssgen_core::Sha256;
use ssgen_core::classify::{self, Kind};
use wasm_bindgen::prelude::*;
use web_sys::Request;

use super::js::{self, R2Bucket};
use super::{Env, Error, Reply, Result, authorize, header, http, now_secs, stores};

/// Custom-metadata prefix of the combined digests of a root file.
pub const COMBINED: &str = "combined.";
/// R2 prefix of the tombstones of removed files.
pub const DELETED: &str = "deleted/";
/// R2 prefix of the markers of multipart uploads whose sha256 is being
/// checked: publishing leaves such files out.
pub const VERIFYING: &str = "verifying/";

fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The combined digests stored on an object, by metadata file name.
pub fn stored_combined(obj: &js::R2Object) -> BTreeMap<String, String> {
    obj.meta_pairs()
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(COMBINED)?.to_owned(), v)))
        .collect()
}

/// What a publisher claims about a file it sends.
struct Claims {
    sha: Sha256,
    combined: Vec<(String, Sha256)>,
    kind: Kind,
}

/// Reads and checks `X-Ssgen-Sha256` and `X-Ssgen-Combined`.
fn claims(req: &Request, key: &str) -> Result<Claims> {
    let sha_text = header(req, "x-ssgen-sha256").ok_or_else(|| {
        Error::BadRequest("X-Ssgen-Sha256 is required: the file's sha256 in lower-case hex".into())
    })?;
    let sha = Sha256::from_hex(sha_text.trim()).map_err(|e| Error::BadRequest(e.to_string()))?;
    let name = name_of(key);
    let kind = classify::by_name(name);
    let combined = match header(req, "x-ssgen-combined") {
        Some(h) => http::parse_combined(&h).map_err(Error::BadRequest)?,
        None => Vec::new(),
    };
    if !combined.is_empty() && !matches!(kind, Kind::Root(_)) {
        return Err(Error::BadRequest(format!(
            "{name}: combined digests belong to root files (rootfs.squashfs, disk.qcow2, …)"
        )));
    }
    if let Some((meta, _)) = combined
        .iter()
        .find(|(m, _)| !matches!(classify::by_name(m), Kind::Meta(_)))
    {
        return Err(Error::BadRequest(format!(
            "{meta}: a combined digest must name a metadata file (incus.tar.xz or lxd.tar.xz)"
        )));
    }
    Ok(Claims {
        sha,
        combined,
        kind,
    })
}

/// Checks the claims against what the key holds: `None` when nothing needs
/// storing, else the custom metadata to store with the body.
async fn prepare(r2: &R2Bucket, key: &str, c: &Claims) -> Result<Option<Vec<(String, String)>>> {
    let name = name_of(key);
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    if let Some(existing) = r2.head(key).await? {
        let have = existing.meta("sha256").unwrap_or_default();
        if have != c.sha.to_hex() {
            return Err(Error::Conflict(format!(
                "/{key} already holds other bytes (sha256 {have}); published paths never change: \
                 put changed files in a new version directory, or DELETE this one and wait for the grace period"
            )));
        }
        all = stored_combined(&existing);
        for (meta, digest) in &c.combined {
            if let Some(old) = all.get(meta)
                && *old != digest.to_hex()
            {
                return Err(Error::Conflict(format!(
                    "/{key}: combined digest for {meta} was {old}, now {digest}: the two cannot both be right; \
                     recompute sha256({meta} ‖ {name})"
                )));
            }
        }
        let news = c.combined.iter().any(|(m, _)| !all.contains_key(m));
        // Re-uploading a removed file takes it back.
        r2.delete(&format!("{DELETED}{key}")).await?;
        if !news && r2.head(&format!("{VERIFYING}{key}")).await?.is_none() {
            return Ok(None);
        }
    } else {
        r2.delete(&format!("{DELETED}{key}")).await?;
    }
    for (meta, digest) in &c.combined {
        all.insert(meta.clone(), digest.to_hex());
    }
    let mut meta: Vec<(String, String)> = vec![("sha256".into(), c.sha.to_hex())];
    meta.extend(
        all.iter()
            .map(|(m, d)| (format!("{COMBINED}{m}"), d.clone())),
    );
    Ok(Some(meta))
}

fn already_present(key: &str, sha: &Sha256) -> Reply {
    Reply::json(
        200,
        &serde_json::json!({"path": key, "sha256": sha.to_hex(), "stored": false,
            "reason": "already present with this sha256"}),
    )
}

fn store_options(key: &str, meta: &[(String, String)]) -> Result<js_sys::Object> {
    let custom = js::str_obj(meta.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let http_meta = js::obj(&[("contentType", JsValue::from_str(http::content_type(key)))])?;
    Ok(js::obj(&[
        ("customMetadata", custom.into()),
        ("httpMetadata", http_meta.into()),
    ])?)
}

/// `PUT /images/…`.
pub async fn put(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    http::upload_layout_ok(key).map_err(|why| Error::BadRequest(format!("/{key}: {why}")))?;
    let (_, r2) = stores(env)?;
    let c = claims(req, key)?;
    let length: u64 = header(req, "content-length")
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Error::LengthRequired)?;
    let Some(meta) = prepare(&r2, key, &c).await? else {
        return Ok(already_present(key, &c.sha));
    };
    let sha_hex = c.sha.to_hex();
    let kind = c.kind;
    let opts = store_options(key, &meta)?;
    js_sys::Reflect::set(
        &opts,
        &JsValue::from_str("sha256"),
        &JsValue::from_str(&sha_hex),
    )?;
    let body: JsValue = match req.body() {
        Some(b) => b.into(),
        None if length == 0 => JsValue::from_str(""),
        None => return Err(Error::BadRequest("the request has no body".into())),
    };
    let stored = match r2.put(key, &body, &opts).await {
        Ok(Some(o)) => o,
        Ok(None) => return Err(Error::Internal("R2 refused the put".into())),
        Err(e) => {
            let msg = super::js_message(&e);
            let low = msg.to_ascii_lowercase();
            return Err(
                if low.contains("digest") || low.contains("sha-256") || low.contains("checksum") {
                    Error::BadRequest(format!(
                        "/{key}: the body's sha256 is not {sha_hex} (X-Ssgen-Sha256); nothing was stored"
                    ))
                } else if low.contains("length") || low.contains("size") {
                    Error::BadRequest(format!(
                        "/{key}: the body does not match Content-Length: {msg}"
                    ))
                } else {
                    Error::Internal(msg)
                },
            );
        }
    };
    check_magic(&r2, key, &kind).await?;
    // A multipart upload of this key whose check never finished left a
    // marker; this body was verified by R2 itself.
    r2.delete(&format!("{VERIFYING}{key}")).await?;
    Ok(Reply::json(
        201,
        &serde_json::json!({"path": key, "sha256": sha_hex, "size": stored.size(), "stored": true}),
    ))
}

/// `POST /images/…?uploads`: starts a multipart upload, for files larger
/// than one request body may be (100 MB on Cloudflare's Free and Pro
/// plans). Same headers as a `PUT`, plus `X-Ssgen-Size` (the whole file's
/// size) instead of `Content-Length`.
pub async fn multipart_start(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    http::upload_layout_ok(key).map_err(|why| Error::BadRequest(format!("/{key}: {why}")))?;
    let (_, r2) = stores(env)?;
    let c = claims(req, key)?;
    let size: u64 = header(req, "x-ssgen-size")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::BadRequest("X-Ssgen-Size (the file's size) is required".into()))?;
    let Some(mut meta) = prepare(&r2, key, &c).await? else {
        return Ok(already_present(key, &c.sha));
    };
    meta.push(("size".into(), size.to_string()));
    let upload = r2
        .create_multipart(key, &store_options(key, &meta)?)
        .await?;
    Ok(Reply::json(
        200,
        &serde_json::json!({"path": key, "upload_id": upload.upload_id()}),
    ))
}

/// `PUT /images/…?upload_id=ID&part=N`: one part (all but the last of one
/// size, at least 5 MiB).
pub async fn multipart_part(
    req: &Request,
    env: &Env,
    key: &str,
    upload_id: &str,
    part: u32,
) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    header(req, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or(Error::LengthRequired)?;
    let body: JsValue = req
        .body()
        .ok_or_else(|| Error::BadRequest("a part needs a body".into()))?
        .into();
    let upload = r2.resume_multipart(key, upload_id)?;
    let uploaded = upload
        .upload_part(part, &body)
        .await
        .map_err(|e| Error::BadRequest(format!("/{key} part {part}: {}", super::js_message(&e))))?;
    Ok(Reply::json(
        200,
        &serde_json::json!({"part": part, "etag": js::get_str(&uploaded, "etag")}),
    ))
}

#[derive(serde::Deserialize)]
struct Part {
    part: u32,
    etag: String,
}

#[derive(serde::Deserialize)]
struct Parts {
    parts: Vec<Part>,
}

/// `POST /images/…?upload_id=ID` with `{"parts": [{"part": N, "etag": …}]}`:
/// joins the parts, then reads the object once through the runtime's
/// native SHA-256 (R2 checks no digest of a multipart object) and keeps it
/// only if it is the file the publisher announced. Until then a marker
/// keeps it out of any publish.
pub async fn multipart_complete(
    req: &Request,
    env: &Env,
    key: &str,
    upload_id: &str,
) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let text = wasm_bindgen_futures::JsFuture::from(req.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    let parts: Parts = serde_json::from_str(&text).map_err(|e| {
        Error::BadRequest(format!(
            "the completion body is not {{\"parts\": [...]}}: {e}"
        ))
    })?;
    let list = js_sys::Array::new();
    for p in &parts.parts {
        list.push(
            &js::obj(&[
                ("partNumber", JsValue::from(p.part)),
                ("etag", JsValue::from_str(&p.etag)),
            ])?
            .into(),
        );
    }
    let marker = format!("{VERIFYING}{key}");
    r2.put(&marker, &JsValue::from_str(""), &js_sys::Object::new())
        .await?;
    let upload = r2.resume_multipart(key, upload_id)?;
    let obj = match upload.complete(&list).await {
        Ok(o) => o,
        Err(e) => {
            r2.delete(&marker).await?;
            return Err(Error::BadRequest(format!(
                "/{key}: the parts do not join: {}",
                super::js_message(&e)
            )));
        }
    };
    let claimed = obj.meta("sha256").unwrap_or_default();
    let size_ok = obj.meta("size").and_then(|s| s.parse::<u64>().ok()) == Some(obj.size());
    let body = r2
        .get(key, None)
        .await?
        .and_then(|o| o.body())
        .ok_or_else(|| Error::Internal("the joined object vanished".into()))?;
    let digest = Sha256(
        js::sha256_of_stream(&body)
            .await?
            .try_into()
            .map_err(|_| Error::Internal("DigestStream gave no SHA-256".into()))?,
    );
    if !size_ok || digest.to_hex() != claimed {
        r2.delete(key).await?;
        r2.delete(&marker).await?;
        return Err(Error::BadRequest(format!(
            "/{key}: the joined parts are {} bytes with sha256 {digest}, not the announced file \
             (sha256 {claimed}); nothing was stored",
            obj.size()
        )));
    }
    check_magic(&r2, key, &classify::by_name(name_of(key))).await?;
    r2.delete(&marker).await?;
    Ok(Reply::json(
        201,
        &serde_json::json!({"path": key, "sha256": claimed, "size": obj.size(), "stored": true}),
    ))
}

/// `DELETE /images/…?upload_id=ID`: gives a multipart upload up.
pub async fn multipart_abort(
    req: &Request,
    env: &Env,
    key: &str,
    upload_id: &str,
) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    r2.resume_multipart(key, upload_id)?.abort().await?;
    Ok(Reply::new(204))
}

/// The core's magic-byte check, after the put: a file whose first bytes
/// contradict its name (an xz tarball named rootfs.squashfs) is deleted
/// again, so every stored file passed it and the catalog build can skip it
/// exactly as `ssgen build` skips nothing on a valid tree.
async fn check_magic(r2: &R2Bucket, key: &str, kind: &Kind) -> Result<()> {
    if !matches!(kind, Kind::Meta(_) | Kind::Root(_) | Kind::Unified) {
        return Ok(());
    }
    let head = match r2.get(key, Some((0, ssgen_core::HEAD_LEN as u64))).await? {
        Some(o) => o.read_bytes().await?,
        None => return Ok(()),
    };
    if let Err(why) = classify::check_magic(kind, Some(&head)) {
        r2.delete(key).await?;
        return Err(Error::Unprocessable(serde_json::json!({
            "error": format!("{} {why}; nothing was stored", name_of(key)),
            "path": key,
        })));
    }
    Ok(())
}

/// `DELETE /images/…`: the file leaves the catalog at the next publish and
/// stays downloadable for the grace period (clients keep the catalog for
/// an hour, spec §11.6), after which a publish deletes it.
pub async fn delete(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let obj = r2
        .head(key)
        .await?
        .ok_or_else(|| Error::NotFound(format!("/{key}: no such file")))?;
    let now = now_secs();
    let now_text = now.to_string();
    let sha = obj.meta("sha256").unwrap_or_default();
    let custom = js::str_obj([("deleted", now_text.as_str()), ("sha256", sha.as_str())])?;
    let opts = js::obj(&[("customMetadata", custom.into())])?;
    r2.put(&format!("{DELETED}{key}"), &JsValue::from_str(""), &opts)
        .await?;
    let grace = super::publish::grace_seconds(env);
    Ok(Reply::json(
        202,
        &serde_json::json!({"path": key, "removed_at": now, "purge_after": now + grace,
            "note": "removed from the catalog at the next POST /publish"}),
    ))
}

/// `GET /api/v1/files`: what the edge holds, for `ssgen push` to skip.
pub async fn list(req: &Request, env: &Env) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let removed: std::collections::BTreeSet<String> = r2
        .list_all(&format!("{DELETED}images/"))
        .await?
        .iter()
        .filter_map(|o| o.key().strip_prefix(DELETED).map(str::to_owned))
        .collect();
    let verifying: std::collections::BTreeSet<String> = r2
        .list_all(&format!("{VERIFYING}images/"))
        .await?
        .iter()
        .filter_map(|o| o.key().strip_prefix(VERIFYING).map(str::to_owned))
        .collect();
    let files: Vec<serde_json::Value> = r2
        .list_all("images/")
        .await?
        .iter()
        .map(|o| {
            let key = o.key();
            serde_json::json!({
                "path": key,
                "size": o.size(),
                "sha256": o.meta("sha256"),
                "combined": stored_combined(o),
                "removed": removed.contains(&key),
                "verified": !verifying.contains(&key),
            })
        })
        .collect();
    Ok(Reply::json(200, &serde_json::json!({ "files": files })))
}
