//! Where the files of an image export go — from `lxc image export`,
//! `incus image export`, a build pipeline or another server — so that
//! `ssgen import`, the page and `ssgen mirror` file one image in one place
//! (`docs/protocol.md#placing-an-export`):
//!
//! - what each file is, by its magic bytes and, for a tarball, by what its
//!   `metadata.yaml` says ([`identify`], [`place`]);
//! - its name in the version directory ([`Ftype::file_name`]) and the
//!   version's name ([`version_name`]);
//! - its path in the tree ([`file_path`]);
//! - the side files a mirrored product carries ([`mirror_side_files`]).
//!
//! ```
//! use ssgen_core::export::{file_path, version_name};
//! use ssgen_core::vocab::{Ftype, ProductPath};
//!
//! let product = ProductPath::new("debian", "12", "amd64", "default");
//! let version = version_name(1_785_556_320, &[]);
//! assert_eq!(version, "20260801_0352");
//! assert_eq!(
//!     file_path(&product, &version, Ftype::Squashfs),
//!     Some("images/debian/12/amd64/default/20260801_0352/rootfs.squashfs".to_owned())
//! );
//! ```

use crate::classify::{Magic, RootType};
use crate::metadata::{ImageMetadata, MetadataError, UnifiedKind};
use crate::remote;
use crate::requirements;
use crate::rules;
use crate::side::{METADATA_JSON, ProductFields};
use crate::time;
use crate::vocab::{Client, Ftype, ProductPath};

/// What one file of an export is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identified {
    /// A root file.
    Root(RootType),
    /// A metadata tarball (split image).
    Metadata,
    /// A unified tarball: metadata and root in one file.
    Unified(UnifiedKind),
    /// A tarball whose metadata was not read: [`place`] decides by the
    /// other files and sizes.
    Tarball,
    /// No image file; why, in words, with the fix.
    Not(String),
}

/// Identifies a file from its first bytes (`head`, at least
/// [`crate::HEAD_LEN`] when the file is that long) and, for a tarball, what
/// reading its metadata gave (`None` when the adapter did not read it).
///
/// A squashfs is a container root, a qcow2 a VM disk. A tarball is
/// metadata or a unified image by what its `metadata.yaml` and entries
/// say; a tarball of a root filesystem is a `root.tar.xz` root when it is
/// xz-compressed (the only compression the clients take for one).
#[must_use]
pub fn identify(head: &[u8], tarball: Option<&Result<ImageMetadata, MetadataError>>) -> Identified {
    let magic = Magic::detect(head);
    match magic {
        Some(Magic::Squashfs) => return Identified::Root(RootType::Squashfs),
        Some(Magic::Qcow2) => return Identified::Root(RootType::DiskKvm),
        Some(m) if m.is_tar_compression() => {}
        None if head.get(257..262) == Some(b"ustar") => {}
        found => {
            return Identified::Not(format!(
                "not an image file ({}); give the files an image export wrote: a metadata tarball with a squashfs, qcow2 or root.tar.xz, or a unified tarball",
                found.map_or("unrecognised bytes", Magic::name)
            ));
        }
    }
    match tarball {
        None => Identified::Tarball,
        Some(Ok(meta)) => match meta.unified {
            Some(kind) => Identified::Unified(kind),
            None => Identified::Metadata,
        },
        Some(Err(MetadataError::NotImageTarball { .. })) if magic == Some(Magic::Xz) => {
            Identified::Root(RootType::RootTarXz)
        }
        Some(Err(MetadataError::NotImageTarball { .. })) => Identified::Not(
            "a root filesystem tarball that is not xz-compressed; the clients take only root.tar.xz, so recompress it (e.g. `gzip -dc F | xz > root.tar.xz`)"
                .to_owned(),
        ),
        Some(Err(e)) => Identified::Not(e.to_string()),
    }
}

/// One file of an export, as an adapter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFile {
    /// Its name (for messages, and to keep the seeds' `lxd.tar.xz` and
    /// `incus.tar.xz` pair).
    pub name: String,
    /// Its size.
    pub size: u64,
    /// What [`identify`] made of it.
    pub identified: Identified,
}

/// Where one file of an export goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The file's name, as given.
    pub name: String,
    /// The ftype it is published under: its name in the version directory
    /// is [`Ftype::file_name`]. `None` when it is left out.
    pub target: Option<Ftype>,
    /// Why it is left out.
    pub reason: Option<String>,
}

