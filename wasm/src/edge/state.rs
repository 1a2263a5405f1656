//! What a path under `images/` holds, and the only ways it changes.
//!
//! R2 has conditional puts but no conditional delete. So no key that two
//! requests may write is ever deleted: a file is written only by a put
//! conditional on what the writer saw (absent, or unchanged since it
//! looked), and a purge replaces the file by an empty placeholder the same
//! way. A re-upload of a removed file writes its bytes again, which makes
//! any purge that saw the old object fail its condition, and a purge that
//! won makes the re-upload fail its own and start over: whatever order
//! they run in, an upload that was acknowledged stays.
//!
//! | key | what |
//! |---|---|
//! | `images/<path>` | the file, custom metadata `sha256`; or, once purged, an empty placeholder with `sha256` (the bytes it held) and `purged` (when), kept so the path never serves other bytes (side files excepted: clients never download them, and they may be replaced at any time) |
//! | `deleted/images/<path>` | tombstone: `deleted` (when), `sha256`, and `withdrawn` (the first publish that swapped in a catalog without the file) |
//! | `combined/images/<root path>/<meta name>` | a combined fingerprint the Worker computed: `sha256`, and the `meta` and `root` sha256 it was computed from |
//! | `uploads/<id>` | a multipart upload in progress: its path, claims and R2 upload id |
//! | `staging/<id>` | the object a multipart upload joins into, checked before it is copied to its path |

use std::collections::BTreeMap;

use js_sys::Object;
use ssgen_core::Sha256;
use wasm_bindgen::prelude::*;

use super::js::{self, R2Bucket, R2Object};
use super::{Error, Result};

/// Prefix of the tombstones of removed files.
pub const DELETED: &str = "deleted/";
/// Prefix of the combined fingerprints the Worker computed.
pub const COMBINED: &str = "combined/";
/// Prefix of the records of multipart uploads in progress.
pub const UPLOADS: &str = "uploads/";
/// Prefix of the objects multipart uploads join into.
pub const STAGING: &str = "staging/";

/// Custom-metadata key of a file's sha256.
pub const SHA256: &str = "sha256";
/// Custom-metadata key marking a purged path's placeholder.
const PURGED: &str = "purged";

/// What `images/<path>` holds.
#[derive(Debug)]
pub enum Held {
    /// Nothing, ever.
    Absent,
    /// A file with this sha256, stored at `uploaded` (ms).
    Live { sha: String, uploaded: f64 },
    /// The placeholder of a purged file that held this sha256.
    Purged { sha: String, uploaded: f64 },
}

impl Held {
    /// The state an object (or its absence) says.
    pub fn of(obj: Option<&R2Object>) -> Self {
        match obj {
            None => Held::Absent,
            Some(o) => {
                let sha = o.meta(SHA256).unwrap_or_default();
                let uploaded = o.uploaded_ms();
                if is_placeholder(o) {
                    Held::Purged { sha, uploaded }
                } else {
                    Held::Live { sha, uploaded }
                }
            }
        }
    }
}

/// Whether an object under `images/` is a purged path's placeholder.
pub fn is_placeholder(obj: &R2Object) -> bool {
    obj.meta(PURGED).is_some()
}

/// The `onlyIf` of a put that must not happen if the object was written
/// since it was seen at `uploaded_ms`. (R2 objects' etags are the MD5 of
/// their bytes, so rewriting the same bytes keeps the etag: only the
/// upload time tells a rewrite.)
fn unchanged_since(uploaded_ms: f64) -> Result<Object> {
    let before = js_sys::Date::new(&JsValue::from_f64(uploaded_ms + 1.0));
    Ok(js::obj(&[("uploadedBefore", before.into())])?)
}

/// The `onlyIf` of a put that must not replace anything.
fn absent() -> Result<Object> {
    Ok(js::obj(&[("etagDoesNotMatch", JsValue::from_str("*"))])?)
}

