//! Small but real image files, made with the same tools as real images, and
//! a complete sample `images/…` tree.
//!
//! The files are tiny (a few KiB) so that a whole tree is made in well under
//! a second, yet each one is what a client expects: an xz tar with a valid
//! `metadata.yaml` and a template, a squashfs made by `mksquashfs`, an xz
//! root tarball, a qcow2 made by `qemu-img`. Each root file carries a label
//! in its contents, so no two images share bytes by accident (identical
//! files would hide an item pointing at the wrong version).
//!
//! Outputs are deterministic for the same inputs (fixed mtimes, sorted tar
//! members, numeric root owner), which keeps fingerprints stable across runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

/// What goes into a `metadata.yaml`.
#[derive(Clone, Debug)]
pub struct ImageMeta {
    /// Debian-style architecture (`amd64`, `arm64`, …): `properties.architecture`.
    pub arch: String,
    /// `properties.os` (the directory name, e.g. `debian`).
    pub os: String,
    /// `properties.release`.
    pub release: String,
    /// `properties.variant`.
    pub variant: String,
    /// `creation_date`, Unix seconds; also used as the mtime of every file.
    pub creation_date: i64,
    /// `properties.description`.
    pub description: String,
}

impl ImageMeta {
    /// Metadata with a description in distrobuilder's style.
    pub fn new(arch: &str, os: &str, release: &str, variant: &str, creation_date: i64) -> Self {
        Self {
            arch: arch.into(),
            os: os.into(),
            release: release.into(),
            variant: variant.into(),
            creation_date,
            description: format!("{os} {release} {arch} ({variant})"),
        }
    }
}

/// The kernel architecture name that `metadata.yaml`'s top-level
/// `architecture` uses for a Debian-style name (docs/protocol.md#architectures).
pub fn kernel_arch(debian_arch: &str) -> &str {
    match debian_arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "i386" => "i686",
        "armhf" => "armv7l",
        "armel" => "armv6l",
        "ppc64el" => "ppc64le",
        "loong64" => "loongarch64",
        other => other,
    }
}

/// The `metadata.yaml` text for `meta`, with a hostname template.
pub fn metadata_yaml(meta: &ImageMeta) -> String {
    // Quoted scalars: a release such as `12` must stay a string.
    format!(
        "architecture: {karch}\n\
         creation_date: {date}\n\
         properties:\n  \
           architecture: \"{arch}\"\n  \
           description: \"{desc}\"\n  \
           os: \"{os}\"\n  \
           release: \"{release}\"\n  \
           variant: \"{variant}\"\n\
         templates:\n  \
           /etc/hostname:\n    \
             when:\n    \
             - create\n    \
             - copy\n    \
             template: hostname.tpl\n",
        karch = kernel_arch(&meta.arch),
        date = meta.creation_date,
        arch = meta.arch,
        desc = meta.description,
        os = meta.os,
        release = meta.release,
        variant = meta.variant,
    )
}

/// Deterministic tar flags (GNU tar).
fn tar_flags(mtime: i64) -> Vec<String> {
    vec![
        "--sort=name".into(),
        "--owner=0".into(),
        "--group=0".into(),
        "--numeric-owner".into(),
        format!("--mtime=@{mtime}"),
        "--format=gnu".into(),
    ]
}

/// A staging directory next to `out`, removed afterwards.
fn staging(dir: &Path, name: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!(".stage-{name}-"))
        .tempdir_in(dir)
        .with_context(|| format!("staging dir in {}", dir.display()))
}

