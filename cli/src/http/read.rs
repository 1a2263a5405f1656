//! The read side: the catalog from memory, files from the root, the page
//! for people, direct-URL import answers and `/healthz`. The HTTP rules
//! (cache policy, one Range, the conditional headers) are the core's.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt as _;

use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::http::response::Builder;
use ssgen_core::direct;
use ssgen_core::serve::http::{self as rules, Conditions, Precondition, RangeAsk};
use ssgen_core::serve::{self as contract};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::catalog::{Doc, Snapshot};
use super::files::{self, Opened};
use super::headers::{accepts_gzip, joined};
use super::*;

impl Server {
    /// A read of `rel` (below the token of a private feed: `prefix` is
    /// `/<token>`, else empty).
    pub(super) async fn get(
        &self,
        req: &Request<RequestBody>,
        rel: &str,
        prefix: &str,
    ) -> Result<Response<Body>, HttpError> {
        if rel == contract::HEALTHZ {
            return self.healthz(req, true).await;
        }
        if let Some(alias) = rel.strip_prefix(direct::URL_PREFIX) {
            return self.direct_import(req, alias, prefix).await;
        }
        if Snapshot::holds(rel) {
            if let Some(doc) = self.catalog.snapshot().await.doc(rel) {
                return serve_document(req, doc);
            }
        }
        if contract::is_page(rel) {
            // The root's own index.html (one `ssgen build --html` wrote, or
            // a site of the operator's) wins; else the page made from the
            // catalog being served.
            return match self.serve_file(req, rel).await {
                Err(e) if e.status() == StatusCode::NOT_FOUND => {
                    Ok(self.page.answer(&self.root, req, prefix).await)
                }
                other => other,
            };
        }
        self.serve_file(req, rel).await
    }

    /// A file of the root, streamed from the one open file that every
    /// header is taken from.
    async fn serve_file(
        &self,
        req: &Request<RequestBody>,
        rel: &str,
    ) -> Result<Response<Body>, HttpError> {
        let (root, wanted) = (self.root.clone(), rel.to_owned());
        let opened = tokio::task::spawn_blocking(move || files::open_in_root(&root, &wanted))
            .await
            .map_err(internal)?
            .map_err(|e| {
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot open {rel}: {e}; try again later"),
                )
            })?;
        let Some(Opened { file, meta, real }) = opened else {
            return Err(not_found());
        };
        let size = meta.len();
        let etag = format!(
            "\"{:x}-{:x}-{:x}\"",
            size,
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
            meta.ino()
        );
        let modified = meta.mtime();
        let builder = representation(&etag, cache_control(rel), Some(modified));
        let (builder, start, len) = match judged(
            req,
            builder,
            &etag,
            Some(modified),
            content_type(&real),
            size,
        ) {
            Ok(part) => part,
            Err(answer) => return Ok(*answer),
        };
        if req.method() == Method::HEAD {
            return builder.body(empty()).map_err(internal);
        }
        let mut file = tokio::fs::File::from_std(file);
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await.map_err(internal)?;
        }
        // Each read is a trip to the blocking pool: large reads keep large
        // downloads near the speed of the link, at 512 KiB per download.
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 512 << 10)
            .map_ok(Frame::data);
        builder
            .body(StreamBody::new(stream).boxed())
            .map_err(internal)
    }

    /// `GET /healthz`: the server answers, and (`full`) which catalog it
    /// serves. A private feed says the latter only below a token.
    pub(super) async fn healthz(
        &self,
        req: &Request<RequestBody>,
        full_answer: bool,
    ) -> Result<Response<Body>, HttpError> {
        let body = if full_answer {
            let snapshot = self.catalog.snapshot().await;
            serde_json::json!({
                "status": "ok",
                "catalog": {
                    "generation": snapshot.generation,
                    "index": snapshot.etag(ssgen_core::INDEX_JSON),
                    "images": snapshot.etag(ssgen_core::IMAGES_JSON),
                },
            })
        } else {
            serde_json::json!({"status": "ok"})
        };
        let body = format!("{body}\n");
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, rules::NO_STORE)
            .header(header::CONTENT_LENGTH, body.len())
            .body(if req.method() == Method::HEAD {
                empty()
            } else {
                full(body)
            })
            .map_err(internal)
    }

    /// `GET`/`HEAD /aliases/<alias>[/<arch>]`: the headers with which
    /// `incus image import URL` and `lxc image import URL` find the unified
    /// tarball of an alias for the daemon's architectures.
    async fn direct_import(
        &self,
        req: &Request<RequestBody>,
        alias: &str,
        prefix: &str,
    ) -> Result<Response<Body>, HttpError> {
        if !direct::is_alias(alias) {
            return Err(bad(format!("{alias:?} is not an alias")));
        }
        // HTTP/2 sends the host as the URI's authority, HTTP/1.1 as Host.
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
            .filter(|h| !h.is_empty() && !h.contains(['/', '\\', '@']))
            .ok_or_else(|| bad("a Host header is needed for the image URL"))?;
        let map = match self.catalog.snapshot().await.aliases() {
            None => {
                return Err(HttpError::new(
                    StatusCode::NOT_FOUND,
                    "no catalog is published yet",
                ));
            }
            Some(map) => map.map_err(internal)?,
        };
        let [incus, lxd] = contract::ARCH_HEADERS.map(|h| joined(req.headers(), h));
        let arches = contract::daemon_arches(incus.as_deref(), lxd.as_deref());
        let target = direct::resolve(&map, alias, arches).map_err(|miss| {
            let status = match miss {
                direct::Miss::Ambiguous(_) => StatusCode::BAD_REQUEST,
                direct::Miss::Unknown | direct::Miss::NoArch(_) => StatusCode::NOT_FOUND,
            };
            HttpError::new(status, miss.explain(alias, arches))
        })?;
        // Below the token of a private feed, the image is there too.
        let headers = target.headers(&format!("{}://{host}{prefix}", self.scheme));
        let body = serde_json::json!({"alias": alias, "hash": target.hash, "url": headers[1].1});
        let mut builder = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::CACHE_CONTROL,
                cache_control(&format!("{}{alias}", direct::URL_PREFIX)),
            )
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
}