/// Places the files of one image export in a version directory, in the
/// order given. A squashfs becomes `rootfs.squashfs`, a qcow2
/// `disk.qcow2`, an xz root filesystem tarball `root.tar.xz`; with a root,
/// a metadata tarball is `incus.tar.xz` (which serves both clients), or
/// keeps its name when the export holds both `lxd.tar.xz` and
/// `incus.tar.xz`; a unified tarball is `incus_combined.tar.gz`, whatever
/// its compression (the name is the ftype's, which names the format: the
/// daemons read the compression from the bytes, never from the name). A
/// tarball whose metadata was not read counts as metadata beside a
/// squashfs or qcow2; of two such tarballs alone the smaller is metadata
/// and the larger, if xz, the root; one alone is a unified image. A
/// second file for a place already taken is left out.
#[must_use]
pub fn place(files: &[ExportFile]) -> Vec<Placement> {
    let has_root = files
        .iter()
        .any(|f| matches!(f.identified, Identified::Root(_)));
    let unread: Vec<&ExportFile> = files
        .iter()
        .filter(|f| f.identified == Identified::Tarball)
        .collect();
    // With no other root, two unread tarballs are metadata + root.tar.xz.
    let unread_root = match unread.as_slice() {
        [a, b] if !has_root => Some(if b.size > a.size { &b.name } else { &a.name }),
        _ => None,
    };
    let metas = files
        .iter()
        .filter(|f| f.identified == Identified::Metadata)
        .count();
    let named = |client: Client| client.meta().file_name().unwrap_or_default();
    let seeds_pair = metas == 2
        && Client::ALL.into_iter().all(|c| {
            files
                .iter()
                .any(|f| f.identified == Identified::Metadata && f.name == named(c))
        });
    let mut taken: Vec<Ftype> = Vec::new();
    files
        .iter()
        .map(|f| {
            let target = match &f.identified {
                Identified::Root(root) => root.kind(),
                Identified::Metadata if seeds_pair && f.name == named(Client::Lxd) => {
                    Ftype::LxdMeta
                }
                Identified::Metadata => Ftype::IncusMeta,
                Identified::Unified(_) => Ftype::IncusUnified,
                Identified::Tarball if unread_root == Some(&f.name) => Ftype::RootTarXz,
                Identified::Tarball if has_root || unread_root.is_some() => Ftype::IncusMeta,
                Identified::Tarball => Ftype::IncusUnified,
                Identified::Not(why) => return left_out(f, why.clone()),
            };
            if taken.contains(&target) {
                let what = match target.class() {
                    crate::vocab::Class::Metadata => "metadata tarball",
                    crate::vocab::Class::Unified => "unified tarball",
                    _ => target.as_str(),
                };
                return left_out(
                    f,
                    format!("a second {what}; give the files of one image at a time"),
                );
            }
            taken.push(target);
            Placement {
                name: f.name.clone(),
                target: Some(target),
                reason: None,
            }
        })
        .collect()
}

fn left_out(f: &ExportFile, why: String) -> Placement {
    Placement {
        name: f.name.clone(),
        target: None,
        reason: Some(why),
    }
}

/// The three forms of a version name made from a time, all `YYYYMMDD`
/// first so that the clients parse the date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionForm {
    /// `YYYYMMDD_HHMM`: the default.
    Compact,
    /// `YYYYMMDD_HH:MM`: images.linuxcontainers.org and the seeds' trees.
    Colon,
    /// `YYYYMMDDhhmm`: incus-simplestreams' trees.
    Digits,
}

impl VersionForm {
    /// The form `name` has, if any.
    #[must_use]
    pub fn of(name: &str) -> Option<VersionForm> {
        if !rules::is_version_name(name) {
            return None;
        }
        match rules::version_shape(name).as_str() {
            "99999999_9999" => Some(VersionForm::Compact),
            "99999999_99:99" => Some(VersionForm::Colon),
            "999999999999" => Some(VersionForm::Digits),
            _ => None,
        }
    }