/// Writes `dir/<file_name>`: an xz-compressed tar holding `metadata.yaml`
/// and `templates/hostname.tpl`, like distrobuilder's `lxd.tar.xz` /
/// `incus.tar.xz`.
pub fn metadata_tarball(dir: &Path, file_name: &str, meta: &ImageMeta) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let stage = staging(dir, "meta")?;
    let s = stage.path();
    std::fs::write(s.join("metadata.yaml"), metadata_yaml(meta)).context("write metadata.yaml")?;
    std::fs::create_dir(s.join("templates")).context("create templates/")?;
    std::fs::write(s.join("templates/hostname.tpl"), "{{ container.name }}\n")
        .context("write hostname.tpl")?;
    let out = dir.join(file_name);
    run(Command::new("tar")
        .args(tar_flags(meta.creation_date))
        .arg("-C")
        .arg(s)
        .arg("-cJf")
        .arg(&out)
        .args(["metadata.yaml", "templates"]))
    .with_context(|| format!("tar {}", out.display()))?;
    Ok(out)
}

/// Fills `root` with a minimal root filesystem whose contents carry `label`.
fn fill_rootfs(root: &Path, label: &str) -> Result<()> {
    for d in ["etc", "bin", "tmp", "var/lib"] {
        std::fs::create_dir_all(root.join(d)).context("create rootfs dirs")?;
    }
    std::fs::write(root.join("etc/hostname"), "ssgen-test\n")?;
    std::fs::write(
        root.join("etc/os-release"),
        format!("NAME=\"ssgen test image\"\nID=ssgen-test\nBUILD_ID=\"{label}\"\n"),
    )?;
    std::fs::write(root.join("etc/ssgen-image"), format!("{label}\n"))?;
    Ok(())
}

/// Writes `dir/<file_name>`: a squashfs root filesystem made by `mksquashfs`.
pub fn squashfs(dir: &Path, file_name: &str, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stage = staging(dir, "sqfs")?;
    fill_rootfs(stage.path(), label)?;
    let out = dir.join(file_name);
    run(Command::new("mksquashfs")
        .arg(stage.path())
        .arg(&out)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .args(["-mkfs-time", "0", "-all-time", "0"]))
    .with_context(|| format!("mksquashfs {}", out.display()))?;
    Ok(out)
}

/// Writes `dir/<file_name>`: an xz-compressed tar of a root filesystem.
pub fn root_tar_xz(dir: &Path, file_name: &str, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stage = staging(dir, "rootxz")?;
    fill_rootfs(stage.path(), label)?;
    let out = dir.join(file_name);
    run(Command::new("tar")
        .args(tar_flags(0))
        .arg("-C")
        .arg(stage.path())
        .arg("-cJf")
        .arg(&out)
        .arg("."))
    .with_context(|| format!("tar {}", out.display()))?;
    Ok(out)
}

/// Writes `dir/<file_name>`: a unified image, one gzip tarball holding
/// `metadata.yaml` and `rootfs/` (what `lxc image export` writes for a
/// unified image, and what direct-URL import downloads).
pub fn unified_tarball(
    dir: &Path,
    file_name: &str,
    meta: &ImageMeta,
    label: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stage = staging(dir, "unified")?;
    let s = stage.path();
    std::fs::write(s.join("metadata.yaml"), metadata_yaml(meta)).context("write metadata.yaml")?;
    fill_rootfs(&s.join("rootfs"), label)?;
    let out = dir.join(file_name);
    run(Command::new("tar")
        .args(tar_flags(meta.creation_date))
        .arg("-C")
        .arg(s)
        .arg("-czf")
        .arg(&out)
        .args(["metadata.yaml", "rootfs"]))
    .with_context(|| format!("tar {}", out.display()))?;
    Ok(out)
}

/// Writes `dir/<file_name>`: a qcow2 disk (1 MiB virtual size) made by
/// `qemu-img`, whose first sector holds `label`.
pub fn qcow2(dir: &Path, file_name: &str, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stage = staging(dir, "qcow2")?;
    let raw = stage.path().join("disk.raw");
    let mut bytes = vec![0u8; 1 << 20];
    let tag = format!("ssgen test disk: {label}\n");
    bytes[..tag.len()].copy_from_slice(tag.as_bytes());
    std::fs::write(&raw, &bytes).context("write raw disk")?;
    let out = dir.join(file_name);
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&out))
    .with_context(|| format!("qemu-img {}", out.display()))?;
    Ok(out)
}

