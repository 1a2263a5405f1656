//! The catalog, served from memory: `index.json` and `images.json` are read
//! once per change (whoever wrote them: this server's rebuilds, `ssgen
//! build`, `prune`), kept with a gzip copy and an ETag made from their
//! content, and swapped in as one [`Snapshot`], so a response is always one
//! whole document and the documents of a snapshot belong together.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use sha2::Digest as _;
use ssgen_core::direct;

use super::files;

/// The documents that live in memory, by request path. What `ssgen
/// build` writes, read from disk.
const FILES: [&str; 2] = [ssgen_core::INDEX_JSON, ssgen_core::IMAGES_JSON];

/// One in-memory document with everything its answers need.
pub struct Doc {
    pub body: Bytes,
    /// The body gzip-compressed (once, when loaded).
    pub gzip: Bytes,
    /// A strong ETag of the body; the gzip copy's adds `-gzip`.
    pub etag: String,
    pub gzip_etag: String,
    /// When the file was written (Unix seconds), for `Last-Modified`.
    pub modified: Option<i64>,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

impl Doc {
    fn new(
        rel: &str,
        body: Vec<u8>,
        modified: Option<std::time::SystemTime>,
    ) -> std::io::Result<Self> {
        let hex = ssgen_core::Sha256(sha2::Sha256::digest(&body).into()).to_hex();
        let tag = &hex[..32];
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::default(),
        );
        enc.write_all(&body)?;
        Ok(Self {
            gzip: enc.finish()?.into(),
            body: body.into(),
            etag: format!("\"{tag}\""),
            gzip_etag: format!("\"{tag}-gzip\""),
            modified: modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok()),
            content_type: ssgen_core::serve::http::content_type(rel),
            cache_control: ssgen_core::serve::http::cache_control(rel),
        })
    }
}

/// Device, inode, size, modification and change times of a file: a file
/// replaced by a rename, or written in place, has another.
type FileId = (u64, u64, u64, i64, i64, i64, i64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    (
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

/// A set of documents loaded together.
pub struct Snapshot {
    /// Counts loads: 0 before the first.
    pub generation: u64,
    /// Each file read, and what it was when read (`None`: absent).
    sources: Vec<(&'static str, Option<FileId>)>,
    docs: BTreeMap<&'static str, Doc>,
    aliases: OnceLock<Result<Arc<direct::AliasMap>, String>>,
}

impl Snapshot {
    /// Reads the catalog files of `root` (canonical), each opened once
    /// (links resolved and confined as for any file served) and identified
    /// by the open file. A file absent, or confined away, is left out.
    ///
    /// A document made from the catalog (an HTML page for `/`) belongs
    /// here too: render it from the `images` body and insert it under its
    /// request path; it then gets gzip, ETag and the atomic swap with the
    /// rest.
    fn load(root: &Path, generation: u64) -> std::io::Result<Self> {
        let mut sources = Vec::new();
        let mut docs = BTreeMap::new();
        for rel in FILES {
            let Some((body, meta)) = read_whole(root, rel)? else {
                sources.push((rel, None));
                continue;
            };
            sources.push((rel, Some(file_id(&meta))));
            docs.insert(rel, Doc::new(rel, body, meta.modified().ok())?);
        }
        Ok(Self {
            generation,
            sources,
            docs,
            aliases: OnceLock::new(),
        })
    }

    /// Whether every file is still what was read. One `stat` per file.
    fn is_current(&self, root: &Path) -> bool {
        self.generation > 0
            && self.sources.iter().all(|(rel, id)| {
                let now = std::fs::metadata(root.join(rel)).ok();
                now.as_ref().map(file_id) == *id
            })
    }

    /// Whether a request path is one of the in-memory documents (whether
    /// or not it is published now); a document added to [`Snapshot::load`]
    /// adds its path here.
    pub fn holds(rel: &str) -> bool {
        FILES.contains(&rel)
    }

    /// The document for a request path (relative to the root).
    pub fn doc(&self, rel: &str) -> Option<&Doc> {
        self.docs.get(rel)
    }

    /// The ETag of a document, for `/healthz`.
    pub fn etag(&self, rel: &str) -> Option<&str> {
        self.docs.get(rel).map(|d| d.etag.as_str())
    }

    /// The direct-URL import map of this snapshot's images.json, made on
    /// first use.
    pub fn aliases(&self) -> Option<Result<Arc<direct::AliasMap>, String>> {
        let images = self.docs.get(ssgen_core::IMAGES_JSON)?;
        Some(
            self.aliases
                .get_or_init(|| {
                    let text = std::str::from_utf8(&images.body)
                        .map_err(|_| format!("{} is not UTF-8", ssgen_core::IMAGES_JSON))?;
                    direct::alias_map(text)
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                })
                .clone(),
        )
    }
}

/// The whole content of one file and the `fstat` it was read under. A file
/// that changed while being read (written in place rather than renamed
/// over) is read again.
fn read_whole(root: &Path, rel: &str) -> std::io::Result<Option<(Vec<u8>, std::fs::Metadata)>> {
    for _ in 0..3 {
        let Some(mut opened) = files::open_in_root(root, rel)? else {
            return Ok(None);
        };
        let mut body = Vec::with_capacity(usize::try_from(opened.meta.len()).unwrap_or(0));
        opened.file.read_to_end(&mut body)?;
        let after = opened.file.metadata()?;
        if file_id(&after) == file_id(&opened.meta) && body.len() as u64 == after.len() {
            return Ok(Some((body, after)));
        }
    }
    Err(std::io::Error::other(format!(
        "{rel} changed on every read: write it to a temporary file and rename it into place"
    )))
}

/// The current snapshot, reloaded when a file changed.
pub struct Catalog {
    root: PathBuf,
    current: RwLock<Arc<Snapshot>>,
    /// One load at a time; readers that find the snapshot stale wait for it.
    loading: tokio::sync::Mutex<()>,
}

impl Catalog {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            current: RwLock::new(Arc::new(Snapshot {
                generation: 0,
                sources: Vec::new(),
                docs: BTreeMap::new(),
                aliases: OnceLock::new(),
            })),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    fn peek(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The snapshot matching the files on disk now. A load that fails (a
    /// read error) is reported, and the previous snapshot goes on serving.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let seen = self.peek();
        if seen.is_current(&self.root) {
            return seen;
        }
        let _one = self.loading.lock().await;
        let seen = self.peek();
        if seen.is_current(&self.root) {
            return seen;
        }
        let root = self.root.clone();
        let generation = seen.generation + 1;
        match tokio::task::spawn_blocking(move || Snapshot::load(&root, generation)).await {
            Ok(Ok(loaded)) => {
                let loaded = Arc::new(loaded);
                match self.current.write() {
                    Ok(mut guard) => *guard = loaded.clone(),
                    Err(poisoned) => *poisoned.into_inner() = loaded.clone(),
                }
                loaded
            }
            Ok(Err(e)) => {
                eprintln!(
                    "warning: cannot read the catalog in {}: {e}; serving the one read before",
                    self.root.display()
                );
                seen
            }
            Err(e) => {
                eprintln!("warning: loading the catalog failed: {e}");
                seen
            }
        }
    }
}
