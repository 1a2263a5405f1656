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
    walk_dir(&images, IMAGES, &canon_root, cache, &mut listing)?;
    Ok(listing)
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    canon_root: &Path,
    cache: &Cache,
    out: &mut Listing,
) -> Result<()> {
    let read = fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read directory {}: check its permissions (ssgen needs to list it)",
            dir.display()
        )
    })?;
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for child in read {
        let child = child.with_context(|| format!("cannot read directory {}", dir.display()))?;
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
        let meta = if meta.file_type().is_symlink() {
            let target = fs::canonicalize(&path).with_context(|| {
                format!("{}: broken symbolic link; remove or fix it", path.display())
            })?;
            if !target.starts_with(canon_root) {
                return Err(Invalid(format!(
                    "{}: symbolic link points outside the root (to {}); copy the file into the tree instead",
                    path.display(),
                    target.display()
                ))
                .into());
            }
            fs::metadata(&path).with_context(|| format!("cannot stat {}", path.display()))?
        } else {
            meta
        };
        if meta.is_dir() {
            // Hidden directories are uploads in progress: never read them.
            if !name.starts_with('.') {
                walk_dir(&path, &rel_path, canon_root, cache, out)?;
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let side = needs_contents(&rel_path);
        if name.starts_with('.') && !side {
            if let Some(kind) = confine::is_leftover(&name) {
                out.leftovers.push((rel_path, kind));
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
            entry.contents =
                Some(fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?);
        } else if let Some(head) = cache.head(&rel_path, &stamp) {
            entry.head = Some(head);
        } else {
            entry.head = Some(read_head(&path)?);
        }
        out.files.insert(rel_path, Listed { entry, stamp });
    }
    Ok(())
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
