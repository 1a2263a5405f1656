//! A catalog to read, from a server root on disk, an https:// URL or one
//! JSON file, fetched the way LXD and Incus fetch it: what `lint`, `list`,
//! `mirror` and `remove` read.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use ssgen_core::lint::{self, Report};
use ssgen_core::remote::{self, Remote};

use crate::exit::Invalid;
use crate::net;

/// Where the products files come from.
enum Fetch {
    /// Under a server root on disk; `beside` is a second place to look
    /// (the directory of an index.json given on its own).
    Dir {
        root: PathBuf,
        beside: Option<PathBuf>,
    },
    /// Under a base URL.
    Url { agent: ureq::Agent, base: String },
}

/// Where a file of a catalog is: on disk or at a URL.
pub enum Location {
    /// Under a server root on disk.
    File(PathBuf),
    /// Under a base URL.
    Url(String),
}

/// A catalog to check: the text of its index (or of a lone products file)
/// and a way to fetch products files by their path relative to the base.
pub struct Catalog {
    /// How to name the catalog to the user.
    pub origin: String,
    /// The index text, or `None` for a lone products file.
    index: Option<String>,
    /// A lone products file: its name and text.
    lone: Option<(String, String)>,
    fetch: Fetch,
    errors: RefCell<Vec<String>>,
}

impl Catalog {
    /// Opens a server root (a directory with streams/v1/index.json), an
    /// https:// URL of a remote, or one JSON file: an index.json (its
    /// products files are read relative to the root above streams/v1/) or a
    /// products file such as images.json.
    pub fn open(source: &str) -> anyhow::Result<Catalog> {
        if source.starts_with("https://") || source.starts_with("http://") {
            return Self::open_url(source);
        }
        let path = Path::new(source);
        let meta = std::fs::metadata(path).map_err(|e| {
            Invalid(format!(
                "{source}: {e}; give a server root, an https:// URL or a JSON file"
            ))
        })?;
        if meta.is_dir() {
            let index_path = path.join(remote::INDEX_PATH);
            let index = read_text(&index_path).map_err(|e| {
                Invalid(format!(
                    "{}: {e}; is {source} a server root? (run `ssgen build` to write the catalog)",
                    index_path.display()
                ))
            })?;
            return Ok(Catalog {
                origin: source.to_owned(),
                index: Some(index),
                lone: None,
                fetch: Fetch::Dir {
                    root: path.to_owned(),
                    beside: None,
                },
                errors: RefCell::default(),
            });
        }
        let text = read_text(path).with_context(|| format!("reading {source}"))?;
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        let kind: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let is_products = kind
            .as_ref()
            .is_some_and(|v| v.get("products").is_some() && v.get("index").is_none());
        if is_products {
            let name = path
                .file_name()
                .map_or_else(|| source.to_owned(), |n| n.to_string_lossy().into_owned());
            return Ok(Catalog {
                origin: source.to_owned(),
                index: None,
                lone: Some((name, text)),
                fetch: Fetch::Dir {
                    root: dir,
                    beside: None,
                },
                errors: RefCell::default(),
            });
        }
        // An index: its products paths are relative to the server root,
        // which is two levels up when it sits in streams/v1/.
        let root = if dir.ends_with(ssgen_core::STREAMS_DIR) {
            dir.parent()
                .and_then(Path::parent)
                .map(Path::to_owned)
                .unwrap_or_default()
        } else {
            dir.clone()
        };
        Ok(Catalog {
            origin: source.to_owned(),
            index: Some(text),
            lone: None,
            fetch: Fetch::Dir {
                root,
                beside: Some(dir),
            },
            errors: RefCell::default(),
        })
    }

