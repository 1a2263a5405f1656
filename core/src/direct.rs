//! Direct-URL import (`incus image import URL`, `lxc image import URL`):
//! the daemon sends `HEAD URL` with `Incus-Server-Architectures` (or the
//! `LXD-` twin) and downloads whatever `Incus-Image-URL` names, checking its
//! sha256 against `Incus-Image-Hash`. One file is downloaded, so only a
//! unified tarball can be imported this way.
//!
//! Servers answer these requests at `/aliases/<alias>[/<arch>]`. The map
//! from alias to tarball is derived from a published `images.json` once per
//! catalog ([`alias_map`]), so a request only looks it up ([`resolve`]).
//! The headers to send are [`Target::headers`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arch;
use crate::remote::ProductsFile;
use crate::vocab::Class;

/// Where servers answer direct-URL imports: `/aliases/<alias>[/<arch>]`.
pub const URL_PREFIX: &str = "aliases/";

/// One importable image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// sha256 of the unified tarball, which is its fingerprint.
    pub hash: String,
    /// Its path under the server root.
    pub path: String,
}

impl Target {
    /// The response headers of a direct-URL import, for both clients:
    /// `(name, value)` pairs, `base` being the server's origin
    /// (`https://host:port`, no trailing slash).
    #[must_use]
    pub fn headers(&self, base: &str) -> [(&'static str, String); 4] {
        let url = format!("{base}/{}", self.path);
        [
            ("incus-image-hash", self.hash.clone()),
            ("incus-image-url", url.clone()),
            ("lxd-image-hash", self.hash.clone()),
            ("lxd-image-url", url),
        ]
    }
}

/// Whether `alias` may be looked up: path-safe segments of the characters
/// aliases use (no empty, `.` or `..` segment).
#[must_use]
pub fn is_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '~'))
}

/// alias → catalog arch → newest unified tarball.
pub type AliasMap = BTreeMap<String, BTreeMap<String, Target>>;

/// Builds the map from a published `images.json`. The first product (in
/// catalog order) to claim an alias for an arch keeps it, as the core's
/// clash rule does.
///
/// # Errors
///
/// When `images_json` is not JSON.
pub fn alias_map(images_json: &str) -> Result<AliasMap, serde_json::Error> {
    serde_json::from_str::<serde::de::IgnoredAny>(images_json)?;
    let mut map = AliasMap::new();
    let Ok((file, _)) = ProductsFile::parse(crate::IMAGES_JSON, images_json) else {
        return Ok(map);
    };
    for product in file.products.values() {
        if product.arch.is_empty() {
            continue;
        }
        // The newest version (names sort by date) with a unified tarball.
        let newest = product.versions.values().rev().find_map(|v| {
            v.items.values().find_map(|item| {
                let unified = item.kind().is_some_and(|f| f.class() == Class::Unified);
                (unified && !item.sha256.is_empty() && !item.path.is_empty()).then(|| Target {
                    hash: item.sha256.clone(),
                    path: item.path.clone(),
                })
            })
        });
        let Some(target) = newest else { continue };
        for alias in product
            .aliases
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            map.entry(alias.to_owned())
                .or_default()
                .entry(product.arch.clone())
                .or_insert_with(|| target.clone());
        }
    }
    Ok(map)
}

/// Why an alias URL gives no image.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// No product has this alias with a unified tarball.
    Unknown,
    /// The alias exists, but not for any architecture the server runs.
    NoArch(Vec<String>),
    /// No architecture header and several candidates.
    Ambiguous(Vec<String>),
}

impl Miss {
    /// What to tell the client that asked for `alias` with the
    /// architectures header `server_arches`.
    #[must_use]
    pub fn explain(&self, alias: &str, server_arches: Option<&str>) -> String {
        match self {
            Self::Unknown => format!(
                "no image with a unified tarball has the alias {alias:?}; split images are added with `lxc remote add` instead"
            ),
            Self::NoArch(have) => format!(
                "alias {alias:?} has no image for the architectures {:?}; it has {}",
                server_arches.unwrap_or_default(),
                have.join(", ")
            ),
            Self::Ambiguous(have) => format!(
                "alias {alias:?} exists for {}; send Incus-Server-Architectures or append /<arch>",
                have.join(", ")
            ),
        }
    }
}

