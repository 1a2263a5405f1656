//! The protocol's names, each spelt once: the two clients, the item
//! ftypes, the keys of the combined digests, and where a product lives in
//! the tree. Every other module (and every adapter) names them through
//! these types, so a misspelling cannot compile.
//!
//! What each name means to LXD and Incus is told in
//! `docs/protocol.md#ftypes` and `docs/protocol.md#combined-digests`.

use std::fmt;

use crate::arch;

/// A simplestreams client whose rules the core follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// Canonical LXD (`lxd.tar.xz`, `lxd_requirements`).
    Lxd,
    /// Incus (`incus.tar.xz`, `requirements`).
    Incus,
}

impl Client {
    /// Both clients, in output order.
    pub const ALL: [Client; 2] = [Client::Lxd, Client::Incus];

    /// The name shown to users.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Client::Lxd => "LXD",
            Client::Incus => "Incus",
        }
    }

    /// The lower-case identifier used in machine output (`lxd`, `incus`).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Client::Lxd => "lxd",
            Client::Incus => "incus",
        }
    }

    /// Parses [`Client::id`] (`lxd`, `incus`).
    #[must_use]
    pub fn parse(id: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.id() == id)
    }

    /// This client's split metadata ftype.
    #[must_use]
    pub const fn meta(self) -> Ftype {
        match self {
            Client::Lxd => Ftype::LxdMeta,
            Client::Incus => Ftype::IncusMeta,
        }
    }

    /// This client's unified tarball ftype.
    #[must_use]
    pub const fn unified(self) -> Ftype {
        match self {
            Client::Lxd => Ftype::LxdUnified,
            Client::Incus => Ftype::IncusUnified,
        }
    }

    /// The ftype of this client's split metadata item, as text.
    #[must_use]
    pub const fn meta_ftype(self) -> &'static str {
        self.meta().as_str()
    }

    /// The ftype of this client's unified tarball item, as text.
    #[must_use]
    pub const fn combined_ftype(self) -> &'static str {
        self.unified().as_str()
    }

    /// The client-normalised architecture of a product `arch` (`amd64` →
    /// `x86_64`), or `None` when this client drops the product.
    ///
    /// Beyond the table both clients share, Incus knows `x86_64_v1`…
    /// `x86_64_v4` and LXD knows `amd64v3`; LXD also keeps only the first
    /// whitespace-separated word of the value
    /// (`shared/osarch/architectures.go` of each client).
    #[must_use]
    pub fn normalise_arch(self, raw: &str) -> Option<&'static str> {
        let lookup = match self {
            Client::Lxd => raw.split_whitespace().next().unwrap_or(""),
            Client::Incus => raw,
        };
        arch::normalise(lookup).or_else(|| {
            // Every one-client name in the table is an x86_64 level.
            (arch::only_known_to(lookup) == Some(self.name())).then_some("x86_64")
        })
    }
}

impl serde::Serialize for Client {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an item of a given ftype is to the clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A split-image metadata tarball, paired with the roots of its version.
    Metadata,
    /// A unified tarball (metadata and root in one file).
    Unified,
    /// A root file: a container filesystem or a VM disk.
    Root,
    /// A VCDIFF delta that patches the root of an older version.
    Delta,
}

/// Every ftype some client reads (`shared/simplestreams/products.go`,
/// `ToAPI` in Incus and `ToLXD` in LXD). Any other ftype is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ftype {
    /// `lxd.tar.xz`: LXD's split metadata.
    LxdMeta,
    /// `incus.tar.xz`: Incus's split metadata.
    IncusMeta,
    /// `lxd_combined.tar.gz`: LXD's unified tarball.
    LxdUnified,
    /// `incus_combined.tar.gz`: Incus's unified tarball.
    IncusUnified,
    /// `squashfs`: a SquashFS container root.
    Squashfs,
    /// `root.tar.xz`: a tarball container root.
    RootTarXz,
    /// `disk-kvm.img`: a qcow2 VM disk.
    DiskKvm,
    /// `uefi1.img`: a legacy Ubuntu VM disk (read, never written).
    Uefi1,
    /// `disk1.img`: a legacy Ubuntu VM disk (read, never written).
    Disk1,
    /// `squashfs.vcdiff`: a delta of a `squashfs` root.
    SquashfsDelta,
    /// `disk-kvm.img.vcdiff`: a delta of a `disk-kvm.img` root.
    DiskKvmDelta,
}

