//! What a file in a version directory is: by name, checked by magic bytes
//! when the adapter gives them (`docs/protocol.md#ftypes`).

use crate::vocab::{Client, CombinedKey, Ftype};

/// The root file types the core publishes. The legacy Ubuntu
/// `disk1.img`/`uefi1.img` types are read by `lint` but never written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RootType {
    /// A SquashFS container root (`squashfs`).
    Squashfs,
    /// A tarball container root (`root.tar.xz`).
    RootTarXz,
    /// A qcow2 VM disk (`disk-kvm.img`).
    DiskKvm,
}

impl From<RootType> for Ftype {
    fn from(root: RootType) -> Ftype {
        match root {
            RootType::Squashfs => Ftype::Squashfs,
            RootType::RootTarXz => Ftype::RootTarXz,
            RootType::DiskKvm => Ftype::DiskKvm,
        }
    }
}

impl RootType {
    /// The item ftype.
    #[must_use]
    pub fn kind(self) -> Ftype {
        self.into()
    }

    /// The item ftype, as text.
    #[must_use]
    pub fn ftype(self) -> &'static str {
        self.kind().as_str()
    }

    /// The keys on the metadata item that carry the pair's fingerprint,
    /// its own first.
    #[must_use]
    pub fn combined_keys(self) -> &'static [CombinedKey] {
        CombinedKey::for_root(self.kind())
    }

    /// The key on the metadata item that carries the pair's fingerprint.
    #[must_use]
    pub fn combined_key(self) -> &'static str {
        self.combined_keys().first().map_or("", |k| k.as_str())
    }

    /// Whether images of this root are virtual machines.
    #[must_use]
    pub fn is_vm(self) -> bool {
        self.kind().is_vm()
    }

    /// The name a version directory gives this root.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        self.kind().file_name().unwrap_or_default()
    }

    /// The magic this root's file must start with.
    #[must_use]
    pub fn magic(self) -> Magic {
        match self {
            RootType::Squashfs => Magic::Squashfs,
            RootType::RootTarXz => Magic::Xz,
            RootType::DiskKvm => Magic::Qcow2,
        }
    }
}

/// What one file of a version directory is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A split-image metadata tarball.
    Meta(Client),
    /// A root file.
    Root(RootType),
    /// A unified tarball (metadata and rootfs in one), fingerprint = sha256.
    Unified,
    /// A VCDIFF delta against the root of the version named `base`.
    Delta {
        /// What the delta patches.
        root: RootType,
        /// The base version's name, from the file name.
        base: String,
    },
    /// A file the clients never read (checksums, logs, signatures, …).
    Other,
}

/// Classifies a file of a version directory by its name.
#[must_use]
pub fn by_name(name: &str) -> Kind {
    for client in Client::ALL {
        if Some(name) == client.meta().file_name() {
            return Kind::Meta(client);
        }
    }
    // Each root by the name the core writes, and the other names trees
    // use for it (lxc-ci, the seeds, imagebuilder).
    for (root, also) in [
        (RootType::Squashfs, "root.squashfs"),
        (RootType::RootTarXz, "rootfs.tar.xz"),
        (RootType::DiskKvm, "disk-kvm.img"),
    ] {
        if name == root.file_name() || name == also {
            return Kind::Root(root);
        }
    }
    if name.ends_with(crate::vocab::UNIFIED_SUFFIX) {
        return Kind::Unified;
    }
    if let Some(stem) = name.strip_suffix(".vcdiff") {
        // lxc-ci: `delta-<base>.vcdiff`; imagebuilder: `rootfs.<base>.vcdiff`
        // and `disk.<base>.qcow2.vcdiff` (`docs/protocol.md#deltas`).
        if let Some(base) = stem.strip_prefix("delta-") {
            return delta(RootType::Squashfs, base);
        }
        if let Some(base) = stem.strip_prefix("rootfs.") {
            return delta(RootType::Squashfs, base);
        }
        if let Some(base) = stem
            .strip_prefix("disk.")
            .and_then(|s| s.strip_suffix(".qcow2"))
        {
            return delta(RootType::DiskKvm, base);
        }
    }
    Kind::Other
}

