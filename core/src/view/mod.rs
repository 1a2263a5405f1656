//! What one client makes of a decoded remote: the images it lists (Incus
//! `ToAPI`, LXD `ToLXD` in `shared/simplestreams/products.go`), the
//! aliases it registers (`applyAliases` in
//! `shared/simplestreams/simplestreams.go`) and everything it drops
//! silently, with the reason (`docs/protocol.md#pairing`,
//! `docs/protocol.md#aliases`).
//!
//! ```
//! use ssgen_core::lint::Code;
//! use ssgen_core::remote::load_remote;
//! use ssgen_core::view::view;
//! use ssgen_core::vocab::Client;
//!
//! let index = r#"{"index":{"images":{"datatype":"image-downloads",
//!   "path":"streams/v1/images.json","products":["p"]}}}"#;
//! let products = r#"{"products":{"p":{"arch":"amd64","os":"debian","release":"12",
//!   "variant":"default","aliases":"debian/12","versions":{"20260801_0312":{"items":{
//!   "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,
//!        "combined_squashfs_sha256":"bb"},
//!   "r":{"ftype":"squashfs","path":"r","sha256":"cc","size":2}}}}}}}"#;
//! let remote = load_remote(index, &|path| {
//!     (path == "streams/v1/images.json").then(|| products.to_owned())
//! })
//! .unwrap();
//! let incus = view(&remote, Client::Incus, "x86_64");
//! assert_eq!(incus.images[0].fingerprint, "bb");
//! assert_eq!(incus.images[0].aliases, ["debian/12", "debian/12/amd64"]);
//! // No lxd.tar.xz item: LXD shows nothing, and says why.
//! let lxd = view(&remote, Client::Lxd, "x86_64");
//! assert!(lxd.images.is_empty());
//! assert_eq!(lxd.hidden[0].code, Some(Code::NoMetadata));
//! ```

mod aliases;

use std::collections::BTreeMap;

use aliases::{apply_aliases, image_order, mark_duplicates, tie_break};

use crate::diag::Diagnostic;
use crate::lint::Code;
use crate::remote::{Item, Product, ProductsFile, Remote, RemoteError, Version, location, quote};
pub use crate::vocab::ImageType;
use crate::vocab::{Class, Client, CombinedKey, Ftype};

/// A delta the client would download before the root file (`docs/protocol.md#deltas`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Delta {
    /// The item key.
    pub item: String,
    /// The item's ftype (`squashfs.vcdiff`, `disk-kvm.img.vcdiff`).
    pub ftype: String,
    /// Its path.
    pub path: String,
    /// `delta_base`: the version it applies to.
    pub base_version: String,
    /// The fingerprint of the base image the client looks for in its store.
    pub base_fingerprint: String,
    /// Whether the client looks for the wrong base: Incus uses the base's
    /// squashfs fingerprint even for a `disk-kvm.img.vcdiff` (`docs/protocol.md#deltas`).
    pub wrong_base: bool,
}

/// One image as a client lists it (`docs/protocol.md#pairing`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    /// The fingerprint (verbatim from the catalog, `docs/protocol.md#combined-digests`).
    pub fingerprint: String,
    /// The client.
    pub client: Client,
    /// The products file.
    pub file: String,
    /// The product id.
    pub product: String,
    /// The version name (`serial`).
    pub version: String,
    /// Container or VM.
    #[serde(rename = "type")]
    pub image_type: ImageType,
    /// The normalised architecture (`x86_64`).
    pub architecture: String,
    /// The product's `arch` as written (`amd64`).
    pub raw_arch: String,
    /// Metadata size plus root size.
    pub size: u64,
    /// The metadata (or unified) item's key.
    pub meta_item: String,
    /// The metadata (or unified) item's path.
    pub meta_path: String,
    /// The metadata (or unified) item's sha256.
    pub meta_sha256: String,
    /// The root item's key (none for a unified image).
    pub root_item: Option<String>,
    /// The root item's path.
    pub root_path: Option<String>,
    /// The root item's sha256.
    pub root_sha256: Option<String>,
    /// The root ftype, or `tar.gz` for a unified image (property `type`).
    pub root_ftype: String,
    /// The last component of the metadata path.
    pub filename: String,
    /// The description the client builds.
    pub description: String,
    /// The image properties (empty values removed).
    pub properties: BTreeMap<String, String>,
    /// The aliases in the image's own list (`docs/protocol.md#aliases`).
    pub aliases: Vec<String>,
    /// `created_at`, from the version name: `YYYY-MM-DD`.
    pub created: String,
    /// `expires_at` from `support_eol`, when it parses.
    pub expires: Option<String>,
    /// Deltas the client would try.
    pub deltas: Vec<Delta>,
    /// Whether another image of this client has the same fingerprint (`docs/protocol.md#combined-digests`).
    pub duplicate: bool,
}

