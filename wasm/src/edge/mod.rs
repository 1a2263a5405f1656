//! The edge handler: a Cloudflare Worker serving a simplestreams image
//! server from KV (the catalog) and R2 (the image files), with an upload
//! API whose publish step rebuilds the catalog through `ssgen-core`.
//!
//! Storage: the catalog in KV (`streams/v1/index.json`, with metadata
//! `{sha256, images, generation}`; `catalog/<sha256>`, the `images.json`
//! snapshots; `aliases/<sha256>`, the direct-URL import map of each), and
//! in R2 the files and their state (see [`state`]), the pointer
//! `catalog/current.json` publishers compare-and-swap, and a copy of each
//! snapshot (`catalog/<sha256>.json`), read if KV has not got it yet.
//!
//! Readers never rebuild anything: an index request is one KV read. Every
//! error maps to a status in [`Error::reply`]; nothing here panics.

mod js;
mod publish;
mod read;
mod state;
mod upload;

use ssgen_core::serve::{self, auth, upload as rules};
use wasm_bindgen::prelude::*;
use web_sys::{Headers, Request, Response, ResponseInit};

pub use js::Env;

/// KV key of the published index.
const INDEX_KEY: &str = ssgen_core::INDEX_JSON;

/// Everything a request can fail with; each maps to one status.
#[derive(Debug)]
enum Error {
    BadRequest(String),
    Unauthorized,
    NotFound(String),
    MethodNotAllowed(&'static str),
    Conflict(String),
    /// A 409 with more than a message.
    ConflictWith(serde_json::Value),
    LengthRequired,
    PreconditionFailed,
    RangeNotSatisfiable(u64),
    Unprocessable(serde_json::Value),
    Unavailable(String),
    Internal(String),
}

impl From<JsValue> for Error {
    fn from(v: JsValue) -> Self {
        Error::Internal(js_message(&v))
    }
}

/// The message of a thrown JS value.
fn js_message(v: &JsValue) -> String {
    v.as_string()
        .or_else(|| js::get_str(v, "message"))
        .unwrap_or_else(|| format!("{v:?}"))
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A response body.
enum Body {
    Empty,
    Text(String),
    /// A JS value a `Response` accepts as is (ArrayBuffer, ReadableStream),
    /// passed through without copying it into wasm memory.
    Js(JsValue),
}

/// A response before it becomes a `Response`.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Reply {
    fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut text = value.to_string();
        text.push('\n');
        Self::new(status)
            .header("content-type", "application/json")
            .header("cache-control", serve::http::NO_STORE)
            .text(text)
    }