fn delta(root: RootType, base: &str) -> Kind {
    if base.is_empty() {
        Kind::Other
    } else {
        Kind::Delta {
            root,
            base: base.to_owned(),
        }
    }
}

/// A file type recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// xz (`FD 37 7A 58 5A 00`).
    Xz,
    /// gzip (`1F 8B`).
    Gzip,
    /// SquashFS (`hsqs`).
    Squashfs,
    /// qcow2 (`QFI\xfb`).
    Qcow2,
    /// bzip2 (`BZh`).
    Bzip2,
    /// zstd (`28 B5 2F FD`).
    Zstd,
}

impl Magic {
    /// Detects the type from the first bytes of a file.
    #[must_use]
    pub fn detect(head: &[u8]) -> Option<Magic> {
        if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Magic::Xz)
        } else if head.starts_with(&[0x1F, 0x8B]) {
            Some(Magic::Gzip)
        } else if head.starts_with(b"hsqs") {
            Some(Magic::Squashfs)
        } else if head.starts_with(b"QFI\xfb") {
            Some(Magic::Qcow2)
        } else if head.starts_with(b"BZh") {
            Some(Magic::Bzip2)
        } else if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Some(Magic::Zstd)
        } else {
            None
        }
    }

    /// A short name for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Magic::Xz => "xz",
            Magic::Gzip => "gzip",
            Magic::Squashfs => "squashfs",
            Magic::Qcow2 => "qcow2",
            Magic::Bzip2 => "bzip2",
            Magic::Zstd => "zstd",
        }
    }

    /// Whether a metadata tarball may be compressed this way: the daemon
    /// detects the compression itself, so any compressed tar works (`docs/protocol.md#ftypes`).
    #[must_use]
    pub fn is_tar_compression(self) -> bool {
        matches!(self, Magic::Xz | Magic::Gzip | Magic::Bzip2 | Magic::Zstd)
    }
}

/// How many first bytes of a file [`cut_short`] needs.
pub const WHOLE_HEAD: usize = 48;
/// How many last bytes of a file [`cut_short`] needs, not counting the
/// zero bytes of xz stream padding, which it skips.
pub const WHOLE_TAIL: usize = 2;

/// Why a file was cut short (an upload or a copy that stopped half-way),
/// when its format can tell from its first bytes (`head`, up to
/// [`WHOLE_HEAD`]), its last bytes (`tail`) and its `size`: an xz stream
/// ends with the footer magic `YZ`, optionally followed by stream padding
/// (zero bytes, a multiple of four, which `xz` accepts); a SquashFS file is
/// at least as long as the `bytes_used` of its (version 4) superblock.
/// A SquashFS or qcow2 file shorter than its header is cut short; a qcow2
/// file is at least as long as the L1 table its header places. `None` when
/// the file is whole or its format cannot tell (gzip, anything else).
#[must_use]
pub fn cut_short(head: &[u8], tail: &[u8], size: u64) -> Option<String> {
    let zeros = tail.iter().rev().take_while(|b| **b == 0).count();
    let before = &tail[..tail.len() - zeros];
    let start = before.len().saturating_sub(WHOLE_TAIL);
    cut_short_padded(head, &before[start..], zeros as u64, size)
}

