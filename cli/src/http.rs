//! The request handler of `ssgen serve`: static files with HTTP semantics
//! the clients and caches rely on, and the upload API.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sha2::Digest as _;
use ssgen_core::direct;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc::UnboundedSender;

mod access_log;
mod catalog;
pub mod conn;
mod files;
mod headers;
mod read;
mod tls;

pub use access_log::AccessLog;
pub use catalog::Catalog;
pub use conn::RequestBody;
pub(crate) use headers::{accepts_gzip, if_none_match};
pub use headers::{cache_control, content_type};
pub use tls::{SelfSigned, tls_from_files, tls_self_signed};

/// A response body: a file stream, bytes, or nothing.
pub type Body = BoxBody<Bytes, std::io::Error>;

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
        match self.route(req).await {
            Ok(response) => response,
            Err(e) => text(e.status, &e.message),
        }
    }

    async fn route(&self, req: Request<RequestBody>) -> Result<Response<Body>, HttpError> {
        // Before the path check, which hides every dot-directory.
        if let Some(answer) = self.acme.as_ref().and_then(|a| a.answer(req.uri().path())) {
            return Ok(answer);
        }
        let rel = decode_path(req.uri().path())?;
        match *req.method() {
            Method::GET | Method::HEAD => self.get(&req, &rel).await,
            Method::PUT => {
                self.authorize(req.headers())?;
                crate::upload::put(self, &rel, req).await
            }
            Method::POST if rel == "images" || rel == "images/" => {
                self.authorize(req.headers())?;
                crate::upload::form(self, req).await
            }
            Method::DELETE if !self.allow_delete => Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "DELETE is not enabled on this server; start ssgen serve with --token and --allow-delete to withdraw versions and files over HTTP",
            )),
            Method::DELETE => {
                self.authorize(req.headers())?;
                crate::upload::delete(self, &rel).await
            }
            _ => Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            )),
        }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        let Some(token) = &self.token else {
            return Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "uploads are not accepted here (start ssgen serve with --token, and upload over HTTPS)",
            ));
        };
        let given = headers::bearer_token(headers)
            .map_err(|why| HttpError::new(StatusCode::UNAUTHORIZED, why))?;
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "wrong bearer token in the Authorization header",
            ))
        }
    }
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

/// Decodes `%XX` escapes and checks every component: no `..`, no empty
/// or hidden components (caches, staging files and markers stay private).
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
    let rel = path.trim_start_matches('/');
    for part in rel.split('/') {
        if part == ".." || part.contains('\0') || part.contains('\\') {
            return Err(bad("path escapes the root"));
        }
        if part.starts_with('.') {
            return Err(HttpError::new(StatusCode::NOT_FOUND, "not found"));
        }
    }
    Ok(rel.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests, so the time depends on neither length nor content.
    let (da, db) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
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
        assert!(decode_path("/.ssgen/cache.json").is_err());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
