//! The write side: `PUT`, multipart uploads, combined fingerprints and
//! `DELETE` under `/images/`, and the listing the publisher compares
//! against. All behind the bearer token; the rules of what a path may hold
//! are in [`super::state`].
//!
//! A `PUT` streams the body straight into R2 (never buffered in the
//! Worker) with `sha256` in the put options, so R2 itself refuses a body
//! whose digest differs from `X-Ssgen-Sha256` (or `X-Checksum-Sha256`). A
//! metadata, root or unified file is first checked by its first bytes,
//! before anything is stored. A metadata tarball is also checked whole,
//! by the check `ssgen build` makes (cut short, a `metadata.yaml` the
//! daemons could not import): it goes to an object of its own first, is
//! read back through the check a chunk at a time, and only then copied to
//! its path. Roots are not read whole here: R2 holds them to the sha256
//! the publisher hashed, and `ssgen push` hashes with that same check.
//!
//! Files larger than one request body go up as R2 multipart uploads into
//! an object of their own (`staging/<id>`). R2 checks no digest for those,
//! so completing one reads the joined object once through workerd's native
//! `crypto.DigestStream`, and only a file that is the one announced is
//! copied to its path, by a conditional put like any other write. The path
//! itself, and whatever it held, is untouched until then.
//!
//! Combined fingerprints, `sha256(metadata ‖ root)`, are computed here from
//! the stored bytes, never taken from the publisher: when a root file is
//! stored (for every metadata file of its directory already there), and on
//! `POST /images/<root>?combined`. `X-Ssgen-Combined` is the publisher's
//! claim; it is checked against what was computed, and a false claim is
//! refused.

use std::collections::BTreeMap;

use ssgen_core::Sha256;
use ssgen_core::classify::{self, Kind};
use ssgen_core::serve::{api, http, upload as rules};
use wasm_bindgen::prelude::*;
use web_sys::Request;

use super::js::{self, R2Bucket, R2Object};
use super::state::{self, COMBINED, DELETED, Decision, Record, SHA256, STAGING, Tomb, UPLOADS};
use super::{Env, Error, Reply, Result, authorize, header, now_secs, stores};

fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn dir_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(d, _)| d)
}

/// What a publisher says about a file it sends.
struct Claims {
    sha: Sha256,
    /// Metadata file name → the claimed `sha256(meta ‖ this file)`.
    combined: Vec<(String, Sha256)>,
    kind: Kind,
}

/// Reads and checks `X-Ssgen-Sha256` (or `X-Checksum-Sha256`) and
/// `X-Ssgen-Combined`.
fn claims(req: &Request, key: &str) -> Result<Claims> {
    let sha = rules::claimed_sha256(
        header(req, rules::SHA256_HEADER).as_deref(),
        header(req, rules::CHECKSUM_HEADER).as_deref(),
    )
    .map_err(Error::BadRequest)?
    .ok_or_else(|| {
        Error::BadRequest(
            "X-Ssgen-Sha256 (or X-Checksum-Sha256) is required: the file's sha256 in hex".into(),
        )
    })?;
    let (kind, combined) = combined_claims(req, key)?;
    Ok(Claims {
        sha,
        combined,
        kind,
    })
}

fn combined_claims(req: &Request, key: &str) -> Result<(Kind, Vec<(String, Sha256)>)> {
    let kind = classify::by_name(name_of(key));
    let combined = match header(req, rules::COMBINED_HEADER) {
        Some(h) => rules::parse_combined(key, &h).map_err(Error::BadRequest)?,
        None => Vec::new(),
    };
    Ok((kind, combined))
}

/// Checks that `key` takes an upload, in the build's own words.
fn check_target(key: &str) -> Result<()> {
    rules::check_path(key)
        .map(drop)
        .map_err(|why| Error::BadRequest(format!("/{key}: {why}; nothing was stored")))
}

/// A metadata file beside a root file.
struct Meta {
    name: String,
    key: String,
    sha: String,
}