/// [`cut_short`] with the tail given as the last bytes before a run of
/// `zeros` zero bytes at the very end.
fn cut_short_padded(head: &[u8], tail: &[u8], zeros: u64, size: u64) -> Option<String> {
    match Magic::detect(head)? {
        Magic::Xz if !tail.ends_with(b"YZ") || zeros % 4 != 0 => Some(
            "the xz stream has no end (its footer is missing): the file was cut short".to_owned(),
        ),
        Magic::Squashfs if size < SQUASHFS_SUPERBLOCK => Some(format!(
            "{size} bytes cannot hold the {SQUASHFS_SUPERBLOCK}-byte squashfs superblock: the file was cut short"
        )),
        // Only a version 4 superblock (every squashfs the clients take)
        // says where the filesystem ends.
        Magic::Squashfs if head.get(28..30) == Some(&[4, 0]) => {
            let used = u64::from_le_bytes(head.get(40..48)?.try_into().ok()?);
            (used > size).then(|| {
                format!(
                    "the squashfs superblock says {used} bytes, the file has {size}: it was cut short"
                )
            })
        }
        Magic::Qcow2 => qcow2_cut_short(head, size),
        _ => None,
    }
}

/// The size of a SquashFS superblock, at the start of the file.
const SQUASHFS_SUPERBLOCK: u64 = 96;

/// Why a qcow2 file is cut short: shorter than its header (72 bytes in
/// version 2, at least 104 in version 3), or than the end of the L1 table
/// the header places (`l1_size` eight-byte entries at `l1_table_offset`,
/// big-endian, at bytes 36 and 40), which every qcow2 holds in the file.
fn qcow2_cut_short(head: &[u8], size: u64) -> Option<String> {
    let be32 = |at: usize| Some(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let header: u64 = match be32(4) {
        Some(2) => 72,
        _ => 104,
    };
    if size < header {
        return Some(format!(
            "{size} bytes cannot hold the {header}-byte qcow2 header: the file was cut short"
        ));
    }
    let l1_size = u64::from(be32(36)?);
    let l1_offset = u64::from_be_bytes(head.get(40..48)?.try_into().ok()?);
    let end = l1_offset.saturating_add(l1_size.saturating_mul(8));
    (end > size).then(|| {
        format!("the qcow2 header puts its L1 table up to byte {end}, the file has {size}: it was cut short")
    })
}

/// The first and last bytes of a file as it streams past, for
/// [`cut_short`]: feed every chunk in order, then ask. The tail kept is
/// the last bytes before any run of trailing zero bytes, with the run's
/// length, so stream padding of any length is seen.
#[derive(Clone, Debug, Default)]
pub struct Ends {
    head: Vec<u8>,
    tail: Vec<u8>,
    zeros: u64,
}

impl Ends {
    /// Takes what it needs of the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        let room = WHOLE_HEAD - self.head.len();
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        match chunk.iter().rposition(|b| *b != 0) {
            None => self.zeros += chunk.len() as u64,
            Some(last) => {
                let body = &chunk[..=last];
                if body.len() >= WHOLE_TAIL {
                    self.tail.clear();
                } else {
                    // Zeros before this chunk were no padding after all.
                    let zeros = usize::try_from(self.zeros.min(WHOLE_TAIL as u64)).unwrap_or(0);
                    self.tail.extend(std::iter::repeat_n(0, zeros));
                }
                self.tail
                    .extend_from_slice(&body[body.len().saturating_sub(WHOLE_TAIL)..]);
                let excess = self.tail.len().saturating_sub(WHOLE_TAIL);
                self.tail.drain(..excess);
                self.zeros = (chunk.len() - body.len()) as u64;
            }
        }
    }

    /// [`cut_short`] for the bytes seen, `size` of them.
    #[must_use]
    pub fn cut_short(&self, size: u64) -> Option<String> {
        cut_short_padded(&self.head, &self.tail, self.zeros, size)
    }
}

