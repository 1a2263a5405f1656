//! Reads `metadata.yaml` out of an image's metadata tarball or unified
//! tarball (`docs/protocol.md#metadata-yaml`), for `ssgen import` and the page.
//!
//! The tarball may be xz- or gzip-compressed or a plain tar: the compression
//! is detected by magic bytes, never taken from a file name (the clients do
//! the same, `docs/protocol.md#ftypes`). Decompression streams through pure-Rust decoders
//! into a small tar walker, so memory stays bounded whatever the size of the
//! tarball: only `metadata.yaml` itself is kept. Reading stops as soon as the
//! answer is known: once `metadata.yaml` and the unified-image marker
//! (`rootfs/` or `rootfs.img`) have been seen, or at the first entry that no
//! image tarball holds (then the tarball is a root filesystem, reported as
//! [`MetadataError::NotImageTarball`]).
//!
//! ```
//! # fn tar_xz() -> Vec<u8> {
//! #     let yaml = b"architecture: x86_64\ncreation_date: 1785556320\nproperties:\n  os: debian\n  release: \"12\"\n";
//! #     let mut b = tar::Builder::new(Vec::new());
//! #     let mut h = tar::Header::new_ustar();
//! #     h.set_size(yaml.len() as u64);
//! #     h.set_cksum();
//! #     b.append_data(&mut h, "metadata.yaml", &yaml[..]).unwrap();
//! #     let tar = b.into_inner().unwrap();
//! #     let mut xz = Vec::new();
//! #     lzma_rs::xz_compress(&mut tar.as_slice(), &mut xz).unwrap();
//! #     xz
//! # }
//! let meta = ssgen_core::metadata::read(&tar_xz()).unwrap();
//! assert_eq!(meta.architecture, "x86_64");
//! assert_eq!(meta.creation_date, 1_785_556_320);
//! assert_eq!(meta.properties["release"], "12");
//! assert_eq!(meta.unified, None);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

use crate::arch;
use crate::classify::Magic;

/// `metadata.yaml` larger than this is refused: distrobuilder's are a few
/// kilobytes, and the reader must not grow with hostile input.
pub const YAML_LIMIT: u64 = 1 << 20;

/// The xz decoder's memory limit: `xz -9` needs a 64 MiB dictionary; a
/// file asking for more is refused instead of exhausting memory.
const XZ_MEM_LIMIT_KIB: u32 = 256 * 1024;

/// Long names (GNU `L` entries, pax headers) longer than this are skipped
/// rather than kept: no name the reader looks for is that long.
const NAME_LIMIT: u64 = 64 << 10;

/// What a unified tarball holds besides `metadata.yaml` (`docs/protocol.md#pairing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnifiedKind {
    /// A `rootfs/` directory: a container image.
    Container,
    /// A `rootfs.img` disk: a virtual-machine image.
    VirtualMachine,
}

/// How the tarball was compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// xz (`.tar.xz`).
    Xz,
    /// gzip (`.tar.gz`).
    Gzip,
    /// Not compressed (a plain tar).
    None,
}

/// What an image's `metadata.yaml` says, and what the tarball holds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageMetadata {
    /// Top-level `architecture`, as written (e.g. `x86_64`).
    pub architecture: String,
    /// `creation_date`, Unix seconds (never 0).
    pub creation_date: i64,
    /// `expiry_date`, Unix seconds, when present.
    pub expiry_date: Option<i64>,
    /// `properties` (os, release, variant, architecture, description, …),
    /// scalars turned into strings as the clients' YAML decoder does.
    pub properties: BTreeMap<String, String>,
    /// `Some` for a unified tarball (metadata and root in one file).
    pub unified: Option<UnifiedKind>,
    /// How the tarball was compressed.
    pub compression: Compression,
}

impl ImageMetadata {
    /// The architecture a product should be filed under: the property
    /// (distrobuilder writes the Debian-style name there) or, when absent
    /// or empty, the top-level key.
    #[must_use]
    pub fn image_arch(&self) -> &str {
        match self.properties.get("architecture") {
            Some(a) if !a.trim().is_empty() => a.trim(),
            _ => self.architecture.trim(),
        }
    }

    /// A property, `None` when absent or blank.
    #[must_use]
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

impl MetadataError {
    /// Whether the daemons would refuse to import an image whose metadata
    /// tarball gives this error (`getImageMetadata` in Incus's
    /// `cmd/incusd/images.go` and LXD's `lxd/images.go`): every error but
    /// those that say only that ssgen itself cannot read the tarball (a
    /// compression it has no decoder for, an oversized `metadata.yaml`, an
    /// IO error).
    #[must_use]
    pub fn breaks_import(&self) -> bool {
        match self {
            Self::NotTarball { .. }
            | Self::Corrupt(_)
            | Self::Truncated(_)
            | Self::NoMetadataYaml
            | Self::NotImageTarball { .. }
            | Self::NotRegularFile { .. }
            | Self::Empty
            | Self::UnknownArchitecture { .. }
            | Self::Yaml(_)
            | Self::MissingKey { .. }
            | Self::WrongType { .. } => true,
            // ssgen cannot tell; the daemons may read it.
            Self::UnsupportedCompression(_) | Self::TooLarge(_) | Self::Read(_) => false,
        }
    }
}

/// The `metadata.yaml` of an image that came without one (a disk image
/// made by another tool): top-level `architecture` (the kernel's name, e.g.
/// `x86_64`) and `creation_date`, the given `properties`, and no
/// templates. Values are quoted as YAML needs, so [`parse_yaml`] reads
/// back exactly what was given.
#[must_use]
pub fn generated_yaml(
    architecture: &str,
    creation_date: i64,
    properties: &BTreeMap<String, String>,
) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        architecture: &'a str,
        creation_date: i64,
        properties: &'a BTreeMap<String, String>,
        templates: BTreeMap<String, String>,
    }
    let doc = Doc {
        architecture,
        creation_date,
        properties,
        templates: BTreeMap::new(),
    };
    // Strings, an integer and maps of strings always serialise.
    serde_norway::to_string(&doc).unwrap_or_default()
}

