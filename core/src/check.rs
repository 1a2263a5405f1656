//! The one check of a file about to be published, made on the read that
//! hashes it, so every adapter refuses what `ssgen build` refuses: a file
//! cut short by a stopped upload or copy, and a metadata tarball whose
//! `metadata.yaml` the daemons would refuse to import
//! (`docs/protocol.md#metadata-yaml`).
//!
//! ```
//! use ssgen_core::check::Checked;
//!
//! // An xz stream without its footer: cut short.
//! let mut check = Checked::new(false);
//! check.update(&[0xFD, b'7', b'z', b'X', b'Z', 0x00, 1, 2, 3]);
//! let refusal = check.finish(9).unwrap_err();
//! assert!(refusal.to_string().contains("cut short"));
//! assert!(matches!(refusal, ssgen_core::Error::CutShort(_)));
//! ```

use crate::Error;
use crate::classify::Ends;
use crate::layout::FileRole;
use crate::metadata;

/// Metadata tarballs are kept whole in memory for their check; they hold a
/// YAML file and a few templates, far below this. A larger one is not
/// checked for `metadata.yaml` (only for being cut short).
pub const METADATA_LIMIT: usize = 64 << 20;

/// The check of one file, fed the same chunks as its hasher.
#[derive(Clone, Debug)]
pub struct Checked {
    ends: Ends,
    /// The whole file, for a metadata tarball (`None` past the limit, or
    /// for any other file).
    metadata: Option<Vec<u8>>,
}

impl Checked {
    /// A check for a file; `is_metadata` for a split image's metadata
    /// tarball (a hash plan's prefix job), whose `metadata.yaml` is read.
    #[must_use]
    pub fn new(is_metadata: bool) -> Self {
        Self {
            ends: Ends::default(),
            metadata: is_metadata.then(Vec::new),
        }
    }

    /// The check for a file of a version, by its role.
    #[must_use]
    pub fn for_role(role: &FileRole) -> Self {
        Self::new(matches!(role, FileRole::Meta(_)))
    }

    /// Takes the next chunk of the file.
    pub fn update(&mut self, chunk: &[u8]) {
        self.ends.update(chunk);
        if let Some(m) = &mut self.metadata {
            if m.len() + chunk.len() > METADATA_LIMIT {
                self.metadata = None;
            } else {
                m.extend_from_slice(chunk);
            }
        }
    }

    /// The verdict, once all `size` bytes have been fed.
    ///
    /// # Errors
    /// [`Error::CutShort`] or [`Error::Unimportable`], saying why the file
    /// must not be published and how to fix it.
    pub fn finish(self, size: u64) -> Result<(), Error> {
        if let Some(why) = self.ends.cut_short(size) {
            return Err(Error::CutShort(why));
        }
        match self.metadata.map(|bytes| metadata::read(&bytes)) {
            Some(Err(e)) if e.breaks_import() => Err(Error::Unimportable(e)),
            _ => Ok(()),
        }
    }
}

/// [`Checked`] of a file held whole in memory.
///
/// # Errors
/// As [`Checked::finish`].
pub fn check(bytes: &[u8], is_metadata: bool) -> Result<(), Error> {
    let mut checked = Checked::new(is_metadata);
    checked.update(bytes);
    checked.finish(bytes.len() as u64)
}
