//! The read side: files from the root and direct-URL import answers.

use super::headers::*;
use super::*;

impl Server {
    pub(super) async fn get(
        &self,
        req: &Request<Incoming>,
        rel: &str,
    ) -> Result<Response<Body>, HttpError> {
        if let Some(alias) = rel.strip_prefix(direct::URL_PREFIX) {
            return self.direct_import(req, alias).await;
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
        let is_catalog = rel.starts_with("streams/") && rel.ends_with(".json");
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
            .header(
                header::CACHE_CONTROL,
                if is_catalog {
                    "public, max-age=60"
                } else if rel.starts_with("images/") {
                    "public, max-age=31536000, immutable"
                } else {
                    "public, max-age=300"
                },
            );
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
}