/// Why a tarball's metadata could not be read. Each message says what is
/// wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The bytes are not a tarball (or a compressed one) at all.
    #[error(
        "is not a tarball: {found}; give the metadata tarball of the export (e.g. meta-<hash>.tar.xz)"
    )]
    NotTarball {
        /// What the bytes look like instead.
        found: String,
    },
    /// A compression this reader has no decoder for.
    #[error(
        "is compressed with {0}, which ssgen cannot read; recompress it with xz (`{0} -dc F | xz > F.tar.xz`) or gzip"
    )]
    UnsupportedCompression(&'static str),
    /// The compressed stream or the tar framing is damaged.
    #[error("is corrupt ({0}); export or download the image again")]
    Corrupt(String),
    /// The input ends early.
    #[error("is truncated ({0}); the copy is incomplete, export or download it again")]
    Truncated(String),
    /// A valid tarball without `metadata.yaml`.
    #[error(
        "has no metadata.yaml; an image tarball holds metadata.yaml at its top (this may be a root filesystem tarball)"
    )]
    NoMetadataYaml,
    /// A tarball whose entries are not those of an image tarball (a root
    /// filesystem tarball, or something else).
    #[error(
        "is not an image metadata tarball: it holds {entry:?} before any metadata.yaml (an image tarball holds only metadata.yaml, templates/ and rootfs)"
    )]
    NotImageTarball {
        /// The first entry that no image tarball holds.
        entry: String,
    },
    /// `metadata.yaml` is a link or another special entry, which the
    /// daemons read as empty.
    #[error(
        "metadata.yaml is {kind} in the tarball, which the daemons cannot read; put the file itself in the tarball"
    )]
    NotRegularFile {
        /// What the entry is.
        kind: &'static str,
    },
    /// `metadata.yaml` holds nothing (or only `~`).
    #[error(
        "metadata.yaml is empty, so it names no architecture and no creation date; write them (e.g. `architecture: x86_64` and `creation_date: 1785556320`)"
    )]
    Empty,
    /// `architecture` names no architecture both clients know.
    #[error(
        "metadata.yaml: \"architecture\" is {found:?}, unknown to {who}; use a name such as x86_64, aarch64 or armv7l"
    )]
    UnknownArchitecture {
        /// The value.
        found: String,
        /// Who does not know it.
        who: &'static str,
    },
    /// `metadata.yaml` is too large to be one.
    #[error(
        "metadata.yaml is {0} bytes, more than the 1 MiB a metadata file can be; check the export"
    )]
    TooLarge(u64),
    /// `metadata.yaml` is not valid YAML.
    #[error("metadata.yaml: is not valid YAML ({0}); fix the syntax and export again")]
    Yaml(String),
    /// A required key is missing.
    #[error("metadata.yaml: {key:?} is missing; {fix}")]
    MissingKey {
        /// The key (`properties.os` for nested ones).
        key: &'static str,
        /// How to fix it.
        fix: &'static str,
    },
    /// A key has the wrong type or an impossible value.
    #[error("metadata.yaml: {key:?} is {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What it holds, shown briefly.
        found: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The caller's reader failed.
    #[error("cannot be read: {0}")]
    Read(#[source] io::Error),
}

/// Reads the metadata of an in-memory tarball.
///
/// # Errors
/// A [`MetadataError`] naming the problem and its fix.
pub fn read(tarball: &[u8]) -> Result<ImageMetadata, MetadataError> {
    read_from(tarball)
}

