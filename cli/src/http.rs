//! The request handler of `ssgen serve`: static files with HTTP semantics
//! the clients and caches rely on, and the upload API.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, BodyStream, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sha2::Digest as _;
use ssgen_core::direct;
use ssgen_core::withdrawn::{self, Withdrawn};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
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
pub use tls::{SelfSigned, tls_from_files, tls_self_signed};

/// A response body: a file stream, bytes, or nothing.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// The header a publisher sends with the file's SHA-256 (hex).
const CHECKSUM_HEADER: &str = "x-checksum-sha256";

/// What the handler needs.
pub struct Server {
    pub root: PathBuf,
    pub token: Option<String>,
    pub allow_delete: bool,
    pub rebuild: UnboundedSender<()>,
    /// `https` or `http`: what the listener of this handler speaks, for the
    /// URLs of direct-URL import answers.
    pub scheme: &'static str,
    /// The catalog documents, from memory (shared by every listener).
    pub catalog: Arc<Catalog>,
}

/// An error answered to the client.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(full(format!("{message}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> Body {
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
        let rel = decode_path(req.uri().path())?;
        match *req.method() {
            Method::GET | Method::HEAD => self.get(&req, &rel).await,
            Method::PUT => {
                self.authorize(req.headers())?;
                let target = upload_target(&rel)?;
                let expected = checksum(req.headers())?;
                let status = self.store(&target, req.into_body(), expected).await?;
                Ok(text(status, "stored"))
            }
            Method::POST if rel == "images" || rel == "images/" => {
                self.authorize(req.headers())?;
                self.multipart(req).await
            }
            Method::DELETE if self.allow_delete => {
                self.authorize(req.headers())?;
                self.withdraw(&rel)
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

    /// Streams a body into a hidden staging file beside the target,
    /// checking its SHA-256, then renames it into place.
    async fn store(
        &self,
        target: &str,
        body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Display> + Unpin,
        expected: Option<String>,
    ) -> Result<StatusCode, HttpError> {
        let path = self.root.join(target);
        let dir = path
            .parent()
            .ok_or_else(|| bad("no directory"))?
            .to_path_buf();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("no file name"))?
            .to_owned();
        tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
        let staging = dir.join(format!(".{name}.upload-{}", unique()));
        let result = self.stream_to(&staging, body).await;
        let outcome = async {
            let digest = result?;
            if let Some(want) = &expected {
                if *want != digest {
                    return Err(HttpError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{target}: sha256 is {digest}, not {want} as {CHECKSUM_HEADER} says; the file was not stored"),
                    ));
                }
            }
            if tokio::fs::metadata(&path).await.is_ok() {
                let existing = sha256_file(&path).await.map_err(internal)?;
                return if existing == digest {
                    Ok(StatusCode::OK)
                } else {
                    Err(HttpError::new(
                        StatusCode::CONFLICT,
                        format!("{target} exists with other contents; published files never change (upload a new version)"),
                    ))
                };
            }
            tokio::fs::rename(&staging, &path).await.map_err(internal)?;
            Ok(StatusCode::CREATED)
        }
        .await;
        let _ = tokio::fs::remove_file(&staging).await;
        if outcome.is_ok() {
            let _ = self.rebuild.send(());
        }
        outcome
    }

    async fn stream_to(
        &self,
        staging: &Path,
        mut body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Display> + Unpin,
    ) -> Result<String, HttpError> {
        let mut file = tokio::fs::File::create(staging).await.map_err(internal)?;
        let mut hasher = sha2::Sha256::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| bad(format!("upload interrupted: {e}")))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                file.write_all(&data).await.map_err(internal)?;
            }
        }
        file.sync_all().await.map_err(internal)?;
        Ok(ssgen_core::Sha256(hasher.finalize().into()).to_hex())
    }

    /// `curl -F "upload=@file;filename=<path under images/>" URL/images/`,
    /// the habit of lxd-image-server's users.
    async fn multipart(&self, req: Request<RequestBody>) -> Result<Response<Body>, HttpError> {
        let boundary = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| multer::parse_boundary(v).ok())
            .ok_or_else(|| bad("expected multipart/form-data"))?;
        let stream = BodyStream::new(req.into_body())
            .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
        let mut parts = multer::Multipart::new(stream, boundary);
        let mut stored = Vec::new();
        while let Some(field) = parts.next_field().await.map_err(|e| bad(e.to_string()))? {
            let Some(file_name) = field.file_name().map(str::to_owned) else {
                continue;
            };
            let target = upload_target(&format!("images/{}", file_name.trim_start_matches('/')))?;
            let body = http_body_util::StreamBody::new(
                field
                    .map_ok(Frame::data)
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
            let status = self.store(&target, body, None).await?;
            stored.push(format!("{} {target}", status.as_u16()));
        }
        if stored.is_empty() {
            return Err(bad(
                "no file in the form (use -F \"upload=@FILE;filename=PATH\")",
            ));
        }
        Ok(text(StatusCode::CREATED, &stored.join("\n")))
    }

    /// DELETE withdraws: the file or version leaves the catalog, its files
    /// stay for the grace period (`ssgen prune` deletes them).
    fn withdraw(&self, rel: &str) -> Result<Response<Body>, HttpError> {
        let rel = rel.trim_end_matches('/');
        let parts: Vec<&str> = rel.split('/').collect();
        let (dir, file) = match parts.len() {
            7 => (parts[..6].join("/"), Some(parts[6].to_owned())),
            6 => (rel.to_owned(), None),
            _ => {
                return Err(bad(
                    "DELETE takes images/<os>/<release>/<arch>/<variant>/<version>[/<file>]",
                ));
            }
        };
        upload_target(&format!("{dir}/x"))?;
        let dir_path = self.root.join(&dir);
        if !dir_path.is_dir() {
            return Err(HttpError::new(StatusCode::NOT_FOUND, "not found"));
        }
        let marker_path = dir_path.join(withdrawn::FILE_NAME);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let previous = std::fs::read(&marker_path)
            .ok()
            .and_then(|b| Withdrawn::parse(&b).ok());
        let files = match (file, previous.map(|p| p.files)) {
            (None, _) | (_, Some(None)) => None,
            (Some(f), Some(Some(mut list))) => {
                list.push(f);
                list.sort();
                list.dedup();
                Some(list)
            }
            (Some(f), None) => Some(vec![f]),
        };
        let marker = Withdrawn { since: now, files };
        crate::fsx::write_atomic(&marker_path, marker.to_text().as_bytes()).map_err(internal)?;
        let _ = self.rebuild.send(());
        Ok(text(StatusCode::OK, "withdrawn"))
    }
}