    /// The same answer with another `Cache-Control`.
    fn cache(mut self, value: &str) -> Self {
        self.headers.retain(|(k, _)| *k != "cache-control");
        self.header("cache-control", value)
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn text(mut self, text: String) -> Self {
        self.body = Body::Text(text);
        self
    }

    fn js(mut self, body: JsValue) -> Self {
        self.body = Body::Js(body);
        self
    }

    fn into_response(self, head: bool) -> Result<Response, JsValue> {
        let headers = Headers::new()?;
        for (k, v) in &self.headers {
            headers.append(k, v)?;
        }
        // The page (any origin) reads catalogs and publishes with a token.
        headers.set("access-control-allow-origin", "*")?;
        headers.set(
            "access-control-expose-headers",
            "content-length, content-range, etag, last-modified, accept-ranges, \
             incus-image-hash, incus-image-url, lxd-image-hash, lxd-image-url",
        )?;
        let init = ResponseInit::new();
        init.set_status(self.status);
        init.set_headers(&headers);
        let null_body = head || matches!(self.status, 204 | 304);
        match self.body {
            Body::Text(t) if !null_body => Response::new_with_opt_str_and_init(Some(&t), &init),
            Body::Js(v) if !null_body => {
                if let Some(stream) = v.dyn_ref::<web_sys::ReadableStream>() {
                    Response::new_with_opt_readable_stream_and_init(Some(stream), &init)
                } else {
                    Response::new_with_opt_buffer_source_and_init(Some(v.unchecked_ref()), &init)
                }
            }
            _ => Response::new_with_opt_str_and_init(None, &init),
        }
    }
}

impl Error {
    /// The one place errors become statuses.
    fn reply(self) -> Reply {
        let (status, message) = match self {
            Error::BadRequest(m) => (400, m),
            Error::Unauthorized => {
                return Reply::json(
                    401,
                    &serde_json::json!({"error": "missing or wrong bearer token"}),
                )
                .header("www-authenticate", "Bearer realm=\"ssgen\"");
            }
            Error::NotFound(m) => (404, m),
            Error::MethodNotAllowed(allow) => {
                return Reply::json(
                    405,
                    &serde_json::json!({"error": format!("method not allowed; allowed: {allow}")}),
                )
                .header("allow", allow);
            }
            Error::Conflict(m) => (409, m),
            Error::ConflictWith(value) => return Reply::json(409, &value),
            Error::LengthRequired => (
                411,
                "uploads need a Content-Length (the body streams into R2)".to_owned(),
            ),
            Error::PreconditionFailed => (412, "precondition failed".to_owned()),
            Error::RangeNotSatisfiable(size) => {
                return Reply::new(416)
                    .header("content-range", format!("bytes */{size}"))
                    .header("cache-control", "no-store");
            }
            Error::Unprocessable(value) => return Reply::json(422, &value),
            Error::Unavailable(m) => (503, m),
            Error::Internal(m) => (500, format!("internal error: {m}")),
        };
        Reply::json(status, &serde_json::json!({ "error": message }))
    }
}

/// The Worker's fetch handler (named so it does not shadow the global
/// `fetch` in the wasm-bindgen glue).
#[wasm_bindgen(js_name = handleFetch)]
pub async fn handle_fetch(req: Request, env: Env) -> Result<Response, JsValue> {
    let head = req.method() == "HEAD";
    let reply = route(&req, &env).await.unwrap_or_else(Error::reply);
    reply.into_response(head)
}

async fn route(req: &Request, env: &Env) -> Result<Reply> {
    let url = web_sys::Url::new(&req.url())?;
    let path = url.pathname();
    let method = req.method();
    if method == "OPTIONS" {
        return Ok(preflight());
    }
    // The form `ssgen serve` routes on too: `//<token>/…` is `/<token>/…`.
    let rel = serve::normalized(&path);
    let rel = rel.as_str();
    // The upload API lives at the root, behind its own bearer token,
    // whether or not the feed is private.
    if rel == serve::PUBLISH {
        return match method.as_str() {
            "POST" => publish::run(req, env, &url).await,
            _ => Err(Error::MethodNotAllowed("POST, OPTIONS")),
        };
    }
    if rel == serve::FILES_API {
        return match method.as_str() {
            // A private feed does not even say that it lists files to one
            // without the upload token, as `ssgen serve`.
            "GET" if authorize(req, env).is_err() && !read_tokens(env)?.is_empty() => {
                Err(Error::NotFound(format!("{path}: no such resource")))
            }
            "GET" => upload::list(req, env, &url).await,
            _ => Err(Error::MethodNotAllowed("GET, OPTIONS")),
        };
    }
    if !matches!(method.as_str(), "GET" | "HEAD") {
        return write(req, env, &url, rel, &method).await;
    }
    // A private feed answers reads only below one of its tokens.
    let tokens = read_tokens(env)?;
    let (prefix, rel) = if tokens.is_empty() {
        (String::new(), rel)
    } else {
        match tokens.strip(rel) {
            Some((token, rest)) => (format!("/{token}"), rest),
            None => return Err(Error::NotFound(format!("{path}: no such resource"))),
        }
    };
    match rel {
        r if serve::is_page(r) => read::page(req, env, &url, &prefix).await,
        ssgen_core::INDEX_JSON => read::index(req, env).await,
        ssgen_core::IMAGES_JSON => read::images(req, env).await,
        r if r.starts_with(serve::SNAPSHOTS) => read::snapshot(req, env, r).await,
        r if serve::in_images(r) => {
            image_key(r)?;
            read::file(req, env, r).await
        }
        r if r.starts_with(ssgen_core::direct::URL_PREFIX) => {
            let alias = &r[ssgen_core::direct::URL_PREFIX.len()..];
            read::alias(req, env, &url, &prefix, alias).await
        }
        _ => Err(Error::NotFound(format!("{path}: no such resource"))),
    }
}

/// Checks a path under `images/` as a key the edge can hold.
fn image_key(rel: &str) -> Result<()> {
    match rules::path_problem(rel) {
        None => Ok(()),
        Some(why) => Err(Error::BadRequest(format!("/{rel}: {why}"))),
    }
}

/// The upload API's writes under `/images/`.
async fn write(
    req: &Request,
    env: &Env,
    url: &web_sys::Url,
    rel: &str,
    method: &str,
) -> Result<Reply> {
    if !serve::in_images(rel) {
        let read_only = serve::is_page(rel)
            || serve::is_catalog(rel)
            || rel.starts_with(serve::SNAPSHOTS)
            || rel.starts_with(ssgen_core::direct::URL_PREFIX);
        return Err(if read_only {
            Error::MethodNotAllowed("GET, HEAD, OPTIONS")
        } else {
            Error::NotFound(format!("/{rel}: no such resource"))
        });
    }
    image_key(rel)?;
    let key = rel;
    let params = url.search_params();
    match (method, params.get("upload_id")) {
        ("PUT", None) => upload::put(req, env, key).await,
        ("PUT", Some(id)) => {
            let part = params
                .get("part")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| Error::BadRequest("part must be 1 to 10000".into()))?;
            upload::multipart_part(req, env, key, &id, part).await
        }
        ("POST", None) if params.has("uploads") => upload::multipart_start(req, env, key).await,
        ("POST", None) if params.has("combined") => upload::combined(req, env, key).await,
        ("POST", Some(id)) => upload::multipart_complete(req, env, key, &id).await,
        ("DELETE", None) => upload::delete(req, env, key).await,
        ("DELETE", Some(id)) => upload::multipart_abort(req, env, key, &id).await,
        _ => Err(Error::MethodNotAllowed(
            "GET, HEAD, PUT, DELETE, POST (multipart, ?combined), OPTIONS",
        )),
    }
}

