//! A remote as the clients decode it: `index.json` and the products files
//! it lists, read with Go `encoding/json` semantics into the clients'
//! structs (`shared/simplestreams/index.go` and `products.go` of both
//! clients; `docs/protocol.md#decoding`). A value of the wrong type
//! anywhere fails the whole remote, with the JSON location of the value.
//!
//! ```
//! use ssgen_core::remote::load_remote;
//! use ssgen_core::vocab::Client;
//!
//! let index = r#"{"index":{"images":{"datatype":"image-downloads",
//!   "path":"streams/v1/images.json","products":["p"]}}}"#;
//! let products = r#"{"products":{"p":{"arch":"amd64","versions":{"20260801":
//!   {"items":{"r":{"ftype":"squashfs","path":"r","sha256":"cc","size":"2"}}}}}}}"#;
//! let remote = load_remote(index, &|_| Some(products.to_owned())).unwrap_err();
//! assert_eq!(
//!     remote.to_string(),
//!     r#"the remote fails: streams/v1/images.json: products["p"].versions["20260801"].items["r"].size: expected an integer, found "2""#
//! );
//! ```

mod claims;
pub(crate) mod decode;

use std::collections::BTreeMap;
use std::fmt;

pub use claims::{Claims, CombinedClaim, FileClaim, Unreferenced};

use crate::diag::Diagnostic;
use crate::lint::Code;
use crate::vocab::{Client, CombinedKey, Ftype};

/// The path of the index relative to the base URL.
pub const INDEX_PATH: &str = "streams/v1/index.json";

/// The placeholder product id [`index_for_products`] lists when the file
/// has no readable products.
pub const ANY_PRODUCT: &str = "(any)";

/// A remote that a client refuses as a whole ("Failed parsing products").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RemoteError {
    /// Every problem found (the client stops at the first, a linter wants
    /// all), in document order.
    pub problems: Vec<Diagnostic>,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [] => f.write_str("the remote fails"),
            [one] => write!(f, "the remote fails: {}", one.short()),
            [first, rest @ ..] => write!(
                f,
                "the remote fails: {} (and {} more problem(s))",
                first.short(),
                rest.len()
            ),
        }
    }
}

impl serde::Serialize for RemoteError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.problems)
    }
}

/// How a key of a Go-decoded object was spelt, when it is not the
/// canonical spelling or is given more than once (Go matches keys
/// case-insensitively and the last one wins).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeySpelling {
    /// The file.
    pub file: String,
    /// The object holding the key.
    pub location: String,
    /// The field's canonical name.
    pub field: String,
    /// Every spelling found, in document order (the last one wins).
    pub spellings: Vec<String>,
}

/// One entry of `index.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// The entry's key (ignored by the clients).
    pub key: String,
    /// `datatype`; only `image-downloads` is loaded.
    pub datatype: String,
    /// `path` as written.
    pub path: String,
    /// `format` (ignored by the clients, needed by python-simplestreams).
    pub format: String,
    /// `products`; only its length matters to the clients.
    pub products: Vec<String>,
}

/// The `datatype` of an index entry the clients load.
pub const IMAGE_DOWNLOADS: &str = "image-downloads";

/// The `format` of an index (the clients ignore it; python-simplestreams
/// needs it).
pub const INDEX_FORMAT: &str = "index:1.0";

/// The `format` of a products file and of the index entries that list
/// one (the clients ignore it; python-simplestreams needs it).
pub const PRODUCTS_FORMAT: &str = "products:1.0";

impl IndexEntry {
    /// Whether the clients fetch this entry's products file.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.datatype == IMAGE_DOWNLOADS && !self.products.is_empty()
    }
}

/// A products file as the clients decode it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductsFile {
    /// The index entry it was loaded for.
    pub index_key: String,
    /// Its path relative to the base URL (cleaned).
    pub path: String,
    /// Top-level `format`.
    pub format: String,
    /// Top-level `content_id`.
    pub content_id: String,
    /// The products by id.
    pub products: BTreeMap<String, Product>,
}