/// An alias a client registers (`docs/protocol.md#aliases`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Alias {
    /// The alias name.
    pub name: String,
    /// Its image type.
    #[serde(rename = "type")]
    pub image_type: ImageType,
    /// The normalised architecture.
    pub architecture: String,
    /// The target image.
    pub fingerprint: String,
    /// The product of the target image.
    pub product: String,
    /// The version of the target image.
    pub version: String,
}

/// An alias registration that lost to an earlier one (`docs/protocol.md#aliases`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Shadowed {
    /// The alias that was not registered for this image.
    pub alias: Alias,
    /// The alias that won.
    pub winner: Alias,
    /// Whether the two images sort equal, so that the real client picks
    /// either one at random (Go map order and an unstable sort).
    pub tie: bool,
}

/// The (product, version, items) behind one image of a duplicated
/// fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageRef {
    /// The products file.
    pub file: String,
    /// The product id.
    pub product: String,
    /// The version name.
    pub version: String,
    /// The metadata item key.
    pub meta_item: String,
    /// The root item key.
    pub root_item: Option<String>,
}

/// A fingerprint given to more than one image: the client lists them all,
/// but `GetImage` fails for it ("More than one match", `docs/protocol.md#combined-digests`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Duplicate {
    /// The fingerprint.
    pub fingerprint: String,
    /// The images that carry it.
    pub images: Vec<ImageRef>,
}

/// What one client makes of a remote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct View {
    /// The client.
    pub client: Client,
    /// Set when the client refuses the whole remote; everything else is
    /// then empty, as the client shows nothing.
    pub error: Option<RemoteError>,
    /// The images, in the client's alias order (`docs/protocol.md#aliases`).
    pub images: Vec<Image>,
    /// The aliases, in registration order.
    pub aliases: Vec<Alias>,
    /// Alias registrations that lost.
    pub shadowed: Vec<Shadowed>,
    /// What the client drops silently.
    pub hidden: Vec<Diagnostic>,
    /// Fingerprints carried by several images.
    pub duplicates: Vec<Duplicate>,
}

/// The images, aliases and silent drops `client` computes from `remote`,
/// on a host whose architecture is `host_arch` (any name the client knows,
/// e.g. `x86_64` or `amd64`; it only decides which short aliases appear in
/// each image's own list). When the client refuses the remote, the view
/// is empty and [`View::error`] says why.
#[must_use]
pub fn view(remote: &Remote, client: Client, host_arch: &str) -> View {
    if let Some(error) = remote.error(client) {
        return View {
            client,
            error: Some(error),
            images: Vec::new(),
            aliases: Vec::new(),
            shadowed: Vec::new(),
            hidden: Vec::new(),
            duplicates: Vec::new(),
        };
    }
    view_lenient(remote, client, host_arch)
}

/// [`view`] ignoring the remote's problems: what the client would show if
/// the type errors were fixed. The linter uses it to report everything.
#[must_use]
pub fn view_lenient(remote: &Remote, client: Client, host_arch: &str) -> View {
    let mut out = View {
        client,
        error: None,
        images: Vec::new(),
        aliases: Vec::new(),
        shadowed: Vec::new(),
        hidden: Vec::new(),
        duplicates: Vec::new(),
    };
    let mut images = Vec::new();
    for file in &remote.files {
        for (id, product) in &file.products {
            product_images(client, file, id, product, &mut images, &mut out.hidden);
        }
    }
    images.sort_by(|a, b| image_order(a, b).then_with(|| tie_break(a, b)));
    apply_aliases(client, host_arch, &mut images, &mut out);
    mark_duplicates(&mut images, &mut out.duplicates);
    out.images = images.into_iter().map(|p| p.image).collect();
    out
}

