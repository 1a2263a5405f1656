//! Products, versions and items of `images.json`, and the index that points
//! at it (`docs/protocol.md#the-index`, `#products`, `#items`).

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Level};
use crate::digest::{Digests, Sha256};
use crate::layout::{FileRole, Product, Scan, Version, VersionFile};
use crate::remote::{IMAGE_DOWNLOADS, INDEX_FORMAT, PRODUCTS_FORMAT};
use crate::render::{Node, to_text};
use crate::vocab::{Client, CombinedKey, Ftype, ImageType};
use crate::{Clients, Config, Error, arch, time};

/// The directory of the catalogs, relative to the server root.
pub const STREAMS_DIR: &str = "streams/v1";
/// Where the products file lives, relative to the server root.
pub const IMAGES_JSON: &str = "streams/v1/images.json";
/// The index every client reads first.
pub const INDEX_JSON: &str = "streams/v1/index.json";

/// The documents of a build and what was noticed on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// `streams/v1/index.json`.
    pub index_json: String,
    /// `streams/v1/images.json`.
    pub images_json: String,
    /// The scan's diagnostics and the build's own (duplicates, clashes).
    pub diagnostics: Vec<Diagnostic>,
    /// Number of products and images (per served client) published.
    pub products: usize,
    /// Images (fingerprints) published.
    pub images: usize,
}

/// Builds both documents from a scan and the digests of every file and
/// pair. `previous_images_json` is the catalog now published, if any: when
/// nothing but the time changed, its `updated` is kept, so an unchanged tree
/// gives byte-identical files.
///
/// # Errors
/// [`Error::Invalid`] when the scan holds errors or a file's digest differs
/// from its version's `SHA256SUMS` (nothing may be published),
/// [`Error::MissingDigest`] when a digest of the plan is missing.
pub fn build(
    scan: &Scan,
    digests: &Digests,
    config: &Config,
    previous_images_json: Option<&str>,
) -> Result<Output, Error> {
    let errors: Vec<Diagnostic> = scan
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut diagnostics = scan.diagnostics.clone();
    let clients = config.clients;
    let duplicates = duplicate_versions(scan, digests, clients)?;
    let mut products = BTreeMap::new();
    let mut alias_owner: BTreeMap<(String, ImageType, &str), String> = BTreeMap::new();
    let mut images = 0;

    let mut damaged = Vec::new();
    for product in &scan.products {
        let mut versions = BTreeMap::new();
        let mut types = BTreeSet::new();
        for version in &product.versions {
            for f in version
                .files
                .iter()
                .filter(|f| version.sums.contains_key(&f.path))
            {
                let (got, want) = (file_digest(digests, f)?, version.sums[&f.path]);
                if got != want {
                    damaged.push(Diagnostic::new(
                        Level::Error,
                        &f.path,
                        format!("has sha256 {got}, but SHA256SUMS says {want}: it is damaged, or not the file that was listed"),
                        "upload it again, or correct SHA256SUMS",
                    ));
                }
            }
            let vdir = format!("{}/{}", product_dir(product), version.name);
            if let Some((fp, owner)) = duplicates.get(&vdir) {
                diagnostics.push(Diagnostic::new(
                    Level::Warning,
                    &vdir,
                    format!("fingerprint {fp} is already published by {owner}; two images with one fingerprint break downloads of both, so this version is skipped"),
                    "remove the duplicate copy of the files",
                ));
                continue;
            }
            images += fingerprints(version, clients, digests)?.len();
            for (_, root) in version.roots() {
                types.insert(if root.is_vm() {
                    ImageType::VirtualMachine
                } else {
                    ImageType::Container
                });
            }
            if version.files.iter().any(|f| f.role == FileRole::Unified) {
                types.insert(ImageType::Container);
            }
            versions.insert(
                version.name.clone(),
                version_node(version, clients, digests)?,
            );
        }
        if versions.is_empty() {
            continue;
        }
        let norm = arch::normalise(&product.arch).unwrap_or("");
        for alias in &product.aliases {
            for ty in &types {
                let key = (alias.clone(), *ty, norm);
                match alias_owner.get(&key) {
                    Some(owner) => diagnostics.push(Diagnostic::new(
                        Level::Warning,
                        product_dir(product),
                        format!("alias {alias:?} ({ty}, {norm}) is also given by {owner}, which the clients prefer"),
                        "give each product its own aliases (metadata.json \"aliases\")",
                    )),
                    None => {
                        alias_owner.insert(key, product.id.clone());
                    }
                }
            }
        }
        products.insert(product.id.clone(), product_node(product, clients, versions));
    }
    if !damaged.is_empty() {
        return Err(Error::Invalid(damaged));
    }

    let product_ids: Vec<String> = products.keys().cloned().collect();
    let count = product_ids.len();
    let mut images_doc = Node::map();
    images_doc
        .set("content_id", "images")
        .set("datatype", IMAGE_DOWNLOADS)
        .set("format", PRODUCTS_FORMAT)
        .set("products", Node::Map(products));
    let mut render = |updated: &str| {
        images_doc.set("updated", updated);
        (index_json(&product_ids, updated), to_text(&images_doc))
    };

    // Try the published `updated` first: when nothing else changed, the
    // result is the published bytes and one rendering was enough.
    let kept = previous_images_json
        .and_then(previous_updated)
        .map(|prev| render(&prev))
        .filter(|docs| previous_images_json == Some(docs.1.as_str()));
    let docs = match kept {
        Some(docs) => docs,
        None => render(&time::rfc2822(config.timestamp)),
    };
    Ok(Output {
        index_json: docs.0,
        images_json: docs.1,
        diagnostics,
        products: count,
        images,
    })
}

