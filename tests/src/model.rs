//! A model of what the client releases that cannot run here make of a
//! catalog: **Incus after 6.0** and **LXD 5.21 and later**. The released
//! clients that can run here (Debian's LXD 5.0.2 and Incus 6.0.4 from
//! bookworm-backports) are run for real by the suites; this model covers
//! only what newer releases do differently, and where it and a real client
//! disagree on a rule they share, the real client is right and the model is
//! fixed.
//!
//! Its tables are its own, taken from the client sources (never from the
//! expectation side in [`crate::expect`], so a wrong entry there shows as a
//! disagreement):
//!
//! - the index walk and the pairing of metadata and root items:
//!   `shared/simplestreams/products.go` (`ToAPI` in Incus, `ToLXD` in LXD);
//! - the architecture names, per client: `shared/osarch/architectures.go`;
//! - the image sort that decides which image owns an alias, and the alias
//!   registration per (name, type, architecture):
//!   `shared/simplestreams/sort.go` (`sortedImages.Less`) and
//!   `shared/simplestreams/simplestreams.go` (`applyAliases`);
//! - the description each client writes: `products.go`.
//!
//! The newer rules, with the first release that has each:
//!
//! | rule | client, release | source |
//! |---|---|---|
//! | `x86_64_v1` … `x86_64_v4` are names of `x86_64` | Incus 6.18 (and 6.0.6) | `shared/osarch/architectures.go` |
//! | `combined_type: virtual-machine` makes a unified tarball a VM | Incus 7.1 | `shared/simplestreams/products.go` |
//! | a variant other than `default` is named in the description | Incus main | `shared/simplestreams/products.go` |
//! | `lxd_requirements`, if present (even empty), replaces `requirements` | LXD 5.21 | `shared/simplestreams/products.go` |
//! | `amd64v3` is a name of `x86_64` | LXD 6.7 | `shared/osarch/architectures.go` |
//! | the description is os, release title, label, variant (no arch, no serial) | LXD 6.8 | `shared/simplestreams/products.go` |
//!
//! The JSON type rules that break a whole remote are Go's `encoding/json`
//! decoding into the structs of `products.go` (a string field given a
//! number, a requirement that is not a string).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

/// Which client's rules to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Incus main (7.x): `incus.tar.xz`, `incus_combined.tar.gz`,
    /// `requirements` only, the newer arch names and description.
    IncusMain,
    /// LXD main (5.21 and later): `lxd.tar.xz`, `lxd_combined.tar.gz`,
    /// `lxd_requirements` if present (even empty), else `requirements`.
    LxdMain,
}

impl Flavor {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::IncusMain => "Incus main (model)",
            Flavor::LxdMain => "LXD main (model)",
        }
    }

    fn meta_ftype(self) -> &'static str {
        match self {
            Flavor::IncusMain => "incus.tar.xz",
            Flavor::LxdMain => "lxd.tar.xz",
        }
    }

    fn combined_ftype(self) -> &'static str {
        match self {
            Flavor::IncusMain => "incus_combined.tar.gz",
            Flavor::LxdMain => "lxd_combined.tar.gz",
        }
    }

    /// The client's architecture name for a product `arch`, `None` for a
    /// name it does not know (the product is then dropped silently).
    pub fn architecture(self, arch: &str) -> Option<&'static str> {
        // (kernel name, other names), from each client's
        // shared/osarch/architectures.go (architectureNames and
        // architectureAliases); the two differ only for x86_64.
        const COMMON: &[(&str, &[&str])] = &[
            ("i686", &["i386", "i586", "386", "x86", "generic_32"]),
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
            ("ppc64", &["powerpc64", "ppc64"]),
            ("ppc64le", &["ppc64el"]),
            ("s390x", &[]),
            ("mips", &["mipsel", "mipsle"]),
            ("mips64", &["mips64el", "mips64le"]),
            ("riscv32", &[]),
            ("riscv64", &[]),
            ("loongarch64", &["loong64"]),
        ];
        const INCUS_X86_64: &[&str] = &[
            "amd64",
            "generic_64",
            "x86_64_v1",
            "x86_64_v2",
            "x86_64_v3",
            "x86_64_v4",
        ];
        const LXD_X86_64: &[&str] = &["amd64", "amd64v3", "generic_64"];
        let x86_64 = match self {
            Flavor::IncusMain => INCUS_X86_64,
            Flavor::LxdMain => LXD_X86_64,
        };
        if arch == "x86_64" || x86_64.contains(&arch) {
            return Some("x86_64");
        }
        COMMON
            .iter()
            .find(|(name, others)| *name == arch || others.contains(&arch))
            .map(|(name, _)| *name)
    }

    /// The `description` property the client writes for an image.
    fn description(self, p: &ProductFields<'_>, label: &str, serial: &str) -> String {
        let mut d = format!("{} {}", p.os, p.release_title);
        match self {
            Flavor::IncusMain => {
                d = format!("{d} {}", p.arch);
                if !p.variant.is_empty() && p.variant != "default" {
                    d = format!("{d} ({})", p.variant);
                }
                if !label.is_empty() {
                    d = format!("{d} ({label})");
                }
                format!("{d} ({serial})")
            }
            Flavor::LxdMain => {
                if !label.is_empty() {
                    d = format!("{d} ({label})");
                }
                if !p.variant.is_empty() {
                    d = format!("{d} ({})", p.variant);
                }
                d
            }
        }
    }
}