/// Checks a classified file against its first bytes, when known. Returns
/// what was found instead when the two disagree.
///
/// # Errors
/// A description of what the bytes are when they are not what the name says.
pub fn check_magic(kind: &Kind, head: Option<&[u8]>) -> Result<(), String> {
    let Some(head) = head else { return Ok(()) };
    let found = Magic::detect(head);
    let describe = |m: Option<Magic>| m.map_or("unrecognised bytes", Magic::name);
    match kind {
        Kind::Meta(_) if found.is_some_and(Magic::is_tar_compression) => Ok(()),
        Kind::Meta(_) => Err(format!(
            "is not a compressed tarball (found {})",
            describe(found)
        )),
        Kind::Root(root) if found == Some(root.magic()) => Ok(()),
        Kind::Root(root) => Err(format!(
            "is not a {} file (found {})",
            root.magic().name(),
            describe(found)
        )),
        Kind::Unified if found.is_some_and(Magic::is_tar_compression) => Ok(()),
        Kind::Unified => Err(format!(
            "is not a compressed tarball (found {})",
            describe(found)
        )),
        Kind::Delta { .. } | Kind::Other => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_short_files_are_told_by_their_format() {
        let xz = [0xFD, b'7', b'z', b'X', b'Z', 0x00, 1, 2];
        assert!(cut_short(&xz, b"YZ", 100).is_none());
        assert!(cut_short(&xz, b"\0\0", 100).is_some_and(|w| w.contains("xz")));
        let mut sqfs = [0u8; 48];
        sqfs[..4].copy_from_slice(b"hsqs");
        sqfs[40..48].copy_from_slice(&4096u64.to_le_bytes());
        // Not a version 4 superblock: it tells nothing.
        assert!(cut_short(&sqfs, b"..", 4000).is_none());
        sqfs[28] = 4;
        assert!(cut_short(&sqfs, b"..", 4096).is_none());
        assert!(cut_short(&sqfs, b"..", 8192).is_none());
        assert!(cut_short(&sqfs, b"..", 4000).is_some_and(|w| w.contains("4096")));
        // A file too short to hold its header is cut short, whatever
        // part of it the caller read.
        assert!(cut_short(b"hsqs", b"..", 4).is_some_and(|w| w.contains("superblock")));
        assert!(cut_short(b"hsqs", b"..", 95).is_some());
        assert!(cut_short(b"hsqs", b"..", 4096).is_none());
        assert!(cut_short(b"QFI\xfb", b"..", 4).is_some_and(|w| w.contains("qcow2 header")));
        assert!(cut_short(b"QFI\xfb\0\0\0\x02", b"..", 72).is_none());
        assert!(cut_short(b"QFI\xfb\0\0\0\x03", b"..", 72).is_some());
        // The L1 table must lie inside the file: 2 entries at 0x30000.
        let mut qcow2 = [0u8; 48];
        qcow2[..8].copy_from_slice(b"QFI\xfb\0\0\0\x03");
        qcow2[36..40].copy_from_slice(&2u32.to_be_bytes());
        qcow2[40..48].copy_from_slice(&0x30000u64.to_be_bytes());
        assert!(cut_short(&qcow2, b"..", 0x30010).is_none());
        assert!(cut_short(&qcow2, b"..", 0x3000f).is_some_and(|w| w.contains("L1 table")));
        assert!(cut_short(b"plain", b"", 5).is_none());
    }

    /// Stream padding after the footer (zero bytes, a multiple of four)
    /// is valid xz, not a file cut short; whatever the chunks.
    #[test]
    fn xz_stream_padding_is_no_cut() {
        let xz = [0xFD, b'7', b'z', b'X', b'Z', 0x00, 1, 2];
        assert!(cut_short(&xz, b"YZ\0\0\0\0", 100).is_none());
        assert!(
            cut_short(&xz, b"YZ\0\0\0", 100).is_some(),
            "not a multiple of 4"
        );
        assert!(
            cut_short(&xz, b"\0\0\0\0", 100).is_some(),
            "no footer before it"
        );
        let mut file = [0u8; 100];
        file[..6].copy_from_slice(&xz[..6]);
        file[90..92].copy_from_slice(b"YZ");
        // 8 bytes of padding after the footer at 90..92.
        let whole = &file[..100];
        for size in [1, 2, 3, 5, 7, 8, 9, 64] {
            let mut ends = Ends::default();
            for chunk in whole.chunks(size) {
                ends.update(chunk);
            }
            assert!(ends.cut_short(100).is_none(), "chunks of {size}");
            let mut odd = Ends::default();
            for chunk in file[..99].chunks(size) {
                odd.update(chunk);
            }
            assert!(odd.cut_short(99).is_some(), "7 zeros, chunks of {size}");
        }
    }

    #[test]
    fn ends_see_the_same_bytes_whatever_the_chunks() {
        let mut file = [0u8; 100];
        file[..6].copy_from_slice(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]);
        file[98..].copy_from_slice(b"YZ");
        for size in [1, 2, 3, 47, 48, 49, 100] {
            let mut ends = Ends::default();
            for chunk in file.chunks(size) {
                ends.update(chunk);
            }
            assert!(ends.cut_short(100).is_none(), "chunks of {size}");
            let mut cut = Ends::default();
            for chunk in file[..99].chunks(size) {
                cut.update(chunk);
            }
            assert!(cut.cut_short(99).is_some(), "chunks of {size}");
        }
    }

    #[test]
    fn file_names_for_ftypes_classify_back() {
        let file_name_for = |ftype: &str| Ftype::parse(ftype).and_then(Ftype::file_name);
        for root in [RootType::Squashfs, RootType::RootTarXz, RootType::DiskKvm] {
            let name = file_name_for(root.ftype()).expect("a root ftype");
            assert_eq!(by_name(name), Kind::Root(root), "{name}");
        }
        assert_eq!(by_name("lxd.tar.xz"), Kind::Meta(Client::Lxd));
        assert_eq!(
            by_name(file_name_for("incus.tar.xz").expect("meta")),
            Kind::Meta(Client::Incus)
        );
        for unified in ["incus_combined.tar.gz", "lxd_combined.tar.gz"] {
            assert_eq!(
                by_name(file_name_for(unified).expect("unified")),
                Kind::Unified
            );
        }
        for never in ["disk1.img", "uefi1.img", "squashfs.vcdiff", ""] {
            assert_eq!(file_name_for(never), None, "{never}");
        }
    }

    #[test]
    fn names_map_to_ftypes() {
        assert_eq!(by_name("incus.tar.xz"), Kind::Meta(Client::Incus));
        assert_eq!(by_name("root.squashfs"), Kind::Root(RootType::Squashfs));
        assert_eq!(by_name("rootfs.tar.xz"), Kind::Root(RootType::RootTarXz));
        assert_eq!(by_name("disk.qcow2"), Kind::Root(RootType::DiskKvm));
        assert_eq!(by_name("incus_combined.tar.gz"), Kind::Unified);
        assert_eq!(
            by_name("delta-20260801_0312.vcdiff"),
            Kind::Delta {
                root: RootType::Squashfs,
                base: "20260801_0312".into()
            }
        );
        assert_eq!(
            by_name("disk.20260801.qcow2.vcdiff"),
            Kind::Delta {
                root: RootType::DiskKvm,
                base: "20260801".into()
            }
        );
        assert_eq!(by_name("SHA256SUMS"), Kind::Other);
        assert_eq!(by_name("delta-.vcdiff"), Kind::Other);
    }

    #[test]
    fn magic_checks() {
        let xz = [0xFD, b'7', b'z', b'X', b'Z', 0, 0, 4];
        assert!(check_magic(&Kind::Meta(Client::Lxd), Some(&xz)).is_ok());
        assert!(check_magic(&Kind::Root(RootType::RootTarXz), Some(&xz)).is_ok());
        let err = check_magic(&Kind::Root(RootType::Squashfs), Some(&xz)).unwrap_err();
        assert_eq!(err, "is not a squashfs file (found xz)");
        assert!(check_magic(&Kind::Root(RootType::DiskKvm), Some(b"QFI\xfb\0\0\0\x03")).is_ok());
        assert!(check_magic(&Kind::Meta(Client::Incus), Some(b"hsqs....")).is_err());
        assert!(check_magic(&Kind::Root(RootType::Squashfs), None).is_ok());
    }
}