/// The read tokens of a private feed (the `READ_TOKENS` secret: one per
/// line); none for a public one. A secret that holds an unusable token
/// closes the feed rather than opening it.
fn read_tokens(env: &Env) -> Result<auth::ReadTokens> {
    let Some(text) = env.read_tokens().as_string() else {
        return Ok(auth::ReadTokens::default());
    };
    auth::ReadTokens::parse(&text).map_err(|why| {
        Error::Unavailable(format!(
            "the READ_TOKENS secret is not usable ({why}); set it again with wrangler secret put READ_TOKENS"
        ))
    })
}

fn preflight() -> Reply {
    let headers = [
        "authorization",
        "content-type",
        "range",
        "if-none-match",
        "if-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        rules::SHA256_HEADER,
        rules::CHECKSUM_HEADER,
        rules::COMBINED_HEADER,
        rules::SIZE_HEADER,
    ];
    Reply::new(204)
        .header(
            "access-control-allow-methods",
            "GET, HEAD, PUT, DELETE, POST, OPTIONS",
        )
        .header("access-control-allow-headers", headers.join(", "))
        .header("access-control-max-age", "86400")
}

/// A request header.
fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The KV namespace and the R2 bucket, or a clear configuration error.
fn stores(env: &Env) -> Result<(js::KvNamespace, js::R2Bucket)> {
    let kv = env.catalog().ok_or_else(|| {
        Error::Unavailable("the KV binding CATALOG is missing (see wrangler.toml)".into())
    })?;
    let r2 = env.images().ok_or_else(|| {
        Error::Unavailable("the R2 binding IMAGES is missing (see wrangler.toml)".into())
    })?;
    Ok((kv, r2))
}

/// Checks the bearer token against the `UPLOAD_TOKEN` secret.
fn authorize(req: &Request, env: &Env) -> Result<()> {
    let expected = env
        .upload_token()
        .as_string()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Unavailable(
                "uploads are disabled: set the UPLOAD_TOKEN secret (wrangler secret put UPLOAD_TOKEN)"
                    .into(),
            )
        })?;
    let given = header(req, "authorization");
    let values: Vec<&str> = given.as_deref().into_iter().collect();
    match auth::bearer(&values) {
        Ok(token) if auth::token_ok(token, &expected) => Ok(()),
        _ => Err(Error::Unauthorized),
    }
}

/// Now, in whole Unix seconds.
fn now_secs() -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "milliseconds since 1970 divided by 1000 fit an i64"
    )]
    let secs = (js_sys::Date::now() / 1000.0).floor() as i64;
    secs
}