/// Reads the metadata from the first bytes of a tarball, for callers that
/// read a large file piece by piece (the page slices a multi-GB unified
/// tarball): `Ok(None)` when `prefix` ends before the answer is known, so
/// the caller should retry with a longer prefix (or the whole file).
///
/// # Errors
/// A [`MetadataError`] naming the problem and its fix; never
/// [`MetadataError::Truncated`].
pub fn read_prefix(prefix: &[u8]) -> Result<Option<ImageMetadata>, MetadataError> {
    match read_from(prefix) {
        Ok(meta) => Ok(Some(meta)),
        Err(MetadataError::Truncated(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the metadata of a tarball from any reader, streaming: memory is
/// bounded by the decoder's window and `metadata.yaml`, and reading stops
/// once the answer is known.
///
/// # Errors
/// A [`MetadataError`] naming the problem and its fix.
pub fn read_from<R: Read>(mut reader: R) -> Result<ImageMetadata, MetadataError> {
    read_any(&mut reader)
}

/// [`read_from`] for any reader, in one copy of the decoders whatever the
/// callers' reader types (the page ships every copy; one call through a
/// vtable per buffer fill costs nothing).
fn read_any(reader: &mut dyn Read) -> Result<ImageMetadata, MetadataError> {
    let mut input = BufReader::with_capacity(64 << 10, reader);
    let head = input.fill_buf().map_err(MetadataError::Read)?.to_vec();
    let mut walker = TarWalker::default();
    let compression = match Magic::detect(&head) {
        Some(Magic::Xz) => {
            let mut decoder = lzma_rust2::XzReader::new_mem_limit(input, true, XZ_MEM_LIMIT_KIB);
            let result = io::copy(&mut decoder, &mut walker).map(|_| ());
            settle(&walker, result.map_err(|e| decoder_error("xz", &e)))?;
            Compression::Xz
        }
        Some(Magic::Gzip) => {
            let mut decoder = flate2::bufread::MultiGzDecoder::new(input);
            let result = io::copy(&mut decoder, &mut walker).map(|_| ());
            settle(&walker, result.map_err(|e| decoder_error("gzip", &e)))?;
            Compression::Gzip
        }
        Some(m @ (Magic::Bzip2 | Magic::Zstd)) => {
            return Err(MetadataError::UnsupportedCompression(m.name()));
        }
        Some(m @ (Magic::Squashfs | Magic::Qcow2)) => {
            return Err(MetadataError::NotTarball {
                found: format!("it is a {} image", m.name()),
            });
        }
        None if looks_like_tar(&head) => {
            let result = io::copy(&mut input, &mut walker).map(|_| ());
            settle(&walker, result.map_err(|e| decoder_error("tar", &e)))?;
            Compression::None
        }
        None => {
            return Err(MetadataError::NotTarball {
                found: if head.is_empty() {
                    "the file is empty".to_owned()
                } else {
                    "no xz, gzip or tar signature".to_owned()
                },
            });
        }
    };
    walker.finish(compression)
}

/// A plain tar has `ustar` at offset 257 (POSIX and GNU formats).
fn looks_like_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// The error a decoder returned: our own early stop is success; the
/// walker's own verdicts pass through; anything else is damage.
fn settle(walker: &TarWalker, result: Result<(), MetadataError>) -> Result<(), MetadataError> {
    if walker.stop.is_some() {
        return Ok(());
    }
    result
}

fn decoder_error(what: &str, e: &io::Error) -> MetadataError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            MetadataError::Truncated(format!("the {what} stream ends early"))
        }
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
            MetadataError::Corrupt(format!("{what}: {e}"))
        }
        _ => MetadataError::Read(io::Error::new(e.kind(), e.to_string())),
    }
}

/// Why the walker stopped the decoder early.
#[derive(Debug)]
enum Stop {
    /// Everything needed is known.
    Done,
    /// The walker found a problem (kept until `finish`).
    Failed(MetadataError),
}

/// What the current entry's data is for.
#[derive(Debug, Default, PartialEq, Eq)]
enum Capture {
    /// Skipped.
    #[default]
    Skip,
    /// `metadata.yaml`.
    Yaml,
    /// A GNU long name for the next entry.
    LongName,
    /// A pax extended header for the next entry.
    Pax,
}

/// A push-based tar reader: the decoder writes into it; it keeps only the
/// entries it needs and stops the decoder (with an error it recognises)
/// once it knows enough.
#[derive(Debug, Default)]
struct TarWalker {
    header: Vec<u8>,
    /// Data bytes left in the current entry, padding included.
    remaining: u64,
    /// Data bytes (without padding) of the current entry still to capture.
    capture_left: u64,
    capture: Capture,
    buf: Vec<u8>,
    next_name: Option<String>,
    yaml: Option<Vec<u8>>,
    unified: Option<UnifiedKind>,
    ended: bool,
    stop: Option<Stop>,
    entries: u64,
}

impl Write for TarWalker {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.stop.is_some() {
            return Err(io::Error::other("stopped"));
        }
        let mut rest = data;
        while !rest.is_empty() && !self.ended {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                let take = usize::try_from(self.capture_left)
                    .unwrap_or(usize::MAX)
                    .min(n);
                if take > 0 && self.capture != Capture::Skip {
                    self.buf.extend_from_slice(&rest[..take]);
                }
                self.capture_left -= take as u64;
                self.remaining -= n as u64;
                rest = &rest[n..];
                if self.remaining == 0 {
                    self.entry_done();
                }
            } else {
                let n = (512 - self.header.len()).min(rest.len());
                self.header.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if self.header.len() == 512 {
                    let header = std::mem::take(&mut self.header);
                    self.on_header(&header);
                }
            }
            if self.stop.is_some() {
                return Err(io::Error::other("stopped"));
            }
        }
        // After the end-of-archive block, the rest is zero padding.
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for sizes of 8 GiB and more.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

impl TarWalker {
    fn fail(&mut self, e: MetadataError) {
        self.stop = Some(Stop::Failed(e));
    }

