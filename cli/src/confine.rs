//! Path confinement: every write and every deletion under a server root
//! goes through [`Root::place`], so that nothing a hostile name, marker or
//! symbolic link says can make ssgen touch a file outside the root, or a
//! hidden file (the cache, the lock, a staging area) it did not mean.
//!
//! A place is given as a `/`-separated path relative to the root, of plain
//! names only (no empty, `.` or `..` component, no NUL, at most 255 bytes
//! each). Its directories are resolved one component at a time from an open
//! descriptor of the root, never following a link blindly: a link is read
//! and its target resolved the same way, and must stay inside the root and
//! add no hidden component to the path. The final name is never followed:
//! the place is acted on through the descriptor of its resolved directory
//! (`unlinkat`, `renameat2`, `openat` with `O_EXCL`), so a directory that
//! is swapped for a link after the check changes nothing.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::exit::Invalid;

/// The longest name a Linux filesystem takes.
pub const NAME_MAX: usize = 255;

/// Links followed while resolving one place (as the kernel's limit).
const MAX_LINKS: usize = 40;

/// Directory levels [`Place::remove`] descends (a version directory has
/// none below it; a product a few).
const MAX_DEPTH: usize = 16;

/// Why `name` is not a plain name, if it is not one.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is `.` or `..`")
    } else if name.contains('/') {
        Some("holds a `/`")
    } else if name.contains('\0') {
        Some("holds a NUL byte")
    } else if name.len() > NAME_MAX {
        Some("is longer than 255 bytes")
    } else {
        None
    }
}

/// Whether `name` is a plain, non-hidden name (what a marker may list and
/// an upload may be called).
pub fn is_plain_visible(name: &str) -> bool {
    name_problem(name).is_none() && !name.starts_with('.')
}

/// An open server root.
#[derive(Debug)]
pub struct Root {
    /// As the user gave it, for messages.
    shown: PathBuf,
    /// Canonical, for links given as absolute paths.
    canonical: PathBuf,
    fd: OwnedFd,
}

/// A resolved place under a root: its directory (open) and its name.
#[derive(Debug)]
pub struct Place {
    dir: OwnedFd,
    /// The directory's resolved path relative to the root (`""` for the
    /// root itself).
    dir_rel: String,
    name: String,
    shown: PathBuf,
    /// Directories made to reach it, shallowest first (relative paths).
    pub created: Vec<String>,
}

/// What a no-replace rename did.
#[derive(Debug, PartialEq, Eq)]
pub enum Renamed {
    /// The source is now at the target.
    Done,
    /// The target exists; nothing changed.
    Exists,
}