impl ProductsFile {
    /// Decodes one products file found at `path`, as the clients do: the
    /// file, and what would make a client refuse it (type errors, in
    /// document order).
    ///
    /// # Errors
    /// The problem when the file is empty or not JSON at all.
    pub fn parse(path: &str, text: &str) -> Result<(ProductsFile, Vec<Diagnostic>), Diagnostic> {
        let decoded = decode::products(path, text)?;
        let mut file = decoded.value;
        file.path = path.to_owned();
        Ok((file, decoded.problems))
    }
}

/// A product.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Product {
    /// `aliases`, comma-separated, not trimmed.
    pub aliases: String,
    /// `arch` as written.
    pub arch: String,
    /// `os`.
    pub os: String,
    /// `release`.
    pub release: String,
    /// `release_title`.
    pub release_title: String,
    /// `release_codename`.
    pub release_codename: String,
    /// `variant`.
    pub variant: String,
    /// `version`.
    pub version: String,
    /// `requirements`; `None` when absent or `null`.
    pub requirements: Option<BTreeMap<String, String>>,
    /// `lxd_requirements`; `None` when absent or `null`.
    pub lxd_requirements: Option<BTreeMap<String, String>>,
    /// `support_eol`.
    pub support_eol: String,
    /// `supported`.
    pub supported: bool,
    /// The versions by name.
    pub versions: BTreeMap<String, Version>,
}

impl Product {
    /// The requirements `client` applies: Incus reads `requirements`; LXD
    /// reads `lxd_requirements` when present, even `{}`.
    #[must_use]
    pub fn requirements_for(&self, client: Client) -> Option<&BTreeMap<String, String>> {
        match client {
            Client::Incus => self.requirements.as_ref(),
            Client::Lxd => self
                .lxd_requirements
                .as_ref()
                .or(self.requirements.as_ref()),
        }
    }

    /// The alias entries, split on `,` without trimming; none when
    /// `aliases` is empty.
    #[must_use]
    pub fn alias_entries(&self) -> Vec<&str> {
        if self.aliases.is_empty() {
            Vec::new()
        } else {
            self.aliases.split(',').collect()
        }
    }
}

/// A version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version {
    /// `label`.
    pub label: String,
    /// `pubname`.
    pub pubname: String,
    /// The items by key.
    pub items: BTreeMap<String, Item>,
}

/// An item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Item {
    /// `ftype`.
    pub ftype: String,
    /// `path` as written.
    pub path: String,
    /// `sha256`.
    pub sha256: String,
    /// `size` (Go `int64`; missing is 0).
    pub size: i64,
    /// `combined_squashfs_sha256`.
    pub combined_squashfs_sha256: String,
    /// `combined_disk-kvm-img_sha256`.
    pub combined_disk_kvm_img_sha256: String,
    /// `combined_rootxz_sha256`.
    pub combined_rootxz_sha256: String,
    /// `combined_sha256` (legacy fallback for `root.tar.xz`).
    pub combined_sha256: String,
    /// `combined_disk1-img_sha256`.
    pub combined_disk1_img_sha256: String,
    /// `combined_uefi1-img_sha256`.
    pub combined_uefi1_img_sha256: String,
    /// `delta_base`.
    pub delta_base: String,
    /// `combined_type` (Incus ≥ 7.1 only).
    pub combined_type: String,
    /// Keys no client knows, in document order (e.g. the misspelt
    /// `combined_disk_kvm_img_sha256`).
    pub unknown_keys: Vec<String>,
}

impl Item {
    /// The value of a combined key.
    #[must_use]
    pub fn combined(&self, key: CombinedKey) -> &str {
        match key {
            CombinedKey::Squashfs => &self.combined_squashfs_sha256,
            CombinedKey::DiskKvm => &self.combined_disk_kvm_img_sha256,
            CombinedKey::RootXz => &self.combined_rootxz_sha256,
            CombinedKey::Legacy => &self.combined_sha256,
            CombinedKey::Disk1 => &self.combined_disk1_img_sha256,
            CombinedKey::Uefi1 => &self.combined_uefi1_img_sha256,
        }
    }

