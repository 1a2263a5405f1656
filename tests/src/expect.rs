//! What each client must show for a [`TreeSpec`], computed by the test from
//! the files it made: digests are hashed here, fingerprints are
//! sha256(metadata ‖ root) (docs/protocol.md#combined-digests), aliases follow the clients' rules
//! (docs/protocol.md#aliases). Nothing here reads ssgen's output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

use crate::images::{RootKind, TreeSpec};
use crate::sha256_files;

/// Which client's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// LXD (reads `lxd.tar.xz` items and, in 5.0.2, only `lxd_requirements`).
    Lxd,
    /// Incus (reads `incus.tar.xz` items and `requirements`).
    Incus,
}

impl Client {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Client::Lxd => "LXD",
            Client::Incus => "Incus",
        }
    }
}

/// One file of an image: where it is and what it must hash to.
#[derive(Clone, Debug)]
pub struct ExpectedFile {
    /// Path relative to the tree root, `/`-separated (the catalog's `path`).
    pub rel: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One image as a client must list it.
#[derive(Clone, Debug)]
pub struct ExpectedImage {
    /// Human label used in every failure message:
    /// `product@version (root ftype)`.
    pub label: String,
    /// Product id (`os:release:arch:variant`).
    pub product_id: String,
    /// Version name (the `serial` property).
    pub version: String,
    /// Root kind.
    pub kind: RootKind,
    /// sha256(meta ‖ root), hashed by the test.
    pub fingerprint: String,
    /// `container` or `virtual-machine`.
    pub image_type: &'static str,
    /// Raw product arch (`amd64`).
    pub arch_raw: String,
    /// Normalised arch (`x86_64`).
    pub arch_norm: String,
    /// `os` property (e.g. `Debian`).
    pub os: String,
    /// `release` property.
    pub release: String,
    /// `variant` property.
    pub variant: String,
    /// A release title the description must contain, if the test set one.
    pub release_title: Option<String>,
    /// The metadata file this client uses.
    pub meta: ExpectedFile,
    /// The root file.
    pub root: ExpectedFile,
    /// `requirements.<k>` properties.
    pub requirements: BTreeMap<String, String>,
    /// Every alias that must resolve to this image for its type and arch
    /// (short and `/<arch>` forms), after the newest-wins rule.
    pub aliases: BTreeSet<String>,
    /// The arch-less aliases of the product (to tell short from medium).
    pub short_aliases: BTreeSet<String>,
}

/// Normalises a product `arch` the way both clients do (docs/protocol.md#architectures); `None` for
/// names they do not know (the product is then silently dropped).
pub fn normalise_arch(arch: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &[&str])] = &[
        ("i686", &["i386", "i586", "386", "x86", "generic_32"]),
        ("x86_64", &["amd64", "generic_64"]),
        ("armv6l", &["armel", "arm"]),
        (
            "armv7l",
            &[
                "armhf",
                "armhfp",
                "armv7a_hardfp",
                "armv7",
                "armv7a_vfpv3_hardfp",
            ],
        ),
        ("armv8l", &[]),
        ("aarch64", &["arm64", "arm64_generic"]),
        ("ppc", &["powerpc"]),
        ("ppc64", &["powerpc64"]),
        ("ppc64le", &["ppc64el"]),
        ("s390x", &[]),
        ("mips", &["mipsel", "mipsle"]),
        ("mips64", &["mips64el", "mips64le"]),
        ("riscv32", &[]),
        ("riscv64", &[]),
        ("loongarch64", &["loong64"]),
    ];
    TABLE
        .iter()
        .find(|(name, aliases)| *name == arch || aliases.contains(&arch))
        .map(|(name, _)| *name)
}

/// Rank of a root type in the clients' alias sort (docs/protocol.md#aliases).
pub fn root_rank(ftype: &str) -> u8 {
    match ftype {
        "squashfs" | "tar.gz" => 0,
        "root.tar.xz" => 1,
        "disk-kvm.img" => 2,
        "uefi1.img" => 3,
        "disk1.img" => 4,
        _ => 5,
    }
}

