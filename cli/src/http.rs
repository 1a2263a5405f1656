//! The request handler of `ssgen serve`: static files with HTTP semantics
//! the clients and caches rely on, and the upload API.

use std::io::{SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sha2::Digest as _;
use ssgen_core::direct;
use ssgen_core::withdrawn::{self, Withdrawn};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc::UnboundedSender;

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
    /// The direct-URL import map of the published catalog, with the
    /// identity (size, mtime, inode) of the images.json it was made from.
    pub aliases: std::sync::Mutex<Option<(CatalogId, Arc<direct::AliasMap>)>>,
    /// The page for people at `/` (shared by every listener).
    pub page: Arc<crate::page::Served>,
    /// With `--acme`: the HTTP-01 answers an order waits on.
    pub acme: Option<Arc<crate::acme::Http01>>,
}

/// Size, modification time and inode of a published images.json.
type CatalogId = (u64, i64, i64, u64);

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
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match self.route(req).await {
            Ok(response) => response,
            Err(e) => text(e.status, &e.message),
        }
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
        // Before the path check, which hides every dot-directory.
        if let Some(answer) = self.acme.as_ref().and_then(|a| a.answer(req.uri().path())) {
            return Ok(answer);
        }
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
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token",
            ))
        }
    }

    async fn get(&self, req: &Request<Incoming>, rel: &str) -> Result<Response<Body>, HttpError> {
        if let Some(alias) = rel.strip_prefix(direct::URL_PREFIX) {
            return self.direct_import(req, alias).await;
        }
        if rel.is_empty() || rel == ssgen_core::html::FILE_NAME {
            return Ok(self.page.answer(&self.root, req).await);
        }
        let not_found = || HttpError::new(StatusCode::NOT_FOUND, "not found");
        let mut path = self.root.join(rel);
        let mut meta = tokio::fs::metadata(&path).await.map_err(|_| not_found())?;
        if meta.is_dir() {
            path = path.join("index.html");
            meta = tokio::fs::metadata(&path).await.map_err(|_| not_found())?;
        }
        // A link may point anywhere; serve only what stays in the root.
        let real = tokio::fs::canonicalize(&path)
            .await
            .map_err(|_| not_found())?;
        if !real.starts_with(&self.root) || !meta.is_file() {
            return Err(not_found());
        }
        let head = req.method() == Method::HEAD;
        let size = meta.len();
        let mut etag = format!(
            "\"{:x}-{:x}-{:x}\"",
            size,
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
            meta.ino()
        );
        let gzip = rel.ends_with(".json")
            && accepts_gzip(req.headers())
            && !req.headers().contains_key(header::RANGE);
        if gzip {
            etag.insert_str(etag.len() - 1, "-gzip");
        }

        let mut builder = Response::builder()
            .header(header::ETAG, &etag)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
            .header(header::CACHE_CONTROL, cache_control(rel));
        if let Ok(modified) = meta.modified() {
            builder = builder.header(header::LAST_MODIFIED, http_date(modified));
        }
        if rel.ends_with(".json") {
            builder = builder.header(header::VARY, "Accept-Encoding");
        }
        if if_none_match(req.headers(), &etag) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(empty())
                .map_err(internal);
        }
        builder = builder.header(header::CONTENT_TYPE, content_type(&path));

        if gzip {
            let raw = tokio::fs::read(&path).await.map_err(|_| not_found())?;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&raw).map_err(internal)?;
            let zipped = enc.finish().map_err(internal)?;
            return builder
                .header(header::CONTENT_ENCODING, "gzip")
                .header(header::CONTENT_LENGTH, zipped.len())
                .body(if head { empty() } else { full(zipped) })
                .map_err(internal);
        }

        let (status, start, len) = match req
            .headers()
            .get(header::RANGE)
            .map(|v| parse_range(v, size))
        {
            None | Some(Range::Ignore) => (StatusCode::OK, 0, size),
            Some(Range::Unsatisfiable) => {
                return builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(empty())
                    .map_err(internal);
            }
            Some(Range::Bytes(first, last)) => {
                builder = builder.header(
                    header::CONTENT_RANGE,
                    format!("bytes {first}-{last}/{size}"),
                );
                (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
            }
        };
        builder = builder.status(status).header(header::CONTENT_LENGTH, len);
        if head {
            return builder.body(empty()).map_err(internal);
        }
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| not_found())?;
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await.map_err(internal)?;
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024)
            .map_ok(Frame::data);
        builder
            .body(StreamBody::new(stream).boxed())
            .map_err(internal)
    }

    /// `GET`/`HEAD /aliases/<alias>[/<arch>]`: the headers with which
    /// `incus image import URL` and `lxc image import URL` find the unified
    /// tarball of an alias for the daemon's architectures.
    async fn direct_import(
        &self,
        req: &Request<Incoming>,
        alias: &str,
    ) -> Result<Response<Body>, HttpError> {
        if !direct::is_alias(alias) {
            return Err(bad(format!("{alias:?} is not an alias")));
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && !h.contains(['/', '\\', '@']))
            .ok_or_else(|| bad("a Host header is needed for the image URL"))?;
        let map = self.alias_map().await?;
        let arches = ["incus-server-architectures", "lxd-server-architectures"]
            .iter()
            .find_map(|name| req.headers().get(*name)?.to_str().ok());
        let target = direct::resolve(&map, alias, arches).map_err(|miss| {
            let status = match miss {
                direct::Miss::Ambiguous(_) => StatusCode::BAD_REQUEST,
                direct::Miss::Unknown | direct::Miss::NoArch(_) => StatusCode::NOT_FOUND,
            };
            HttpError::new(status, miss.explain(alias, arches))
        })?;
        let headers = target.headers(&format!("{}://{host}", self.scheme));
        let body = serde_json::json!({"alias": alias, "hash": target.hash, "url": headers[1].1});
        let mut builder = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "public, max-age=60")
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let body = if req.method() == Method::HEAD {
            empty()
        } else {
            full(format!("{body}\n"))
        };
        builder.body(body).map_err(internal)
    }

    /// The alias map of the published images.json, made again only when
    /// that file changed.
    async fn alias_map(&self) -> Result<Arc<direct::AliasMap>, HttpError> {
        let path = self.root.join(ssgen_core::IMAGES_JSON);
        let unpublished = || HttpError::new(StatusCode::NOT_FOUND, "no catalog is published yet");
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|_| unpublished())?;
        let id = (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino());
        if let Some((cached, map)) = &*self.aliases.lock().map_err(internal)? {
            if *cached == id {
                return Ok(map.clone());
            }
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|_| unpublished())?;
        let map = Arc::new(direct::alias_map(&text).map_err(internal)?);
        *self.aliases.lock().map_err(internal)? = Some((id, map.clone()));
        Ok(map)
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
    async fn multipart(&self, req: Request<Incoming>) -> Result<Response<Body>, HttpError> {
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

pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.trim().split(';');
            parts.next() == Some("gzip") && !parts.any(|p| p.trim() == "q=0")
        })
}

pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

/// A single byte range (RFC 9110 §14.1.2); several ranges are served whole.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Ignore,
    Unsatisfiable,
    Bytes(u64, u64),
}

fn parse_range(value: &HeaderValue, size: u64) -> Range {
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, false) => match parse(last) {
            Some(0) => Range::Unsatisfiable,
            Some(n) if size > 0 => Range::Bytes(size.saturating_sub(n), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Ignore,
        },
        (false, _) => {
            let Some(a) = parse(first) else {
                return Range::Ignore;
            };
            let b = if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            };
            match b {
                None => Range::Ignore,
                Some(b) if b < a => Range::Ignore,
                Some(_) if a >= size => Range::Unsatisfiable,
                Some(b) => Range::Bytes(a, b.min(size - 1)),
            }
        }
        (true, true) => Range::Ignore,
    }
}

/// How long clients and caches may keep a file: catalogs briefly (they
/// change with every publish), image files for a year (a published path
/// never changes bytes), anything else a few minutes. `ssgen push` gives
/// objects in a bucket the same policy.
pub fn cache_control(rel: &str) -> &'static str {
    if (rel.starts_with("streams/") && rel.ends_with(".json")) || rel == ssgen_core::html::FILE_NAME
    {
        "public, max-age=60"
    } else if rel.starts_with("images/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    }
}

/// The content type of a served file, by its name (also given to objects
/// `ssgen push` puts in a bucket).
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ext = name.rsplit('.').next().unwrap_or_default();
    match ext {
        "json" => "application/json",
        "xz" => "application/x-xz",
        "gz" => "application/gzip",
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    ssgen_core::time::rfc2822(secs).replace("+0000", "GMT")
}

/// HTTPS from PEM files.
pub fn tls_from_files(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS set-up")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the certificate and key do not match")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A self-signed certificate kept in ROOT/.ssgen/tls/ (made once per set
/// of names), for tests and private networks.
pub fn tls_self_signed(root: &Path, names: &[String]) -> Result<tokio_rustls::TlsAcceptor> {
    let mut names = names.to_vec();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    names.sort();
    let dir = root.join(".ssgen").join("tls");
    let (cert, key, list) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("names"));
    let wanted = names.join("\n");
    if std::fs::read_to_string(&list).ok().as_deref() != Some(wanted.as_str()) || !cert.exists() {
        // IP addresses must be IP SANs: Go's TLS (lxc, lxd) ignores an
        // address written as a DNS name.
        let mut params = rcgen::CertificateParams::default();
        for name in &names {
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => rcgen::SanType::IpAddress(ip),
                    Err(_) => rcgen::SanType::DnsName(
                        name.clone()
                            .try_into()
                            .with_context(|| format!("{name:?} is not a valid DNS name"))?,
                    ),
                });
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ssgen self-signed");
        let signing_key = rcgen::KeyPair::generate().context("cannot make a key")?;
        let made = params
            .self_signed(&signing_key)
            .context("cannot make a self-signed certificate")?;
        crate::fsx::write_atomic(&key, signing_key.serialize_pem().as_bytes())?;
        crate::fsx::write_atomic(&cert, made.pem().as_bytes())?;
        crate::fsx::write_atomic(&list, wanted.as_bytes())?;
        eprintln!(
            "made a self-signed certificate for {} in {}",
            names.join(", "),
            cert.display()
        );
    }
    tls_from_files(&cert, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(&HeaderValue::from_str(s).expect("ascii"), 100);
        assert_eq!(r("bytes=0-9"), Range::Bytes(0, 9));
        assert_eq!(r("bytes=90-"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=-10"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=50-500"), Range::Bytes(50, 99));
        assert_eq!(r("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Range::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Range::Ignore);
        assert_eq!(r("items=0-1"), Range::Ignore);
        assert_eq!(r("bytes=9-2"), Range::Ignore);
    }

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