/// The metadata files stored in `root`'s directory.
async fn metas_beside(r2: &R2Bucket, root: &str) -> Result<Vec<Meta>> {
    Ok(r2
        .list_all(&format!("{}/", dir_of(root)))
        .await?
        .iter()
        .filter(|o| !state::is_placeholder(o))
        .filter_map(|o| {
            let key = o.key();
            let name = name_of(&key).to_owned();
            matches!(classify::by_name(&name), Kind::Meta(_)).then(|| Meta {
                name,
                sha: o.meta(SHA256).unwrap_or_default(),
                key,
            })
        })
        .collect())
}

/// Refuses claims naming a metadata file the edge does not hold: the
/// fingerprint is computed from both files, so the metadata file goes
/// first.
fn claimed_metas_present(key: &str, claims: &[(String, Sha256)], metas: &[Meta]) -> Result<()> {
    let missing: Vec<&str> = claims
        .iter()
        .filter(|(m, _)| !metas.iter().any(|x| x.name == *m))
        .map(|(m, _)| m.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "/{key}: X-Ssgen-Combined names {}, which the edge does not hold: upload the metadata file \
         before its root file (the combined fingerprint is computed from both), or leave it out",
        missing.join(", ")
    )))
}

/// A combined fingerprint just computed from the bytes.
struct Fresh {
    meta: String,
    meta_sha: String,
    digest: Sha256,
}

/// Reads the object at `key` once through the runtime's SHA-256: with
/// `own`, its own digest; and `sha256(meta ‖ it)` for each of `metas`.
async fn read_digests(
    r2: &R2Bucket,
    key: &str,
    metas: &[&Meta],
    own: bool,
) -> Result<(Option<Sha256>, Vec<Fresh>)> {
    if metas.is_empty() && !own {
        return Ok((None, Vec::new()));
    }
    let mut prefixes = if own { vec![None] } else { Vec::new() };
    let mut used = Vec::new();
    for m in metas {
        let obj = live_body(r2, &m.key).await?;
        used.push((m.name.clone(), obj.meta(SHA256).unwrap_or_default()));
        prefixes.push(obj.body());
    }
    let body = live_body(r2, key)
        .await?
        .body()
        .ok_or_else(|| Error::Internal(format!("/{key}: R2 object without a body")))?;
    let mut digests = js::sha256_streams(&body, prefixes)
        .await?
        .into_iter()
        .map(Sha256);
    let own = if own { digests.next() } else { None };
    let fresh = used
        .into_iter()
        .zip(digests)
        .map(|((meta, meta_sha), digest)| Fresh {
            meta,
            meta_sha,
            digest,
        })
        .collect();
    Ok((own, fresh))
}

/// A stored file with its body; a placeholder or a missing file is an
/// error (it went while it was being read).
async fn live_body(r2: &R2Bucket, key: &str) -> Result<R2Object> {
    r2.get(key, None)
        .await?
        .filter(|o| !state::is_placeholder(o))
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "/{key} was purged while it was read; send it again"
            ))
        })
}

/// The metadata files beside a file of `kind` at `key`: none unless it is
/// a root file.
async fn metas_for(r2: &R2Bucket, key: &str, kind: &Kind) -> Result<Vec<Meta>> {
    if matches!(kind, Kind::Root(_)) {
        metas_beside(r2, key).await
    } else {
        Ok(Vec::new())
    }
}

/// A root file as it is stored: its key, its sha256 and the metadata files
/// beside it.
struct RootFile<'a> {
    key: &'a str,
    sha: &'a str,
    metas: &'a [Meta],
}