    fn on_header(&mut self, h: &[u8]) {
        if h.iter().all(|&b| b == 0) {
            self.ended = true;
            return;
        }
        let stored = octal(&h[148..156]);
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != Some(sum) {
            let what = if self.entries == 0 {
                "the data is not a tar archive (bad header checksum)"
            } else {
                "a tar header's checksum is wrong"
            };
            self.fail(MetadataError::Corrupt(what.to_owned()));
            return;
        }
        self.entries += 1;
        let Some(size) = octal(&h[124..136]) else {
            self.fail(MetadataError::Corrupt("a tar header has a bad size".into()));
            return;
        };
        let kind = h[156];
        let mut name = cstr(&h[0..100]);
        if &h[257..262] == b"ustar" {
            let prefix = cstr(&h[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        if let Some(long) = self.next_name.take() {
            name = long;
        }
        self.remaining = size.div_ceil(512) * 512;
        self.capture_left = 0;
        self.capture = Capture::Skip;
        self.buf.clear();
        match kind {
            b'L' | b'x' if size <= NAME_LIMIT => {
                self.capture = if kind == b'L' {
                    Capture::LongName
                } else {
                    Capture::Pax
                };
                self.capture_left = size;
            }
            b'L' | b'x' | b'g' | b'K' => {}
            _ => self.on_entry(&name, kind, size),
        }
        if self.remaining == 0 && self.stop.is_none() {
            self.entry_done();
        }
    }

    fn on_entry(&mut self, raw: &str, kind: u8, size: u64) {
        let mut name = raw;
        while let Some(rest) = name.strip_prefix("./") {
            name = rest;
        }
        let name = name.trim_end_matches('/');
        let is_dir = kind == b'5';
        match name {
            "" | "." => {}
            "metadata.yaml" if !is_dir => {
                // The daemons read the entry's own bytes: a link has none.
                if !matches!(kind, b'0' | 0 | b'7') {
                    self.fail(MetadataError::NotRegularFile {
                        kind: entry_kind(kind),
                    });
                    return;
                }
                if size > YAML_LIMIT {
                    self.fail(MetadataError::TooLarge(size));
                    return;
                }
                self.capture = Capture::Yaml;
                self.capture_left = size;
            }
            "rootfs.img" if !is_dir => self.mark(UnifiedKind::VirtualMachine),
            "rootfs" => self.mark(UnifiedKind::Container),
            n if n.starts_with("rootfs/") => self.mark(UnifiedKind::Container),
            n if n == "templates" || n.starts_with("templates/") => {}
            other => {
                if self.yaml.is_none() {
                    self.fail(MetadataError::NotImageTarball {
                        entry: other.to_owned(),
                    });
                }
            }
        }
    }

    fn mark(&mut self, kind: UnifiedKind) {
        if self.unified.is_none() {
            self.unified = Some(kind);
        }
        if self.yaml.is_some() {
            self.stop = Some(Stop::Done);
        }
    }

    fn entry_done(&mut self) {
        let data = std::mem::take(&mut self.buf);
        match std::mem::take(&mut self.capture) {
            Capture::Skip => {}
            Capture::Yaml => {
                self.yaml = Some(data);
                if self.unified.is_some() {
                    self.stop = Some(Stop::Done);
                }
            }
            Capture::LongName => {
                self.next_name = Some(cstr(&data));
            }
            Capture::Pax => {
                self.next_name = pax_path(&data);
            }
        }
    }

    fn finish(mut self, compression: Compression) -> Result<ImageMetadata, MetadataError> {
        match self.stop.take() {
            Some(Stop::Failed(e)) => return Err(e),
            Some(Stop::Done) => {}
            None => {
                if self.entries == 0 && !self.ended {
                    return Err(MetadataError::Corrupt(
                        "the data holds no tar archive".into(),
                    ));
                }
                if self.remaining > 0 || !self.header.is_empty() {
                    return Err(MetadataError::Truncated(
                        "the tar archive ends inside an entry".into(),
                    ));
                }
            }
        }
        let yaml = self.yaml.ok_or(MetadataError::NoMetadataYaml)?;
        let mut meta = parse_yaml(&yaml)?;
        meta.unified = self.unified;
        meta.compression = compression;
        Ok(meta)
    }
}

/// What a tar entry is, for messages.
fn entry_kind(kind: u8) -> &'static str {
    match kind {
        b'1' => "a hard link",
        b'2' => "a symbolic link",
        b'3' | b'4' => "a device",
        b'6' => "a FIFO",
        _ => "not a regular file",
    }
}

/// The `path` record of a pax extended header (`<len> path=<name>\n`).
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = rest.get(space + 1..len)?;
        if let Some(value) = record.strip_prefix(b"path=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = rest.get(len..)?;
    }
    None
}

/// A short description of a YAML value for error messages.
fn describe(value: &serde_norway::Value) -> String {
    use serde_norway::Value;
    match value {
        Value::Null => "empty".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            format!("{short:?}")
        }
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn wrong(
    key: impl Into<String>,
    value: &serde_norway::Value,
    expected: &'static str,
) -> MetadataError {
    MetadataError::WrongType {
        key: key.into(),
        found: describe(value),
        expected,
    }
}

/// Parses `metadata.yaml` as the daemons decode it into their
/// `api.ImageMetadata` (`getImageMetadata` in Incus's
/// `cmd/incusd/images.go` and LXD's `lxd/images.go`), refusing what they
/// refuse (`docs/protocol.md#metadata-yaml`): an empty document; an
/// `architecture` that is no architecture both clients know; a
/// `creation_date` that is missing, 0 or not a number; an `expiry_date`
/// that is not a number; `properties` that are not a mapping of scalars;
/// `templates` that are not a mapping of template mappings.
///
/// # Errors
/// [`MetadataError::Yaml`], [`MetadataError::Empty`],
/// [`MetadataError::MissingKey`], [`MetadataError::UnknownArchitecture`]
/// or [`MetadataError::WrongType`].
pub fn parse_yaml(bytes: &[u8]) -> Result<ImageMetadata, MetadataError> {
    use serde_norway::Value;
    let doc: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_norway::from_slice(bytes).map_err(|e| MetadataError::Yaml(e.to_string()))?
    };
    let map = match &doc {
        Value::Mapping(map) => map,
        Value::Null => return Err(MetadataError::Empty),
        other => return Err(wrong("(document)", other, "a mapping of keys")),
    };
    let get = |k: &str| map.get(Value::String(k.to_owned()));

    let architecture = match get("architecture") {
        None | Some(Value::Null) => {
            return Err(MetadataError::MissingKey {
                key: "architecture",
                fix: "add the image's architecture, e.g. `architecture: x86_64`",
            });
        }
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(v) => {
            return Err(wrong(
                "architecture",
                v,
                "an architecture name such as x86_64 or aarch64",
            ));
        }
    };
    if arch::normalise(&architecture).is_none() {
        let who = match arch::only_known_to(&architecture) {
            Some("Incus") => "LXD, which refuses the image",
            Some(_) => "Incus, which refuses the image",
            None => "LXD and Incus, which refuse the image",
        };
        return Err(MetadataError::UnknownArchitecture {
            found: architecture,
            who,
        });
    }

    let creation_date = match get("creation_date") {
        None | Some(Value::Null) => {
            return Err(MetadataError::MissingKey {
                key: "creation_date",
                fix: "add the image's build time as Unix seconds, e.g. `creation_date: 1785556320`",
            });
        }
        Some(v) => match yaml_int(v) {
            Some(0) => {
                return Err(wrong(
                    "creation_date",
                    v,
                    "Unix seconds other than 0 (the daemons take 0 for a missing date)",
                ));
            }
            Some(t) => t,
            None => return Err(wrong("creation_date", v, "Unix seconds")),
        },
    };

    let expiry_date = match get("expiry_date") {
        None | Some(Value::Null) => None,
        Some(v) => Some(yaml_int(v).ok_or_else(|| wrong("expiry_date", v, "Unix seconds"))?),
    };

    let properties = match get("properties") {
        None => BTreeMap::new(),
        Some(v) => string_map("properties", v)?,
    };

    match get("templates") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(templates)) => {
            for (path, template) in templates {
                let here = format!("templates.{}", scalar(path).unwrap_or_default());
                check_template(&here, template)?;
            }
        }
        Some(v) => {
            return Err(wrong(
                "templates",
                v,
                "a mapping of file paths to templates",
            ));
        }
    }

    Ok(ImageMetadata {
        architecture,
        creation_date,
        expiry_date,
        properties,
        unified: None,
        compression: Compression::None,
    })
}

