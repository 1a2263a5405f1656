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

mod http;
mod js;
mod publish;
mod read;
mod state;
mod upload;

use wasm_bindgen::prelude::*;
use web_sys::{Headers, Request, Response, ResponseInit};

pub use js::Env;

/// KV key of the published index.
const INDEX_KEY: &str = "streams/v1/index.json";

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
            .header("cache-control", "no-store")
            .text(text)
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
    let read = matches!(method.as_str(), "GET" | "HEAD");
    if method == "OPTIONS" {
        return Ok(preflight());
    }
    match path.as_str() {
        "/streams/v1/index.json" if read => read::index(req, env).await,
        "/streams/v1/images.json" if read => read::images(req, env).await,
        "/streams/v1/index.json" | "/streams/v1/images.json" => {
            Err(Error::MethodNotAllowed("GET, HEAD, OPTIONS"))
        }
        p if p.starts_with("/streams/v1/snapshots/") => {
            if read {
                read::snapshot(req, env, p).await
            } else {
                Err(Error::MethodNotAllowed("GET, HEAD, OPTIONS"))
            }
        }
        p if p.starts_with("/images/") => {
            let key = http::image_key(p).map_err(|why| Error::BadRequest(format!("{p}: {why}")))?;
            let params = url.search_params();
            match (method.as_str(), params.get("upload_id")) {
                ("GET" | "HEAD", _) => read::file(req, env, &key).await,
                ("PUT", None) => upload::put(req, env, &key).await,
                ("PUT", Some(id)) => {
                    let part = params
                        .get("part")
                        .and_then(|n| n.parse::<u32>().ok())
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| Error::BadRequest("part must be 1 to 10000".into()))?;
                    upload::multipart_part(req, env, &key, &id, part).await
                }
                ("POST", None) if params.has("uploads") => {
                    upload::multipart_start(req, env, &key).await
                }
                ("POST", None) if params.has("combined") => upload::combined(req, env, &key).await,
                ("POST", Some(id)) => upload::multipart_complete(req, env, &key, &id).await,
                ("DELETE", None) => upload::delete(req, env, &key).await,
                ("DELETE", Some(id)) => upload::multipart_abort(req, env, &key, &id).await,
                _ => Err(Error::MethodNotAllowed(
                    "GET, HEAD, PUT, DELETE, POST (multipart, ?combined), OPTIONS",
                )),
            }
        }
        p if p
            .strip_prefix('/')
            .is_some_and(|p| p.starts_with(ssgen_core::direct::URL_PREFIX)) =>
        {
            if read {
                read::alias(
                    req,
                    env,
                    &url,
                    &p[1 + ssgen_core::direct::URL_PREFIX.len()..],
                )
                .await
            } else {
                Err(Error::MethodNotAllowed("GET, HEAD, OPTIONS"))
            }
        }
        "/publish" => match method.as_str() {
            "POST" => publish::run(req, env, &url).await,
            _ => Err(Error::MethodNotAllowed("POST, OPTIONS")),
        },
        "/api/v1/files" => match method.as_str() {
            "GET" => upload::list(req, env, &url).await,
            _ => Err(Error::MethodNotAllowed("GET, OPTIONS")),
        },
        _ => Err(Error::NotFound(format!("{path}: no such resource"))),
    }
}

fn preflight() -> Reply {
    Reply::new(204)
        .header(
            "access-control-allow-methods",
            "GET, HEAD, PUT, DELETE, POST, OPTIONS",
        )
        .header(
            "access-control-allow-headers",
            "authorization, content-type, range, if-none-match, if-match, if-modified-since, \
             if-unmodified-since, if-range, x-ssgen-sha256, x-ssgen-combined, x-ssgen-size",
        )
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
    let given = header(req, "authorization").unwrap_or_default();
    let token = http::bearer(&given).unwrap_or("");
    if http::token_ok(token, &expected) {
        Ok(())
    } else {
        Err(Error::Unauthorized)
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
