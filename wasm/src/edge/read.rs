//! The read side: the catalog from KV, image files from R2, and the
//! direct-URL import headers. Nothing is rebuilt per request.

use ssgen_core::direct;
use wasm_bindgen::prelude::*;
use web_sys::Request;

use super::http::{self, Conditions, IfRange, Precondition, RangeAsk};
use super::js::{self, KvNamespace, R2Bucket};
use super::{Env, Error, INDEX_KEY, Reply, Result, header, publish, state, stores};

/// The catalog changes when someone publishes: proxies may keep it a
/// minute (the clients themselves cache it for an hour).
const SHORT: &str = "public, max-age=60";
/// Content-addressed snapshots never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A path never serves other bytes than the first it held, even after a
/// purge (its placeholder refuses other bytes), so caches may keep it.
const FILES: &str = "public, max-age=86400";

/// The published index, and the snapshot it points at.
struct Published {
    index_sha: String,
    images_sha: String,
    /// The index bytes (an ArrayBuffer from KV, or a string).
    index_body: JsValue,
}

/// The index from KV (one read). Should KV not have it (a location that
/// has not seen the first publish yet, or a KV write that failed after the
/// swap), the R2 pointer, which is what publishing swapped, answers.
async fn published(kv: &KvNamespace, r2: &R2Bucket) -> Result<Published> {
    if let Some((body, meta)) = kv.get_buffer_meta(INDEX_KEY).await? {
        let get = |k| {
            js::get_str(&meta, k)
                .filter(|s| ssgen_core::Sha256::from_hex(s).is_ok())
                .ok_or_else(|| Error::Internal(format!("index metadata lacks {k}")))
        };
        return Ok(Published {
            index_sha: get("sha256")?,
            images_sha: get("images")?,
            index_body: body,
        });
    }
    let (p, _) = publish::current(r2).await?.ok_or_else(nothing_published)?;
    Ok(Published {
        index_body: JsValue::from_str(&p.index_json),
        index_sha: p.index,
        images_sha: p.images,
    })
}

fn quoted(sha: &str) -> String {
    format!("\"{sha}\"")
}

fn none_match(req: &Request, etag: &str) -> bool {
    header(req, "if-none-match").is_some_and(|v| {
        let c = Conditions {
            if_none_match: Some(&v),
            ..Conditions::default()
        };
        http::evaluate(&c, etag, 0.0) == Precondition::NotModified
    })
}

fn json_reply(req: &Request, etag: String, cache: &'static str, body: JsValue) -> Reply {
    if none_match(req, &etag) {
        return Reply::new(304)
            .header("etag", etag)
            .header("cache-control", cache);
    }
    // HEAD has no body to measure, so say the length of the one GET gets.
    let length = js::get_f64(&body, "byteLength").or_else(|| {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a catalog is far below 2^53 bytes"
        )]
        body.as_string().map(|t| t.len() as f64)
    });
    let reply = Reply::new(200);
    let reply = match length {
        Some(n) => reply.header("content-length", format!("{n}")),
        None => reply,
    };
    reply
        .header("content-type", "application/json")
        .header("etag", etag)
        .header("cache-control", cache)
        .js(body)
}

/// `GET /streams/v1/index.json`: one KV read.
pub async fn index(req: &Request, env: &Env) -> Result<Reply> {
    let (kv, r2) = stores(env)?;
    let p = published(&kv, &r2).await?;
    Ok(json_reply(req, quoted(&p.index_sha), SHORT, p.index_body))
}

fn nothing_published() -> Error {
    Error::NotFound("no catalog published yet: upload images and POST /publish".into())
}

async fn snapshot_body(kv: &KvNamespace, r2: &R2Bucket, sha: &str) -> Result<Option<JsValue>> {
    if let Some(v) = kv.get_buffer(&format!("catalog/{sha}")).await? {
        return Ok(Some(v));
    }
    // KV is eventually consistent across locations; R2 is not.
    match r2.get(&format!("catalog/{sha}.json"), None).await? {
        Some(obj) => Ok(obj.body().map(JsValue::from)),
        None => Ok(None),
    }
}