    /// `unix` (seconds) in this form, in UTC.
    #[must_use]
    pub fn format(self, unix: i64) -> String {
        let (year, month, day) = time::civil_from_days(unix.div_euclid(86_400));
        let secs = unix.rem_euclid(86_400);
        let (h, m) = (secs / 3600, secs % 3600 / 60);
        match self {
            VersionForm::Compact => format!("{year:04}{month:02}{day:02}_{h:02}{m:02}"),
            VersionForm::Colon => format!("{year:04}{month:02}{day:02}_{h:02}:{m:02}"),
            VersionForm::Digits => format!("{year:04}{month:02}{day:02}{h:02}{m:02}"),
        }
    }
}

/// The name of the version an image created at `creation_date` (Unix
/// seconds, from its `metadata.yaml`) gets, in UTC, beside the product's
/// `existing` version names.
///
/// `YYYYMMDD_HHMM` by default: LXD reads the time from it as well as the
/// date, and it holds no `:`, which some file systems and tools refuse in
/// a path. When every existing version of the product has one other form
/// (`YYYYMMDD_HH:MM` from the seeds or images.linuxcontainers.org,
/// `YYYYMMDDhhmm` from incus-simplestreams), the new one takes it too: the
/// clients sort version names byte by byte, and mixed forms would not sort
/// in time order.
#[must_use]
pub fn version_name(creation_date: i64, existing: &[&str]) -> String {
    let mut forms = existing.iter().map(|n| VersionForm::of(n));
    let form = match forms.next() {
        Some(Some(first)) if forms.all(|f| f == Some(first)) => first,
        _ => VersionForm::Compact,
    };
    form.format(creation_date)
}

/// The product directory names an image's `metadata.yaml` gives, the
/// ones `ssgen import` and the page file it under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductNames {
    /// `properties.os` as written, `None` when absent.
    pub os: Option<String>,
    /// `properties.release` as written, `None` when absent.
    pub release: Option<String>,
    /// The architecture in Debian's naming (`x86_64` → `amd64`), `None`
    /// when no client knows it.
    pub arch: Option<&'static str>,
    /// `properties.variant` as written, `default` when absent.
    pub variant: String,
}

/// Where `metadata.yaml` files an image: its properties os, release and
/// variant as written (no case is changed: the directory names are the
/// image's own), and its architecture ([`ImageMetadata::image_arch`]) in
/// Debian's naming, as the clients' aliases use it. Whether each name can
/// be a directory is for the caller to check ([`rules::is_dir_name`]), so
/// that it can say which flag or field fixes it.
#[must_use]
pub fn product_names(meta: &ImageMetadata) -> ProductNames {
    let own = |key: &str| meta.property(key).map(str::to_owned);
    ProductNames {
        os: own("os"),
        release: own("release"),
        arch: crate::arch::debian_name(meta.image_arch()),
        variant: own("variant").unwrap_or_else(|| DEFAULT_VARIANT.to_owned()),
    }
}

/// The variant of an image whose `metadata.yaml` names none.
pub const DEFAULT_VARIANT: &str = "default";

/// Where a file of `ftype` of `product`'s `version` is, relative to the
/// root: `images/<os>/<release>/<arch>/<variant>/<version>/<name>`. `None`
/// for an ftype the core never writes a file of (deltas, legacy disks).
#[must_use]
pub fn file_path(product: &ProductPath, version: &str, ftype: Ftype) -> Option<String> {
    Some(format!(
        "{}/{}",
        product.version_dir(version),
        ftype.file_name()?
    ))
}

/// Where a product of another server goes: the parts of its id when the
/// id has the usual `os:release:arch:variant` form (and that arch), else
/// its fields in lower case with spaces as `-`. `None` when a part cannot
/// be a directory name of a product ([`rules::is_product_name`]).
#[must_use]
pub fn mirror_product_path(id: &str, product: &remote::Product) -> Option<ProductPath> {
    let from_id = ProductPath::parse_id(id).filter(|p| p.arch == product.arch);
    let path = from_id.unwrap_or_else(|| {
        let dir = |s: &str| s.to_lowercase().replace(' ', "-");
        ProductPath::new(
            dir(&product.os),
            dir(&product.release),
            dir(&product.arch),
            dir(&product.variant),
        )
    });
    [&path.os, &path.release, &path.arch, &path.variant]
        .iter()
        .all(|p| rules::is_product_name(p))
        .then_some(path)
}