/// Makes sure the root file `at` has a computed combined
/// fingerprint for each claimed metadata file, and with `all` for every
/// metadata file beside it; `fresh` are fingerprints just computed from
/// its bytes, recorded here. Returns every fingerprint of the root, or a
/// 400 naming the false claims, which says `file` of the file itself.
async fn fingerprints(
    r2: &R2Bucket,
    at: &RootFile<'_>,
    claims: &[(String, Sha256)],
    all: bool,
    fresh: Vec<Fresh>,
    file: &str,
) -> Result<BTreeMap<String, String>> {
    let (root, root_sha, metas) = (at.key, at.sha, at.metas);
    let shas: BTreeMap<String, String> = metas
        .iter()
        .map(|m| (m.name.clone(), m.sha.clone()))
        .collect();
    let mut have = state::records_of(r2, root, root_sha, &shas).await?;
    let claimed = |name: &str| {
        claims
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, d)| d.to_hex())
    };
    let todo: Vec<&Meta> = metas
        .iter()
        .filter(|m| !fresh.iter().any(|f| f.meta == m.name))
        .filter(|m| {
            let wanted = all || claimed(&m.name).is_some();
            // A claim that disagrees with a stored fingerprint is checked
            // against the bytes again: a stored one can be wrong only if
            // something else wrote it, and then the bytes repair it.
            let disputed = claimed(&m.name).is_some_and(|c| have.get(&m.name) != Some(&c));
            wanted && (!have.contains_key(&m.name) || disputed)
        })
        .collect();
    let (_, computed) = read_digests(r2, root, &todo, false).await?;
    for f in fresh.iter().chain(&computed) {
        state::write_record(r2, root, &f.meta, &f.digest, &f.meta_sha, root_sha).await?;
        have.insert(f.meta.clone(), f.digest.to_hex());
    }
    let false_claims: Vec<String> = claims
        .iter()
        .filter(|(m, d)| have.get(m) != Some(&d.to_hex()))
        .map(|(m, d)| {
            format!(
                "X-Ssgen-Combined {m}={d} is not sha256({m} ‖ {}) of the files on the edge, which is {}",
                name_of(root),
                have.get(m).map_or("unknown", String::as_str)
            )
        })
        .collect();
    if false_claims.is_empty() {
        Ok(have)
    } else {
        Err(Error::BadRequest(format!(
            "/{root}: {}; {file}, the false fingerprint was not: compute sha256(metadata ‖ root) \
             over the files as uploaded",
            false_claims.join("; ")
        )))
    }
}

/// The answer for a stored (or already present) file.
fn file_reply(
    status: u16,
    key: &str,
    sha: &Sha256,
    size: u64,
    stored: bool,
    combined: Option<&BTreeMap<String, String>>,
) -> Reply {
    let answer = api::Stored {
        path: key.to_owned(),
        sha256: sha.to_hex(),
        size,
        stored: Some(stored),
        reason: (!stored).then(|| api::Stored::ALREADY.to_owned()),
        combined: combined.cloned(),
    };
    Reply::json(status, &serde_json::to_value(&answer).unwrap_or_default())
}

fn store_options(
    key: &str,
    sha: &Sha256,
    only_if: Option<js_sys::Object>,
) -> Result<js_sys::Object> {
    let hex = sha.to_hex();
    let custom = js::str_obj([(SHA256, hex.as_str())])?;
    let http_meta = js::obj(&[("contentType", JsValue::from_str(http::content_type(key)))])?;
    let mut pairs = vec![
        ("customMetadata", custom.into()),
        ("httpMetadata", http_meta.into()),
        // R2 hashes what it receives and refuses other bytes.
        ("sha256", JsValue::from_str(&hex)),
    ];
    if let Some(o) = only_if {
        pairs.push(("onlyIf", o.into()));
    }
    Ok(js::obj(&pairs)?)
}

fn bad_magic(key: &str, why: &str, stored: &str) -> Error {
    Error::Unprocessable(serde_json::json!({
        "error": format!("{} {why}; {stored}", name_of(key)),
        "path": key,
    }))
}