impl Root {
    /// Opens `path` as a root.
    pub fn open(path: &Path) -> Result<Self> {
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            anyhow!(Invalid(format!(
                "{}: {e}; give the server root (the directory holding images/)",
                path.display()
            )))
        })?;
        let fd = rustix::fs::open(
            &canonical,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            anyhow!(Invalid(format!(
                "{}: {e}; give the server root (the directory holding images/)",
                path.display()
            )))
        })?;
        Ok(Self {
            shown: path.to_path_buf(),
            canonical,
            fd,
        })
    }

    /// The root as the user gave it.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// `rel` joined to the root, for messages and for readers.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.shown.join(rel)
    }

    /// Resolves `rel` (see the module documentation), making its missing
    /// directories when `make_dirs`. The place itself need not exist.
    pub fn place(&self, rel: &str, make_dirs: bool) -> Result<Place> {
        let parts = split(rel)?;
        let (name, dirs) = parts.split_last().ok_or_else(|| {
            anyhow!(Invalid(format!(
                "{rel:?}: an empty path names the root itself"
            )))
        })?;
        let mut created = Vec::new();
        let (dir, dir_rel) = self.walk(rel, dirs, make_dirs, &mut created)?;
        let wanted_hidden: Vec<&str> = dirs
            .iter()
            .copied()
            .filter(|p| p.starts_with('.'))
            .collect();
        let got_hidden: Vec<&str> = dir_rel.split('/').filter(|p| p.starts_with('.')).collect();
        if wanted_hidden != got_hidden {
            bail!(Invalid(format!(
                "{}: a symbolic link on the way leads into a hidden directory ({}); ssgen writes and deletes only what it names, so remove the link",
                self.join(rel).display(),
                self.shown.join(&dir_rel).display()
            )));
        }
        Ok(Place {
            dir,
            shown: self.shown.join(rel),
            dir_rel,
            name: (*name).to_owned(),
            created,
        })
    }

    /// Resolves the directories `dirs` of `rel` from the root.
    fn walk(
        &self,
        rel: &str,
        dirs: &[&str],
        make_dirs: bool,
        created: &mut Vec<String>,
    ) -> Result<(OwnedFd, String)> {
        let leaves = || {
            anyhow!(Invalid(format!(
                "{}: a symbolic link on the way leads outside the root; ssgen writes and deletes only inside it, so remove the link",
                self.join(rel).display()
            )))
        };
        // The components still to resolve, and the resolved ones so far.
        let mut todo: Vec<String> = dirs.iter().rev().map(|s| (*s).to_owned()).collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        let mut fd = dup(&self.fd)?;
        while let Some(part) = todo.pop() {
            if part == ".." {
                // Only from a link's target: resolved lexically on a path
                // that holds no link.
                if done.pop().is_none() {
                    return Err(leaves());
                }
                fd = self.reopen(&done)?;
                continue;
            }
            if part == "." || part.is_empty() {
                continue;
            }
            match open_dir(&fd, &part) {
                Ok(next) => {
                    fd = next;
                    done.push(part);
                }
                Err(Errno::NOENT) if make_dirs => {
                    match rustix::fs::mkdirat(&fd, part.as_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            done.push(part.clone());
                            created.push(done.join("/"));
                        }
                        Err(Errno::EXIST) => done.push(part.clone()),
                        Err(e) => {
                            return Err(anyhow!(e)).with_context(|| {
                                format!(
                                    "cannot create {}",
                                    self.shown.join(done.join("/")).join(&part).display()
                                )
                            });
                        }
                    }
                    fd = open_dir(&fd, &part).map_err(|e| {
                        anyhow!(e).context(format!(
                            "cannot open {}",
                            self.shown.join(done.join("/")).display()
                        ))
                    })?;
                }
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let target = match rustix::fs::readlinkat(&fd, part.as_str(), Vec::new()) {
                        Ok(t) => t,
                        Err(Errno::INVAL) => bail!(Invalid(format!(
                            "{}: {} is not a directory (a file is where a directory goes: move or remove it)",
                            self.join(rel).display(),
                            self.shown.join(done.join("/")).join(&part).display()
                        ))),
                        Err(e) => {
                            return Err(anyhow!(e)).with_context(|| {
                                format!(
                                    "cannot read the link {part:?} of {}",
                                    self.join(rel).display()
                                )
                            });
                        }
                    };
                    links += 1;
                    if links > MAX_LINKS {
                        bail!(Invalid(format!(
                            "{}: too many symbolic links on the way",
                            self.join(rel).display()
                        )));
                    }
                    let target = target.to_string_lossy().into_owned();
                    let rest: &str = if let Some(abs) = target.strip_prefix('/') {
                        // An absolute link must point into the root.
                        let canonical = self.canonical.to_string_lossy();
                        let inside = format!("{}/", canonical.trim_start_matches('/'));
                        if abs == canonical.trim_start_matches('/') {
                            ""
                        } else {
                            abs.strip_prefix(inside.as_str()).ok_or_else(leaves)?
                        }
                    } else {
                        &target
                    };
                    if target.starts_with('/') {
                        done.clear();
                        fd = dup(&self.fd)?;
                    }
                    for p in rest.split('/').rev() {
                        todo.push(p.to_owned());
                    }
                }
                Err(e) => {
                    return Err(anyhow!(e)).with_context(|| {
                        format!(
                            "cannot open {}",
                            self.shown.join(done.join("/")).join(&part).display()
                        )
                    });
                }
            }
        }
        Ok((fd, done.join("/")))
    }

    /// Opens the resolved (link-free) directory `done` again from the root.
    fn reopen(&self, done: &[String]) -> Result<OwnedFd> {
        let mut fd = dup(&self.fd)?;
        for part in done {
            fd = open_dir(&fd, part).map_err(|e| {
                anyhow!(e).context(format!(
                    "cannot open {} (it changed while ssgen resolved it)",
                    self.shown.join(done.join("/")).display()
                ))
            })?;
        }
        Ok(fd)
    }

    /// Removes the directories `created` (relative paths, shallowest
    /// first) that are empty, deepest first: what a failed write made and
    /// nothing else put anything in.
    pub fn remove_empty_dirs(&self, created: &[String]) {
        for rel in created.iter().rev() {
            let Ok(place) = self.place(rel, false) else {
                return;
            };
            if rustix::fs::unlinkat(&place.dir, place.name.as_str(), AtFlags::REMOVEDIR).is_err() {
                return;
            }
        }
    }
}

