//! The request handler of `ssgen serve`: static files with HTTP semantics
//! the clients and caches rely on, and the upload API. What each answer
//! says (content types, cache policy, ranges, conditions, who may upload
//! what where) is the core's serving contract, [`ssgen_core::serve`],
//! which the edge Worker follows too; this module only does the IO.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use ssgen_core::serve::{self as contract, auth};
use tokio::sync::mpsc::UnboundedSender;

mod access_log;
mod api;
mod catalog;
pub mod conn;
mod files;
mod headers;
mod private;
mod read;
mod tls;

pub use access_log::AccessLog;
pub use catalog::Catalog;
pub use conn::RequestBody;
pub(crate) use headers::{accepts_gzip, if_none_match};
pub use private::Private;
pub use tls::{SelfSigned, tls_from_files, tls_self_signed};

/// A response body: a file stream, bytes, or nothing.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How long clients and caches may keep a file (also given to objects
/// `ssgen push` puts in a bucket): the core's policy.
pub use ssgen_core::serve::http::cache_control;

/// The content type of a served file, by its name (also given to objects
/// `ssgen push` puts in a bucket): the core's table.
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    contract::http::content_type(name)
}

/// What the handler needs.
pub struct Server {
    pub root: PathBuf,
    pub token: Option<String>,
    pub allow_delete: bool,
    pub rebuild: UnboundedSender<()>,
    /// The writers' settings: how long an upload waits for the root lock.
    pub settings: crate::publish::Settings,
    /// `https` or `http`: what the listener of this handler speaks, for the
    /// URLs of direct-URL import answers.
    pub scheme: &'static str,
    /// The catalog documents, from memory (shared by every listener).
    pub catalog: Arc<Catalog>,
    /// The page for people at `/` (shared by every listener).
    pub page: Arc<crate::page::Served>,
    /// With `--acme`: the HTTP-01 answers an order waits on.
    pub acme: Option<Arc<crate::acme::Http01>>,
    /// The read tokens of a private feed (shared by every listener).
    pub private: Arc<Private>,
}

/// An error answered to the client.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