/// An image before aliases are applied, with its product's alias entries.
struct Pending<'a> {
    image: Image,
    alias_entries: Vec<&'a str>,
}

/// What `client` drops silently, at `file#products[product]…`.
fn hidden(
    code: Code,
    client: Client,
    file: &ProductsFile,
    product: &str,
    version: Option<&str>,
    item: Option<&str>,
    reason: String,
) -> Diagnostic {
    Diagnostic::coded(
        code,
        &[client],
        location(&file.path, product, version, item),
        reason,
    )
}

fn product_images<'a>(
    client: Client,
    file: &'a ProductsFile,
    id: &'a str,
    product: &'a Product,
    images: &mut Vec<Pending<'a>>,
    dropped: &mut Vec<Diagnostic>,
) {
    let Some(architecture) = client.normalise_arch(&product.arch) else {
        dropped.push(hidden(
            Code::HiddenUnknownArch,
            client,
            file,
            id,
            None,
            None,
            format!(
                "arch {} is not an architecture the client knows, so it drops the whole product",
                quote(&product.arch)
            ),
        ));
        return;
    };
    for (name, version) in &product.versions {
        let Some((y, m, d)) = crate::time::version_date(name) else {
            dropped.push(hidden(
                Code::InvalidVersionName,
                client,
                file,
                id,
                Some(name),
                None,
                "the version name does not start with a valid YYYYMMDD date, so the version is dropped".to_owned(),
            ));
            continue;
        };
        let created = format!("{y:04}-{m:02}-{d:02}");
        let ctx = VersionCtx {
            client,
            file,
            id,
            product,
            name,
            version,
            architecture,
            created,
        };
        let before = images.len();
        let mut saw_meta = false;
        for (key, item) in &version.items {
            if item.ftype == client.combined_ftype() {
                saw_meta = true;
                if item.sha256.is_empty() {
                    dropped.push(ctx.hidden(
                        Code::MissingCombinedHash,
                        Some(key),
                        format!(
                            "the unified {} item has no sha256, which is its fingerprint, so the image is dropped",
                            item.ftype
                        ),
                    ));
                } else if item.path.is_empty() {
                    dropped.push(ctx.hidden(
                        Code::MetaEmptyPath,
                        Some(key),
                        "the unified item has an empty path, so the image is dropped".to_owned(),
                    ));
                } else {
                    images.push(ctx.image(key, item, None));
                }
            }
            if item.ftype == client.meta_ftype() {
                saw_meta = true;
                let roots: Vec<(&String, &Item)> = version
                    .items
                    .iter()
                    .filter(|(_, r)| r.kind().is_some_and(|f| f.class() == Class::Root))
                    .collect();
                if roots.is_empty() {
                    dropped.push(ctx.hidden(
                        Code::MetaWithoutRoot,
                        Some(key),
                        format!(
                            "the {} item has no root item (squashfs, root.tar.xz, disk-kvm.img, …) in its version to pair with",
                            item.ftype
                        ),
                    ));
                }
                for (rkey, root) in roots {
                    let key_name = Item::combined_key_for(&root.ftype)
                        .map_or("combined_*", CombinedKey::as_str);
                    if item.combined_for(&root.ftype).is_empty() {
                        // Another metadata item may serve this root: one
                        // metadata item per root type is allowed.
                        let served = version.items.values().any(|m| {
                            m.ftype == item.ftype
                                && !m.path.is_empty()
                                && !m.combined_for(&root.ftype).is_empty()
                        });
                        if served {
                            continue;
                        }
                        dropped.push(ctx.hidden(
                            Code::MissingCombinedHash,
                            Some(key),
                            format!(
                                "the {} item has no {key_name}, so its pair with the {} item {} is dropped",
                                item.ftype,
                                root.ftype,
                                quote(rkey)
                            ),
                        ));
                    } else if item.path.is_empty() {
                        dropped.push(ctx.hidden(
                            Code::MetaEmptyPath,
                            Some(key),
                            format!(
                                "the {} item has an empty path, so its pair with {} is dropped",
                                item.ftype,
                                quote(rkey)
                            ),
                        ));
                    } else {
                        images.push(ctx.image(key, item, Some((rkey, root))));
                    }
                }
            }
        }
        if !saw_meta {
            dropped.push(ctx.hidden(
                Code::NoMetadata,
                None,
                format!(
                    "the version has no {} or {} item, so {} shows nothing from it",
                    client.meta_ftype(),
                    client.combined_ftype(),
                    client.name()
                ),
            ));
        }
        let made = images.len() > before;
        for (key, item) in &version.items {
            if let Some(h) = ctx.delta_problem(key, item, made) {
                dropped.push(h);
            }
        }
    }
}