/// Resolves `alias` (optionally ending in `/<arch>`) for a server that
/// runs `server_arches` (the request header, most preferred first).
///
/// # Errors
///
/// Why no image answers: see [`Miss`].
pub fn resolve<'m>(
    map: &'m AliasMap,
    alias: &str,
    server_arches: Option<&str>,
) -> Result<&'m Target, Miss> {
    // `<alias>/<arch>`, the form the clients show, names the arch itself.
    if let Some((base, arch_part)) = alias.rsplit_once('/')
        && let Some(by_arch) = map.get(base)
        && let Some(want) = arch::normalise(arch_part)
        && let Some(t) = by_arch
            .iter()
            .find(|(a, _)| arch::normalise(a) == Some(want))
            .map(|(_, t)| t)
    {
        return Ok(t);
    }
    let by_arch = map.get(alias).ok_or(Miss::Unknown)?;
    let available = || by_arch.keys().cloned().collect::<Vec<_>>();
    match server_arches {
        Some(list) => list
            .split(',')
            .filter_map(|a| arch::normalise(a.trim()))
            .find_map(|want| {
                by_arch
                    .iter()
                    .find(|(a, _)| arch::normalise(a) == Some(want))
                    .map(|(_, t)| t)
            })
            .ok_or_else(|| Miss::NoArch(available())),
        None if by_arch.len() == 1 => by_arch.values().next().ok_or(Miss::Unknown),
        None => Err(Miss::Ambiguous(available())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> String {
        let product = |arch: &str, hash: &str| {
            serde_json::json!({
                "aliases": "alpine/3.20,alpine/3.20/default",
                "arch": arch,
                "versions": {
                    "20260101_0000": {"items": {"incus_combined.tar.gz": {
                        "ftype": "incus_combined.tar.gz", "path": format!("images/old-{arch}.tar.gz"),
                        "sha256": "0".repeat(64)}}},
                    "20260801_0000": {"items": {
                        "incus_combined.tar.gz": {"ftype": "incus_combined.tar.gz",
                            "path": format!("images/{arch}.tar.gz"), "sha256": hash},
                        "lxd_combined.tar.gz": {"ftype": "lxd_combined.tar.gz",
                            "path": format!("images/{arch}.tar.gz"), "sha256": hash}}}
                }
            })
        };
        serde_json::json!({"products": {
            "alpine:3.20:amd64:default": product("amd64", &"a".repeat(64)),
            "alpine:3.20:arm64:default": product("arm64", &"b".repeat(64)),
            "debian:12:amd64:default": {"aliases": "debian/12", "arch": "amd64", "versions": {
                "20260801_0000": {"items": {"squashfs": {"ftype": "squashfs", "path": "x", "sha256": "c"}}}}}
        }})
        .to_string()
    }

    #[test]
    fn picks_newest_unified_for_the_server_arch() {
        let map = alias_map(&catalog()).expect("valid json");
        assert!(
            !map.contains_key("debian/12"),
            "split images cannot be imported by URL"
        );
        let t = resolve(&map, "alpine/3.20", Some("aarch64, armv7l")).expect("arm64 exists");
        assert_eq!(t.path, "images/arm64.tar.gz");
        let t = resolve(&map, "alpine/3.20", Some("x86_64, i686")).expect("amd64 exists");
        assert_eq!(t.hash, "a".repeat(64));
        let t = resolve(&map, "alpine/3.20/default/arm64", None).expect("explicit arch");
        assert_eq!(t.path, "images/arm64.tar.gz");
        assert_eq!(
            resolve(&map, "alpine/3.20", Some("s390x")),
            Err(Miss::NoArch(vec!["amd64".into(), "arm64".into()]))
        );
        assert!(matches!(
            resolve(&map, "alpine/3.20", None),
            Err(Miss::Ambiguous(_))
        ));
        assert_eq!(resolve(&map, "nope", None), Err(Miss::Unknown));
    }

    #[test]
    fn aliases_are_path_safe() {
        for ok in ["debian/12", "alpine/3.20/default/arm64", "a.b_c-d:e~f"] {
            assert!(is_alias(ok), "{ok}");
        }
        for bad in [
            "", "/debian", "debian/", "a//b", "../etc", "a/./b", "a b", "a%2fb", "a?b",
        ] {
            assert!(!is_alias(bad), "{bad}");
        }
    }

    #[test]
    fn answers_name_both_clients_and_misses_say_what_exists() {
        let t = Target {
            hash: "ab".into(),
            path: "images/x.tar.gz".into(),
        };
        let h = t.headers("https://host:8443");
        assert_eq!(h[0], ("incus-image-hash", "ab".into()));
        assert_eq!(
            h[1],
            (
                "incus-image-url",
                "https://host:8443/images/x.tar.gz".into()
            )
        );
        assert_eq!(h[2].0, "lxd-image-hash");
        assert_eq!(
            h[3],
            ("lxd-image-url", "https://host:8443/images/x.tar.gz".into())
        );
        let have = vec!["amd64".to_owned(), "arm64".to_owned()];
        let m = Miss::NoArch(have.clone()).explain("a/1", Some("s390x"));
        assert!(m.contains("\"s390x\"") && m.contains("amd64, arm64"), "{m}");
        let m = Miss::Ambiguous(have).explain("a/1", None);
        assert!(m.contains("Incus-Server-Architectures"), "{m}");
    }
}