    pub(crate) fn combined_mut(&mut self, key: CombinedKey) -> &mut String {
        match key {
            CombinedKey::Squashfs => &mut self.combined_squashfs_sha256,
            CombinedKey::DiskKvm => &mut self.combined_disk_kvm_img_sha256,
            CombinedKey::RootXz => &mut self.combined_rootxz_sha256,
            CombinedKey::Legacy => &mut self.combined_sha256,
            CombinedKey::Disk1 => &mut self.combined_disk1_img_sha256,
            CombinedKey::Uefi1 => &mut self.combined_uefi1_img_sha256,
        }
    }

    /// The item's ftype, if a client reads it.
    #[must_use]
    pub fn kind(&self) -> Option<Ftype> {
        Ftype::parse(&self.ftype)
    }

    /// The fingerprint this metadata item gives the pair with a root of
    /// `root_ftype`, as the clients read it (the first non-empty key of
    /// [`CombinedKey::for_root`]); empty when none.
    #[must_use]
    pub fn combined_for(&self, root_ftype: &str) -> &str {
        Ftype::parse(root_ftype)
            .map(CombinedKey::for_root)
            .unwrap_or_default()
            .iter()
            .map(|k| self.combined(*k))
            .find(|v| !v.is_empty())
            .unwrap_or("")
    }

    /// The key [`Item::combined_for`] reads first for a root of
    /// `root_ftype`.
    #[must_use]
    pub fn combined_key_for(root_ftype: &str) -> Option<CombinedKey> {
        Ftype::parse(root_ftype).and_then(Ftype::combined_key)
    }

    /// Every `combined_*` value with its key, non-empty ones only.
    #[must_use]
    pub fn combined_hashes(&self) -> Vec<(&'static str, &str)> {
        CombinedKey::ALL
            .into_iter()
            .map(|k| (k.as_str(), self.combined(k)))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }
}

/// A whole remote as the clients decode it: the index, every products file
/// it loads, and what would make a client refuse it.
///
/// Decoding is lenient (a value of the wrong type is reported and then
/// treated as absent) so that a linter can report everything at once; the
/// clients themselves refuse the remote on the first problem.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Remote {
    /// Every index entry, by key.
    pub entries: Vec<IndexEntry>,
    /// Every products file the clients load, in index-key order (a path
    /// listed twice is loaded twice, as the clients do).
    pub files: Vec<ProductsFile>,
    /// What makes a client refuse the remote: findings of the codes
    /// `remote-invalid-json`, `remote-type-error`, `products-file-missing`
    /// and `remote-empty-file`, in document order.
    pub problems: Vec<Diagnostic>,
    /// Keys spelt other than canonically, or more than once.
    pub spellings: Vec<KeySpelling>,
    /// Whether `index.json` itself decoded as an index (a JSON object).
    pub index_ok: bool,
    /// The index's top-level `format`.
    pub index_format: String,
}

/// Decodes a remote. `products` returns the text of a products file given
/// its path relative to the base URL (already cleaned with [`clean_path`]),
/// or `None` when it cannot be fetched.
///
/// # Errors
/// A [`RemoteError`] when **both** clients refuse the remote (invalid JSON,
/// a missing products file, a type error in a field both decode). When only
/// one client refuses it, the remote is returned and [`Remote::error`]
/// names that client's problems; a view then shows nothing for it.
pub fn load_remote(
    index_json: &str,
    products: &dyn Fn(&str) -> Option<String>,
) -> Result<Remote, RemoteError> {
    let remote = Remote::parse(index_json, products);
    if Client::ALL.iter().all(|c| remote.error(*c).is_some()) {
        return Err(RemoteError {
            problems: remote.problems,
        });
    }
    Ok(remote)
}