/// Root file kinds, by the ftype the catalog must give them (docs/protocol.md#ftypes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RootKind {
    /// `squashfs`: a container.
    Squashfs,
    /// `root.tar.xz`: a container.
    RootTarXz,
    /// `disk-kvm.img` (qcow2): a virtual machine.
    DiskKvm,
}

impl RootKind {
    /// The item `ftype`.
    pub fn ftype(self) -> &'static str {
        match self {
            RootKind::Squashfs => "squashfs",
            RootKind::RootTarXz => "root.tar.xz",
            RootKind::DiskKvm => "disk-kvm.img",
        }
    }

    /// The image type the clients derive.
    pub fn image_type(self) -> &'static str {
        match self {
            RootKind::DiskKvm => "virtual-machine",
            _ => "container",
        }
    }

    /// The combined-digest key on the metadata item (docs/protocol.md#ftypes).
    pub fn combined_key(self) -> &'static str {
        match self {
            RootKind::Squashfs => "combined_squashfs_sha256",
            RootKind::RootTarXz => "combined_rootxz_sha256",
            RootKind::DiskKvm => "combined_disk-kvm-img_sha256",
        }
    }
}

/// One root file of a version.
#[derive(Clone, Debug)]
pub struct RootFile {
    /// What it is.
    pub kind: RootKind,
    /// Absolute path.
    pub path: PathBuf,
}

/// One version directory.
#[derive(Clone, Debug)]
pub struct VersionSpec {
    /// The version name (directory name).
    pub name: String,
    /// The metadata file LXD must use (`lxd.tar.xz` if present, else the
    /// only metadata file).
    pub lxd_meta: PathBuf,
    /// The metadata file Incus must use (`incus.tar.xz` if present, else the
    /// only metadata file).
    pub incus_meta: PathBuf,
    /// Root files.
    pub roots: Vec<RootFile>,
}

/// One product (a variant directory) and what the clients must show for it.
#[derive(Clone, Debug)]
pub struct ProductSpec {
    /// Directory names.
    pub os_dir: String,
    /// Release directory name.
    pub release: String,
    /// Architecture directory name (Debian-style, used raw by the clients).
    pub arch: String,
    /// Variant directory name.
    pub variant: String,
    /// The `os` the clients must show (from the distro table or metadata.json).
    pub os_title: String,
    /// A `release_title` that the description must contain, when the test
    /// sets one through metadata.json.
    pub release_title: Option<String>,
    /// Every arch-less alias the product must carry (docs/protocol.md#aliases: the default
    /// ones, the distro table's and metadata.json's).
    pub aliases: Vec<String>,
    /// Requirements after inheritance (nearer `.requirements` wins per key).
    pub requirements: BTreeMap<String, String>,
    /// Versions, oldest first.
    pub versions: Vec<VersionSpec>,
}

impl ProductSpec {
    /// `os:release:arch:variant`, the product id ssgen uses.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.os_dir, self.release, self.arch, self.variant
        )
    }
}

/// A sample tree on disk and what it must turn into.
#[derive(Clone, Debug)]
pub struct TreeSpec {
    /// The tree root (holding `images/`).
    pub root: PathBuf,
    /// Products.
    pub products: Vec<ProductSpec>,
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialise side file")?;
    std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Unix time of `YYYYMMDD_HHMM` (UTC).
fn version_time(name: &str) -> Result<i64> {
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        name.get(r.clone())
            .and_then(|s| s.parse::<i64>().ok())
            .with_context(|| format!("bad version name {name:?}"))
    };
    let (y, m, d, hh, mm) = (
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60)
}