/// A tombstone. Its body is a fresh random id each time it is written, so
/// its etag tells one write from another (empty bodies would all share
/// one etag).
#[derive(Debug)]
pub struct Tomb {
    /// The file's key.
    pub key: String,
    /// The sha256 the file held when it was removed.
    pub sha: String,
    /// When it was removed.
    pub deleted: i64,
    /// When a publish first swapped in a catalog without it.
    pub withdrawn: Option<i64>,
    /// The etag of this write of the tombstone, for conditional rewrites.
    pub etag: String,
}

impl Tomb {
    /// Reads a tombstone object (`deleted/images/…`).
    pub fn of(obj: &R2Object) -> Option<Tomb> {
        let key = obj.key().strip_prefix(DELETED)?.to_owned();
        let num = |k| obj.meta(k).and_then(|s| s.parse::<i64>().ok());
        Some(Tomb {
            key,
            sha: obj.meta(SHA256).unwrap_or_default(),
            deleted: num("deleted").unwrap_or(0),
            withdrawn: num("withdrawn"),
            etag: obj.etag(),
        })
    }
}

/// Writes the tombstone of `key` unless there is one (a second DELETE
/// must not restart the grace period). Returns the tombstone in place.
pub async fn remove(r2: &R2Bucket, key: &str, sha: &str, now: i64) -> Result<Tomb> {
    let tkey = format!("{DELETED}{key}");
    for _ in 0..3 {
        if let Some(t) = r2.head(&tkey).await?.as_ref().and_then(Tomb::of) {
            return Ok(t);
        }
        let now_text = now.to_string();
        let custom = js::str_obj([("deleted", now_text.as_str()), (SHA256, sha)])?;
        let opts = js::obj(&[
            ("customMetadata", custom.into()),
            ("onlyIf", absent()?.into()),
        ])?;
        let body = JsValue::from_str(&js::random_uuid());
        if let Some(o) = r2.put(&tkey, &body, &opts).await? {
            return Tomb::of(&o).ok_or_else(|| Error::Internal("tombstone without a key".into()));
        }
    }
    Err(Error::Unavailable(format!(
        "/{key}: removed and restored by others meanwhile; DELETE it again"
    )))
}

/// Records that a publish swapped in a catalog without the file, unless
/// the tombstone is not the one it listed (a re-upload removed it, or it
/// was removed and written again since).
pub async fn stamp_withdrawn(r2: &R2Bucket, t: &Tomb, now: i64) -> Result<bool> {
    let (deleted, now_text) = (t.deleted.to_string(), now.to_string());
    let custom = js::str_obj([
        ("deleted", deleted.as_str()),
        (SHA256, t.sha.as_str()),
        ("withdrawn", now_text.as_str()),
    ])?;
    let same = js::obj(&[("etagMatches", JsValue::from_str(&t.etag))])?;
    let opts = js::obj(&[("customMetadata", custom.into()), ("onlyIf", same.into())])?;
    let body = JsValue::from_str(&js::random_uuid());
    Ok(r2
        .put(&format!("{DELETED}{}", t.key), &body, &opts)
        .await?
        .is_some())
}

/// Replaces a file whose grace period is over by its placeholder, unless
/// the file was written since it was listed at `uploaded` (a re-upload).
pub async fn purge(r2: &R2Bucket, key: &str, sha: &str, uploaded: f64, now: i64) -> Result<bool> {
    let now_text = now.to_string();
    let custom = js::str_obj([(SHA256, sha), (PURGED, now_text.as_str())])?;
    let opts = js::obj(&[
        ("customMetadata", custom.into()),
        ("onlyIf", unchanged_since(uploaded)?.into()),
    ])?;
    Ok(r2.put(key, &JsValue::from_str(""), &opts).await?.is_some())
}

/// What storing a file with sha256 `sha` at `key` takes.
pub enum Decision {
    /// The path holds these bytes and they are not removed: nothing to
    /// write.
    Present,
    /// Write the bytes with this `onlyIf`; `tomb` says a tombstone must
    /// go once they are written (a re-upload takes a removed file back).
    Write { only_if: Object, tomb: bool },
}