impl Ftype {
    /// Every ftype.
    pub const ALL: [Ftype; 11] = [
        Ftype::LxdMeta,
        Ftype::IncusMeta,
        Ftype::LxdUnified,
        Ftype::IncusUnified,
        Ftype::Squashfs,
        Ftype::RootTarXz,
        Ftype::DiskKvm,
        Ftype::Uefi1,
        Ftype::Disk1,
        Ftype::SquashfsDelta,
        Ftype::DiskKvmDelta,
    ];

    /// The root ftypes, in the order the clients prefer them when two
    /// images compete for an alias (`shared/simplestreams/sort.go`).
    pub const ROOTS: [Ftype; 5] = [
        Ftype::Squashfs,
        Ftype::RootTarXz,
        Ftype::DiskKvm,
        Ftype::Uefi1,
        Ftype::Disk1,
    ];

    /// The ftype spelt `text`, if a client reads it.
    #[must_use]
    pub fn parse(text: &str) -> Option<Ftype> {
        Ftype::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The spelling in a catalog.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Ftype::LxdMeta => "lxd.tar.xz",
            Ftype::IncusMeta => "incus.tar.xz",
            Ftype::LxdUnified => "lxd_combined.tar.gz",
            Ftype::IncusUnified => "incus_combined.tar.gz",
            Ftype::Squashfs => "squashfs",
            Ftype::RootTarXz => "root.tar.xz",
            Ftype::DiskKvm => "disk-kvm.img",
            Ftype::Uefi1 => "uefi1.img",
            Ftype::Disk1 => "disk1.img",
            Ftype::SquashfsDelta => "squashfs.vcdiff",
            Ftype::DiskKvmDelta => "disk-kvm.img.vcdiff",
        }
    }

    /// What the item is.
    #[must_use]
    pub const fn class(self) -> Class {
        match self {
            Ftype::LxdMeta | Ftype::IncusMeta => Class::Metadata,
            Ftype::LxdUnified | Ftype::IncusUnified => Class::Unified,
            Ftype::Squashfs | Ftype::RootTarXz | Ftype::DiskKvm | Ftype::Uefi1 | Ftype::Disk1 => {
                Class::Root
            }
            Ftype::SquashfsDelta | Ftype::DiskKvmDelta => Class::Delta,
        }
    }

    /// Whether a root (or a delta) of this ftype makes a virtual-machine
    /// image. A unified tarball's type is not in its ftype.
    #[must_use]
    pub const fn is_vm(self) -> bool {
        matches!(
            self,
            Ftype::DiskKvm | Ftype::Uefi1 | Ftype::Disk1 | Ftype::DiskKvmDelta
        )
    }

    /// The client that reads this metadata or unified ftype (the other
    /// client ignores it); `None` for roots and deltas, which both read.
    #[must_use]
    pub const fn client(self) -> Option<Client> {
        match self {
            Ftype::LxdMeta | Ftype::LxdUnified => Some(Client::Lxd),
            Ftype::IncusMeta | Ftype::IncusUnified => Some(Client::Incus),
            _ => None,
        }
    }

    /// The name a version directory gives a file of this ftype, the one
    /// [`crate::classify::by_name`] classifies back to it: what a build,
    /// an import and a mirror write. `None` for deltas (named after their
    /// base) and for the legacy disks the core never writes.
    #[must_use]
    pub const fn file_name(self) -> Option<&'static str> {
        Some(match self {
            Ftype::LxdMeta => "lxd.tar.xz",
            Ftype::IncusMeta => "incus.tar.xz",
            Ftype::LxdUnified => "lxd_combined.tar.gz",
            Ftype::IncusUnified => "incus_combined.tar.gz",
            Ftype::Squashfs => "rootfs.squashfs",
            // The ftype's own spelling, as `ssgen import` and `ssgen mirror`
            // have always written it; `rootfs.tar.xz` (lxc-ci's name) is
            // read as the same thing.
            Ftype::RootTarXz => "root.tar.xz",
            Ftype::DiskKvm => "disk.qcow2",
            Ftype::Uefi1 | Ftype::Disk1 | Ftype::SquashfsDelta | Ftype::DiskKvmDelta => {
                return None;
            }
        })
    }

    /// The key on a metadata item that carries the fingerprint of its pair
    /// with a root of this ftype (before any fallback).
    #[must_use]
    pub const fn combined_key(self) -> Option<CombinedKey> {
        Some(match self {
            Ftype::Squashfs => CombinedKey::Squashfs,
            Ftype::RootTarXz => CombinedKey::RootXz,
            Ftype::DiskKvm => CombinedKey::DiskKvm,
            Ftype::Uefi1 => CombinedKey::Uefi1,
            Ftype::Disk1 => CombinedKey::Disk1,
            _ => return None,
        })
    }

    /// The delta ftype that patches this root, for the roots the clients
    /// patch.
    #[must_use]
    pub const fn delta(self) -> Option<Ftype> {
        match self {
            Ftype::Squashfs => Some(Ftype::SquashfsDelta),
            Ftype::DiskKvm => Some(Ftype::DiskKvmDelta),
            _ => None,
        }
    }

    /// The root ftype a delta patches.
    #[must_use]
    pub const fn delta_of(self) -> Option<Ftype> {
        match self {
            Ftype::SquashfsDelta => Some(Ftype::Squashfs),
            Ftype::DiskKvmDelta => Some(Ftype::DiskKvm),
            _ => None,
        }
    }

    /// The clients' preference among roots for an alias: 0 is best. Any
    /// other ftype (the unified `tar.gz` type included) ranks with
    /// `squashfs`, as in `shared/simplestreams/sort.go`.
    #[must_use]
    pub fn rank(ftype: &str) -> usize {
        Ftype::ROOTS
            .iter()
            .position(|f| f.as_str() == ftype)
            .unwrap_or(0)
    }
}