/// Streams a `PUT`'s body for `key` to the object `dest` (`key` itself,
/// or an object of its own) under `only_if` (or unconditionally with
/// `None`); `None` when the condition failed.
async fn store_body(
    req: &Request,
    r2: &R2Bucket,
    (key, dest): (&str, &str),
    c: &Claims,
    length: u64,
    only_if: Option<js_sys::Object>,
) -> Result<Option<R2Object>> {
    let opts = store_options(key, &c.sha, only_if)?;
    let body = req.body();
    let result = match body {
        Some(stream) if rules::has_magic(key) => {
            // Checked before anything is stored, so no file that lies
            // about its type is ever visible at its path.
            let peeked = js::peek(&stream, ssgen_core::HEAD_LEN, length).await?;
            rules::check_head(key, &peeked.head)
                .map_err(|why| bad_magic(key, &why, "nothing was stored"))?;
            let result = r2.put(dest, &peeked.body.into(), &opts).await;
            // The rest of the body went to R2, or R2 gave up on it.
            drop(wasm_bindgen_futures::JsFuture::from(peeked.pipe).await);
            result
        }
        Some(stream) if rules::replaceable(key) => {
            // A side file is read whole by the build, so it is checked
            // whole before it is stored (one byte over the limit is
            // enough to refuse it).
            let n = usize::try_from(length)
                .unwrap_or(usize::MAX)
                .min(rules::SIDE_MAX_BYTES + 1);
            let peeked = js::peek(&stream, n, length).await?;
            rules::check_side(key, &peeked.head)
                .map_err(|why| bad_magic(key, &why, "nothing was stored"))?;
            let result = r2.put(dest, &peeked.body.into(), &opts).await;
            drop(wasm_bindgen_futures::JsFuture::from(peeked.pipe).await);
            result
        }
        Some(stream) => r2.put(dest, &stream.into(), &opts).await,
        None if length == 0 => {
            if let Err(why) = rules::check_head(key, &[]).and_then(|()| rules::check_side(key, &[]))
            {
                return Err(bad_magic(key, &why, "nothing was stored"));
            }
            r2.put(dest, &JsValue::from_str(""), &opts).await
        }
        None => return Err(Error::BadRequest("the request has no body".into())),
    };
    result.map_err(|e| {
        let msg = super::js_message(&e);
        let low = msg.to_ascii_lowercase();
        if low.contains("digest") || low.contains("sha-256") || low.contains("checksum") {
            Error::BadRequest(format!(
                "/{key}: the body's sha256 is not {} (X-Ssgen-Sha256); nothing was stored",
                c.sha
            ))
        } else if low.contains("length") || low.contains("size") {
            Error::BadRequest(format!(
                "/{key}: the body does not match Content-Length: {msg}; nothing was stored"
            ))
        } else {
            Error::Internal(msg)
        }
    })
}

/// Reads the object at `staged` (a metadata tarball of `size` bytes not
/// yet at its path `key`) through the check `ssgen build` makes, a chunk
/// at a time.
async fn check_metadata(r2: &R2Bucket, staged: &str, key: &str, size: u64) -> Result<()> {
    let Some(mut checked) = rules::body_check(key) else {
        return Ok(());
    };
    let body = r2
        .get(staged, None)
        .await?
        .and_then(|o| o.body())
        .ok_or_else(|| Error::Internal(format!("{staged} vanished before its check")))?;
    js::each_chunk(&body, |chunk| checked.update(chunk)).await?;
    checked
        .finish(size)
        .map_err(|why| bad_magic(key, &why.to_string(), "nothing was stored"))
}