impl Place {
    /// The place under the root as the user gave it, for messages.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Its resolved path relative to the root.
    pub fn rel(&self) -> String {
        if self.dir_rel.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.dir_rel, self.name)
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's status, not following a link; `None` when absent.
    pub fn stat(&self) -> Result<Option<rustix::fs::Stat>> {
        match rustix::fs::statat(&self.dir, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => {
                Err(anyhow!(e)).with_context(|| format!("cannot stat {}", self.shown.display()))
            }
        }
    }

    /// Creates the file, which must not exist yet, for writing.
    pub fn create_new(&self) -> Result<File> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("cannot create {}", self.shown.display()))?;
        Ok(File::from(fd))
    }

    /// Opens the file for reading (never through a link).
    pub fn open_read(&self) -> Result<File> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("cannot read {}", self.shown.display()))?;
        Ok(File::from(fd))
    }

    /// Opens the file for reading and writing, creating it if needed (never
    /// through a link).
    pub fn open_or_create(&self) -> Result<File> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.name.as_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("cannot open {}", self.shown.display()))?;
        Ok(File::from(fd))
    }

    /// Makes the place a directory; false when it already is one.
    pub fn make_dir(&self) -> Result<bool> {
        match rustix::fs::mkdirat(&self.dir, self.name.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) if self.stat()?.is_some_and(|s| is_dir(&s)) => Ok(false),
            Err(e) => {
                Err(anyhow!(e)).with_context(|| format!("cannot create {}", self.shown.display()))
            }
        }
    }

    /// A place inside this one (which must be a directory, not a link).
    pub fn child(&self, name: &str) -> Result<Place> {
        if let Some(why) = name_problem(name) {
            bail!(Invalid(format!(
                "{}: the name {name:?} {why}",
                self.shown.display()
            )));
        }
        let dir = open_dir(&self.dir, &self.name)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("cannot open {}", self.shown.display()))?;
        Ok(Place {
            dir,
            dir_rel: self.rel(),
            name: name.to_owned(),
            shown: self.shown.join(name),
            created: Vec::new(),
        })
    }

    /// Writes `bytes` atomically: a temporary file in the same directory,
    /// flushed, renamed over the place, the directory flushed. A reader
    /// sees the old file or the new one; a failure leaves the old one.
    pub fn write_atomic(&self, bytes: &[u8]) -> Result<()> {
        let tmp = temp_name(&self.name);
        let tmp_place = Place {
            dir: dup(&self.dir)?,
            dir_rel: self.dir_rel.clone(),
            name: tmp.clone(),
            shown: self.shown.with_file_name(&tmp),
            created: Vec::new(),
        };
        let result = (|| {
            let mut file = tmp_place.create_new()?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", tmp_place.shown.display()))?;
            rustix::fs::renameat(&self.dir, tmp.as_str(), &self.dir, self.name.as_str())
                .map_err(|e| anyhow!(e))
                .with_context(|| {
                    format!(
                        "cannot rename {} to {}",
                        tmp_place.shown.display(),
                        self.shown.display()
                    )
                })?;
            // The rename is durable once the directory is.
            let _ = rustix::fs::fsync(&self.dir);
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.dir, tmp.as_str(), AtFlags::empty());
        }
        result
    }

    /// Renames this place to `to` unless `to` exists (atomically: of two
    /// writers, one wins and the other learns it).
    pub fn rename_noreplace(&self, to: &Place) -> Result<Renamed> {
        let context = || {
            format!(
                "cannot rename {} to {}",
                self.shown.display(),
                to.shown.display()
            )
        };
        match rustix::fs::renameat_with(
            &self.dir,
            self.name.as_str(),
            &to.dir,
            to.name.as_str(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Ok(Renamed::Exists),
            // A filesystem without renameat2: a hard link fails as well
            // when the target exists (files only).
            Err(Errno::INVAL | Errno::NOSYS) => {
                match rustix::fs::linkat(
                    &self.dir,
                    self.name.as_str(),
                    &to.dir,
                    to.name.as_str(),
                    AtFlags::empty(),
                ) {
                    Ok(()) => {
                        rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty())
                            .map_err(|e| anyhow!(e))
                            .with_context(context)?;
                    }
                    Err(Errno::EXIST) => return Ok(Renamed::Exists),
                    Err(e) => return Err(anyhow!(e)).with_context(context),
                }
            }
            Err(e) => return Err(anyhow!(e)).with_context(context),
        }
        let _ = rustix::fs::fsync(&to.dir);
        Ok(Renamed::Done)
    }

    /// Renames this place to `to`, replacing what is there.
    pub fn rename_over(&self, to: &Place) -> Result<()> {
        rustix::fs::renameat(&self.dir, self.name.as_str(), &to.dir, to.name.as_str())
            .map_err(|e| anyhow!(e))
            .with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    self.shown.display(),
                    to.shown.display()
                )
            })
    }

    /// Moves the file `from` (a path outside or inside the root, as the
    /// user gave it) to this place by rename; the error is the rename's.
    pub fn rename_from(&self, from: &Path) -> std::io::Result<()> {
        rustix::fs::renameat(rustix::fs::CWD, from, &self.dir, self.name.as_str())
            .map_err(std::io::Error::from)
    }

    /// Moves this place back to `to` by rename.
    pub fn rename_out(&self, to: &Path) -> std::io::Result<()> {
        rustix::fs::renameat(&self.dir, self.name.as_str(), rustix::fs::CWD, to)
            .map_err(std::io::Error::from)
    }

    /// Opens the place, a directory (not a link), for reading.
    pub fn open_dir(&self) -> Result<File> {
        open_dir(&self.dir, &self.name)
            .map(File::from)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("cannot open {}", self.shown.display()))
    }

    /// Deletes the place: a file or link (never what it points to), or a
    /// directory with everything below it. False when it was absent.
    pub fn remove(&self) -> Result<bool> {
        let name = CString::new(self.name.as_str()).context("a name holds a NUL byte")?;
        remove_at(&self.dir, &name, 0)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("cannot delete {}", self.shown.display()))
    }
}