impl fmt::Display for Ftype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Ftype {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Ftype {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The keys on a metadata item that carry a pair's fingerprint,
/// `sha256(metadata ‖ root)` (`docs/protocol.md#combined-digests`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CombinedKey {
    /// `combined_squashfs_sha256`.
    Squashfs,
    /// `combined_disk-kvm-img_sha256` (hyphens: the underscore spelling is
    /// read by no client).
    DiskKvm,
    /// `combined_rootxz_sha256`.
    RootXz,
    /// `combined_sha256`: the legacy key for `root.tar.xz`, read when
    /// `combined_rootxz_sha256` is empty.
    Legacy,
    /// `combined_disk1-img_sha256`.
    Disk1,
    /// `combined_uefi1-img_sha256`.
    Uefi1,
}

impl CombinedKey {
    /// Every key, in the order the decoder and the lint list them.
    pub const ALL: [CombinedKey; 6] = [
        CombinedKey::Squashfs,
        CombinedKey::DiskKvm,
        CombinedKey::RootXz,
        CombinedKey::Legacy,
        CombinedKey::Disk1,
        CombinedKey::Uefi1,
    ];

    /// The spelling in a catalog.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            CombinedKey::Squashfs => "combined_squashfs_sha256",
            CombinedKey::DiskKvm => "combined_disk-kvm-img_sha256",
            CombinedKey::RootXz => "combined_rootxz_sha256",
            CombinedKey::Legacy => "combined_sha256",
            CombinedKey::Disk1 => "combined_disk1-img_sha256",
            CombinedKey::Uefi1 => "combined_uefi1-img_sha256",
        }
    }

    /// The key spelt `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<CombinedKey> {
        CombinedKey::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The keys for a root of `root`: a client tries them in order (the
    /// first non-empty one wins; `root.tar.xz` falls back to
    /// `combined_sha256`), and a catalog writes them all, for older tools.
    #[must_use]
    pub fn for_root(root: Ftype) -> &'static [CombinedKey] {
        match root {
            Ftype::Squashfs => &[CombinedKey::Squashfs],
            Ftype::RootTarXz => &[CombinedKey::RootXz, CombinedKey::Legacy],
            Ftype::DiskKvm => &[CombinedKey::DiskKvm],
            Ftype::Disk1 => &[CombinedKey::Disk1],
            Ftype::Uefi1 => &[CombinedKey::Uefi1],
            _ => &[],
        }
    }
}