/// `PUT /images/…`.
pub async fn put(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    check_target(key)?;
    let (_, r2) = stores(env)?;
    let c = claims(req, key)?;
    let length: u64 = header(req, "content-length")
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Error::LengthRequired)?;
    let metas = metas_for(&r2, key, &c.kind).await?;
    claimed_metas_present(key, &c.combined, &metas)?;
    let (only_if, tomb) = match state::decide(&r2, key, &c.sha.to_hex()).await? {
        Decision::Present => return present(&r2, key, &c, length, &metas).await,
        Decision::Write { only_if, tomb } => (only_if, tomb),
    };
    if rules::is_metadata(key) {
        // An object of its own first: the path sees only checked bytes.
        let staged = format!("{STAGING}{}", js::random_uuid().replace('-', ""));
        store_body(req, &r2, (key, &staged), &c, length, None)
            .await?
            .ok_or_else(|| {
                Error::Internal(format!("{staged}: an unconditional put did not happen"))
            })?;
        let checked = check_metadata(&r2, &staged, key, length).await;
        let committed = match checked {
            Ok(()) => commit_staged(&r2, &staged, key, &c.sha).await,
            Err(e) => Err(e),
        };
        r2.delete(&staged).await?;
        return if committed? {
            Ok(file_reply(201, key, &c.sha, length, true, None))
        } else {
            present(&r2, key, &c, length, &metas).await
        };
    }
    let Some(stored) = store_body(req, &r2, (key, key), &c, length, Some(only_if)).await? else {
        // Another writer got there between the look and the write.
        return match state::decide(&r2, key, &c.sha.to_hex()).await? {
            Decision::Present => present(&r2, key, &c, length, &metas).await,
            Decision::Write { .. } => Err(Error::Unavailable(format!(
                "/{key} changed while this upload ran (removed, purged or restored by another \
                 request); nothing was stored: send it again"
            ))),
        };
    };
    if matches!(c.kind, Kind::Root(_)) {
        // Between the root file and its combined fingerprints.
        super::publish::fault_point(env, &r2, "after-root", None).await?;
    }
    state::restored(&r2, key, tomb).await?;
    let combined = just_stored(&r2, key, &c.kind, &c.sha, &c.combined, &metas, Vec::new()).await?;
    Ok(file_reply(
        201,
        key,
        &c.sha,
        stored.size(),
        true,
        combined.as_ref(),
    ))
}

/// The combined fingerprints of a file just stored, for every metadata
/// file beside it; `None` unless it is a root file.
async fn just_stored(
    r2: &R2Bucket,
    key: &str,
    kind: &Kind,
    sha: &Sha256,
    claims: &[(String, Sha256)],
    metas: &[Meta],
    fresh: Vec<Fresh>,
) -> Result<Option<BTreeMap<String, String>>> {
    if !matches!(kind, Kind::Root(_)) {
        return Ok(None);
    }
    let sha = sha.to_hex();
    let at = RootFile {
        key,
        sha: &sha,
        metas,
    };
    let file = "the file was stored (its sha256 is right)";
    Ok(Some(
        fingerprints(r2, &at, claims, true, fresh, file).await?,
    ))
}

/// The answer when the path already holds the file: its combined
/// fingerprints are settled for the claims, nothing else changes.
async fn present(r2: &R2Bucket, key: &str, c: &Claims, size: u64, metas: &[Meta]) -> Result<Reply> {
    if !matches!(c.kind, Kind::Root(_)) {
        return Ok(file_reply(200, key, &c.sha, size, false, None));
    }
    let (sha, file) = (c.sha.to_hex(), "the file was already there");
    let have = fingerprints(
        r2,
        &RootFile {
            key,
            sha: &sha,
            metas,
        },
        &c.combined,
        false,
        Vec::new(),
        file,
    )
    .await?;
    Ok(file_reply(200, key, &c.sha, size, false, Some(&have)))
}

/// `POST /images/<root>?combined` with `X-Ssgen-Combined`: computes the
/// claimed combined fingerprints of a stored root file from the stored
/// bytes, records them and checks the claims. For a metadata file that
/// arrives after its root, and to repair a fingerprint.
pub async fn combined(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let (kind, claims) = combined_claims(req, key)?;
    if !matches!(kind, Kind::Root(_)) || claims.is_empty() {
        return Err(Error::BadRequest(format!(
            "/{key}: ?combined takes a root file and X-Ssgen-Combined: <metadata file>=<sha256(metadata ‖ root)>"
        )));
    }
    let obj = r2
        .head(key)
        .await?
        .filter(|o| !state::is_placeholder(o))
        .ok_or_else(|| Error::NotFound(format!("/{key}: no such file")))?;
    let root_sha = obj.meta(SHA256).unwrap_or_default();
    let metas = metas_beside(&r2, key).await?;
    claimed_metas_present(key, &claims, &metas)?;
    let file = "the right one is recorded";
    let have = fingerprints(
        &r2,
        &RootFile {
            key,
            sha: &root_sha,
            metas: &metas,
        },
        &claims,
        false,
        Vec::new(),
        file,
    )
    .await?;
    Ok(Reply::json(
        200,
        &serde_json::json!({"path": key, "sha256": root_sha, "size": obj.size(), "combined": have}),
    ))
}