/// `GET /streams/v1/images.json`: the snapshot the index points at.
pub async fn images(req: &Request, env: &Env) -> Result<Reply> {
    let (kv, r2) = stores(env)?;
    let p = published(&kv, &r2).await?;
    let etag = quoted(&p.images_sha);
    if none_match(req, &etag) {
        return Ok(Reply::new(304)
            .header("etag", etag)
            .header("cache-control", SHORT));
    }
    let body = snapshot_body(&kv, &r2, &p.images_sha)
        .await?
        .ok_or_else(|| Error::Internal(format!("snapshot {} is missing", p.images_sha)))?;
    Ok(json_reply(req, etag, SHORT, body))
}

/// `GET /streams/v1/snapshots/<sha256>.json`: an immutable snapshot.
pub async fn snapshot(req: &Request, env: &Env, path: &str) -> Result<Reply> {
    let sha = path
        .strip_prefix("/streams/v1/snapshots/")
        .and_then(|n| n.strip_suffix(".json"))
        .filter(|s| ssgen_core::Sha256::from_hex(s).is_ok())
        .ok_or_else(|| Error::NotFound(format!("{path}: not a snapshot name")))?;
    let (kv, r2) = stores(env)?;
    let body = snapshot_body(&kv, &r2, sha)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{path}: no such snapshot")))?;
    Ok(json_reply(req, quoted(sha), IMMUTABLE, body))
}

fn http_date(ms: f64) -> String {
    String::from(js_sys::Date::new(&JsValue::from_f64(ms)).to_utc_string())
}

fn parse_date(v: Option<&String>) -> Option<f64> {
    let ms = js_sys::Date::parse(v?);
    ms.is_finite().then_some(ms)
}