/// The product fields the description is made of.
struct ProductFields<'a> {
    os: &'a str,
    release_title: &'a str,
    arch: &'a str,
    variant: &'a str,
}

/// An image as a client lists it (from the model, or parsed from a real
/// client's `image list`).
#[derive(Clone, Debug, Default)]
pub struct ObservedImage {
    /// Fingerprint.
    pub fingerprint: String,
    /// `container` or `virtual-machine`.
    pub image_type: String,
    /// Normalised architecture.
    pub architecture: String,
    /// Properties (`os`, `release`, `variant`, `serial`, `architecture`,
    /// `type`, `description`, `requirements.<k>`, …).
    pub properties: BTreeMap<String, String>,
    /// Every alias whose target is this image.
    pub aliases: BTreeSet<String>,
    /// meta size + root size.
    pub size: u64,
    /// Last component of the metadata item's path.
    pub filename: String,
    /// Paths of the files a download would fetch (meta, root), when known.
    pub files: Vec<String>,
}

/// Root item types, in the order both clients try them
/// (`products.go`).
const ROOT_FTYPES: &[&str] = &[
    "disk1.img",
    "disk-kvm.img",
    "uefi1.img",
    "root.tar.xz",
    "squashfs",
];

/// The fingerprint a metadata item gives an image with a root of
/// `root_ftype` (`products.go`): root.tar.xz falls back to the legacy
/// `combined_sha256`.
fn combined_key(meta: &Map<String, Value>, root_ftype: &str) -> Option<String> {
    let s = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match root_ftype {
        "squashfs" => s("combined_squashfs_sha256"),
        "root.tar.xz" => s("combined_rootxz_sha256").or_else(|| s("combined_sha256")),
        "disk-kvm.img" => s("combined_disk-kvm-img_sha256"),
        "disk1.img" => s("combined_disk1-img_sha256"),
        "uefi1.img" => s("combined_uefi1-img_sha256"),
        _ => None,
    }
}

/// Whether the first 8 characters of a version name parse as Go's
/// `time.Parse("20060102", …)` does (`products.go`).
pub fn version_date_ok(name: &str) -> bool {
    let Some(d) = name.get(..8) else { return false };
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (y, m, day): (u32, u32, u32) = match (d[..4].parse(), d[4..6].parse(), d[6..8].parse()) {
        (Ok(y), Ok(m), Ok(day)) => (y, m, day),
        _ => return false,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=dim).contains(&day)
}

