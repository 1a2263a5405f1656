//! The input: a plain listing of the files under the server root.

/// How many leading bytes of each file the core uses to detect its type by
/// magic (xz, gzip, squashfs, qcow2).
pub const HEAD_LEN: usize = 8;

/// One file under the server root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the root, `/`-separated, e.g.
    /// `images/debian/12/amd64/default/20260801_0312/incus.tar.xz`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The first bytes of the file (up to [`HEAD_LEN`]), when the adapter
    /// read them; used to check a file is what its name says.
    pub head: Option<Vec<u8>>,
    /// The whole contents, for the side files of [`needs_contents`].
    pub contents: Option<Vec<u8>>,
}

impl Entry {
    /// A file known by path and size only.
    #[must_use]
    pub fn file(path: impl Into<String>, size: u64) -> Self {
        Self {
            path: path.into(),
            size,
            ..Self::default()
        }
    }

    /// A side file with its contents.
    #[must_use]
    pub fn side(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        let contents = contents.into();
        Self {
            path: path.into(),
            size: contents.len() as u64,
            head: None,
            contents: Some(contents),
        }
    }

    /// The last path component.
    #[must_use]
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The side files whose contents the adapter must pass in the listing:
/// `.requirements`, `.lxd_requirements`, `metadata.json` and the
/// `.withdrawn` marker of a version.
#[must_use]
pub fn needs_contents(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        crate::requirements::FILE_NAME
            | crate::requirements::LXD_FILE_NAME
            | crate::side::METADATA_JSON
            | crate::withdrawn::FILE_NAME
            | crate::checksums::FILE_NAME
    )
}