/// Lays out the sample tree under `root/images/` and returns what it must
/// become. It covers what issue #3 asks for:
///
/// - two architectures (`amd64`, `arm64`) and two variants (`default`,
///   `cloud`);
/// - every root kind: `rootfs.squashfs`, `root.squashfs`, `root.tar.xz`,
///   `rootfs.tar.xz`, `disk.qcow2`, `disk-kvm.img`;
/// - a version with a container and a VM sharing one metadata tarball;
/// - several versions of one product (the newest must own the aliases);
/// - a product with both `lxd.tar.xz` and `incus.tar.xz` that differ, and
///   products with only one of the two;
/// - `.requirements` at two levels (nearer wins key by key);
/// - a `metadata.json` override (`os`, `release_title`, `aliases`) on a
///   distribution the built-in table does not know.
pub fn sample_tree(root: &Path) -> Result<TreeSpec> {
    let images = root.join("images");
    if images.exists() {
        bail!(
            "{} already exists: sample_tree wants an empty root",
            images.display()
        );
    }

    // Requirements: one for all of debian, overridden per key further down.
    std::fs::create_dir_all(images.join("debian/12/arm64"))?;
    std::fs::create_dir_all(images.join("debian/12/amd64/cloud"))?;
    write_json(
        &images.join("debian/.requirements"),
        &serde_json::json!({ "cgroup": "v2" }),
    )?;
    write_json(
        &images.join("debian/12/arm64/.requirements"),
        &serde_json::json!({ "cgroup": "v1" }),
    )?;
    write_json(
        &images.join("debian/12/amd64/cloud/.requirements"),
        &serde_json::json!({ "secureboot": "false" }),
    )?;

    let debian_aliases = |variant: &str| -> Vec<String> {
        let mut a = vec![
            format!("debian/12/{variant}"),
            format!("debian/bookworm/{variant}"),
        ];
        if variant == "default" {
            a.push("debian/12".into());
            a.push("debian/bookworm".into());
        }
        a
    };

    let mut products = Vec::new();

    // debian 12 amd64 default: two versions; the older has a squashfs and a
    // root.tar.xz (two container images), the newer only a squashfs. Only
    // lxd.tar.xz exists, so Incus must see the same file.
    {
        let mut p = ProductSpec {
            os_dir: "debian".into(),
            release: "12".into(),
            arch: "amd64".into(),
            variant: "default".into(),
            os_title: "Debian".into(),
            release_title: None,
            aliases: debian_aliases("default"),
            requirements: map(&[("cgroup", "v2")]),
            versions: Vec::new(),
        };
        for (name, with_tar) in [("20260101_0000", true), ("20260201_0600", false)] {
            let dir = images.join("debian/12/amd64/default").join(name);
            let meta = ImageMeta::new("amd64", "debian", "12", "default", version_time(name)?);
            let m = metadata_tarball(&dir, "lxd.tar.xz", &meta)?;
            let label = format!("debian 12 amd64 default {name}");
            let mut roots = vec![RootFile {
                kind: RootKind::Squashfs,
                path: squashfs(&dir, "rootfs.squashfs", &label)?,
            }];
            if with_tar {
                roots.push(RootFile {
                    kind: RootKind::RootTarXz,
                    path: root_tar_xz(&dir, "root.tar.xz", &label)?,
                });
            }
            p.versions.push(VersionSpec {
                name: name.into(),
                lxd_meta: m.clone(),
                incus_meta: m,
                roots,
            });
        }
        products.push(p);
    }

    // debian 12 arm64 default: lxd.tar.xz and incus.tar.xz differ, so each
    // client gets its own fingerprint; the squashfs uses the other name.
    {
        let name = "20260201_0600";
        let dir = images.join("debian/12/arm64/default").join(name);
        let t = version_time(name)?;
        let mut meta = ImageMeta::new("arm64", "debian", "12", "default", t);
        meta.description = "Debian 12 arm64 (default) for LXD".into();
        let lxd = metadata_tarball(&dir, "lxd.tar.xz", &meta)?;
        meta.description = "Debian 12 arm64 (default) for Incus".into();
        let incus = metadata_tarball(&dir, "incus.tar.xz", &meta)?;
        let root = squashfs(&dir, "root.squashfs", "debian 12 arm64 default")?;
        products.push(ProductSpec {
            os_dir: "debian".into(),
            release: "12".into(),
            arch: "arm64".into(),
            variant: "default".into(),
            os_title: "Debian".into(),
            release_title: None,
            aliases: debian_aliases("default"),
            requirements: map(&[("cgroup", "v1")]),
            versions: vec![VersionSpec {
                name: name.into(),
                lxd_meta: lxd,
                incus_meta: incus,
                roots: vec![RootFile {
                    kind: RootKind::Squashfs,
                    path: root,
                }],
            }],
        });
    }

    // debian 12 amd64 cloud: a VM; only incus.tar.xz, so LXD must see it too.
    {
        let name = "20260201_0600";
        let dir = images.join("debian/12/amd64/cloud").join(name);
        let meta = ImageMeta::new("amd64", "debian", "12", "cloud", version_time(name)?);
        let m = metadata_tarball(&dir, "incus.tar.xz", &meta)?;
        let disk = qcow2(&dir, "disk.qcow2", "debian 12 amd64 cloud")?;
        products.push(ProductSpec {
            os_dir: "debian".into(),
            release: "12".into(),
            arch: "amd64".into(),
            variant: "cloud".into(),
            os_title: "Debian".into(),
            release_title: None,
            aliases: debian_aliases("cloud"),
            requirements: map(&[("cgroup", "v2"), ("secureboot", "false")]),
            versions: vec![VersionSpec {
                name: name.into(),
                lxd_meta: m.clone(),
                incus_meta: m,
                roots: vec![RootFile {
                    kind: RootKind::DiskKvm,
                    path: disk,
                }],
            }],
        });
    }

    // myos 1.0 arm64 cloud: unknown to the distro table, so metadata.json
    // gives os, release_title and an extra alias. One metadata tarball
    // serves a container (rootfs.tar.xz) and a VM (disk-kvm.img) in the same
    // version. No requirements at all.
    {
        let variant_dir = images.join("myos/1.0/arm64/cloud");
        std::fs::create_dir_all(&variant_dir)?;
        write_json(
            &variant_dir.join("metadata.json"),
            &serde_json::json!({
                "os": "MyOS",
                "release_title": "1.0 Pioneer",
                "aliases": ["myos/pioneer/cloud"],
            }),
        )?;
        let name = "20260115_1200";
        let dir = variant_dir.join(name);
        let meta = ImageMeta::new("arm64", "myos", "1.0", "cloud", version_time(name)?);
        let m = metadata_tarball(&dir, "lxd.tar.xz", &meta)?;
        let tar = root_tar_xz(&dir, "rootfs.tar.xz", "myos 1.0 arm64 cloud")?;
        let disk = qcow2(&dir, "disk-kvm.img", "myos 1.0 arm64 cloud")?;
        products.push(ProductSpec {
            os_dir: "myos".into(),
            release: "1.0".into(),
            arch: "arm64".into(),
            variant: "cloud".into(),
            os_title: "MyOS".into(),
            release_title: Some("1.0 Pioneer".into()),
            aliases: vec!["myos/1.0/cloud".into(), "myos/pioneer/cloud".into()],
            requirements: BTreeMap::new(),
            versions: vec![VersionSpec {
                name: name.into(),
                lxd_meta: m.clone(),
                incus_meta: m,
                roots: vec![
                    RootFile {
                        kind: RootKind::RootTarXz,
                        path: tar,
                    },
                    RootFile {
                        kind: RootKind::DiskKvm,
                        path: disk,
                    },
                ],
            }],
        });
    }

    Ok(TreeSpec {
        root: root.to_path_buf(),
        products,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_time_is_utc_unix_seconds() {
        assert_eq!(version_time("19700101_0000").expect("valid"), 0);
        assert_eq!(version_time("20260201_0600").expect("valid"), 1_769_925_600);
    }
}