/// A multipart upload in progress (`uploads/<id>`).
struct Upload {
    id: String,
    key: String,
    sha: Sha256,
    size: u64,
    claims: Vec<(String, Sha256)>,
    r2_id: String,
}

impl Upload {
    fn staging(&self) -> String {
        format!("{STAGING}{}", self.id)
    }

    fn record(&self) -> String {
        format!("{UPLOADS}{}", self.id)
    }
}

/// The upload `id` of `key`, or a 404 when there is none (finished, given
/// up, never started, or started for another path).
async fn upload_of(r2: &R2Bucket, key: &str, id: &str) -> Result<Upload> {
    let unknown = || {
        Error::NotFound(format!(
            "/{key}: no multipart upload {id:?} in progress for this path (completed, aborted or never started)"
        ))
    };
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let obj = r2
        .head(&format!("{UPLOADS}{id}"))
        .await?
        .ok_or_else(unknown)?;
    if obj.meta("key").as_deref() != Some(key) {
        return Err(unknown());
    }
    let sha = obj
        .meta(SHA256)
        .and_then(|s| Sha256::from_hex(&s).ok())
        .ok_or_else(|| Error::Internal(format!("{UPLOADS}{id} lacks its sha256")))?;
    let claims = obj
        .meta_pairs()
        .into_iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("claim.")?.to_owned(),
                Sha256::from_hex(&v).ok()?,
            ))
        })
        .collect();
    Ok(Upload {
        id: id.to_owned(),
        key: key.to_owned(),
        sha,
        size: obj.meta("size").and_then(|s| s.parse().ok()).unwrap_or(0),
        claims,
        r2_id: obj.meta("upload").unwrap_or_default(),
    })
}