/// `sortedImages.Less` (`shared/simplestreams/sort.go`, the same in both
/// clients): os, release, variant ascending, serial descending, the raw
/// architecture ascending, then the root type by preference. An empty
/// property on the left never sorts first; the source's second test is of
/// the left side again, so an empty one on the right is compared as text.
fn sorts_before(a: &ObservedImage, b: &ObservedImage) -> bool {
    let prop = |i: &ObservedImage, k: &str| i.properties.get(k).cloned().unwrap_or_default();
    for key in ["os", "release", "variant", "serial", "architecture"] {
        let (x, y) = (prop(a, key), prop(b, key));
        if x == y {
            continue;
        }
        if x.is_empty() {
            return false;
        }
        return if key == "serial" { x > y } else { x < y };
    }
    let score = |t: &str| {
        [
            "squashfs",
            "root.tar.xz",
            "disk-kvm.img",
            "uefi1.img",
            "disk1.img",
        ]
        .iter()
        .position(|p| *p == t)
        .unwrap_or(0)
    };
    score(&prop(a, "type")) < score(&prop(b, "type"))
}
/// Go's `encoding/json` would refuse these into the clients' structs, and
/// that fails the whole remote.
fn type_errors(products: &Map<String, Value>) -> Vec<String> {
    let mut errs = Vec::new();
    for (pid, p) in products {
        let Some(p) = p.as_object() else {
            if !p.is_null() {
                errs.push(format!("product {pid} is not an object"));
            }
            continue;
        };
        for key in [
            "aliases",
            "arch",
            "os",
            "release",
            "release_title",
            "variant",
            "version",
            "support_eol",
        ] {
            if let Some(v) = p.get(key)
                && !(v.is_string() || v.is_null())
            {
                errs.push(format!("product {pid}: {key} must be a string, is {v}"));
            }
        }
        if let Some(v) = p.get("supported")
            && !(v.is_boolean() || v.is_null())
        {
            errs.push(format!("product {pid}: supported must be a bool, is {v}"));
        }
        for key in ["requirements", "lxd_requirements"] {
            match p.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        if !v.is_string() {
                            errs.push(format!("product {pid}: {key}.{k} must be a string, is {v}"));
                        }
                    }
                }
                Some(v) => errs.push(format!("product {pid}: {key} must be an object, is {v}")),
            }
        }
        let Some(versions) = p.get("versions").and_then(Value::as_object) else {
            continue;
        };
        for (vname, v) in versions {
            let items = v.get("items").and_then(Value::as_object);
            for (iname, item) in items.into_iter().flatten() {
                if let Some(size) = item.get("size")
                    && !(size.is_u64() || size.is_null())
                {
                    errs.push(format!(
                        "{pid}@{vname} item {iname}: size must be an integer, is {size}"
                    ));
                }
                for (k, val) in item.as_object().into_iter().flatten() {
                    if k != "size" && !(val.is_string() || val.is_null()) {
                        errs.push(format!(
                            "{pid}@{vname} item {iname}: {k} must be a string, is {val}"
                        ));
                    }
                }
            }
        }
    }
    errs
}