/// Decides how to store `sha`'s bytes at `key`. A path never changes
/// bytes (other bytes there, or once there before a purge, are a 409),
/// except a side file: no client downloads one, so no cache keeps it long,
/// and a changed `metadata.json` or `.requirements` is how a publisher
/// changes the catalog (`ssgen_core::serve::upload::replaceable`).
pub async fn decide(r2: &R2Bucket, key: &str, sha: &str) -> Result<Decision> {
    let obj = r2.head(key).await?;
    let tomb = r2.head(&format!("{DELETED}{key}")).await?.is_some();
    let side = ssgen_core::serve::upload::replaceable(key);
    match Held::of(obj.as_ref()) {
        Held::Live { sha: have, .. } if have != sha && !side => Err(Error::Conflict(format!(
            "/{key} already holds other bytes (sha256 {have}); published paths never change: \
             put changed files in a new version directory"
        ))),
        Held::Purged { sha: had, .. } if had != sha && !side => Err(Error::Conflict(format!(
            "/{key} held other bytes (sha256 {had}) until they were purged, and caches may still \
             serve them for a year; a path never changes bytes: put the new file in a new version directory"
        ))),
        Held::Live { sha: have, .. } if have == sha && !tomb => Ok(Decision::Present),
        Held::Live { uploaded, .. } | Held::Purged { uploaded, .. } => Ok(Decision::Write {
            only_if: unchanged_since(uploaded)?,
            tomb,
        }),
        Held::Absent => Ok(Decision::Write {
            only_if: absent()?,
            tomb,
        }),
    }
}

/// After a re-upload of a removed file was written: it is back.
pub async fn restored(r2: &R2Bucket, key: &str, tomb: bool) -> Result<()> {
    if tomb {
        r2.delete(&format!("{DELETED}{key}")).await?;
    }
    Ok(())
}

/// A combined fingerprint the Worker computed.
#[derive(Debug)]
pub struct Record {
    /// The root file's key.
    pub root: String,
    /// The metadata file's name (in the same directory).
    pub meta: String,
    /// `sha256(meta ‖ root)`.
    pub sha: String,
    /// The metadata file's sha256 it was computed from.
    pub meta_sha: String,
    /// The root file's sha256 it was computed from.
    pub root_sha: String,
}

impl Record {
    /// Reads a record object (`combined/images/…/<root>/<meta>`).
    pub fn of(obj: &R2Object) -> Option<Record> {
        let rest = obj.key().strip_prefix(COMBINED)?.to_owned();
        let (root, meta) = rest.rsplit_once('/')?;
        Some(Record {
            root: root.to_owned(),
            meta: meta.to_owned(),
            sha: obj.meta(SHA256)?,
            meta_sha: obj.meta("meta")?,
            root_sha: obj.meta("root")?,
        })
    }

    /// The metadata file's key.
    pub fn meta_key(&self) -> String {
        let dir = self.root.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{}", self.meta)
    }
}

/// Stores a combined fingerprint computed from the files' bytes.
pub async fn write_record(
    r2: &R2Bucket,
    root: &str,
    meta: &str,
    digest: &Sha256,
    meta_sha: &str,
    root_sha: &str,
) -> Result<()> {
    let hex = digest.to_hex();
    let custom = js::str_obj([
        (SHA256, hex.as_str()),
        ("meta", meta_sha),
        ("root", root_sha),
    ])?;
    let opts = js::obj(&[("customMetadata", custom.into())])?;
    r2.put(
        &format!("{COMBINED}{root}/{meta}"),
        &JsValue::from_str(""),
        &opts,
    )
    .await?;
    Ok(())
}

/// The records of `root` that were computed from the bytes it holds now
/// (`root_sha`) and from the metadata files' current bytes (`metas`:
/// name → sha256), by metadata file name.
pub async fn records_of(
    r2: &R2Bucket,
    root: &str,
    root_sha: &str,
    metas: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    Ok(r2
        .list_all(&format!("{COMBINED}{root}/"))
        .await?
        .iter()
        .filter_map(Record::of)
        .filter(|r| r.root_sha == root_sha && metas.get(&r.meta) == Some(&r.meta_sha))
        .map(|r| (r.meta, r.sha))
        .collect())
}
