//! The read side: the catalog from KV, image files from R2, the page for
//! people, and the direct-URL import headers. Nothing is rebuilt per
//! request. What each answer says (cache policy, ranges, conditions) is
//! the core's serving contract, `ssgen_core::serve`.

use std::cell::RefCell;

use ssgen_core::serve::http::{self, Conditions, Precondition, RangeAsk};
use ssgen_core::{Sha256, direct, html};
use wasm_bindgen::prelude::*;
use web_sys::Request;

use super::js::{self, KvNamespace, R2Bucket};
use super::{Env, Error, INDEX_KEY, Reply, Result, header, publish, state, stores};

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
    header(req, "if-none-match").is_some_and(|v| http::none_match(&v, etag))
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
    let cache = http::cache_control(ssgen_core::INDEX_JSON);
    Ok(json_reply(req, quoted(&p.index_sha), cache, p.index_body))
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
    let cache = http::cache_control(ssgen_core::IMAGES_JSON);
    if none_match(req, &etag) {
        return Ok(Reply::new(304)
            .header("etag", etag)
            .header("cache-control", cache));
    }
    let body = snapshot_body(&kv, &r2, &p.images_sha)
        .await?
        .ok_or_else(|| Error::Internal(format!("snapshot {} is missing", p.images_sha)))?;
    Ok(json_reply(req, etag, cache, body))
}

/// `GET /streams/v1/snapshots/<sha256>.json`: an immutable snapshot.
pub async fn snapshot(req: &Request, env: &Env, rel: &str) -> Result<Reply> {
    let sha = rel
        .strip_prefix(ssgen_core::serve::SNAPSHOTS)
        .and_then(|n| n.strip_suffix(".json"))
        .filter(|s| ssgen_core::Sha256::from_hex(s).is_ok())
        .ok_or_else(|| Error::NotFound(format!("/{rel}: not a snapshot name")))?;
    let (kv, r2) = stores(env)?;
    let body = snapshot_body(&kv, &r2, sha)
        .await?
        .ok_or_else(|| Error::NotFound(format!("/{rel}: no such snapshot")))?;
    Ok(json_reply(req, quoted(sha), http::cache_control(rel), body))
}

/// An R2 upload time in milliseconds as the whole seconds HTTP dates say.
fn seconds(ms: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "milliseconds since 1970 divided by 1000 fit an i64"
    )]
    let secs = (ms / 1000.0).floor() as i64;
    secs
}