/// An integer as Go's YAML decoders store one into an `int64`: an integer,
/// or a float that fits (truncated, as Go converts it).
fn yaml_int(value: &serde_norway::Value) -> Option<i64> {
    let serde_norway::Value::Number(n) = value else {
        return None;
    };
    n.as_i64().or_else(|| {
        let x = n.as_f64()?;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "Go truncates a float stored into an int64 the same way"
        )]
        (x.is_finite() && x.abs() < 9.0e18).then_some(x as i64)
    })
}

/// A scalar as the text Go's YAML decoders store into a `string`.
fn scalar(value: &serde_norway::Value) -> Option<String> {
    use serde_norway::Value;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A `map[string]string`: `null` is an empty map; keys and values are
/// scalars.
fn string_map(
    key: &str,
    value: &serde_norway::Value,
) -> Result<BTreeMap<String, String>, MetadataError> {
    use serde_norway::Value;
    let mut out = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Mapping(map) => {
            for (k, v) in map {
                let Some(name) = scalar(k) else {
                    return Err(wrong(format!("{key}.{}", describe(k)), k, "a string key"));
                };
                let Some(text) = scalar(v) else {
                    return Err(wrong(format!("{key}.{name}"), v, "a string"));
                };
                out.insert(name, text);
            }
        }
        other => return Err(wrong(key, other, "a mapping of names to strings")),
    }
    Ok(out)
}