    fn open_url(source: &str) -> anyhow::Result<Catalog> {
        let trimmed = source.trim_end_matches('/');
        if trimmed.starts_with("http://") {
            eprintln!(
                "note: LXD and Incus accept only https:// simplestreams remotes; checking {trimmed} anyway"
            );
        }
        let agent = agent()?;
        // The URL of a products file (not the index): check it on its own.
        if trimmed.ends_with(".json") && !trimmed.ends_with(remote::INDEX_PATH) {
            let text = net::fetch_catalog(&agent, trimmed)?;
            let name = trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned();
            return Ok(Catalog {
                origin: trimmed.to_owned(),
                index: None,
                lone: Some((name, text)),
                fetch: Fetch::Url {
                    agent,
                    base: trimmed.to_owned(),
                },
                errors: RefCell::default(),
            });
        }
        let base = trimmed
            .strip_suffix(remote::INDEX_PATH)
            .map_or(trimmed, |b| b.trim_end_matches('/'))
            .to_owned();
        let url = format!("{base}/{}", remote::INDEX_PATH);
        let index = net::fetch_catalog(&agent, &url)?;
        Ok(Catalog {
            origin: base.clone(),
            index: Some(index),
            lone: None,
            fetch: Fetch::Url { agent, base },
            errors: RefCell::default(),
        })
    }

    /// A products file's text by its cleaned path, as the clients fetch it.
    fn products(&self, path: &str) -> Option<String> {
        let result = match &self.fetch {
            Fetch::Dir { root, beside } => {
                let first = root.join(path);
                read_text(&first)
                    .or_else(|e| {
                        // An index.json given outside streams/v1/: also look
                        // beside it for the same file name.
                        let name = path.rsplit('/').next().unwrap_or(path);
                        match beside {
                            Some(dir) if dir.join(name) != first => read_text(&dir.join(name)),
                            _ => Err(e),
                        }
                    })
                    .map_err(|e| format!("{}: {e}", first.display()))
            }
            Fetch::Url { agent, base } => {
                let url = format!("{base}/{path}");
                net::fetch_catalog(agent, &url).map_err(|e| format!("{e:#}"))
            }
        };
        match result {
            Ok(text) => Some(text),
            Err(e) => {
                self.errors.borrow_mut().push(e);
                None
            }
        }
    }

    /// The index text the core reads (a synthetic one for a lone file).
    fn index_text(&self) -> String {
        match (&self.index, &self.lone) {
            (Some(index), _) => index.clone(),
            (None, Some((name, text))) => remote::index_for_products(name, text),
            (None, None) => String::new(),
        }
    }

    /// The products fetcher the core calls.
    fn fetcher(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |path: &str| match &self.lone {
            Some((name, text)) if remote::clean_path(name) == path => Some(text.clone()),
            Some(_) => None,
            None => self.products(path),
        }
    }

    /// Runs the lint.
    pub fn lint(&self) -> Report {
        let fetch = self.fetcher();
        match &self.lone {
            Some((name, text)) => lint::lint_products(name, text),
            None => lint::lint(&self.index_text(), &fetch),
        }
    }

    /// Decodes the remote leniently (see [`Remote::parse`]).
    pub fn remote(&self) -> Remote {
        let fetch = self.fetcher();
        Remote::parse(&self.index_text(), &fetch)
    }

    /// Where the file an item's `path` names is, joined to the base as the
    /// clients join it (docs/protocol.md#paths).
    pub fn locate(&self, path: &str) -> Location {
        let clean = remote::clean_path(path);
        match &self.fetch {
            Fetch::Dir { root, .. } => Location::File(root.join(clean)),
            Fetch::Url { base, .. } => Location::Url(format!("{base}/{clean}")),
        }
    }

    /// Prints on stderr why products files could not be fetched.
    pub fn report_fetch_errors(&self) {
        for e in self.errors.borrow().iter() {
            eprintln!("note: could not fetch {e}");
        }
    }
}

/// Reads a file as text; invalid UTF-8 is replaced, as Go's decoder does.
fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// An HTTP agent like the clients' (see [`net::agent_config`]).
fn agent() -> anyhow::Result<ureq::Agent> {
    Ok(net::agent_config()?
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into())
}

/// This machine's architecture, as the clients name it.
pub fn host_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    };
    ssgen_core::arch::normalise(arch).unwrap_or(arch).to_owned()
}