/// `streams/v1/index.json` for an `images.json` holding `product_ids`
/// (sorted) and written at `updated`.
#[must_use]
pub fn index_json(product_ids: &[String], updated: &str) -> String {
    let mut index = Node::map();
    if product_ids.is_empty() {
        index.set("index", Node::map());
    } else {
        let mut entry = Node::map();
        entry
            .set("datatype", IMAGE_DOWNLOADS)
            .set("format", PRODUCTS_FORMAT)
            .set("path", IMAGES_JSON)
            .set("products", Node::List(product_ids.to_vec()))
            .set("updated", updated);
        let mut map = Node::map();
        map.set("images", entry);
        index.set("index", map);
    }
    index.set("format", INDEX_FORMAT).set("updated", updated);
    to_text(&index)
}

fn previous_updated(text: &str) -> Option<String> {
    // Only the one key: the previous catalog may be large.
    crate::remote::decode::top_level_string(text, "updated")
}

fn product_dir(p: &Product) -> String {
    crate::vocab::ProductPath::new(&p.os, &p.release, &p.arch, &p.variant).dir()
}

fn file_digest(digests: &Digests, f: &VersionFile) -> Result<Sha256, Error> {
    digests
        .files
        .get(&f.path)
        .copied()
        .ok_or_else(|| Error::MissingDigest {
            path: f.path.clone(),
        })
}

fn pair_digest(digests: &Digests, meta: &VersionFile, root: &VersionFile) -> Result<Sha256, Error> {
    digests
        .combined
        .get(&(meta.path.clone(), root.path.clone()))
        .copied()
        .ok_or_else(|| Error::MissingDigest {
            path: format!("{} + {}", meta.path, root.path),
        })
}

/// The metadata file each served client's item points at: its own file
/// when it exists, otherwise the other one, so one tarball serves both.
fn meta_for(version: &Version, client: Client) -> Option<&VersionFile> {
    version
        .metas()
        .find(|(_, m)| *m == client)
        .or_else(|| version.metas().next())
        .map(|(f, _)| f)
}

/// The versions the catalog leaves out because an earlier version (in
/// product, then version order) already gives one of their fingerprints:
/// two images with one fingerprint break downloads of both, so the first
/// one is published. By version directory, with the fingerprint and the
/// directory that publishes it.
///
/// # Errors
/// [`Error::MissingDigest`] when a digest the fingerprints need is missing.
pub fn duplicate_versions(
    scan: &Scan,
    digests: &Digests,
    clients: Clients,
) -> Result<BTreeMap<String, (Sha256, String)>, Error> {
    let mut seen: BTreeMap<Sha256, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for product in &scan.products {
        for version in &product.versions {
            let fps = fingerprints(version, clients, digests)?;
            let vdir = format!("{}/{}", product_dir(product), version.name);
            if let Some((fp, owner)) = fps
                .iter()
                .find_map(|fp| seen.get(fp).map(|owner| (*fp, owner.clone())))
            {
                out.insert(vdir, (fp, owner));
                continue;
            }
            for fp in fps {
                seen.insert(fp, vdir.clone());
            }
        }
    }
    Ok(out)
}

/// `scan` without the versions [`duplicate_versions`] names: what the
/// catalog publishes, for steps that must follow it (deltas are made only
/// between published versions).
///
/// # Errors
/// As [`duplicate_versions`].
pub fn without_duplicates(scan: &Scan, digests: &Digests, clients: Clients) -> Result<Scan, Error> {
    let duplicates = duplicate_versions(scan, digests, clients)?;
    let mut out = scan.clone();
    for product in &mut out.products {
        let dir = product_dir(product);
        product
            .versions
            .retain(|v| !duplicates.contains_key(&format!("{dir}/{}", v.name)));
    }
    Ok(out)
}

fn served(clients: Clients) -> impl Iterator<Item = Client> {
    Client::ALL.into_iter().filter(move |c| clients.serves(*c))
}

/// Every fingerprint the version gives any served client.
fn fingerprints(
    version: &Version,
    clients: Clients,
    digests: &Digests,
) -> Result<BTreeSet<Sha256>, Error> {
    let mut out = BTreeSet::new();
    for client in served(clients) {
        if let Some(meta) = meta_for(version, client) {
            for (root, _) in version.roots() {
                out.insert(pair_digest(digests, meta, root)?);
            }
        }
    }
    for f in &version.files {
        if f.role == FileRole::Unified {
            out.insert(file_digest(digests, f)?);
        }
    }
    Ok(out)
}