/// `GET`/`HEAD /images/…`: streamed from R2, with one `Range` and the
/// conditional headers. The ETag is the file's sha256, which never changes
/// for a path.
pub async fn file(req: &Request, env: &Env, key: &str) -> Result<Reply> {
    let (_, r2) = stores(env)?;
    let h = |n| header(req, n);
    let conditional = http::CONDITIONAL.iter().any(|n| h(n).is_some());
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
    let modified = seconds(meta.uploaded_ms());
    let conds = Conditions::read(|name| header(req, name));
    let common = |r: Reply| file_headers(r, key, etag.clone(), modified);
    let honour_range = match http::evaluate(&conds, &etag, Some(modified)) {
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
        reply = reply.header("content-range", r.content_range(size));
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
fn file_headers(r: Reply, key: &str, etag: String, modified: i64) -> Reply {
    r.header("etag", etag)
        .header("last-modified", http::http_date(modified))
        .header("cache-control", http::cache_control(key))
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
    let mut reply = file_headers(Reply::new(status), key, etag, seconds(obj.uploaded_ms()))
        .header("content-type", http::content_type(key));
    if let Some(r) = part {
        reply = reply.header("content-range", r.content_range(size));
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
pub async fn alias(
    req: &Request,
    env: &Env,
    url: &web_sys::Url,
    prefix: &str,
    alias: &str,
) -> Result<Reply> {
    if !direct::is_alias(alias) {
        return Err(Error::BadRequest(format!("{alias:?} is not an alias")));
    }
    let (kv, r2) = stores(env)?;
    let p = published(&kv, &r2).await?;
    let map = alias_map(&kv, &r2, &p.images_sha).await?;
    let [incus, lxd] = ssgen_core::serve::ARCH_HEADERS.map(|h| header(req, h));
    let arches =
        ssgen_core::serve::daemon_arches(incus.as_deref(), lxd.as_deref()).map(str::to_owned);
    let target = direct::resolve(&map, alias, arches.as_deref()).map_err(|miss| {
        let message = miss.explain(alias, arches.as_deref());
        match miss {
            direct::Miss::Ambiguous(_) => Error::BadRequest(message),
            direct::Miss::Unknown | direct::Miss::NoArch(_) => Error::NotFound(message),
        }
    })?;
    // Below the token of a private feed, the image is there too.
    let headers = target.headers(&format!("{}{prefix}", url.origin()));
    let body = serde_json::json!({"alias": alias, "hash": target.hash, "url": headers[1].1});
    let mut reply =
        Reply::json(200, &body).cache(http::cache_control(ssgen_core::direct::URL_PREFIX));
    for (name, value) in headers {
        reply = reply.header(name, value);
    }
    Ok(reply)
}

/// A page rendered for one catalog and one URL: the isolate keeps the last
/// one, so a page is rendered once per publish (per URL it is reached by).
struct Rendered {
    images_sha: String,
    url: String,
    html: String,
    etag: String,
}

thread_local! {
    static PAGE: RefCell<Option<std::rc::Rc<Rendered>>> = const { RefCell::new(None) };
}

/// The text of a body KV or R2 returned (a string or an ArrayBuffer).
fn text_of(body: &JsValue) -> Result<String> {
    if let Some(t) = body.as_string() {
        return Ok(t);
    }
    let bytes = js_sys::Uint8Array::new(body).to_vec();
    String::from_utf8(bytes).map_err(|_| Error::Internal("the catalog is not UTF-8".into()))
}

/// `GET`/`HEAD /` and `/index.html`: the core's page for people, for the
/// published catalog, with the copy lines naming this server as the
/// request reached it (the private feed's token included).
pub async fn page(req: &Request, env: &Env, url: &web_sys::Url, prefix: &str) -> Result<Reply> {
    let (kv, r2) = stores(env)?;
    let base = format!("https://{}{prefix}", url.host());
    let published = match published(&kv, &r2).await {
        Ok(p) => Some(p),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let images_sha = published.as_ref().map_or("", |p| p.images_sha.as_str());
    let cached = PAGE.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|r| r.images_sha == images_sha && r.url == base)
            .cloned()
    });
    let rendered = match cached {
        Some(r) => r,
        None => {
            let page = match &published {
                Some(p) => {
                    let index = text_of(&p.index_body)?;
                    let images = publish::snapshot_text(&kv, &r2, &p.images_sha)
                        .await?
                        .ok_or_else(|| {
                            Error::Internal(format!("snapshot {} is missing", p.images_sha))
                        })?;
                    html::Page::from_documents(&index, &images)
                }
                None => html::Page::from_catalog("{}", &|_| None),
            };
            let options = html::Options {
                url: Some(base.clone()),
                ..html::Options::default()
            };
            let html = page.render(&options);
            let etag = quoted(&Sha256::of(html.as_bytes()).to_hex()[..32]);
            let r = std::rc::Rc::new(Rendered {
                images_sha: images_sha.to_owned(),
                url: base,
                html,
                etag,
            });
            PAGE.with(|p| *p.borrow_mut() = Some(r.clone()));
            r
        }
    };
    let cache = http::cache_control(ssgen_core::html::FILE_NAME);
    let mut reply = Reply::new(200)
        .header("etag", rendered.etag.clone())
        .header("cache-control", cache);
    for (name, value) in http::PAGE_HEADERS {
        reply = reply.header(name, value);
    }
    if none_match(req, &rendered.etag) {
        reply.status = 304;
        return Ok(reply);
    }
    Ok(reply
        .header("content-length", rendered.html.len().to_string())
        .text(rendered.html.clone()))
}