/// `GET`/`HEAD /images/…`: streamed from R2, with one `Range` and the
/// conditional headers. The ETag is the file's sha256, which never changes
/// for a path.
pub async fn file(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    let (_, r2) = stores(env)?;
    let h = |n| header(req, n);
    let conditional = [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
    ]
    .iter()
    .any(|n| h(n).is_some());
    // The common case (what LXD and Incus send, and a resuming download):
    // a GET with at most a Range and no preconditions takes one R2 call.
    if req.method() == "GET" && !conditional {
        let range = h("range");
        if let Some(spec) = http::range_spec(range.as_deref()) {
            match r2.get_spec(key, spec).await {
                Ok(None) => return Err(Error::NotFound(format!("/{key}: no such file"))),
                Ok(Some(obj)) if state::is_placeholder(&obj) => return Err(purged(key)),
                Ok(Some(obj)) => return body_reply(key, &obj, range.as_deref()),
                // A range R2 finds outside the object: the path below
                // answers 416 with the size.
                Err(_) if spec != http::RangeSpec::Whole => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let meta = r2
        .head(key)
        .await?
        .ok_or_else(|| Error::NotFound(format!("/{key}: no such file")))?;
    if state::is_placeholder(&meta) {
        return Err(purged(key));
    }
    let size = meta.size();
    let etag = meta
        .meta("sha256")
        .map_or_else(|| meta.http_etag(), |s| quoted(&s));
    let modified = meta.uploaded_ms();
    let (im, inm, ims, ius, ir) = (
        h("if-match"),
        h("if-none-match"),
        h("if-modified-since"),
        h("if-unmodified-since"),
        h("if-range"),
    );
    let conds = Conditions {
        if_match: im.as_deref(),
        if_none_match: inm.as_deref(),
        if_modified_since: parse_date(ims.as_ref()),
        if_unmodified_since: parse_date(ius.as_ref()),
        if_range: ir
            .as_deref()
            .map(|v| IfRange::parse(v, |d| parse_date(Some(&d.to_owned())))),
    };
    let common = |r: Reply| file_headers(r, etag.clone(), modified);
    let honour_range = match http::evaluate(&conds, &etag, modified) {
        Precondition::NotModified => return Ok(common(Reply::new(304))),
        Precondition::Failed => return Err(Error::PreconditionFailed),
        Precondition::Serve { honour_range } => honour_range,
    };
    let range = if honour_range {
        http::parse_range(h("range").as_deref(), size)
    } else {
        RangeAsk::Whole
    };
    let (status, part) = match range {
        RangeAsk::Unsatisfiable => return Err(Error::RangeNotSatisfiable(size)),
        RangeAsk::Whole => (200, None),
        RangeAsk::Part(r) => (206, Some(r)),
    };
    let length = part.map_or(size, http::ByteRange::len);
    let mut reply = common(Reply::new(status))
        .header("content-type", http::content_type(key))
        .header("content-length", length.to_string());
    if let Some(r) = part {
        reply = reply.header(
            "content-range",
            format!("bytes {}-{}/{size}", r.start, r.end),
        );
    }
    if req.method() == "HEAD" {
        return Ok(reply);
    }
    let obj = r2
        .get(key, part.map(|r| (r.start, r.len())))
        .await?
        .ok_or_else(|| Error::NotFound(format!("/{key}: no such file")))?;
    let body = obj
        .body()
        .ok_or_else(|| Error::Internal("R2 object without a body".into()))?;
    Ok(reply.js(body.into()))
}

fn purged(key: &str) -> Error {
    Error::NotFound(format!(
        "/{key}: removed from the catalog and purged after the grace period"
    ))
}

/// The headers every file answer carries.
fn file_headers(r: Reply, etag: String, modified: f64) -> Reply {
    r.header("etag", etag)
        .header("last-modified", http_date(modified))
        .header("cache-control", FILES)
        .header("accept-ranges", "bytes")
}

/// The answer for an object R2 returned with its body (the one-call path).
fn body_reply(key: &str, obj: &js::R2Object, range: Option<&str>) -> Result<Reply> {
    let size = obj.size();
    let etag = obj
        .meta("sha256")
        .map_or_else(|| obj.http_etag(), |s| quoted(&s));
    let body = obj
        .body()
        .ok_or_else(|| Error::Internal("R2 object without a body".into()))?;
    let (status, part) = match http::parse_range(range, size) {
        RangeAsk::Part(r) => (206, Some(r)),
        RangeAsk::Whole => (200, None),
        RangeAsk::Unsatisfiable => return Err(Error::RangeNotSatisfiable(size)),
    };
    let mut reply = file_headers(Reply::new(status), etag, obj.uploaded_ms())
        .header("content-type", http::content_type(key));
    if let Some(r) = part {
        reply = reply.header(
            "content-range",
            format!("bytes {}-{}/{size}", r.start, r.end),
        );
    }
    Ok(reply.js(body.into()))
}

/// The direct-URL import map of snapshot `sha`. KV may not have it (a
/// location it has not reached yet, a write that failed after the swap):
/// then it is derived again from the snapshot and stored back.
async fn alias_map(kv: &KvNamespace, r2: &R2Bucket, sha: &str) -> Result<direct::AliasMap> {
    let key = format!("aliases/{sha}");
    let text = match kv.get_text(&key).await? {
        Some(t) => t,
        None => {
            let images = match kv.get_text(&format!("catalog/{sha}")).await? {
                Some(t) => t,
                None => match r2.get(&format!("catalog/{sha}.json"), None).await? {
                    Some(o) => o.read_text().await?,
                    None => {
                        return Err(Error::Unavailable(format!(
                            "the published catalog {sha} is missing from KV and R2: publish again"
                        )));
                    }
                },
            };
            let text = publish::alias_text(&images)?;
            // Best effort: the answer does not depend on the write.
            drop(kv.put_text(&key, &text, None, None).await);
            text
        }
    };
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("{key}: {e}")))
}

/// `GET`/`HEAD /aliases/<alias>[/<arch>]`: direct-URL import headers.
pub async fn alias(req: &Request, env: &Env, url: &web_sys::Url, alias: &str) -> Result<Reply> {
    if !direct::is_alias(alias) {
        return Err(Error::BadRequest(format!("{alias:?} is not an alias")));
    }
    let (kv, r2) = stores(env)?;
    let p = published(&kv, &r2).await?;
    let map = alias_map(&kv, &r2, &p.images_sha).await?;
    let (incus, lxd) = (
        header(req, "incus-server-architectures"),
        header(req, "lxd-server-architectures"),
    );
    let arches = http::server_arches(incus.as_deref(), lxd.as_deref()).map(str::to_owned);
    let target = direct::resolve(&map, alias, arches.as_deref()).map_err(|miss| {
        let message = miss.explain(alias, arches.as_deref());
        match miss {
            direct::Miss::Ambiguous(_) => Error::BadRequest(message),
            direct::Miss::Unknown | direct::Miss::NoArch(_) => Error::NotFound(message),
        }
    })?;
    let headers = target.headers(&url.origin());
    let body = serde_json::json!({"alias": alias, "hash": target.hash, "url": headers[1].1});
    let mut reply = Reply::json(200, &body);
    for (name, value) in headers {
        reply = reply.header(name, value);
    }
    Ok(reply)
}