fn item(f: &VersionFile, ftype: Ftype, digests: &Digests) -> Result<Node, Error> {
    let mut node = Node::map();
    node.set("ftype", ftype.as_str())
        .set("path", f.path.as_str())
        .set("sha256", file_digest(digests, f)?.to_hex())
        .set("size", f.size);
    Ok(node)
}

fn version_node(version: &Version, clients: Clients, digests: &Digests) -> Result<Node, Error> {
    let mut items = Node::map();
    for client in served(clients) {
        if let Some(meta) = meta_for(version, client) {
            let mut node = item(meta, client.meta(), digests)?;
            for (root, ty) in version.roots() {
                let fp = pair_digest(digests, meta, root)?.to_hex();
                // Its own key, and for root.tar.xz the legacy key older
                // tools read.
                for key in CombinedKey::for_root(ty.kind()) {
                    node.set(key.as_str(), fp.as_str());
                }
            }
            items.set(client.meta_ftype(), node);
        }
    }
    for f in &version.files {
        match &f.role {
            FileRole::Meta(_) => {}
            FileRole::Root(ty) => {
                items.set(ty.ftype(), item(f, ty.kind(), digests)?);
            }
            FileRole::Unified => {
                for client in served(clients) {
                    items.set(client.combined_ftype(), item(f, client.unified(), digests)?);
                }
            }
            FileRole::Delta { base } => {
                let mut node = item(f, Ftype::SquashfsDelta, digests)?;
                node.set("delta_base", base.as_str());
                items.set(&format!("squashfs.{base}.vcdiff"), node);
            }
        }
    }
    let mut node = Node::map();
    node.set("items", items);
    Ok(node)
}

fn product_node(p: &Product, clients: Clients, versions: BTreeMap<String, Node>) -> Node {
    let mut node = Node::map();
    node.set("aliases", p.aliases.join(","))
        .set("arch", p.arch.as_str())
        .set("os", p.os_title.as_str())
        .set("release", p.release.as_str())
        .set("release_title", p.release_title.as_str())
        .set("variant", p.variant.as_str())
        .set("versions", Node::Map(versions));
    if let Some(codename) = &p.codename {
        node.set("release_codename", codename.as_str());
    }
    if !p.requirements.is_empty() {
        node.set("requirements", p.requirements.clone());
    }
    if clients.serves(Client::Lxd) {
        if let Some(lxd) = &p.lxd_requirements {
            node.set("lxd_requirements", lxd.clone());
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, FileHasher, Prefixes, scan};

    #[test]
    fn the_catalogs_live_in_streams_dir() {
        for path in [INDEX_JSON, IMAGES_JSON] {
            let (dir, name) = path.rsplit_once('/').expect("a directory");
            assert_eq!(dir, STREAMS_DIR);
            assert!(name.ends_with(".json"));
        }
    }

    fn hash_all(scan: &Scan, bytes: &dyn Fn(&str) -> Vec<u8>) -> Digests {
        let mut digests = Digests::default();
        let mut prefixes = Prefixes::default();
        let plan = scan.plan(&digests);
        for job in plan.jobs() {
            let mut h = FileHasher::new(job, &prefixes).expect("prefixes first");
            h.update(&bytes(&job.path));
            let r = h.finish().expect("sizes match");
            prefixes.insert(&r);
            digests.record(&r);
        }
        digests
    }

    #[test]
    fn duplicate_fingerprints_keep_the_first() {
        let mut entries = Vec::new();
        for os in ["a", "b"] {
            let d = format!("images/{os}/1/amd64/default/20260801_0000");
            entries.push(Entry::file(format!("{d}/lxd.tar.xz"), 1));
            entries.push(Entry::file(format!("{d}/rootfs.squashfs"), 1));
        }
        let config = Config::new(0);
        let scan = scan(&entries, &config);
        let digests = hash_all(&scan, &|p| vec![u8::from(p.ends_with("xz"))]);
        let out = build(&scan, &digests, &config, None).expect("builds");
        assert_eq!(out.products, 1);
        assert!(
            out.diagnostics
                .iter()
                .any(|d| d.message.contains("already published"))
        );
    }

    #[test]
    fn updated_is_kept_when_nothing_changed() {
        let d = "images/x/1/amd64/default/20260801_0000";
        let entries = vec![
            Entry::file(format!("{d}/lxd.tar.xz"), 1),
            Entry::file(format!("{d}/rootfs.squashfs"), 1),
        ];
        let scan = scan(&entries, &Config::new(0));
        let digests = hash_all(&scan, &|p| vec![u8::from(p.ends_with("xz"))]);
        let first = build(&scan, &digests, &Config::new(1_000), None).expect("builds");
        let second = build(
            &scan,
            &digests,
            &Config::new(2_000),
            Some(&first.images_json),
        )
        .expect("builds");
        assert_eq!(first, second);
        let fresh = build(&scan, &digests, &Config::new(2_000), None).expect("builds");
        assert_ne!(first.images_json, fresh.images_json);
    }
}