/// The side files a product copied from another server carries, so that a
/// build gives it the same titles, aliases and requirements: `(name,
/// text)` pairs for its variant directory.
///
/// The requirements are what each client reads of the source (Incus its
/// `requirements`, LXD its `lxd_requirements` when present, even `{}`,
/// else its `requirements`): `.requirements` holds Incus's, and a
/// `.lxd_requirements` is written only when LXD's differ, setting the keys
/// whose values differ and removing (with `null`) those LXD does not
/// apply, so a build of the side files alone gives both clients what the
/// source gave them. (A build also writes `lxd_requirements` equal to
/// `requirements` for LXD 5.0.2 and older, which read nothing else.)
#[must_use]
pub fn mirror_side_files(product: &remote::Product) -> Vec<(&'static str, String)> {
    let fields = ProductFields {
        os: Some(product.os.clone()).filter(|s| !s.is_empty()),
        release_title: Some(product.release_title.clone()).filter(|s| !s.is_empty()),
        aliases: product
            .alias_entries()
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
        other: std::collections::BTreeMap::new(),
    };
    let mut out = vec![(METADATA_JSON, fields.to_text())];
    let read = |c| product.requirements_for(c).cloned().unwrap_or_default();
    let (common, lxd) = (read(Client::Incus), read(Client::Lxd));
    if !common.is_empty() {
        out.push((requirements::FILE_NAME, requirements::to_text(&common)));
    }
    if lxd != common {
        let layer = requirements::Layer {
            set: lxd
                .iter()
                .filter(|(k, v)| common.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            removed: common
                .keys()
                .filter(|k| !lxd.contains_key(*k))
                .cloned()
                .collect(),
        };
        out.push((
            requirements::LXD_FILE_NAME,
            requirements::layer_text(&layer),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, identified: Identified) -> ExportFile {
        ExportFile {
            name: name.into(),
            size,
            identified,
        }
    }

    fn targets(files: &[ExportFile]) -> Vec<Option<&'static str>> {
        place(files)
            .into_iter()
            .map(|p| p.target.and_then(Ftype::file_name))
            .collect()
    }

    /// The import's version name and the page's used to differ
    /// (`YYYYMMDD_HH:MM` against `YYYYMMDD_HHMM`); both call this now.
    #[test]
    fn versions_are_compact_unless_the_product_has_another_form() {
        let t = 1_785_556_320; // 2026-08-01 03:52 UTC
        assert_eq!(version_name(t, &[]), "20260801_0352");
        assert_eq!(version_name(t, &["20260701_1200"]), "20260801_0352");
        assert_eq!(
            version_name(t, &["20260701_12:00", "20260702_12:00"]),
            "20260801_03:52"
        );
        assert_eq!(version_name(t, &["202607011200"]), "202608010352");
        // Mixed or unknown forms: the default.
        assert_eq!(
            version_name(t, &["20260701_12:00", "20260701_1200"]),
            "20260801_0352"
        );
        assert_eq!(version_name(t, &["latest"]), "20260801_0352");
        for form in [
            VersionForm::Compact,
            VersionForm::Colon,
            VersionForm::Digits,
        ] {
            assert_eq!(VersionForm::of(&form.format(t)), Some(form));
        }
    }

    /// The import wrote `root.tar.xz` and the page `rootfs.tar.xz`: one
    /// name now, the ftype's own.
    #[test]
    fn a_root_tarball_is_root_tar_xz() {
        let xz = [0xFD, b'7', b'z', b'X', b'Z', 0x00, 0, 0];
        let not_image = Err(MetadataError::NotImageTarball {
            entry: "etc".into(),
        });
        assert_eq!(
            identify(&xz, Some(&not_image)),
            Identified::Root(RootType::RootTarXz)
        );
        let placed = place(&[
            file("meta", 10, Identified::Tarball),
            file("root", 1000, Identified::Tarball),
        ]);
        assert_eq!(
            placed
                .iter()
                .map(|p| p.target.and_then(Ftype::file_name))
                .collect::<Vec<_>>(),
            [Some("incus.tar.xz"), Some("root.tar.xz")]
        );
        let gz = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0];
        assert!(matches!(
            identify(&gz, Some(&not_image)),
            Identified::Not(_)
        ));
    }

    #[test]
    fn exports_are_placed_by_their_bytes() {
        assert_eq!(
            identify(b"hsqs\0\0\0\0", None),
            Identified::Root(RootType::Squashfs)
        );
        assert_eq!(
            identify(b"QFI\xfb\0\0\0\x03", None),
            Identified::Root(RootType::DiskKvm)
        );
        assert!(
            matches!(identify(b"hello", None), Identified::Not(w) if w.contains("unrecognised"))
        );
        assert_eq!(
            targets(&[
                file("a.squashfs", 9, Identified::Root(RootType::Squashfs)),
                file("meta-a.tar.xz", 1, Identified::Tarball),
            ]),
            [Some("rootfs.squashfs"), Some("incus.tar.xz")]
        );
        assert_eq!(
            targets(&[file("x.tar.gz", 9, Identified::Tarball)]),
            [Some("incus_combined.tar.gz")]
        );
        // An xz unified tarball keeps the ftype's name: the clients take
        // the compression from the bytes.
        assert_eq!(
            targets(&[file(
                "x.tar.xz",
                9,
                Identified::Unified(UnifiedKind::Container)
            )]),
            [Some("incus_combined.tar.gz")]
        );
        assert_eq!(
            crate::classify::check_magic(
                &crate::classify::Kind::Unified,
                Some(&[0xFD, b'7', b'z', b'X', b'Z', 0x00])
            ),
            Ok(())
        );
        assert_eq!(
            targets(&[
                file("incus.tar.xz", 1, Identified::Metadata),
                file("lxd.tar.xz", 1, Identified::Metadata),
                file("disk", 9, Identified::Root(RootType::DiskKvm)),
            ]),
            [Some("incus.tar.xz"), Some("lxd.tar.xz"), Some("disk.qcow2")]
        );
        let placed = place(&[
            file("a", 9, Identified::Root(RootType::Squashfs)),
            file("b", 9, Identified::Root(RootType::Squashfs)),
            file("c", 9, Identified::Not("text".into())),
        ]);
        assert!(placed[0].target.is_some());
        assert!(
            placed[1]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("second squashfs"))
        );
        assert_eq!(placed[2].reason.as_deref(), Some("text"));
    }

    #[test]
    fn metadata_names_the_product_as_written() {
        let yaml = "architecture: x86_64\ncreation_date: 1785556320\nproperties:\n  os: Debian\n  release: bookworm\n";
        let meta = crate::metadata::parse_yaml(yaml.as_bytes()).expect("valid yaml");
        assert_eq!(
            product_names(&meta),
            ProductNames {
                os: Some("Debian".into()),
                release: Some("bookworm".into()),
                arch: Some("amd64"),
                variant: "default".into(),
            }
        );
        // The property names the image's architecture, even one no client knows.
        let yaml = "architecture: x86_64\ncreation_date: 1\nproperties:\n  architecture: sparc\n  variant: cloud\n";
        let names = product_names(&crate::metadata::parse_yaml(yaml.as_bytes()).expect("valid"));
        assert_eq!(
            (names.os, names.arch, names.variant.as_str()),
            (None, None, "cloud")
        );
    }

    #[test]
    fn mirrored_products_keep_their_fields() {
        let mut p = remote::Product {
            os: "Debian".into(),
            release: "12".into(),
            arch: "amd64".into(),
            variant: "Cloud Init".into(),
            release_title: "12 (bookworm)".into(),
            aliases: "debian/12, debian/bookworm,".into(),
            ..remote::Product::default()
        };
        assert_eq!(
            mirror_product_path("debian:12:amd64:cloud", &p),
            Some(ProductPath::new("debian", "12", "amd64", "cloud"))
        );
        assert_eq!(
            mirror_product_path("x", &p),
            Some(ProductPath::new("debian", "12", "amd64", "cloud-init"))
        );
        p.requirements = Some([("secureboot".to_owned(), "false".to_owned())].into());
        p.lxd_requirements = p.requirements.clone();
        let files = mirror_side_files(&p);
        assert_eq!(files.len(), 2, "{files:?}");
        let (fields, _) = ProductFields::parse("m", files[0].1.as_bytes()).expect("valid");
        assert_eq!(fields.aliases, ["debian/12", "debian/bookworm"]);
        assert_eq!(fields.os.as_deref(), Some("Debian"));
        p.variant = "a/b".into();
        assert_eq!(mirror_product_path("x", &p), None);
    }
}
