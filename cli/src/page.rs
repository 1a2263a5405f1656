//! The page for people (`index.html`, rendered by the core from the
//! catalog) in the CLI: `ssgen build --html` writes it beside `streams/`,
//! `ssgen push --to s3://` uploads it after the catalog, and `ssgen serve`
//! answers `/` with it, made once per published catalog.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use clap::Args;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use ssgen_core::html::{self, Options, Page};
use ssgen_core::{INDEX_JSON, Sha256};

use crate::exit::Invalid;
use crate::http::{Body, accepts_gzip, empty, full, if_none_match};

/// `--html` and `--url`, for the commands that write the page.
#[derive(Debug, Clone, Args)]
pub struct HtmlArgs {
    /// Also publish index.html beside streams/: a page listing the images
    /// for people, with the lines that add this server and launch an image.
    #[arg(long)]
    pub html: bool,

    /// The server's https:// URL for the page's `remote add` lines, e.g.
    /// https://images.example.org (default: a placeholder to replace).
    #[arg(long, value_name = "URL", requires = "html")]
    pub url: Option<String>,
}

impl HtmlArgs {
    /// The page options, or why the URL cannot be used.
    pub fn options(&self) -> Result<Options> {
        Ok(Options {
            url: self.url.as_deref().map(check_url).transpose()?,
            name: None,
        })
    }
}

/// A URL the clients can add and a shell can take, without a trailing `/`.
pub fn check_url(url: &str) -> Result<String> {
    let url = url.trim_end_matches('/');
    if html::is_remote_url(url) {
        Ok(url.to_owned())
    } else {
        Err(Invalid(format!(
            "--url {url:?}: give the https:// URL clients add the server with, e.g. https://images.example.org (LXD and Incus take only https remotes; letters, digits and .-_:/%~ only)"
        ))
        .into())
    }
}

/// Renders the page of a catalog just built.
pub fn render(index_json: &str, images_json: &str, options: &Options) -> String {
    Page::from_documents(index_json, images_json).render(options)
}

/// Size, modification time and inode of a catalog file; `None` if absent.
type FileId = Option<(u64, i64, i64, u64)>;