fn remove_at(dir: &OwnedFd, name: &CStr, depth: usize) -> Result<bool, Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(true),
        Err(Errno::NOENT) => return Ok(false),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    if depth >= MAX_DEPTH {
        return Err(Errno::NAMETOOLONG);
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Every name below, UTF-8 or not: all of it was asked to go.
    let mut names: Vec<CString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(&sub)? {
        let entry = entry?;
        let n = entry.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    for n in &names {
        remove_at(&sub, n, depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Splits `rel` into plain names.
fn split(rel: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts {
        if let Some(why) = name_problem(part) {
            bail!(Invalid(format!(
                "{rel:?}: the component {part:?} {why}; ssgen writes and deletes only plain names inside the root"
            )));
        }
    }
    Ok(parts)
}

fn open_dir(dir: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.as_fd()
        .try_clone_to_owned()
        .context("cannot duplicate a directory descriptor")
}

/// Whether a status is a directory's.
pub fn is_dir(st: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
}

/// A temporary name beside `name`, unique in this process and across
/// processes: `.NAME.tmp-PID-N` (the form [`is_leftover`] recognises).
pub fn temp_name(name: &str) -> String {
    hidden_beside(name, "tmp")
}

/// A staging name beside `name` for an upload: `.NAME.upload-PID-N`.
pub fn upload_name(name: &str) -> String {
    hidden_beside(name, "upload")
}

/// `.NAME.KIND-PID-N`, with NAME cut short enough for a 255-byte name.
fn hidden_beside(name: &str, kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let short: String = name.chars().take(200).collect();
    format!(
        ".{short}.{kind}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What kind of leftover a hidden name is: the temporary file of an
/// atomic write (`.NAME.tmp-PID[-N]`) or an upload's staging file
/// (`.NAME.upload-PID-N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Written only under the root lock: stale when the lock is held.
    Temp,
    /// Written by `ssgen serve` outside the lock, which holds a lock on
    /// the file itself while it writes.
    Upload,
    /// An import's staging directory (`.staging-PID-N`), filled only
    /// under the root lock: stale when the lock is held and its writer is
    /// gone.
    Staging,
}

/// The name of an import's `n`th staging directory beside the versions
/// of a product: `.staging-PID-N`.
pub fn staging_name(n: usize) -> String {
    format!(".staging-{}-{n}", std::process::id())
}

/// The process that made the staging directory `name`, when it is one.
pub fn staging_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(".staging-")?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok())?
}

/// The file in a staging directory that lists, for `--move`, where each
/// file came from (`{"name": "/source/path"}`), so that what a killed
/// import moved can be put back.
pub const MOVED_MANIFEST: &str = ".moved.json";

/// Whether `name` is a leftover of one of ssgen's writers.
pub fn is_leftover(name: &str) -> Option<Leftover> {
    let rest = name.strip_prefix('.')?;
    let numbers = |s: &str, max: usize| {
        let parts: Vec<&str> = s.split('-').collect();
        (1..=max).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some((_, tail)) = rest.rsplit_once(".tmp-") {
        if numbers(tail, 2) {
            return Some(Leftover::Temp);
        }
    }
    if let Some((_, tail)) = rest.rsplit_once(".upload-") {
        if numbers(tail, 2) {
            return Some(Leftover::Upload);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_recognised_by_their_form_only() {
        assert_eq!(is_leftover(".images.json.tmp-123"), Some(Leftover::Temp));
        assert_eq!(is_leftover(&temp_name("index.json")), Some(Leftover::Temp));
        assert_eq!(
            is_leftover(".rootfs.squashfs.upload-12-3"),
            Some(Leftover::Upload)
        );
        assert_eq!(is_leftover(&upload_name("x")), Some(Leftover::Upload));
        for other in [
            ".withdrawn",
            ".requirements",
            "a.tmp-1",
            ".x.tmp-",
            ".x.tmp-1a",
            ".x.upload-1-2-3",
        ] {
            assert_eq!(is_leftover(other), None, "{other}");
        }
    }

    #[test]
    fn places_stay_inside_and_out_of_hidden_directories() {
        let tmp = tempfile::tempdir().expect("temp");
        let base = tmp.path();
        let root_dir = base.join("root");
        std::fs::create_dir_all(root_dir.join("images/a")).expect("dirs");
        std::fs::create_dir_all(root_dir.join(".ssgen")).expect("dirs");
        std::fs::create_dir_all(base.join("outside")).expect("dirs");
        std::os::unix::fs::symlink("../../outside", root_dir.join("images/out")).expect("link");
        std::os::unix::fs::symlink("../.ssgen", root_dir.join("images/hidden")).expect("link");
        std::os::unix::fs::symlink("a", root_dir.join("images/inside")).expect("link");
        std::os::unix::fs::symlink(base.join("outside"), root_dir.join("images/abs"))
            .expect("link");
        let root = Root::open(&root_dir).expect("root");

        for bad in ["images/../x", "/etc/passwd", "images//x", "images/./x", ""] {
            assert!(root.place(bad, false).is_err(), "{bad}");
        }
        let err = root.place("images/out/victim", false).expect_err("outside");
        assert!(format!("{err:#}").contains("outside the root"), "{err:#}");
        let err = root.place("images/abs/victim", false).expect_err("outside");
        assert!(format!("{err:#}").contains("outside the root"), "{err:#}");
        let err = root
            .place("images/hidden/cache.json", false)
            .expect_err("hidden");
        assert!(format!("{err:#}").contains("hidden"), "{err:#}");

        let p = root.place("images/inside/f", false).expect("inside");
        assert_eq!(p.rel(), "images/a/f");
        p.write_atomic(b"x").expect("write");
        assert_eq!(
            std::fs::read(root_dir.join("images/a/f")).expect("read"),
            b"x"
        );
        let new = root.place("images/b/c/g", true).expect("made");
        assert_eq!(new.created, ["images/b", "images/b/c"]);
        assert!(p.remove().expect("remove"));
        assert!(!p.remove().expect("absent"));
        root.remove_empty_dirs(&new.created);
        assert!(!root_dir.join("images/b").exists());
        assert!(root.place(".ssgen/cache.json", false).is_ok());
    }
}