/// An `index.json` that lists one products file at `path` with all its
/// product ids, for checking a products file on its own.
#[must_use]
pub fn index_for_products(path: &str, products_json: &str) -> String {
    let ids: Vec<String> = decode::product_ids(products_json)
        .filter(|ids| !ids.is_empty())
        // Any non-empty list makes the clients fetch the file.
        .unwrap_or_else(|| vec![ANY_PRODUCT.to_owned()]);
    serde_json::json!({
        "format": INDEX_FORMAT,
        "index": {"images": {
            "datatype": IMAGE_DOWNLOADS,
            "path": path,
            "format": PRODUCTS_FORMAT,
            "products": ids,
        }}
    })
    .to_string()
}

impl Remote {
    /// Decodes a remote leniently: never fails, records every problem. See
    /// [`load_remote`] for `products`.
    #[must_use]
    pub fn parse(index_json: &str, products: &dyn Fn(&str) -> Option<String>) -> Remote {
        let mut remote = Remote::default();
        let index = match decode::index(INDEX_PATH, index_json) {
            Ok(index) => index,
            Err(problem) => {
                remote.problems.push(problem);
                return remote;
            }
        };
        remote.index_ok = index.is_object;
        remote.entries = index.value.entries;
        remote.index_format = index.value.format;
        remote.problems.extend(index.problems);
        remote.spellings.extend(index.spellings);

        for entry in remote.entries.iter().filter(|e| e.is_loaded()) {
            let path = clean_path(&entry.path);
            let Some(text) = products(&path) else {
                remote.problems.push(Diagnostic::coded(
                    Code::ProductsFileMissing,
                    &Client::ALL,
                    path.clone(),
                    format!(
                        "listed by index entry {} but could not be fetched",
                        quote(&entry.key)
                    ),
                ));
                continue;
            };
            let decoded = match decode::products(&path, &text) {
                Ok(decoded) => decoded,
                Err(problem) => {
                    remote.problems.push(problem);
                    continue;
                }
            };
            let mut file = decoded.value;
            file.index_key.clone_from(&entry.key);
            file.path = path;
            remote.files.push(file);
            remote.problems.extend(decoded.problems);
            remote.spellings.extend(decoded.spellings);
        }
        remote
    }

    /// The problems that make `client` refuse the whole remote, if any.
    #[must_use]
    pub fn error(&self, client: Client) -> Option<RemoteError> {
        let problems: Vec<Diagnostic> = self
            .problems
            .iter()
            .filter(|p| p.clients.contains(&client))
            .cloned()
            .collect();
        (!problems.is_empty()).then_some(RemoteError { problems })
    }

    /// What the catalog claims about each file it references, for
    /// `verify`: see [`Claims`].
    #[must_use]
    pub fn claims(&self) -> Claims {
        Claims::of(self)
    }
}

/// Cleans an item or products-file `path` the way the clients join it to
/// the base URL (`path.Join`): a leading `/` stays under the base, `.` and
/// empty segments vanish, `..` is resolved (never above the base).
#[must_use]
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// A string as JSON writes it, for messages, with the controls JSON leaves
/// raw (DEL, C1, bidirectional overrides) escaped too: a message must not
/// drive the terminal that shows it.
pub(crate) fn quote(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    if !json.chars().any(crate::rules::is_control) {
        return json;
    }
    json.chars()
        .map(|c| {
            if crate::rules::is_control(c) {
                // Every such character is in the Basic Multilingual Plane.
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `parent["key"]`.
pub(crate) fn at_key(parent: &str, key: &str) -> String {
    format!("{parent}[{}]", quote(key))
}

/// `parent.key` for a plain key (as in `requirements.secureboot`),
/// `parent["key"]` otherwise.
pub(crate) fn at_name(parent: &str, key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!("{parent}.{key}")
    } else {
        at_key(parent, key)
    }
}

/// `file#products["p"].versions["v"].items["i"]`.
#[must_use]
pub fn location(file: &str, product: &str, version: Option<&str>, item: Option<&str>) -> String {
    let mut out = format!("{file}#{}", at_key("products", product));
    if let Some(v) = version {
        out = at_key(&format!("{out}.versions"), v);
        if let Some(i) = item {
            out = at_key(&format!("{out}.items"), i);
        }
    }
    out
}

#[cfg(test)]
mod tests;