impl fmt::Display for CombinedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Container or virtual machine: what a root of a VM ftype, or a
/// unified tarball marked so, makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageType {
    /// `container`.
    Container,
    /// `virtual-machine`.
    VirtualMachine,
}

impl ImageType {
    /// The API name (`container`, `virtual-machine`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ImageType::Container => "container",
            ImageType::VirtualMachine => "virtual-machine",
        }
    }
}

impl fmt::Display for ImageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the name of a unified tarball ends in a version directory
/// (`incus_combined.tar.gz`, `lxd_combined.tar.gz` or any other prefix).
pub const UNIFIED_SUFFIX: &str = "_combined.tar.gz";

/// The directory every image lives under, relative to the server root.
pub const IMAGES: &str = "images";

/// Where a product lives: `images/<os>/<release>/<arch>/<variant>`, and its
/// id in the catalog, `<os>:<release>:<arch>:<variant>` (the order lxc-ci
/// uses). Both forms are built and parsed here only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProductPath {
    /// The os directory name (`debian`).
    pub os: String,
    /// The release directory name (`12`).
    pub release: String,
    /// The architecture directory name (`amd64`).
    pub arch: String,
    /// The variant directory name (`default`).
    pub variant: String,
}

impl ProductPath {
    /// A product path from its four names.
    #[must_use]
    pub fn new(
        os: impl Into<String>,
        release: impl Into<String>,
        arch: impl Into<String>,
        variant: impl Into<String>,
    ) -> Self {
        Self {
            os: os.into(),
            release: release.into(),
            arch: arch.into(),
            variant: variant.into(),
        }
    }

    fn parts(&self) -> [&str; 4] {
        [&self.os, &self.release, &self.arch, &self.variant]
    }

    /// `images/<os>/<release>/<arch>/<variant>`.
    #[must_use]
    pub fn dir(&self) -> String {
        let [os, release, arch, variant] = self.parts();
        format!("{IMAGES}/{os}/{release}/{arch}/{variant}")
    }

    /// `images/<os>/<release>/<arch>/<variant>/<version>`.
    #[must_use]
    pub fn version_dir(&self, version: &str) -> String {
        format!("{}/{version}", self.dir())
    }

    /// The product id, `<os>:<release>:<arch>:<variant>`.
    #[must_use]
    pub fn id(&self) -> String {
        self.parts().join(":")
    }

    /// Parses [`ProductPath::dir`]: exactly `images/` and four non-empty
    /// names (not checked further: see [`crate::rules::is_dir_name`]).
    #[must_use]
    pub fn parse_dir(dir: &str) -> Option<Self> {
        let rest = dir.strip_prefix(IMAGES)?.strip_prefix('/')?;
        Self::from_parts(rest.split('/'))
    }

    /// Parses [`ProductPath::id`]: four non-empty names joined by `:`.
    #[must_use]
    pub fn parse_id(id: &str) -> Option<Self> {
        Self::from_parts(id.split(':'))
    }