fn file_id(path: &Path) -> FileId {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// One rendering of the page, ready to send.
struct Rendered {
    url: Option<String>,
    plain: Bytes,
    gzip: Bytes,
    etag: String,
}

struct Cached {
    /// index.json and images.json as they were when the page was made.
    id: (FileId, FileId),
    page: Arc<Page>,
    /// The last rendering (one URL: a server is reached by one name).
    rendered: Option<Arc<Rendered>>,
}

/// The page `ssgen serve` answers at `/` and `/index.html`: made again
/// when the published catalog changes (once per rebuild), and rendered
/// with the URL the client used unless `--url` fixes it.
pub struct Served {
    url: Option<String>,
    cache: Mutex<Option<Cached>>,
}

impl Served {
    /// A page whose copy lines use `url`, or the request's host when `None`.
    pub fn new(url: Option<String>) -> Self {
        Self {
            url,
            cache: Mutex::new(None),
        }
    }

    /// Answers `GET`/`HEAD` of the page; `prefix` is the path below which
    /// it was asked for (`/<token>` of a private feed), which the remote's
    /// URL on the page keeps.
    pub async fn answer<B>(&self, root: &Path, req: &Request<B>, prefix: &str) -> Response<Body> {
        let url = self
            .url
            .clone()
            .or_else(|| request_url(req))
            .map(|u| format!("{u}{prefix}"));
        let root = root.to_path_buf();
        let rendered = match self.rendered(root, url).await {
            Ok(r) => r,
            Err(e) => {
                let mut r = Response::new(full(format!("internal error: {e:#}\n")));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return r;
            }
        };
        let gzip = accepts_gzip(req.headers());
        let etag = if gzip {
            format!("\"{}-gzip\"", rendered.etag)
        } else {
            format!("\"{}\"", rendered.etag)
        };
        let mut builder = Response::builder()
            .header(header::ETAG, &etag)
            .header(
                header::CACHE_CONTROL,
                crate::http::cache_control(html::FILE_NAME),
            )
            .header(header::VARY, "Accept-Encoding");
        for (name, value) in ssgen_core::serve::http::PAGE_HEADERS {
            builder = builder.header(name, value);
        }
        if if_none_match(req.headers(), &etag) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(empty())
                .unwrap_or_else(|_| Response::new(empty()));
        }
        let bytes = if gzip {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            rendered.gzip.clone()
        } else {
            rendered.plain.clone()
        };
        builder = builder.header(header::CONTENT_LENGTH, bytes.len());
        let body = if req.method() == Method::HEAD {
            empty()
        } else {
            full(bytes)
        };
        builder
            .body(body)
            .unwrap_or_else(|_| Response::new(empty()))
    }

    async fn rendered(&self, root: PathBuf, url: Option<String>) -> Result<Arc<Rendered>> {
        let id = (
            file_id(&root.join(INDEX_JSON)),
            file_id(&root.join(ssgen_core::IMAGES_JSON)),
        );
        let page = {
            let cache = self.lock()?;
            match &*cache {
                Some(c) if c.id == id => {
                    if let Some(r) = c.rendered.as_ref().filter(|r| r.url == url) {
                        return Ok(r.clone());
                    }
                    Some(c.page.clone())
                }
                _ => None,
            }
        };
        let fresh = page.is_none();
        let (page, rendered) = tokio::task::spawn_blocking(move || -> Result<_> {
            let page = match page {
                Some(p) => p,
                None => Arc::new(load(&root)),
            };
            let options = Options {
                url: url.clone(),
                name: None,
            };
            let plain = page.render(&options).into_bytes();
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&plain)?;
            let gzip = enc.finish()?;
            let etag = Sha256::of(&plain).to_hex()[..20].to_owned();
            let rendered = Arc::new(Rendered {
                url,
                plain: Bytes::from(plain),
                gzip: Bytes::from(gzip),
                etag,
            });
            Ok((page, rendered))
        })
        .await??;
        let mut cache = self.lock()?;
        // A newer catalog may have been cached meanwhile; keep whichever
        // matches the files now.
        if fresh || cache.as_ref().is_some_and(|c| c.id == id) {
            *cache = Some(Cached {
                id,
                page,
                rendered: Some(rendered.clone()),
            });
        }
        Ok(rendered)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<Cached>>> {
        self.cache
            .lock()
            .map_err(|_| anyhow::anyhow!("the page cache was poisoned by a panic"))
    }
}

/// The page of the catalog published under `root` (an empty page when
/// there is none yet). Products files are read only from inside the root.
fn load(root: &Path) -> Page {
    let Ok(index) = std::fs::read_to_string(root.join(INDEX_JSON)) else {
        return Page::from_catalog("{}", &|_| None);
    };
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    Page::from_catalog(&index, &|rel: &str| {
        let path = std::fs::canonicalize(root.join(rel)).ok()?;
        if !path.starts_with(&real_root) {
            return None;
        }
        std::fs::read_to_string(path).ok()
    })
}

/// `https://` and the host the client asked for (the HTTP/2 authority or
/// the Host header): the clients add remotes over HTTPS only, whatever
/// listener served the page. `None` when the host is not a plain name.
fn request_url<B>(req: &Request<B>) -> Option<String> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h: &HeaderValue| h.to_str().ok())
                .map(str::to_owned)
        })?;
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| format!("https://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            check_url("https://images.example.org/").ok().as_deref(),
            Some("https://images.example.org")
        );
        assert!(check_url("http://images.example.org").is_err());
        assert!(check_url("https://a b").is_err());
        assert!(check_url("https://x/$(reboot)").is_err());
        let req = |host: &str| {
            Request::builder()
                .uri("/")
                .header(header::HOST, host)
                .body(())
                .expect("a request")
        };
        assert_eq!(
            request_url(&req("images.example.org:8443")).as_deref(),
            Some("https://images.example.org:8443")
        );
        assert_eq!(request_url(&req("a\"b")), None);
        assert_eq!(request_url(&req("evil.example/x")), None);
    }
}