/// Sort key of the clients' `sortedImages.Less` (docs/protocol.md#aliases): os, release,
/// variant ascending, serial descending, architecture ascending, then root
/// type rank.
pub fn alias_sort_key<'a>(
    os: &'a str,
    release: &'a str,
    variant: &'a str,
    serial: &'a str,
    arch_raw: &'a str,
    root_ftype: &str,
) -> (
    &'a str,
    &'a str,
    &'a str,
    std::cmp::Reverse<&'a str>,
    &'a str,
    u8,
) {
    (
        os,
        release,
        variant,
        std::cmp::Reverse(serial),
        arch_raw,
        root_rank(root_ftype),
    )
}

fn rel(root: &Path, path: &Path) -> Result<String> {
    let r = path
        .strip_prefix(root)
        .with_context(|| format!("{} is not under {}", path.display(), root.display()))?;
    Ok(r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

fn expected_file(root: &Path, path: &Path) -> Result<ExpectedFile> {
    Ok(ExpectedFile {
        rel: rel(root, path)?,
        sha256: sha256_files(&[path])?,
        size: std::fs::metadata(path)
            .with_context(|| format!("stat {}", path.display()))?
            .len(),
    })
}

/// Every image `client` must see in `tree`, with aliases assigned.
pub fn expected_images(tree: &TreeSpec, client: Client) -> Result<Vec<ExpectedImage>> {
    let mut out = Vec::new();
    for p in &tree.products {
        let arch_norm = normalise_arch(&p.arch)
            .with_context(|| format!("sample tree uses unknown arch {}", p.arch))?;
        for v in &p.versions {
            let meta_path = match client {
                Client::Lxd => &v.lxd_meta,
                Client::Incus => &v.incus_meta,
            };
            let meta = expected_file(&tree.root, meta_path)?;
            for r in &v.roots {
                out.push(ExpectedImage {
                    label: format!("{}@{} ({})", p.id(), v.name, r.kind.ftype()),
                    product_id: p.id(),
                    version: v.name.clone(),
                    kind: r.kind,
                    fingerprint: sha256_files(&[meta_path, &r.path])?,
                    image_type: r.kind.image_type(),
                    arch_raw: p.arch.clone(),
                    arch_norm: arch_norm.to_owned(),
                    os: p.os_title.clone(),
                    release: p.release.clone(),
                    variant: p.variant.clone(),
                    release_title: p.release_title.clone(),
                    meta: meta.clone(),
                    root: expected_file(&tree.root, &r.path)?,
                    requirements: p.requirements.clone(),
                    aliases: BTreeSet::new(),
                    short_aliases: p.aliases.iter().cloned().collect(),
                });
            }
        }
    }

    // Newest (by the clients' sort) wins each (alias, type, arch).
    let mut order: Vec<usize> = (0..out.len()).collect();
    type Key<'a> = (
        &'a str,
        &'a str,
        &'a str,
        std::cmp::Reverse<&'a str>,
        &'a str,
        u8,
    );
    fn key(i: &ExpectedImage) -> Key<'_> {
        alias_sort_key(
            &i.os,
            &i.release,
            &i.variant,
            &i.version,
            &i.arch_raw,
            i.kind.ftype(),
        )
    }
    order.sort_by(|&a, &b| key(&out[a]).cmp(&key(&out[b])));
    let mut taken: BTreeSet<(String, &'static str, String)> = BTreeSet::new();
    for i in order {
        let (ty, norm, raw) = (
            out[i].image_type,
            out[i].arch_norm.clone(),
            out[i].arch_raw.clone(),
        );
        let shorts: Vec<String> = out[i].short_aliases.iter().cloned().collect();
        for a in shorts {
            for name in [a.clone(), format!("{a}/{raw}")] {
                if taken.insert((name.clone(), ty, norm.clone())) {
                    out[i].aliases.insert(name);
                }
            }
        }
    }
    Ok(out)
}