struct VersionCtx<'a> {
    client: Client,
    file: &'a ProductsFile,
    id: &'a str,
    product: &'a Product,
    name: &'a str,
    version: &'a Version,
    architecture: &'static str,
    created: String,
}

impl<'a> VersionCtx<'a> {
    /// What the client drops of this version (or of its item `item`).
    fn hidden(&self, code: Code, item: Option<&str>, reason: String) -> Diagnostic {
        hidden(
            code,
            self.client,
            self.file,
            self.id,
            Some(self.name),
            item,
            reason,
        )
    }

    fn image(&self, meta_key: &str, meta: &Item, root: Option<(&String, &Item)>) -> Pending<'a> {
        let (client, product, name, version) = (self.client, self.product, self.name, self.version);
        let fingerprint = match root {
            Some((_, r)) => meta.combined_for(&r.ftype).to_owned(),
            None => meta.sha256.clone(),
        };
        let size = match root {
            Some((_, r)) => meta.size.saturating_add(r.size),
            None => meta.size,
        };
        let image_type = match root {
            Some((_, r)) if r.kind().is_some_and(Ftype::is_vm) => ImageType::VirtualMachine,
            None if client == Client::Incus
                && meta.combined_type == ImageType::VirtualMachine.as_str() =>
            {
                ImageType::VirtualMachine
            }
            _ => ImageType::Container,
        };
        let root_ftype = root.map_or_else(|| "tar.gz".to_owned(), |(_, r)| r.ftype.clone());
        let description = match client {
            Client::Incus => {
                let mut d = format!("{} {} {}", product.os, product.release_title, product.arch);
                if !product.variant.is_empty() && product.variant != "default" {
                    d = format!("{d} ({})", product.variant);
                }
                if !version.label.is_empty() {
                    d = format!("{d} ({})", version.label);
                }
                format!("{d} ({name})")
            }
            Client::Lxd => {
                let mut d = format!("{} {}", product.os, product.release_title);
                if !version.label.is_empty() {
                    d = format!("{d} ({})", version.label);
                }
                if !product.variant.is_empty() {
                    d = format!("{d} ({})", product.variant);
                }
                d
            }
        };
        let mut properties = BTreeMap::new();
        for (k, v) in [
            ("os", &product.os),
            ("release", &product.release),
            ("version", &product.version),
            ("architecture", &product.arch),
            ("label", &version.label),
            ("variant", &product.variant),
        ] {
            properties.insert(k.to_owned(), v.clone());
        }
        properties.insert("serial".to_owned(), name.to_owned());
        properties.insert("description".to_owned(), description.clone());
        properties.insert("type".to_owned(), root_ftype.clone());
        if let Some(reqs) = product.requirements_for(client) {
            for (k, v) in reqs {
                properties.insert(format!("requirements.{k}"), v.clone());
            }
        }
        properties.retain(|_, v| !v.is_empty());
        let deltas = root.map(|(_, r)| self.deltas(r)).unwrap_or_default();
        let image = Image {
            fingerprint,
            client,
            file: self.file.path.clone(),
            product: self.id.to_owned(),
            version: name.to_owned(),
            image_type,
            architecture: self.architecture.to_owned(),
            raw_arch: product.arch.clone(),
            size: u64::try_from(size).unwrap_or(0),
            meta_item: meta_key.to_owned(),
            meta_path: meta.path.clone(),
            meta_sha256: meta.sha256.clone(),
            root_item: root.map(|(k, _)| k.clone()),
            root_path: root.map(|(_, r)| r.path.clone()),
            root_sha256: root.map(|(_, r)| r.sha256.clone()),
            root_ftype,
            filename: meta.path.rsplit('/').next().unwrap_or_default().to_owned(),
            description,
            properties,
            aliases: Vec::new(),
            created: self.created.clone(),
            expires: eol_date(&product.support_eol),
            deltas,
            duplicate: false,
        };
        Pending {
            image,
            alias_entries: self.product.alias_entries(),
        }
    }

    /// The base fingerprint the client looks up for a delta item, or why it
    /// ignores it.
    fn delta_base(&self, delta: &Item) -> Result<(String, bool), (Code, String)> {
        let Some(base) = self.product.versions.get(&delta.delta_base) else {
            return Err((
                Code::DeltaBaseMissing,
                format!(
                    "delta_base {} is not a version of this product, so the delta is ignored",
                    quote(&delta.delta_base)
                ),
            ));
        };
        let meta_ftype = self.client.meta();
        // The clients stop at the first metadata item (in Go map order).
        let meta = base.items.values().find(|i| meta_ftype == i.ftype.as_str());
        let vm = Ftype::DiskKvmDelta == delta.ftype.as_str();
        // LXD looks the base up by the key of the delta's own root type;
        // Incus always by the squashfs key (`ToAPI`'s source lookup).
        let key = if vm && self.client == Client::Lxd {
            CombinedKey::DiskKvm
        } else {
            CombinedKey::Squashfs
        };
        let fp = meta.map_or("", |m| m.combined(key));
        let wrong = vm && self.client == Client::Incus && meta.is_some();
        if fp.is_empty() {
            let code = if vm && self.client == Client::Incus {
                Code::VmDeltaIncus
            } else {
                Code::DeltaBaseNoHash
            };
            return Err((
                code,
                format!(
                    "{} looks up the base image by the {key} of version {}'s {meta_ftype} item, which has none, so the delta is ignored",
                    self.client.name(),
                    quote(&delta.delta_base)
                ),
            ));
        }
        Ok((fp.to_owned(), wrong))
    }

    fn deltas(&self, root: &Item) -> Vec<Delta> {
        let Some(want) = root.kind().and_then(Ftype::delta) else {
            return Vec::new();
        };
        self.version
            .items
            .iter()
            .filter(|(_, d)| want == d.ftype.as_str())
            .filter_map(|(key, d)| {
                let (base_fingerprint, wrong_base) = self.delta_base(d).ok()?;
                Some(Delta {
                    item: key.clone(),
                    ftype: d.ftype.clone(),
                    path: d.path.clone(),
                    base_version: d.delta_base.clone(),
                    base_fingerprint,
                    wrong_base,
                })
            })
            .collect()
    }

    /// Why a delta item is ignored, if it is (reported once per version).
    fn delta_problem(&self, key: &str, item: &Item, made_images: bool) -> Option<Diagnostic> {
        let root_ftype = item.kind().and_then(Ftype::delta_of)?;
        if !made_images {
            return None;
        }
        let h = |code, reason| Some(self.hidden(code, Some(key), reason));
        if !self
            .version
            .items
            .values()
            .any(|r| root_ftype == r.ftype.as_str())
        {
            return h(
                Code::DeltaOrphan,
                format!("the version has no {root_ftype} item, so the delta is never used"),
            );
        }
        match self.delta_base(item) {
            Ok(_) => None,
            Err((code, reason)) => h(code, reason),
        }
    }
}

/// `support_eol` as Go's `time.Parse("2006-01-02", …)` reads it.
#[must_use]
pub fn eol_date(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let (y, m, d) = crate::time::version_date(&digits)?;
    (digits.len() == 8).then(|| format!("{y:04}-{m:02}-{d:02}"))
}

#[cfg(test)]
mod tests;