fn bad(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, message)
}

fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error: {e}"),
    )
}

fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(ssgen_core::Sha256(hasher.finalize().into()).to_hex())
}

fn checksum(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let Some(value) = headers.get(CHECKSUM_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ssgen_core::Sha256::from_hex(&text)
        .map(|d| Some(d.to_hex()))
        .map_err(|_| bad(format!("{CHECKSUM_HEADER} must be 64 hex digits")))
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

/// An upload goes to images/<os>/<release>/<arch>/<variant>/<version>/<file>
/// with plain names only.
fn upload_target(rel: &str) -> Result<String, HttpError> {
    let parts: Vec<&str> = rel.split('/').collect();
    let ok = parts.len() == 7
        && parts[0] == "images"
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | ':' | '-'))
        });
    if ok {
        Ok(rel.to_owned())
    } else {
        Err(bad(format!(
            "{rel}: uploads go to images/<os>/<release>/<arch>/<variant>/<version>/<file>, names of [A-Za-z0-9._~:-] not starting with a dot"
        )))
    }
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
        assert!(
            upload_target("images/debian/12/amd64/default/20260801_0312/rootfs.squashfs").is_ok()
        );
        assert!(upload_target("images/debian/12/amd64/default/.hidden/rootfs.squashfs").is_err());
        assert!(upload_target("streams/v1/a/b/c/d/index.json").is_err());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
