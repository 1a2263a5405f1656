//! Opening a file of the root for reading, the one way the server does it:
//! the file is opened once, and everything said about it (size, time,
//! where it really is) comes from that open file, never from its path
//! again, so a rename in between cannot mix two files.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};

/// A file of the root, open for reading.
pub struct Opened {
    pub file: File,
    /// From the open file (`fstat`).
    pub meta: Metadata,
    /// Where the file really is, every link resolved.
    pub real: PathBuf,
}

/// Opens `root/rel` (a directory's `index.html`) for reading. `None` when
/// there is no such regular file, or when it resolves outside `root` or to
/// a hidden name (a link such as `tls -> .ssgen/tls` must not serve the
/// private key). `root` must be canonical.
pub fn open_in_root(root: &Path, rel: &str) -> io::Result<Option<Opened>> {
    let mut path = root.join(rel);
    let Some(mut file) = open(&path)? else {
        return Ok(None);
    };
    let mut meta = file.metadata()?;
    if meta.is_dir() {
        path.push("index.html");
        let Some(index) = open(&path)? else {
            return Ok(None);
        };
        file = index;
        meta = file.metadata()?;
    }
    if !meta.is_file() {
        return Ok(None);
    }
    let Some(real) = real_path(&file, &meta, &path)? else {
        return Ok(None);
    };
    Ok(confined(root, &real).then_some(Opened { file, meta, real }))
}

/// Whether `real` lies inside `root` with no hidden component below it.
pub fn confined(root: &Path, real: &Path) -> bool {
    real.strip_prefix(root).is_ok_and(|below| {
        below.components().all(|c| match c {
            Component::Normal(name) => !name.as_encoded_bytes().starts_with(b"."),
            _ => false,
        })
    })
}

/// Opens for reading without blocking on a FIFO and without taking a
/// terminal; a name that is not there (or not readable) is `None`.
fn open(path: &Path) -> io::Result<Option<File>> {
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    match OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or_default())
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_absent(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
    ) || [Errno::LOOP, Errno::NAMETOOLONG]
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// The path of the open file as the kernel knows it (`/proc/self/fd`).
/// Without `/proc`, the path is resolved and must still name the same
/// file; `None` when it no longer does.
fn real_path(file: &File, meta: &Metadata, path: &Path) -> io::Result<Option<PathBuf>> {
    if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        return Ok(Some(real));
    }
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let now = std::fs::metadata(&real)?;
    Ok((now.dev() == meta.dev() && now.ino() == meta.ino()).then_some(real))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_hidden_or_outside_files_are_not_opened() {
        let tmp = tempfile::tempdir().expect("temp");
        let root = std::fs::canonicalize(tmp.path())
            .expect("canonical")
            .join("www");
        std::fs::create_dir_all(root.join(".ssgen/tls")).expect("dirs");
        std::fs::create_dir_all(root.join("images")).expect("dirs");
        std::fs::write(root.join(".ssgen/tls/key.pem"), "secret").expect("key");
        std::fs::write(tmp.path().join("outside"), "outside").expect("outside");
        std::fs::write(root.join("images/ok"), "ok").expect("ok");
        std::os::unix::fs::symlink(".ssgen/tls", root.join("tls")).expect("link");
        std::os::unix::fs::symlink("../.ssgen", root.join("images/x")).expect("link");
        std::os::unix::fs::symlink("../outside", root.join("out")).expect("link");
        std::os::unix::fs::symlink("images/ok", root.join("fine")).expect("link");
        let opens = |rel: &str| open_in_root(&root, rel).expect("no IO error").is_some();
        assert!(opens("images/ok") && opens("fine"));
        assert!(!opens("tls/key.pem") && !opens("images/x/tls/key.pem") && !opens("out"));
        assert!(!opens("missing") && !opens("images"));
    }
}