    /// Splits a path under `images/` that reaches at least a product
    /// directory into the product and what follows it (`""` for the
    /// directory itself, else `<version>/<file>` or deeper).
    #[must_use]
    pub fn split_path(path: &str) -> Option<(Self, &str)> {
        let rest = path.strip_prefix(IMAGES)?.strip_prefix('/')?;
        let mut parts = rest.splitn(5, '/');
        let four: Vec<&str> = parts.by_ref().take(4).collect();
        let product = Self::from_parts(four.into_iter())?;
        Some((product, parts.next().unwrap_or("")))
    }

    fn from_parts<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<Self> {
        let mut next = || parts.next().filter(|p| !p.is_empty());
        let path = Self::new(next()?, next()?, next()?, next()?);
        parts.next().is_none().then_some(path)
    }
}

impl fmt::Display for ProductPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftypes_parse_back_and_classify() {
        for f in Ftype::ALL {
            assert_eq!(Ftype::parse(f.as_str()), Some(f), "{f}");
        }
        assert_eq!(Ftype::parse("disk.qcow2"), None);
        assert_eq!(Ftype::parse("SQUASHFS"), None);
        let roots: Vec<Ftype> = Ftype::ALL
            .into_iter()
            .filter(|f| f.class() == Class::Root)
            .collect();
        assert_eq!(roots.len(), Ftype::ROOTS.len());
        for f in Ftype::ROOTS {
            assert!(f.combined_key().is_some(), "{f}");
        }
        assert!(Ftype::DiskKvm.is_vm() && !Ftype::Squashfs.is_vm());
        assert_eq!(Ftype::SquashfsDelta.delta_of(), Some(Ftype::Squashfs));
        assert_eq!(Ftype::DiskKvm.delta(), Some(Ftype::DiskKvmDelta));
        assert_eq!(Client::Lxd.meta().client(), Some(Client::Lxd));
        assert_eq!(Client::Incus.unified().class(), Class::Unified);
        assert_eq!(Ftype::rank("tar.gz"), Ftype::rank("squashfs"));
        assert!(Ftype::rank("disk-kvm.img") > Ftype::rank("root.tar.xz"));
    }

    #[test]
    fn combined_keys_parse_back() {
        for k in CombinedKey::ALL {
            assert_eq!(CombinedKey::parse(k.as_str()), Some(k));
        }
        assert_eq!(CombinedKey::parse("combined_disk_kvm_img_sha256"), None);
        assert_eq!(
            CombinedKey::for_root(Ftype::RootTarXz),
            [CombinedKey::RootXz, CombinedKey::Legacy]
        );
        assert!(CombinedKey::for_root(Ftype::LxdMeta).is_empty());
    }

    #[test]
    fn product_paths_round_trip() {
        let p = ProductPath::new("debian", "12", "amd64", "cloud");
        assert_eq!(p.dir(), "images/debian/12/amd64/cloud");
        assert_eq!(p.id(), "debian:12:amd64:cloud");
        assert_eq!(ProductPath::parse_dir(&p.dir()), Some(p.clone()));
        assert_eq!(ProductPath::parse_id(&p.id()), Some(p.clone()));
        assert_eq!(
            ProductPath::split_path("images/debian/12/amd64/cloud/20260801_0312/disk.qcow2"),
            Some((p.clone(), "20260801_0312/disk.qcow2"))
        );
        assert_eq!(
            ProductPath::split_path("images/debian/12/amd64/cloud"),
            Some((p, ""))
        );
        for bad in [
            "images/debian/12/amd64",
            "images//12/amd64/cloud",
            "streams/debian/12/amd64/cloud",
            "images/a/b/c/d/e",
            "imagesx/a/b/c/d",
        ] {
            assert_eq!(ProductPath::parse_dir(bad), None, "{bad}");
        }
        assert_eq!(ProductPath::parse_id("a:b:c"), None);
        assert_eq!(ProductPath::parse_id("a:b:c:d:e"), None);
    }
}