pub(crate) fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(full(format!("{message}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON answer of the upload API (never cached).
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let mut body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    body.push('\n');
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(contract::http::NO_STORE),
    );
    r
}

/// Whether the client asks for the upload API's answers as JSON (`ssgen
/// push` and scripts do; curl users get lines of text).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

pub(crate) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

impl Server {
    /// Answers one request; never fails.
    pub async fn handle(&self, req: Request<RequestBody>) -> Response<Body> {
        let as_json = wants_json(req.headers());
        match self.route(req).await {
            Ok(response) => response,
            Err(e) if as_json => json(e.status, &serde_json::json!({ "error": e.message })),
            Err(e) => text(e.status, &e.message),
        }
    }

    /// A request target as the access log shows it: a private feed's
    /// token is not written down.
    pub fn redact(&self, target: &str) -> String {
        self.private.redact(target)
    }

    async fn route(&self, req: Request<RequestBody>) -> Result<Response<Body>, HttpError> {
        // Before the path check, which hides every dot-directory.
        if let Some(answer) = self.acme.as_ref().and_then(|a| a.answer(req.uri().path())) {
            return Ok(answer);
        }
        let rel = decode_path(req.uri().path())?;
        let query = req.uri().query().unwrap_or_default().to_owned();
        // The upload API lives at the root, behind its own bearer token,
        // whether or not the feed is private.
        match (req.method().clone(), rel.as_str()) {
            (Method::GET, contract::FILES_API) => {
                // A private feed does not even say that it lists files to
                // one without the upload token.
                self.authorize(req.headers()).map_err(|e| {
                    if self.private.is_private() {
                        not_found()
                    } else {
                        e
                    }
                })?;
                return api::list(self).await;
            }
            (Method::POST, contract::PUBLISH) => {
                self.authorize(req.headers())?;
                return api::publish(self, &query, req).await;
            }
            (Method::POST, _) if contract::is_images_dir(&rel) => {
                self.authorize(req.headers())?;
                return crate::upload::form(self, req).await;
            }
            (Method::POST, _) if contract::in_images(&rel) && query == "combined" => {
                self.authorize(req.headers())?;
                return crate::upload::combined(self, &rel, req.headers()).await;
            }
            (Method::PUT, _) => {
                self.authorize(req.headers())?;
                return crate::upload::put(self, &rel, req).await;
            }
            (Method::DELETE, _) if !self.allow_delete => {
                return Err(HttpError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "DELETE is not enabled on this server; start ssgen serve with --token and --allow-delete to withdraw versions and files over HTTP",
                ));
            }
            (Method::DELETE, _) => {
                self.authorize(req.headers())?;
                return crate::upload::delete(self, &rel, wants_json(req.headers())).await;
            }
            (Method::GET | Method::HEAD, _) => {}
            _ => {
                return Err(HttpError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method not allowed",
                ));
            }
        }
        if rel.split('/').any(|part| part.starts_with('.')) {
            // Caches, keys, staging files and markers stay private.
            return Err(not_found());
        }
        if !self.private.is_private() {
            return self.get(&req, &rel, "").await;
        }
        // A private feed answers reads only below one of its tokens.
        match self.private.strip(&rel) {
            Some((token, rest)) => self.get(&req, rest, &format!("/{token}")).await,
            None if rel == contract::HEALTHZ => self.healthz(&req, false).await,
            None => Err(not_found()),
        }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        let Some(token) = &self.token else {
            return Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "uploads are not accepted here (start ssgen serve with --token, and upload over HTTPS)",
            ));
        };
        let values: Vec<&str> = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(|v| {
                v.to_str()
                    .map_err(|_| "the Authorization header is not printable ASCII; send `Authorization: Bearer <token>`")
            })
            .collect::<Result<_, _>>()
            .map_err(|why| HttpError::new(StatusCode::UNAUTHORIZED, why))?;
        let given =
            auth::bearer(&values).map_err(|why| HttpError::new(StatusCode::UNAUTHORIZED, why))?;
        if auth::token_ok(given, token) {
            Ok(())
        } else {
            Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "wrong bearer token in the Authorization header",
            ))
        }
    }
}

pub(crate) fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "not found")
}

pub(crate) fn bad(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, message)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error: {e}"),
    )
}

/// Decodes `%XX` escapes and checks every component: no `..`, NUL or
/// backslash. Hidden components are left to the caller: reads never see
/// them, and uploads take only the side files' names.
fn decode_path(raw: &str) -> Result<String, HttpError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .ok_or_else(|| bad("bad escape in path"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad("bad escape in path"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).map_err(|_| bad("path is not UTF-8"))?;
    // Empty and `.` segments name no directory: dropped, so that a path
    // has one form (the one a read token and the access log's redaction
    // both see), however many slashes a client or a remote URL adds.
    if contract::path_segments(&path)
        .any(|part| part == ".." || part.contains('\0') || part.contains('\\'))
    {
        return Err(bad("path escapes the root"));
    }
    Ok(contract::normalized(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            decode_path("/images/a/20260801_03%3A12/x").ok().as_deref(),
            Some("images/a/20260801_03:12/x")
        );
        assert!(decode_path("/images/../etc/passwd").is_err());
        assert!(decode_path("/images/%2e%2e/x").is_err());
        assert_eq!(
            decode_path("//t0ken//streams/./v1/index.json")
                .ok()
                .as_deref(),
            Some("t0ken/streams/v1/index.json")
        );
        assert_eq!(decode_path("/images/").ok().as_deref(), Some("images/"));
        assert_eq!(
            decode_path("/.ssgen/cache.json").ok().as_deref(),
            Some(".ssgen/cache.json")
        );
    }
}