/// The images `flavor` derives from the catalog at `tree_root`
/// (`streams/v1/index.json` and the products files it names). `Err` holds
/// the reasons the whole remote would fail.
pub fn client_images(tree_root: &Path, flavor: Flavor) -> Result<Vec<ObservedImage>, Vec<String>> {
    let read = |rel: &str| -> Result<Value, Vec<String>> {
        let path = tree_root.join(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| vec![format!("cannot read {rel}: {e} (the whole remote fails)")])?;
        serde_json::from_str(&text).map_err(|e| {
            vec![format!(
                "{rel} is not valid JSON: {e} (the whole remote fails)"
            )]
        })
    };
    let index = read("streams/v1/index.json")?;
    let entries = index
        .get("index")
        .and_then(Value::as_object)
        .ok_or_else(|| vec!["index.json has no \"index\" object".to_owned()])?;

    let mut images: Vec<(ObservedImage, Vec<String>)> = Vec::new();
    for (key, entry) in entries {
        if entry.get("datatype").and_then(Value::as_str) != Some("image-downloads") {
            continue;
        }
        let products_listed = entry
            .get("products")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        if products_listed == 0 {
            // The clients do not even fetch the file (`index.go`).
            continue;
        }
        let Some(path) = entry.get("path").and_then(Value::as_str) else {
            return Err(vec![format!("index entry {key} has no path")]);
        };
        let doc = read(path.trim_start_matches('/'))?;
        let products = doc
            .get("products")
            .and_then(Value::as_object)
            .ok_or_else(|| vec![format!("{path} has no \"products\" object")])?;
        let errs = type_errors(products);
        if !errs.is_empty() {
            return Err(errs);
        }
        for p in products.values().filter_map(Value::as_object) {
            images.extend(product_images(p, flavor));
        }
    }

    // `applyAliases`: the images sorted, then each alias registered once per
    // (name, type, architecture), the first image in the sort winning. A
    // stable sort: Go's is not, but images that compare equal here (same
    // product, version and root type) do not share a version's aliases.
    images.sort_by(|(a, _), (b, _)| {
        if sorts_before(a, b) {
            std::cmp::Ordering::Less
        } else if sorts_before(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let mut registered: Vec<(String, String, String)> = Vec::new();
    for (img, product_aliases) in &mut images {
        let raw = img
            .properties
            .get("architecture")
            .cloned()
            .unwrap_or_default();
        for a in product_aliases.iter() {
            for name in [a.clone(), format!("{a}/{raw}")] {
                let entry = (
                    name.clone(),
                    img.image_type.clone(),
                    img.architecture.clone(),
                );
                if !registered.contains(&entry) {
                    registered.push(entry);
                    img.aliases.insert(name);
                }
            }
        }
    }
    Ok(images.into_iter().map(|(i, _)| i).collect())
}

/// One product's images and its alias list (`products.go`).
fn product_images(p: &Map<String, Value>, flavor: Flavor) -> Vec<(ObservedImage, Vec<String>)> {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let arch_raw = s("arch");
    let Some(arch_norm) = flavor.architecture(&arch_raw) else {
        return Vec::new(); // silently dropped by the clients
    };
    let (os, release_title, variant) = (s("os"), s("release_title"), s("variant"));
    let fields = ProductFields {
        os: &os,
        release_title: &release_title,
        arch: &arch_raw,
        variant: &variant,
    };
    let aliases: Vec<String> = s("aliases")
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let reqs_obj = |k: &str| p.get(k).filter(|v| !v.is_null()).and_then(Value::as_object);
    let requirements = match flavor {
        Flavor::IncusMain => reqs_obj("requirements"),
        Flavor::LxdMain => reqs_obj("lxd_requirements").or_else(|| reqs_obj("requirements")),
    };

    let mut out = Vec::new();
    let Some(versions) = p.get("versions").and_then(Value::as_object) else {
        return out;
    };
    for (vname, v) in versions {
        if !version_date_ok(vname) {
            continue;
        }
        let Some(items) = v.get("items").and_then(Value::as_object) else {
            continue;
        };
        let label = v.get("label").and_then(Value::as_str).unwrap_or("");
        let base_props = |root_type: &str| {
            let mut props = BTreeMap::new();
            for (k, val) in [
                ("os", s("os")),
                ("release", s("release")),
                ("version", s("version")),
                ("architecture", arch_raw.clone()),
                ("label", label.to_owned()),
                ("serial", vname.clone()),
                ("description", flavor.description(&fields, label, vname)),
                ("variant", s("variant")),
                ("type", root_type.to_owned()),
            ] {
                if !val.is_empty() {
                    props.insert(k.to_owned(), val);
                }
            }
            for (k, val) in requirements.into_iter().flatten() {
                if let Some(val) = val.as_str().filter(|v| !v.is_empty()) {
                    props.insert(format!("requirements.{k}"), val.to_owned());
                }
            }
            props
        };
        let size_of = |i: &Map<String, Value>| i.get("size").and_then(Value::as_u64).unwrap_or(0);
        let path_of = |i: &Map<String, Value>| {
            i.get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        for meta in items.values().filter_map(Value::as_object) {
            let ftype = meta.get("ftype").and_then(Value::as_str).unwrap_or("");
            let fingerprint = meta.get("sha256").and_then(Value::as_str).unwrap_or("");
            if ftype == flavor.combined_ftype()
                && !fingerprint.is_empty()
                && !path_of(meta).is_empty()
            {
                let vm = flavor == Flavor::IncusMain
                    && meta.get("combined_type").and_then(Value::as_str) == Some("virtual-machine");
                out.push((
                    ObservedImage {
                        fingerprint: fingerprint.to_owned(),
                        image_type: if vm { "virtual-machine" } else { "container" }.into(),
                        architecture: arch_norm.into(),
                        properties: base_props("tar.gz"),
                        aliases: BTreeSet::new(),
                        size: size_of(meta),
                        filename: path_of(meta).rsplit('/').next().unwrap_or("").to_owned(),
                        files: vec![path_of(meta)],
                    },
                    aliases.clone(),
                ));
            }
            if ftype != flavor.meta_ftype() {
                continue;
            }
            for root in items.values().filter_map(Value::as_object) {
                let rtype = root.get("ftype").and_then(Value::as_str).unwrap_or("");
                if !ROOT_FTYPES.contains(&rtype) {
                    continue;
                }
                let Some(fp) = combined_key(meta, rtype) else {
                    continue;
                };
                if path_of(meta).is_empty() {
                    continue;
                }
                let vm = matches!(rtype, "disk-kvm.img" | "disk1.img" | "uefi1.img");
                out.push((
                    ObservedImage {
                        fingerprint: fp,
                        image_type: if vm { "virtual-machine" } else { "container" }.into(),
                        architecture: arch_norm.into(),
                        properties: base_props(rtype),
                        aliases: BTreeSet::new(),
                        size: size_of(meta) + size_of(root),
                        filename: path_of(meta).rsplit('/').next().unwrap_or("").to_owned(),
                        files: vec![path_of(meta), path_of(root)],
                    },
                    aliases.clone(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Writes a one-product catalog under a temp dir.
    fn catalog(product: Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let v1 = dir.path().join("streams/v1");
        std::fs::create_dir_all(&v1).expect("mkdir");
        let index = json!({"format": "index:1.0", "index": {"images": {
            "datatype": "image-downloads", "path": "streams/v1/images.json",
            "format": "products:1.0", "products": ["p"]}}});
        let images = json!({"content_id": "images", "datatype": "image-downloads",
            "format": "products:1.0", "products": {"p": product}});
        std::fs::write(v1.join("index.json"), index.to_string()).expect("write");
        std::fs::write(v1.join("images.json"), images.to_string()).expect("write");
        dir
    }

    fn item(ftype: &str, path: &str, extra: Value) -> Value {
        let mut v = json!({"ftype": ftype, "path": path, "sha256": "s", "size": 1});
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        v
    }

    fn product(items: Value) -> Value {
        json!({"arch": "amd64", "os": "Debian", "release": "12", "variant": "default",
            "aliases": "debian/12,debian/12/default",
            "requirements": {"secureboot": "false"},
            "versions": {"20260101_0000": {"items": items}, "2026-bad": {"items": items}}})
    }

    #[test]
    fn pairs_each_meta_with_roots_that_have_a_combined_key() {
        let dir = catalog(product(json!({
            "m": item("incus.tar.xz", "m", json!({"combined_squashfs_sha256": "fp-sq",
                "combined_sha256": "fp-tar"})),
            "l": item("lxd.tar.xz", "l", json!({"combined_squashfs_sha256": "fp-lxd"})),
            "s": item("squashfs", "s", json!({})),
            "t": item("root.tar.xz", "t", json!({})),
            "d": item("disk-kvm.img", "d", json!({})),
        })));
        let incus = client_images(dir.path(), Flavor::IncusMain).expect("parses");
        let fps: BTreeSet<&str> = incus.iter().map(|i| i.fingerprint.as_str()).collect();
        // The disk has no combined key: hidden. root.tar.xz falls back to
        // the legacy combined_sha256. The invalid version name is skipped.
        assert_eq!(fps, BTreeSet::from(["fp-sq", "fp-tar"]));
        let sq = incus
            .iter()
            .find(|i| i.fingerprint == "fp-sq")
            .expect("squashfs image");
        assert_eq!(sq.architecture, "x86_64");
        assert_eq!(sq.files, ["m", "s"]);
        assert_eq!(
            sq.properties
                .get("requirements.secureboot")
                .map(String::as_str),
            Some("false")
        );
        // Newest-wins per (name, type, arch): squashfs outranks root.tar.xz.
        assert!(sq.aliases.contains("debian/12") && sq.aliases.contains("debian/12/amd64"));
        let tar = incus
            .iter()
            .find(|i| i.fingerprint == "fp-tar")
            .expect("tar image");
        assert!(tar.aliases.is_empty(), "{:?}", tar.aliases);

        let lxd = client_images(dir.path(), Flavor::LxdMain).expect("parses");
        assert_eq!(lxd.len(), 1);
        assert_eq!(lxd[0].fingerprint, "fp-lxd");
        // No lxd_requirements: current LXD falls back to requirements.
        assert_eq!(
            lxd[0]
                .properties
                .get("requirements.secureboot")
                .map(String::as_str),
            Some("false")
        );
    }

    #[test]
    fn each_client_has_its_own_newer_architecture_names() {
        let mut p = product(json!({
            "m": item("incus.tar.xz", "m", json!({"combined_squashfs_sha256": "fp-i"})),
            "l": item("lxd.tar.xz", "l", json!({"combined_squashfs_sha256": "fp-l"})),
            "s": item("squashfs", "s", json!({})),
        }));
        for (arch, incus, lxd) in [
            ("x86_64_v2", true, false),
            ("x86_64_v4", true, false),
            ("amd64v3", false, true),
            ("amd64", true, true),
            ("x86-64", false, false),
        ] {
            p["arch"] = json!(arch);
            let dir = catalog(p.clone());
            for (flavor, listed) in [(Flavor::IncusMain, incus), (Flavor::LxdMain, lxd)] {
                let imgs = client_images(dir.path(), flavor).expect("parses");
                assert_eq!(
                    !imgs.is_empty(),
                    listed,
                    "{} with arch {arch}",
                    flavor.name()
                );
                if listed {
                    assert_eq!(imgs[0].architecture, "x86_64");
                }
            }
        }
    }

    #[test]
    fn descriptions_follow_each_client() {
        let mut p = product(json!({
            "m": item("incus.tar.xz", "m", json!({"combined_squashfs_sha256": "fp-i"})),
            "l": item("lxd.tar.xz", "l", json!({"combined_squashfs_sha256": "fp-l"})),
            "s": item("squashfs", "s", json!({})),
        }));
        p["release_title"] = json!("12 (bookworm)");
        p["variant"] = json!("cloud");
        let dir = catalog(p);
        let desc = |flavor| {
            client_images(dir.path(), flavor).expect("parses")[0].properties["description"].clone()
        };
        assert_eq!(
            desc(Flavor::IncusMain),
            "Debian 12 (bookworm) amd64 (cloud) (20260101_0000)"
        );
        assert_eq!(desc(Flavor::LxdMain), "Debian 12 (bookworm) (cloud)");
    }

    #[test]
    fn a_unified_tarball_with_combined_type_vm_is_a_vm_for_newer_incus() {
        let p = product(json!({
            "u": item("incus_combined.tar.gz", "u", json!({"combined_type": "virtual-machine"})),
        }));
        let dir = catalog(p);
        let imgs = client_images(dir.path(), Flavor::IncusMain).expect("parses");
        assert_eq!(imgs.len(), 1);
        assert_eq!(imgs[0].image_type, "virtual-machine");
        assert_eq!(imgs[0].properties["type"], "tar.gz");
    }

    #[test]
    fn empty_lxd_requirements_hide_requirements_from_current_lxd() {
        let mut p = product(json!({
            "l": item("lxd.tar.xz", "l", json!({"combined_squashfs_sha256": "fp"})),
            "s": item("squashfs", "s", json!({})),
        }));
        let with_reqs = catalog(p.clone());
        let imgs = client_images(with_reqs.path(), Flavor::LxdMain).expect("parses");
        assert_eq!(
            imgs[0]
                .properties
                .get("requirements.secureboot")
                .map(String::as_str),
            Some("false")
        );
        p["lxd_requirements"] = json!({});
        let hidden = catalog(p);
        let imgs = client_images(hidden.path(), Flavor::LxdMain).expect("parses");
        assert!(
            !imgs[0]
                .properties
                .keys()
                .any(|k| k.starts_with("requirements."))
        );
    }

    #[test]
    fn type_errors_fail_the_whole_remote_and_unknown_arch_hides_the_product() {
        let mut p = product(json!({
            "l": item("incus.tar.xz", "l", json!({"combined_squashfs_sha256": "fp"})),
            "s": item("squashfs", "s", json!({})),
        }));
        p["requirements"] = json!({"secureboot": false});
        let bad = catalog(p.clone());
        let errs = client_images(bad.path(), Flavor::IncusMain).expect_err("bool requirement");
        assert!(
            errs[0].contains("requirements.secureboot must be a string"),
            "{errs:?}"
        );

        p["requirements"] = json!({});
        p["arch"] = json!("x86-64");
        let unknown = catalog(p);
        assert!(
            client_images(unknown.path(), Flavor::IncusMain)
                .expect("parses")
                .is_empty()
        );
    }

    #[test]
    fn version_dates() {
        assert!(version_date_ok("20260101_0000"));
        assert!(version_date_ok("20240229"));
        assert!(!version_date_ok("20230229_1200"));
        assert!(!version_date_ok("2026011"));
        assert!(!version_date_ok("latest-20260101"));
    }
}
