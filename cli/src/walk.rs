//! Lists `ROOT/images` into the core's listing: paths, sizes, the first
//! bytes of each file (from the cache when it is still valid), and the
//! contents of the side files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ssgen_core::vocab::IMAGES;
use ssgen_core::{Entry, HEAD_LEN, needs_contents};

use crate::cache::{Cache, Stamp};
use crate::confine::{self, Leftover};
use crate::exit::Invalid;

/// Side files larger than this are refused: they are small JSON objects.
const SIDE_FILE_LIMIT: u64 = 1 << 20;

/// A listed file: the core's entry and where it is on disk.
#[derive(Debug)]
pub struct Listed {
    pub entry: Entry,
    pub stamp: Stamp,
}

/// The listing of a root, by relative path.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: BTreeMap<String, Listed>,
    /// Hidden files left by ssgen's writers (temporary and staging files)
    /// in the directories walked, by relative path.
    pub leftovers: Vec<(String, Leftover)>,
}

impl Listing {
    pub fn entries(&self) -> Vec<Entry> {
        self.files.values().map(|l| l.entry.clone()).collect()
    }
}

/// Walks `root/images`. Hidden directories (staging areas) are skipped;
/// a symlink is followed only when it stays inside the root.
pub fn list(root: &Path, cache: &Cache) -> Result<Listing> {
    let images = root.join(IMAGES);
    let mut listing = Listing::default();
    if !images.exists() {
        return Ok(listing);
    }
    let canon_root = fs::canonicalize(root)
        .with_context(|| format!("cannot resolve the root {}", root.display()))?;
    let canon_images = fs::canonicalize(&images)
        .with_context(|| format!("cannot resolve {}", images.display()))?;
    let mut walk = Walk {
        canon_root,
        cache,
        out: &mut listing,
        stack: vec![canon_images],
    };
    walk.dir(&images, IMAGES)?;
    Ok(listing)
}

/// How deep below `images/` the walk goes. The layout needs six levels
/// (`<os>/<release>/<arch>/<variant>/<version>/<file>`); a tree much
/// deeper is a mistake, and each level costs a frame of the recursion.
const MAX_DEPTH: usize = 64;

struct Walk<'a> {
    canon_root: PathBuf,
    cache: &'a Cache,
    out: &'a mut Listing,
    /// The resolved directories being walked, `images/` first: a link to
    /// one of them (or to a directory above them) is a loop.
    stack: Vec<PathBuf>,
}

/// Whether `path`, relative to the root, passes through a hidden name.
fn has_hidden_component(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str().as_bytes().first() == Some(&b'.'))
}