/// A catalog document: the gzip copy for clients that accept it (whole
/// bodies only; a Range is served from the plain one).
fn serve_document(req: &Request<RequestBody>, doc: &Doc) -> Result<Response<Body>, HttpError> {
    let gzip = accepts_gzip(req.headers()) && !req.headers().contains_key(header::RANGE);
    let (body, etag) = if gzip {
        (&doc.gzip, &doc.gzip_etag)
    } else {
        (&doc.body, &doc.etag)
    };
    let builder = representation(etag, doc.cache_control, doc.modified)
        .header(header::VARY, "Accept-Encoding");
    let builder = if gzip {
        builder.header(header::CONTENT_ENCODING, "gzip")
    } else {
        builder
    };
    let size = body.len() as u64;
    let (builder, start, len) =
        match judged(req, builder, etag, doc.modified, doc.content_type, size) {
            Ok(part) => part,
            Err(answer) => return Ok(*answer),
        };
    if req.method() == Method::HEAD {
        return builder.body(empty()).map_err(internal);
    }
    let range = usize::try_from(start).map_err(internal)?
        ..usize::try_from(start + len).map_err(internal)?;
    builder.body(full(body.slice(range))).map_err(internal)
}

/// The headers every answer about a file or document carries.
fn representation(etag: &str, cache_control: &str, modified: Option<i64>) -> Builder {
    let mut builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::CACHE_CONTROL, cache_control);
    if let Some(modified) = modified {
        builder = builder.header(header::LAST_MODIFIED, rules::http_date(modified));
    }
    builder
}

/// The request's conditions and Range judged for a representation of
/// `size` bytes: the status, Content-Range, Content-Type and
/// Content-Length, and which bytes to send; or the whole answer (304,
/// 412, 416).
fn judged(
    req: &Request<RequestBody>,
    builder: Builder,
    etag: &str,
    modified: Option<i64>,
    content_type: &str,
    size: u64,
) -> Result<(Builder, u64, u64), Box<Response<Body>>> {
    let answer = |b: Builder, status: StatusCode, body: Body| {
        Box::new(
            b.status(status)
                .body(body)
                .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
        )
    };
    let conditions = Conditions::read(|name| joined(req.headers(), name));
    let honour_range = match rules::evaluate(&conditions, etag, modified) {
        Precondition::NotModified => {
            return Err(answer(builder, StatusCode::NOT_MODIFIED, empty()));
        }
        Precondition::Failed => {
            let message = "precondition failed: the file is not the one the request names\n";
            let builder = builder
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(header::CONTENT_LENGTH, message.len());
            return Err(answer(
                builder,
                StatusCode::PRECONDITION_FAILED,
                full(message),
            ));
        }
        Precondition::Serve { honour_range } => honour_range,
    };
    let value = joined(req.headers(), "range").filter(|_| honour_range);
    let (builder, start, len) = match rules::parse_range(value.as_deref(), size) {
        RangeAsk::Whole => (builder.status(StatusCode::OK), 0, size),
        RangeAsk::Unsatisfiable => {
            let message = format!(
                "{}\n",
                rules::unsatisfiable_message(value.as_deref().unwrap_or_default().trim(), size)
            );
            let builder = builder
                .header(header::CONTENT_RANGE, rules::unsatisfied_range(size))
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(header::CONTENT_LENGTH, message.len());
            return Err(answer(
                builder,
                StatusCode::RANGE_NOT_SATISFIABLE,
                full(message),
            ));
        }
        RangeAsk::Part(r) => (
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, r.content_range(size)),
            r.start,
            r.len(),
        ),
    };
    let builder = builder
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len);
    Ok((builder, start, len))
}