/// One entry of `templates`: `null`, or a mapping whose known fields have
/// the types of Go's `api.ImageMetadataTemplate`.
fn check_template(here: &str, value: &serde_norway::Value) -> Result<(), MetadataError> {
    use serde_norway::Value;
    let map = match value {
        Value::Null => return Ok(()),
        Value::Mapping(map) => map,
        other => return Err(wrong(here, other, "a mapping (when, template, …)")),
    };
    let get = |k: &str| map.get(Value::String(k.to_owned()));
    match get("when") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(list)) => {
            if let Some(bad) = list.iter().find(|v| scalar(v).is_none()) {
                return Err(wrong(format!("{here}.when"), bad, "a list of strings"));
            }
        }
        Some(v) => return Err(wrong(format!("{here}.when"), v, "a list of strings")),
    }
    match get("create_only") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(v) => return Err(wrong(format!("{here}.create_only"), v, "true or false")),
    }
    if let Some(v) = get("template")
        && scalar(v).is_none()
    {
        return Err(wrong(format!("{here}.template"), v, "a file name"));
    }
    if let Some(v) = get("properties") {
        string_map(&format!("{here}.properties"), v)?;
    }
    Ok(())
}

impl fmt::Display for UnifiedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnifiedKind::Container => "container",
            UnifiedKind::VirtualMachine => "virtual-machine",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_yaml_reads_back_as_given() {
        let props: BTreeMap<String, String> = [
            ("os", "debian"),
            ("release", "12"),
            ("variant", "default"),
            ("description", "Debian 12: bookworm # not a comment"),
            ("serial", "20260801_03:12"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let yaml = generated_yaml("x86_64", 1_785_556_320, &props);
        let meta = parse_yaml(yaml.as_bytes()).expect("valid metadata.yaml");
        assert_eq!(meta.architecture, "x86_64");
        assert_eq!(meta.creation_date, 1_785_556_320);
        assert_eq!(meta.properties, props, "{yaml}");
    }

    const YAML: &str = "architecture: x86_64\ncreation_date: 1785556320\nexpiry_date: 1788148320\nproperties:\n  architecture: amd64\n  os: Debian\n  release: 12\n  variant: default\n  description: \"Debian 12: bookworm\"\n  serial: \"20260801_03:12\"\ntemplates:\n  /etc/hostname:\n    when: [create, copy]\n    template: hostname.tpl\n";

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
            } else {
                h.set_size(data.len() as u64);
            }
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).expect("in-memory tar");
        }
        b.into_inner().expect("in-memory tar")
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &bytes[..], &mut out).expect("in-memory xz");
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("in-memory gzip");
        e.finish().expect("in-memory gzip")
    }

    #[test]
    fn reads_xz_gzip_and_plain_metadata_tarballs() {
        let t = tar(&[
            ("metadata.yaml", YAML.as_bytes()),
            ("templates/", b""),
            ("templates/hostname.tpl", b"{{ container.name }}\n"),
        ]);
        for (bytes, compression) in [
            (xz(&t), Compression::Xz),
            (gz(&t), Compression::Gzip),
            (t.clone(), Compression::None),
        ] {
            let m = read(&bytes).expect("valid metadata tarball");
            assert_eq!(m.compression, compression);
            assert_eq!(m.architecture, "x86_64");
            assert_eq!(m.image_arch(), "amd64");
            assert_eq!(m.creation_date, 1_785_556_320);
            assert_eq!(m.expiry_date, Some(1_788_148_320));
            assert_eq!(m.property("os"), Some("Debian"));
            // An unquoted number is read as the string the clients see.
            assert_eq!(m.property("release"), Some("12"));
            assert_eq!(m.property("description"), Some("Debian 12: bookworm"));
            assert_eq!(m.unified, None);
        }
    }

    #[test]
    fn detects_unified_container_and_vm_tarballs() {
        let big = vec![0u8; 300_000];
        let container = tar(&[
            ("./", b""),
            ("./metadata.yaml", YAML.as_bytes()),
            ("./rootfs/", b""),
            ("./rootfs/etc/hostname", b"x\n"),
            ("./rootfs/big", &big),
        ]);
        let m = read(&gz(&container)).expect("unified container");
        assert_eq!(m.unified, Some(UnifiedKind::Container));

        let vm = tar(&[("rootfs.img", &big), ("metadata.yaml", YAML.as_bytes())]);
        let m = read(&gz(&vm)).expect("unified vm");
        assert_eq!(m.unified, Some(UnifiedKind::VirtualMachine));
    }

    #[test]
    fn stops_reading_once_the_answer_is_known() {
        // Everything after rootfs/ is garbage: a reader that went on would
        // fail on it.
        let mut t = tar(&[("metadata.yaml", YAML.as_bytes()), ("rootfs/", b"")]);
        t.truncate(t.len() - 1024); // drop the end-of-archive blocks
        t.extend(std::iter::repeat_n(0xAB, 4096));
        let m = read(&t).expect("answer known before the garbage");
        assert_eq!(m.unified, Some(UnifiedKind::Container));
    }

    #[test]
    fn a_prefix_answers_or_asks_for_more() {
        let big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let t = tar(&[
            ("metadata.yaml", YAML.as_bytes()),
            ("rootfs/", b""),
            ("rootfs/big", &big),
        ]);
        let g = gz(&t);
        // The answer is known from the first few kilobytes.
        let m = read_prefix(&g[..g.len() / 4])
            .expect("valid so far")
            .expect("known from the prefix");
        assert_eq!(m.unified, Some(UnifiedKind::Container));
        // Too short a prefix: ask for more.
        assert!(matches!(read_prefix(&g[..200]), Ok(None)));
        // A metadata-only tarball needs the whole file.
        let t = tar(&[("metadata.yaml", YAML.as_bytes()), ("templates/x", &big)]);
        let g = gz(&t);
        assert!(matches!(read_prefix(&g[..g.len() / 2]), Ok(None)));
        assert!(matches!(read_prefix(&g), Ok(Some(_))));
    }

    #[test]
    fn long_names_are_followed() {
        let long = format!("rootfs/{}/file", "d".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(YAML.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "metadata.yaml", YAML.as_bytes())
            .expect("tar");
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_cksum();
        b.append_data(&mut h, &long, &b"x"[..]).expect("tar");
        let t = b.into_inner().expect("tar");
        let m = read(&xz(&t)).expect("long names");
        assert_eq!(m.unified, Some(UnifiedKind::Container));
    }

    #[test]
    fn a_root_filesystem_tarball_is_told_apart() {
        let t = tar(&[("./", b""), ("./etc/", b""), ("./etc/hostname", b"x\n")]);
        match read(&xz(&t)) {
            Err(MetadataError::NotImageTarball { entry }) => assert_eq!(entry, "etc"),
            other => panic!("expected NotImageTarball, got {other:?}"),
        }
        let t = tar(&[("templates/a.tpl", b"x")]);
        assert!(matches!(read(&t), Err(MetadataError::NoMetadataYaml)));
    }

    /// What the daemons refuse to import, the reader refuses, and every
    /// refusal is one a build acts on.
    #[test]
    fn refuses_what_the_daemons_refuse() {
        let good = "architecture: x86_64\ncreation_date: 1785556320\nproperties:\n  os: debian\n";
        assert!(parse_yaml(good.as_bytes()).is_ok());
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("\n# only a comment\n", "is empty"),
            ("~\n", "is empty"),
            (
                "architecture: pdp11\ncreation_date: 5\n",
                "unknown to LXD and Incus",
            ),
            (
                "architecture: x86_64_v3\ncreation_date: 5\n",
                "unknown to LXD,",
            ),
            (
                "architecture: amd64v3\ncreation_date: 5\n",
                "unknown to Incus,",
            ),
            (
                "architecture: x86_64\ncreation_date: yesterday\n",
                "\"creation_date\" is \"yesterday\"",
            ),
            ("architecture: x86_64\ncreation_date: 0\n", "other than 0"),
            (
                "architecture: x86_64\ncreation_date: 5\nexpiry_date: soon\n",
                "expiry_date",
            ),
            (
                "architecture: x86_64\ncreation_date: 5\nproperties: [a, b]\n",
                "\"properties\" is a list",
            ),
            (
                "architecture: x86_64\ncreation_date: 5\nproperties:\n  os:\n    deep: 1\n",
                "\"properties.os\" is a mapping",
            ),
            (
                "architecture: x86_64\ncreation_date: 5\ntemplates: [a]\n",
                "\"templates\" is a list",
            ),
            (
                "architecture: x86_64\ncreation_date: 5\ntemplates:\n  /etc/hosts:\n    when: create\n",
                "templates./etc/hosts.when",
            ),
            (
                "architecture: x86_64\ncreation_date: 5\ntemplates:\n  /etc/hosts:\n    create_only: maybe\n",
                "create_only",
            ),
        ];
        for (yaml, why) in cases {
            let err = parse_yaml(yaml.as_bytes()).expect_err(yaml);
            assert!(err.to_string().contains(why), "{yaml:?}: {err}");
            assert!(err.breaks_import(), "{yaml:?}: {err}");
        }
        // What the daemons take, the reader takes: a float date (Go
        // truncates it), a negative one, scalar keys and values.
        let m = parse_yaml(b"architecture: aarch64\ncreation_date: 1785556320.7\nproperties:\n  12: true\n  x: ~\ntemplates:\n  /a:\n    when: [create]\n    create_only: true\n    template: a.tpl\n")
            .expect("valid");
        assert_eq!(m.creation_date, 1_785_556_320);
        assert_eq!(m.properties["12"], "true");
        assert_eq!(m.properties["x"], "");
        assert_eq!(
            parse_yaml(b"architecture: x86_64\ncreation_date: -5\n")
                .map(|m| m.creation_date)
                .ok(),
            Some(-5)
        );
    }

    #[test]
    fn a_linked_metadata_yaml_is_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "metadata.yaml", "real.yaml")
            .expect("tar");
        let mut h = tar::Header::new_gnu();
        h.set_size(YAML.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "real.yaml", YAML.as_bytes())
            .expect("tar");
        let t = b.into_inner().expect("tar");
        let err = read(&xz(&t)).expect_err("a link");
        assert!(
            matches!(
                err,
                MetadataError::NotRegularFile {
                    kind: "a symbolic link"
                }
            ),
            "{err:?}"
        );
        assert!(err.breaks_import());
    }

    /// `xz` writes stream padding (zero bytes in fours) after a stream when
    /// asked, and reads it back; so must the reader.
    #[test]
    fn xz_stream_padding_is_read() {
        let t = tar(&[("metadata.yaml", YAML.as_bytes())]);
        let mut padded = xz(&t);
        padded.extend_from_slice(&[0; 8]);
        let m = read(&padded).expect("padding is valid xz");
        assert_eq!(m.architecture, "x86_64");
        assert!(crate::check::check(&padded, true).is_ok());
    }

    #[test]
    fn truncated_and_corrupt_input_is_reported() {
        let t = tar(&[
            ("metadata.yaml", YAML.as_bytes()),
            ("templates/x", &[7u8; 5000]),
        ]);
        let x = xz(&t);
        let err = read(&x[..x.len() / 2]).expect_err("truncated xz");
        assert!(
            matches!(err, MetadataError::Truncated(_) | MetadataError::Corrupt(_)),
            "{err:?}"
        );
        let g = gz(&t);
        let err = read(&g[..g.len() - 20]).expect_err("truncated gzip");
        assert!(
            matches!(err, MetadataError::Truncated(_) | MetadataError::Corrupt(_)),
            "{err:?}"
        );
        // lzma-rs stores data uncompressed and without a check: damage the
        // tar header inside it, which the walker's checksum catches.
        let mut bad = x.clone();
        let at = bad
            .windows(13)
            .position(|w| w == b"metadata.yaml")
            .expect("the name is stored as is");
        bad[at] ^= 0x20;
        let err = read(&bad).expect_err("damaged tar header");
        assert!(matches!(err, MetadataError::Corrupt(_)), "{err:?}");
        // gzip's CRC catches damage anywhere.
        let mut bad = g.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xFF;
        assert!(read(&bad).is_err());
        // A plain tar cut inside an entry.
        let err = read(&t[..600]).expect_err("truncated tar");
        assert!(matches!(err, MetadataError::Truncated(_)), "{err:?}");
        // Compressed bytes that are not a tar.
        let err = read(&xz(&[0x55; 2048])).expect_err("xz of garbage");
        assert!(matches!(err, MetadataError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn other_files_are_named() {
        assert!(matches!(
            read(b"hsqs\0\0\0\0rest"),
            Err(MetadataError::NotTarball { .. })
        ));
        assert!(matches!(
            read(b"QFI\xfb\0\0\0\x03"),
            Err(MetadataError::NotTarball { .. })
        ));
        assert!(matches!(read(b""), Err(MetadataError::NotTarball { .. })));
        assert!(matches!(
            read(b"hello, this is text"),
            Err(MetadataError::NotTarball { .. })
        ));
        assert!(matches!(
            read(&[0x28, 0xB5, 0x2F, 0xFD, 0, 0]),
            Err(MetadataError::UnsupportedCompression("zstd"))
        ));
    }

    #[test]
    fn yaml_errors_name_the_key_and_the_fix() {
        let err = parse_yaml(b"architecture: x86_64\ncreation_date: yesterday\n")
            .expect_err("string date");
        assert_eq!(
            err.to_string(),
            r#"metadata.yaml: "creation_date" is "yesterday", expected Unix seconds"#
        );
        let err = parse_yaml(b"creation_date: 5\n").expect_err("no arch");
        assert!(
            err.to_string()
                .starts_with(r#"metadata.yaml: "architecture" is missing; add"#)
        );
        let err = parse_yaml(b"architecture: x86_64\n").expect_err("no date");
        assert!(matches!(
            err,
            MetadataError::MissingKey {
                key: "creation_date",
                ..
            }
        ));
        let err = parse_yaml(b"architecture: [x86_64]\ncreation_date: 5\n").expect_err("list");
        assert_eq!(
            err.to_string(),
            r#"metadata.yaml: "architecture" is a list, expected an architecture name such as x86_64 or aarch64"#
        );
        let err =
            parse_yaml(b"architecture: x86_64\ncreation_date: 5\nproperties:\n  os: {a: b}\n")
                .expect_err("map property");
        assert_eq!(
            err.to_string(),
            r#"metadata.yaml: "properties.os" is a mapping, expected a string"#
        );
        let err = parse_yaml(b"architecture: x86_64\ncreation_date: 0\n").expect_err("zero");
        assert!(matches!(err, MetadataError::WrongType { .. }));
        let err = parse_yaml(b"architecture: x86_64\ncreation_date: 1\nproperties: [1]\n")
            .expect_err("list properties");
        assert!(matches!(err, MetadataError::WrongType { .. }));
        let err = parse_yaml(b"architecture: x86_64\n  bad: indent: here\n").expect_err("syntax");
        assert!(matches!(err, MetadataError::Yaml(_)), "{err:?}");
        let err = parse_yaml(b"- a\n- b\n").expect_err("not a mapping");
        assert!(matches!(err, MetadataError::WrongType { .. }));
    }

    #[test]
    fn oversized_metadata_is_refused_without_reading_it() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(YAML_LIMIT + 1);
        h.set_cksum();
        b.append_data(
            &mut h,
            "metadata.yaml",
            io::repeat(b'#').take(YAML_LIMIT + 1),
        )
        .expect("tar");
        let t = b.into_inner().expect("tar");
        assert!(matches!(read(&t), Err(MetadataError::TooLarge(_))));
    }
}
