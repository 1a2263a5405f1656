//! The read side: the catalog from memory, files from the root, direct-URL
//! import answers and `/healthz`.

use std::os::unix::fs::MetadataExt as _;

use hyper::http::response::Builder;

use super::catalog::{Doc, Snapshot};
use super::files::{self, Opened};
use super::headers::*;
use super::*;

/// The health check path: 200 while the server runs, with the catalog it
/// serves.
pub(super) const HEALTHZ: &str = "healthz";

impl Server {
    pub(super) async fn get(
        &self,
        req: &Request<RequestBody>,
        rel: &str,
    ) -> Result<Response<Body>, HttpError> {
        if rel == HEALTHZ {
            return self.healthz(req).await;
        }
        if let Some(alias) = rel.strip_prefix(direct::URL_PREFIX) {
            return self.direct_import(req, alias).await;
        }
        if Snapshot::holds(rel) {
            if let Some(doc) = self.catalog.snapshot().await.doc(rel) {
                return serve_document(req, doc);
            }
        }
        if rel.is_empty() || rel == ssgen_core::html::FILE_NAME {
            // The root's own index.html (one `ssgen build --html` wrote, or
            // a site of the operator's) wins; else the page made from the
            // catalog being served.
            return match self.serve_file(req, rel).await {
                Err(e) if e.status() == StatusCode::NOT_FOUND => {
                    Ok(self.page.answer(&self.root, req).await)
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
            return Err(HttpError::new(StatusCode::NOT_FOUND, "not found"));
        };
        let size = meta.len();
        let etag = format!(
            "\"{:x}-{:x}-{:x}\"",
            size,
            meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
            meta.ino()
        );
        let cache_control = cache_control(rel);
        let modified = meta.modified().ok().map(http_date);
        let builder = representation(&etag, cache_control, modified.as_deref());
        if if_none_match(req.headers(), &etag) {
            return not_modified(builder);
        }
        let (builder, start, len) = match ranged(req, builder, content_type(&real), size) {
            Ok(part) => part,
            Err(refused) => return Ok(*refused),
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

    /// `GET /healthz`: the server answers, and which catalog it serves.
    async fn healthz(&self, req: &Request<RequestBody>) -> Result<Response<Body>, HttpError> {
        let snapshot = self.catalog.snapshot().await;
        let body = serde_json::json!({
            "status": "ok",
            "catalog": {
                "generation": snapshot.generation,
                "index": snapshot.etag(ssgen_core::INDEX_JSON),
                "images": snapshot.etag(ssgen_core::IMAGES_JSON),
            },
        });
        let body = format!("{body}\n");
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store")
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
    let builder = representation(etag, doc.cache_control, doc.last_modified.as_deref())
        .header(header::VARY, "Accept-Encoding");
    if if_none_match(req.headers(), etag) {
        return not_modified(builder);
    }
    let builder = if gzip {
        builder.header(header::CONTENT_ENCODING, "gzip")
    } else {
        builder
    };
    let (builder, start, len) = match ranged(req, builder, doc.content_type, body.len() as u64) {
        Ok(part) => part,
        Err(refused) => return Ok(*refused),
    };
    if req.method() == Method::HEAD {
        return builder.body(empty()).map_err(internal);
    }
    let range = usize::try_from(start).map_err(internal)?
        ..usize::try_from(start + len).map_err(internal)?;
    builder.body(full(body.slice(range))).map_err(internal)
}

/// The headers every answer about a file or document carries.
fn representation(etag: &str, cache_control: &str, modified: Option<&str>) -> Builder {
    let mut builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::CACHE_CONTROL, cache_control);
    if let Some(modified) = modified {
        builder = builder.header(header::LAST_MODIFIED, modified);
    }
    builder
}

fn not_modified(builder: Builder) -> Result<Response<Body>, HttpError> {
    builder
        .status(StatusCode::NOT_MODIFIED)
        .body(empty())
        .map_err(internal)
}

/// The status, Content-Range, Content-Type and Content-Length for this
/// request's Range of a body of `size` bytes, and which bytes to send; or
/// the 416 answer.
fn ranged(
    req: &Request<RequestBody>,
    builder: Builder,
    content_type: &str,
    size: u64,
) -> Result<(Builder, u64, u64), Box<Response<Body>>> {
    let range = req.headers().get(header::RANGE);
    let (builder, start, len) = match range.map(|v| (v, parse_range(v, size))) {
        None | Some((_, Range::Ignore)) => (builder.status(StatusCode::OK), 0, size),
        Some((value, Range::Unsatisfiable)) => {
            let message = format!("{}\n", unsatisfiable(value, size));
            return Err(Box::new(
                builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .header(header::CONTENT_LENGTH, message.len())
                    .body(full(message))
                    .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
            ));
        }
        Some((_, Range::Bytes(first, last))) => (
            builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            ),
            first,
            last - first + 1,
        ),
    };
    let builder = builder
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len);
    Ok((builder, start, len))
}