/// `POST /images/…?uploads`: starts a multipart upload, for files larger
/// than one request body may be (100 MB on Cloudflare's Free and Pro
/// plans). Same headers as a `PUT`, plus `X-Ssgen-Size` (the whole file's
/// size) instead of `Content-Length`. Answers the upload id, or, when the
/// path already holds the file, what a `PUT` would.
pub async fn multipart_start(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    check_target(key)?;
    if rules::replaceable(key) {
        // Checked whole before it is stored, which only a PUT allows.
        return Err(Error::BadRequest(format!(
            "/{key}: a side file goes in one PUT (at most {} bytes), not in parts; nothing was stored",
            rules::SIDE_MAX_BYTES
        )));
    }
    let (_, r2) = stores(env)?;
    let c = claims(req, key)?;
    let size: u64 = header(req, rules::SIZE_HEADER)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::BadRequest("X-Ssgen-Size (the file's size) is required".into()))?;
    let metas = metas_for(&r2, key, &c.kind).await?;
    claimed_metas_present(key, &c.combined, &metas)?;
    if let Decision::Present = state::decide(&r2, key, &c.sha.to_hex()).await? {
        return present(&r2, key, &c, size, &metas).await;
    }
    let id = js::random_uuid().replace('-', "");
    let staging = format!("{STAGING}{id}");
    let upload = r2
        .create_multipart(&staging, &store_options(key, &c.sha, None)?)
        .await?;
    let (sha_hex, size_text, r2_id) = (c.sha.to_hex(), size.to_string(), upload.upload_id());
    let claims: Vec<(String, String)> = c
        .combined
        .iter()
        .map(|(m, d)| (format!("claim.{m}"), d.to_hex()))
        .collect();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("key", key),
        (SHA256, &sha_hex),
        ("size", &size_text),
        ("upload", &r2_id),
    ];
    pairs.extend(claims.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let opts = js::obj(&[("customMetadata", js::str_obj(pairs)?.into())])?;
    r2.put(&format!("{UPLOADS}{id}"), &JsValue::from_str(""), &opts)
        .await?;
    Ok(Reply::json(
        200,
        &serde_json::json!({"path": key, "upload_id": id}),
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
    let up = upload_of(&r2, key, upload_id).await?;
    let body: JsValue = req
        .body()
        .ok_or_else(|| Error::BadRequest("a part needs a body".into()))?
        .into();
    let uploaded = r2
        .resume_multipart(&up.staging(), &up.r2_id)?
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

/// Drops what an upload left (its own keys only).
async fn discard(r2: &R2Bucket, up: &Upload) -> Result<()> {
    r2.delete(&up.staging()).await?;
    r2.delete(&up.record()).await?;
    Ok(())
}

/// `POST /images/…?upload_id=ID` with `{"parts": [{"part": N, "etag": …}]}`:
/// joins the parts into the upload's own object, reads it once through
/// the runtime's native SHA-256 (its own digest and the combined
/// fingerprints with the metadata files beside it), and only if it is the
/// file announced, copies it to its path with a conditional put.
pub async fn multipart_complete(
    req: &Request,
    env: &Env,
    key: &str,
    upload_id: &str,
) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let up = upload_of(&r2, key, upload_id).await?;
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
    let joined = r2
        .resume_multipart(&up.staging(), &up.r2_id)?
        .complete(&list)
        .await
        .map_err(|e| {
            Error::BadRequest(format!(
                "/{key}: the parts do not join: {}",
                super::js_message(&e)
            ))
        })?;
    let kind = classify::by_name(name_of(key));
    let metas = metas_for(&r2, key, &kind).await?;
    // One read: the file's own digest, and one combined fingerprint per
    // metadata file beside it.
    let (digest, fresh) =
        read_digests(&r2, &up.staging(), &metas.iter().collect::<Vec<_>>(), true).await?;
    let digest = digest.ok_or_else(|| Error::Internal("no digest of the joined object".into()))?;
    if joined.size() != up.size || digest != up.sha {
        discard(&r2, &up).await?;
        return Err(Error::BadRequest(format!(
            "/{key}: the joined parts are {} bytes with sha256 {digest}, not the announced file \
             ({} bytes, sha256 {}); nothing was stored",
            joined.size(),
            up.size,
            up.sha
        )));
    }
    if rules::has_magic(key) {
        let head = match r2
            .get(&up.staging(), Some((0, ssgen_core::HEAD_LEN as u64)))
            .await?
        {
            Some(o) => o.read_bytes().await?,
            None => Vec::new(),
        };
        if let Err(why) = rules::check_head(key, &head) {
            discard(&r2, &up).await?;
            return Err(bad_magic(key, &why, "nothing was stored"));
        }
    }
    if rules::is_metadata(key)
        && let Err(e) = check_metadata(&r2, &up.staging(), key, up.size).await
    {
        discard(&r2, &up).await?;
        return Err(e);
    }
    let stored = commit_staged(&r2, &up.staging(), &up.key, &up.sha).await;
    discard(&r2, &up).await?;
    let stored = stored?;
    let combined = just_stored(&r2, key, &kind, &up.sha, &up.claims, &metas, fresh).await?;
    Ok(file_reply(
        if stored { 201 } else { 200 },
        key,
        &up.sha,
        up.size,
        stored,
        combined.as_ref(),
    ))
}

/// Copies a checked object (`staged`) to its path `key`: `true` when
/// written, `false` when the path already held the file. Other bytes there
/// are a 409, and another writer in between makes it look again.
async fn commit_staged(r2: &R2Bucket, staged: &str, key: &str, sha: &Sha256) -> Result<bool> {
    for _ in 0..4 {
        let (only_if, tomb) = match state::decide(r2, key, &sha.to_hex()).await? {
            Decision::Present => return Ok(false),
            Decision::Write { only_if, tomb } => (only_if, tomb),
        };
        let body = r2
            .get(staged, None)
            .await?
            .and_then(|o| o.body())
            .ok_or_else(|| Error::Internal("the checked object vanished".into()))?;
        let opts = store_options(key, sha, Some(only_if))?;
        if r2.put(key, &body.into(), &opts).await?.is_some() {
            state::restored(r2, key, tomb).await?;
            return Ok(true);
        }
    }
    Err(Error::Unavailable(format!(
        "/{key}: other requests kept changing the path; upload it again"
    )))
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
    let up = upload_of(&r2, key, upload_id).await?;
    // R2 forgets an upload it has completed or aborted: nothing to undo then.
    if let Ok(u) = r2.resume_multipart(&up.staging(), &up.r2_id) {
        drop(u.abort().await);
    }
    discard(&r2, &up).await?;
    Ok(Reply::new(204))
}

/// `DELETE /images/…`: the file leaves the catalog at the next publish and
/// stays downloadable for the grace period after that publish (clients
/// keep a catalog for an hour), after which a publish purges it.
pub async fn delete(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let obj = r2
        .head(key)
        .await?
        .filter(|o| !state::is_placeholder(o))
        .ok_or_else(|| Error::NotFound(format!("/{key}: no such file")))?;
    let sha = obj.meta(SHA256).unwrap_or_default();
    let t = state::remove(&r2, key, &sha, now_secs()).await?;
    let answer = api::Removed {
        path: key.to_owned(),
        removed_at: t.deleted,
        withdrawn_at: t.withdrawn,
        grace_seconds: super::publish::grace_seconds(env),
        note: "leaves the catalog at the next POST /publish, and is purged no sooner than the grace period after it".into(),
    };
    Ok(Reply::json(
        202,
        &serde_json::to_value(&answer).unwrap_or_default(),
    ))
}

/// The prefixes `GET /api/v1/files` pages through, in order, with the
/// field each page's objects go to.
const LISTED: [(&str, &str); 3] = [("", "files"), (DELETED, "removed"), (COMBINED, "combined")];

/// `GET /api/v1/files[?cursor=C]`: what the edge holds, one R2 page per
/// request: files (`purged` for a purged path's placeholder), tombstones
/// (`removed`) and computed combined fingerprints (`combined`). `next`,
/// when present, is the cursor of the following page.
pub async fn list(req: &Request, env: &Env, url: &web_sys::Url) -> Result<Reply> {
    authorize(req, env)?;
    let (_, r2) = stores(env)?;
    let bad = |c: &str| Error::BadRequest(format!("cursor {c:?} is not one this listing gave"));
    let (index, cursor) = match url.search_params().get("cursor") {
        None => (0, None),
        Some(c) => {
            let (i, rest) = c.split_once(':').ok_or_else(|| bad(&c))?;
            let i: usize = i
                .parse()
                .ok()
                .filter(|i| *i < LISTED.len())
                .ok_or_else(|| bad(&c))?;
            (i, Some(rest.to_owned()).filter(|r| !r.is_empty()))
        }
    };
    let (store, field) = LISTED[index];
    let prefix = format!("{store}{}", ssgen_core::serve::IMAGES_DIR);
    let (objects, next) = r2.list_page(&prefix, cursor.as_deref()).await?;
    let next = match next {
        Some(c) => Some(format!("{index}:{c}")),
        None if index + 1 < LISTED.len() => Some(format!("{}:", index + 1)),
        None => None,
    };
    let mut page = api::ListPage {
        next,
        ..api::ListPage::default()
    };
    match field {
        "files" => {
            page.files = objects
                .iter()
                .map(|o| api::ListedFile {
                    path: o.key(),
                    size: o.size(),
                    sha256: o.meta(SHA256),
                    purged: state::is_placeholder(o),
                })
                .collect();
        }
        "removed" => {
            page.removed = objects
                .iter()
                .filter_map(Tomb::of)
                .map(|t| api::ListedRemoval {
                    path: t.key,
                    sha256: Some(t.sha),
                    removed_at: t.deleted,
                    withdrawn_at: t.withdrawn,
                })
                .collect();
        }
        _ => {
            page.combined = objects
                .iter()
                .filter_map(Record::of)
                .map(|r| api::ListedCombined {
                    path: r.root,
                    meta: r.meta,
                    sha256: r.sha,
                    meta_sha256: r.meta_sha,
                    root_sha256: r.root_sha,
                })
                .collect();
        }
    }
    Ok(Reply::json(
        200,
        &serde_json::to_value(&page).unwrap_or_default(),
    ))
}