impl Walk<'_> {
    /// Where the symbolic link `path` leads, refused when it leaves the
    /// root, enters a hidden directory (a staging area or `.ssgen/`) or
    /// loops back to a directory being walked.
    fn follow(&self, path: &Path) -> Result<(PathBuf, fs::Metadata)> {
        let link = fs::read_link(path).unwrap_or_default();
        let target = fs::canonicalize(path).map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                anyhow::Error::from(Invalid(format!(
                    "{}: symbolic link loop (-> {}); remove or fix it",
                    path.display(),
                    link.display()
                )))
            } else {
                anyhow::Error::from(e).context(format!(
                    "{}: broken symbolic link (-> {}); remove or fix it",
                    path.display(),
                    link.display()
                ))
            }
        })?;
        let Ok(inside) = target.strip_prefix(&self.canon_root) else {
            bail!(Invalid(format!(
                "{}: symbolic link points outside the root (to {}); copy the file into the tree instead",
                path.display(),
                target.display()
            )));
        };
        if has_hidden_component(inside) {
            bail!(Invalid(format!(
                "{}: symbolic link points into a hidden directory (to {}), which a build never reads; move what it points to out of the hidden directory, or copy it into the tree",
                path.display(),
                target.display()
            )));
        }
        let meta =
            fs::metadata(&target).with_context(|| format!("cannot stat {}", path.display()))?;
        let here = self.stack.last().map(PathBuf::as_path);
        if meta.is_dir()
            && (self.stack.contains(&target) || here.is_some_and(|h| h.starts_with(&target)))
        {
            bail!(Invalid(format!(
                "{}: symbolic link loop (-> {}, a directory that holds the link); remove it",
                path.display(),
                link.display()
            )));
        }
        Ok((target, meta))
    }

    fn dir(&mut self, dir: &Path, rel: &str) -> Result<()> {
        if self.stack.len() > MAX_DEPTH {
            bail!(Invalid(format!(
                "{}: more than {MAX_DEPTH} directories deep under {IMAGES}/; the layout needs six (<os>/<release>/<arch>/<variant>/<version>/<file>): move or remove the deeper directories",
                dir.display()
            )));
        }
        self.walk_dir(dir, rel)
    }

    fn walk_dir(&mut self, dir: &Path, rel: &str) -> Result<()> {
        let cache = self.cache;
        let read = fs::read_dir(dir).with_context(|| {
            format!(
                "cannot read directory {}: check its permissions (ssgen needs to list it)",
                dir.display()
            )
        })?;
        let mut children: Vec<(String, PathBuf)> = Vec::new();
        for child in read {
            let child =
                child.with_context(|| format!("cannot read directory {}", dir.display()))?;
            let path = child.path();
            // Hidden entries are never read, whatever their name is made of.
            if child.file_name().as_bytes().first() == Some(&b'.')
                && child.file_name().to_str().is_none()
            {
                continue;
            }
            let Some(name) = child.file_name().to_str().map(str::to_owned) else {
                return Err(Invalid(format!(
                    "{}: file name is not valid UTF-8; rename it (image paths must be plain ASCII)",
                    path.display()
                ))
                .into());
            };
            children.push((name, path));
        }
        children.sort();
        for (name, path) in children {
            let rel_path = format!("{rel}/{name}");
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            // Hidden directories are uploads in progress: never read them.
            // An import's staging directory is noted, for a writer under
            // the lock to clean up when its import was killed.
            if name.starts_with('.') && meta.is_dir() {
                if confine::staging_pid(&name).is_some() {
                    self.out.leftovers.push((rel_path, Leftover::Staging));
                }
                continue;
            }
            let (canon, meta) = if meta.file_type().is_symlink() {
                let (target, meta) = self.follow(&path)?;
                (Some(target), meta)
            } else {
                (None, meta)
            };
            if meta.is_dir() {
                if !name.starts_with('.') {
                    let canon = canon.unwrap_or_else(|| {
                        self.stack
                            .last()
                            .map_or_else(|| path.clone(), |d| d.join(&name))
                    });
                    self.stack.push(canon);
                    let walked = self.dir(&path, &rel_path);
                    self.stack.pop();
                    walked?;
                }
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let side = needs_contents(&rel_path);
            if name.starts_with('.') && !side {
                if let Some(kind) = confine::is_leftover(&name) {
                    self.out.leftovers.push((rel_path, kind));
                }
                continue;
            }
            let stamp = Stamp::of(&meta);
            let mut entry = Entry::file(rel_path.clone(), meta.len());
            if side {
                if meta.len() > SIDE_FILE_LIMIT {
                    bail!(Invalid(format!(
                        "{}: {} bytes is too large for a side file; it should be a small JSON object",
                        path.display(),
                        meta.len()
                    )));
                }
                entry.contents = Some(
                    fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
                );
            } else if let Some(head) = cache.head(&rel_path, &stamp) {
                entry.head = Some(head);
            } else {
                entry.head = Some(read_head(&path)?);
            }
            self.out.files.insert(rel_path, Listed { entry, stamp });
        }
        Ok(())
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.by_ref()
        .take(HEAD_LEN as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(head)
}
