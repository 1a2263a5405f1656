//! The two clients a catalog serves, and what each of them makes of a
//! catalog.
//!
//! [`load_remote`] decodes `index.json` and the products files it lists with
//! Go `encoding/json` semantics into the clients' structs (spec §3.5): a
//! value of the wrong type anywhere fails the whole remote, with the JSON
//! location of the value. [`view`] then computes what one client lists:
//! images (Incus `ToAPI`, LXD HEAD `ToLXD`, §4.4), aliases (`applyAliases`,
//! §7) and everything it drops silently, with the reason.
//!
//! ```
//! use ssgen_core::client::{load_remote, view, Client};
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
//! assert_eq!(lxd.hidden[0].code, "no-metadata");
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
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
    pub fn name(self) -> &'static str {
        match self {
            Client::Lxd => "LXD",
            Client::Incus => "Incus",
        }
    }

    /// The ftype of this client's split metadata item (§4.1).
    #[must_use]
    pub fn meta_ftype(self) -> &'static str {
        match self {
            Client::Lxd => "lxd.tar.xz",
            Client::Incus => "incus.tar.xz",
        }
    }

    /// The ftype of this client's unified tarball item (§4.1).
    #[must_use]
    pub fn combined_ftype(self) -> &'static str {
        match self {
            Client::Lxd => "lxd_combined.tar.gz",
            Client::Incus => "incus_combined.tar.gz",
        }
    }
}

// ---------------------------------------------------------------------------
// Client emulation: what LXD and Incus make of a catalog (spec §2–§10).
// ---------------------------------------------------------------------------

impl Client {
    /// The lower-case identifier used in machine output (`lxd`, `incus`).
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Client::Lxd => "lxd",
            Client::Incus => "incus",
        }
    }

    /// The client-normalised architecture of a product `arch` (`amd64` →
    /// `x86_64`), or `None` when this client drops the product (§3.2, §8).
    ///
    /// Beyond the table both clients share, Incus HEAD knows `x86_64_v1`…
    /// `x86_64_v4` and LXD HEAD knows `amd64v3`; LXD HEAD also keeps only the
    /// first whitespace-separated word of the value.
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

/// The five root ftypes, in the order the clients prefer them for an alias
/// (§7.2; unified images rank with `squashfs`).
pub const ROOT_FTYPES: [&str; 5] = [
    "squashfs",
    "root.tar.xz",
    "disk-kvm.img",
    "uefi1.img",
    "disk1.img",
];

/// The delta ftypes the clients consider (§4.3).
pub const DELTA_FTYPES: [&str; 2] = ["squashfs.vcdiff", "disk-kvm.img.vcdiff"];

/// The metadata-item key holding the fingerprint of the pair with a root of
/// `ftype` (§4.2). `root.tar.xz` falls back to `combined_sha256`.
#[must_use]
pub fn combined_key(root_ftype: &str) -> Option<&'static str> {
    Some(match root_ftype {
        "squashfs" => "combined_squashfs_sha256",
        "root.tar.xz" => "combined_rootxz_sha256",
        "disk-kvm.img" => "combined_disk-kvm-img_sha256",
        "disk1.img" => "combined_disk1-img_sha256",
        "uefi1.img" => "combined_uefi1-img_sha256",
        _ => return None,
    })
}

/// The clients' preference among root types (§7.2); anything else, the
/// unified `tar.gz` included, scores 0 like `squashfs`, as in Go.
fn root_rank(ftype: &str) -> usize {
    ROOT_FTYPES.iter().position(|f| *f == ftype).unwrap_or(0)
}

/// Cleans an item or products-file `path` the way the clients join it to
/// the base URL (`path.Join`, §11.3): a leading `/` stays under the base,
/// `.` and empty segments vanish, `..` is resolved (never above the base).
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

// ----- Ordered JSON -------------------------------------------------------

/// A JSON value that keeps object keys in document order, duplicates
/// included, so the decoder can apply Go's "last key wins" and report the
/// exact location of every problem.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// An integer that fits Go's `int64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(i64::try_from(n).map_or(Json::UInt(n), Json::Int))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(Json::Float(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::Str(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json::Arr(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Json::Obj(out))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Json {
    /// How a problem message shows the value that was found.
    fn describe(&self) -> String {
        match self {
            Json::Null => "null".to_owned(),
            Json::Bool(b) => b.to_string(),
            Json::Int(n) => n.to_string(),
            Json::UInt(n) => n.to_string(),
            Json::Float(x) => format!("{x:?}"),
            Json::Str(s) => {
                let short: String = s.chars().take(40).collect();
                let quoted = serde_json::to_string(&short).unwrap_or_default();
                if short.len() < s.len() {
                    format!("{quoted}…")
                } else {
                    quoted
                }
            }
            Json::Arr(_) => "an array".to_owned(),
            Json::Obj(_) => "an object".to_owned(),
        }
    }
}

/// Go's `encoding/json` key folding for ASCII field names: ASCII letters
/// compare case-insensitively, and the Kelvin sign and the long s fold to
/// `K` and `S` (`unicode.ToUpper(unicode.ToLower(r))`).
fn go_fold_eq(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'K',
        '\u{017F}' => 'S',
        c => c.to_ascii_uppercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

// ----- The decoded catalog --------------------------------------------------

/// Why a client fails the whole remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The file is not valid JSON (or starts with a byte-order mark).
    Syntax,
    /// A value has the wrong JSON type for the client's Go struct (§3.5).
    Type,
    /// A products file listed by the index could not be fetched (§2).
    Missing,
    /// A file is empty ("No content in download").
    Empty,
}

/// One reason a client fails the whole remote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What kind of failure.
    pub kind: ProblemKind,
    /// The clients that fail.
    pub clients: Vec<Client>,
    /// The file, relative to the base URL.
    pub file: String,
    /// Where in the file, e.g. `products["x"].requirements.secureboot`
    /// (empty for the whole file).
    pub location: String,
    /// What is wrong, e.g. `expected a string, found false`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.location, self.message)
        }
    }
}

/// A remote that a client refuses as a whole ("Failed parsing products").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RemoteError {
    /// Every problem found (the client stops at the first, a linter wants all).
    pub problems: Vec<Problem>,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [] => f.write_str("the remote fails"),
            [one] => write!(f, "the remote fails: {one}"),
            [first, rest @ ..] => write!(
                f,
                "the remote fails: {first} (and {} more problem(s))",
                rest.len()
            ),
        }
    }
}

/// How a key of a Go-decoded object was spelled, when it is not the
/// canonical spelling or is given more than once (Go matches keys
/// case-insensitively and the last one wins, §3.5).
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

/// One entry of `index.json` (§2).
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

impl IndexEntry {
    /// Whether the clients fetch this entry's products file (§2).
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.datatype == "image-downloads" && !self.products.is_empty()
    }
}

/// A products file as the clients decode it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductsFile {
    /// The index entry it was loaded for.
    pub index_key: String,
    /// Its path relative to the base URL (cleaned, §11.3).
    pub path: String,
    /// Top-level `format`.
    pub format: String,
    /// Top-level `content_id`.
    pub content_id: String,
    /// The products by id.
    pub products: BTreeMap<String, Product>,
}

/// A product (§3.2).
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
    /// The requirements `client` applies (§9): Incus reads `requirements`;
    /// LXD reads `lxd_requirements` when present, even `{}`.
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

    /// The alias entries, split on `,` without trimming (§7.1); none when
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

/// A version (§3.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version {
    /// `label`.
    pub label: String,
    /// `pubname`.
    pub pubname: String,
    /// The items by key.
    pub items: BTreeMap<String, Item>,
}

/// An item (§3.4).
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
    /// The fingerprint this metadata item gives the pair with a root of
    /// `root_ftype`, as the clients read it (§4.4); empty when none.
    #[must_use]
    pub fn combined_for(&self, root_ftype: &str) -> &str {
        match root_ftype {
            "squashfs" => &self.combined_squashfs_sha256,
            "root.tar.xz" if !self.combined_rootxz_sha256.is_empty() => {
                &self.combined_rootxz_sha256
            }
            "root.tar.xz" => &self.combined_sha256,
            "disk-kvm.img" => &self.combined_disk_kvm_img_sha256,
            "disk1.img" => &self.combined_disk1_img_sha256,
            "uefi1.img" => &self.combined_uefi1_img_sha256,
            _ => "",
        }
    }

    /// Every `combined_*` value with its key, non-empty ones only.
    #[must_use]
    pub fn combined_hashes(&self) -> Vec<(&'static str, &str)> {
        [
            ("combined_squashfs_sha256", &self.combined_squashfs_sha256),
            (
                "combined_disk-kvm-img_sha256",
                &self.combined_disk_kvm_img_sha256,
            ),
            ("combined_rootxz_sha256", &self.combined_rootxz_sha256),
            ("combined_sha256", &self.combined_sha256),
            ("combined_disk1-img_sha256", &self.combined_disk1_img_sha256),
            ("combined_uefi1-img_sha256", &self.combined_uefi1_img_sha256),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect()
    }
}

/// A whole remote as the clients decode it: the index, every products file
/// it loads, and what would make a client refuse it.
///
/// Decoding is lenient (a value of the wrong type is reported and then
/// treated as absent) so that a linter can report everything at once; the
/// clients themselves refuse the remote on the first [`Problem`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Remote {
    /// Every index entry, by key.
    pub entries: Vec<IndexEntry>,
    /// Every products file the clients load, in index-key order (a path
    /// listed twice is loaded twice, as the clients do).
    pub files: Vec<ProductsFile>,
    /// What makes a client refuse the remote.
    pub problems: Vec<Problem>,
    /// Keys spelt other than canonically, or more than once.
    pub spellings: Vec<KeySpelling>,
    /// Whether `index.json` itself decoded as an index (a JSON object).
    pub index_ok: bool,
    /// The index's top-level `format`.
    pub index_format: String,
}

/// The path of the index relative to the base URL (§2).
pub const INDEX_PATH: &str = "streams/v1/index.json";

/// Decodes a remote. `products` returns the text of a products file given
/// its path relative to the base URL (already cleaned with [`clean_path`]),
/// or `None` when it cannot be fetched.
///
/// # Errors
/// A [`RemoteError`] when **both** clients refuse the remote (invalid JSON,
/// a missing products file, a type error in a field both decode). When only
/// one client refuses it, the remote is returned and [`Remote::error`]
/// names that client's problems; [`view`] then shows nothing for it.
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
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(products_json)
        .ok()
        .and_then(|v| {
            v.get("products")
                .and_then(serde_json::Value::as_object)
                .map(|m| m.keys().cloned().collect())
        })
        .filter(|ids: &Vec<String>| !ids.is_empty())
        // Any non-empty list makes the clients fetch the file (§2).
        .unwrap_or_else(|| vec![ANY_PRODUCT.to_owned()]);
    serde_json::json!({
        "format": "index:1.0",
        "index": {"images": {
            "datatype": "image-downloads",
            "path": path,
            "format": "products:1.0",
            "products": ids,
        }}
    })
    .to_string()
}

/// The placeholder product id [`index_for_products`] lists when the file
/// has no readable products.
pub const ANY_PRODUCT: &str = "(any)";

impl Remote {
    /// Decodes a remote leniently: never fails, records every [`Problem`].
    /// See [`load_remote`] for `products`.
    #[must_use]
    pub fn parse(index_json: &str, products: &dyn Fn(&str) -> Option<String>) -> Remote {
        let mut remote = Remote::default();
        let Some(index) = parse_json(INDEX_PATH, index_json, &mut remote.problems) else {
            return remote;
        };
        let mut dec = Decoder {
            file: INDEX_PATH.to_owned(),
            problems: Vec::new(),
            spellings: Vec::new(),
        };
        remote.index_ok = dec.expect_object(&index, "", BOTH).is_some() || index == Json::Null;
        let (entries, format) = dec.index(&index);
        remote.entries = entries;
        remote.index_format = format;
        remote.problems.append(&mut dec.problems);
        remote.spellings.append(&mut dec.spellings);

        for entry in remote.entries.iter().filter(|e| e.is_loaded()) {
            let path = clean_path(&entry.path);
            let Some(text) = products(&path) else {
                remote.problems.push(Problem {
                    kind: ProblemKind::Missing,
                    clients: BOTH.to_vec(),
                    file: path.clone(),
                    location: String::new(),
                    message: format!(
                        "listed by index entry {} but could not be fetched",
                        quote(&entry.key)
                    ),
                });
                continue;
            };
            let Some(json) = parse_json(&path, &text, &mut remote.problems) else {
                continue;
            };
            let mut dec = Decoder {
                file: path.clone(),
                problems: Vec::new(),
                spellings: Vec::new(),
            };
            let mut file = dec.products_file(&json);
            file.index_key.clone_from(&entry.key);
            file.path = path;
            remote.files.push(file);
            remote.problems.append(&mut dec.problems);
            remote.spellings.append(&mut dec.spellings);
        }
        remote
    }

    /// The problems that make `client` refuse the whole remote, if any.
    #[must_use]
    pub fn error(&self, client: Client) -> Option<RemoteError> {
        let problems: Vec<Problem> = self
            .problems
            .iter()
            .filter(|p| p.clients.contains(&client))
            .cloned()
            .collect();
        (!problems.is_empty()).then_some(RemoteError { problems })
    }
}

const BOTH: &[Client] = &[Client::Lxd, Client::Incus];
const LXD: &[Client] = &[Client::Lxd];
const INCUS: &[Client] = &[Client::Incus];

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// `parent["key"]`.
fn at_key(parent: &str, key: &str) -> String {
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

/// `parent.field`.
fn at_field(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

fn parse_json(file: &str, text: &str, problems: &mut Vec<Problem>) -> Option<Json> {
    let problem = |kind, message: String| Problem {
        kind,
        clients: BOTH.to_vec(),
        file: file.to_owned(),
        location: String::new(),
        message,
    };
    if text.is_empty() {
        problems.push(problem(
            ProblemKind::Empty,
            "the file is empty (the clients refuse it: \"No content in download\")".to_owned(),
        ));
        return None;
    }
    if text.starts_with('\u{feff}') {
        problems.push(problem(
            ProblemKind::Syntax,
            "the file starts with a UTF-8 byte-order mark, which Go's JSON decoder refuses"
                .to_owned(),
        ));
        return None;
    }
    match serde_json::from_str::<Json>(text) {
        Ok(json) => Some(json),
        Err(e) => {
            problems.push(problem(ProblemKind::Syntax, format!("invalid JSON: {e}")));
            None
        }
    }
}

/// Decodes [`Json`] into the clients' structs with Go `encoding/json`
/// semantics, recording type errors and key spellings.
struct Decoder {
    file: String,
    problems: Vec<Problem>,
    spellings: Vec<KeySpelling>,
}

/// A struct field: its JSON name and the clients whose struct has it.
struct Field {
    name: &'static str,
    clients: &'static [Client],
}

const fn field(name: &'static str) -> Field {
    Field {
        name,
        clients: BOTH,
    }
}

const STREAM_FIELDS: &[Field] = &[field("index"), field("updated"), field("format")];
const ENTRY_FIELDS: &[Field] = &[
    field("datatype"),
    field("path"),
    field("updated"),
    field("products"),
    field("format"),
];
const PRODUCTS_FIELDS: &[Field] = &[
    field("content_id"),
    field("datatype"),
    field("format"),
    field("license"),
    field("products"),
    field("updated"),
];
const PRODUCT_FIELDS: &[Field] = &[
    field("aliases"),
    field("arch"),
    field("os"),
    field("requirements"),
    Field {
        name: "lxd_requirements",
        clients: LXD,
    },
    field("release"),
    field("release_codename"),
    field("release_title"),
    field("supported"),
    field("support_eol"),
    field("version"),
    field("versions"),
    field("variant"),
];
const VERSION_FIELDS: &[Field] = &[field("items"), field("label"), field("pubname")];
const ITEM_FIELDS: &[Field] = &[
    field("combined_disk-kvm-img_sha256"),
    field("combined_disk1-img_sha256"),
    field("combined_uefi1-img_sha256"),
    field("combined_rootxz_sha256"),
    field("combined_sha256"),
    field("combined_squashfs_sha256"),
    field("ftype"),
    field("md5"),
    field("path"),
    field("sha256"),
    field("size"),
    field("delta_base"),
    Field {
        name: "combined_type",
        clients: INCUS,
    },
];

/// The values of a Go struct's fields, found in a JSON object.
struct Fields<'j> {
    values: Vec<Option<&'j Json>>,
    unknown: Vec<String>,
}

impl<'j> Fields<'j> {
    fn get(&self, fields: &[Field], name: &str) -> Option<&'j Json> {
        fields
            .iter()
            .position(|f| f.name == name)
            .and_then(|i| self.values[i])
    }
}

impl Decoder {
    fn type_error(&mut self, location: String, clients: &[Client], expected: &str, found: &Json) {
        self.problems.push(Problem {
            kind: ProblemKind::Type,
            clients: clients.to_vec(),
            file: self.file.clone(),
            location,
            message: format!("expected {expected}, found {}", found.describe()),
        });
    }

    /// An object (or `null`, which Go accepts as empty).
    fn expect_object<'j>(
        &mut self,
        v: &'j Json,
        location: &str,
        clients: &[Client],
    ) -> Option<&'j [(String, Json)]> {
        match v {
            Json::Obj(entries) => Some(entries),
            Json::Null => None,
            other => {
                self.type_error(location.to_owned(), clients, "an object", other);
                None
            }
        }
    }

    /// Matches an object's keys to a Go struct's fields: exact name first,
    /// then Go's case folding; the last matching key wins.
    fn fields<'j>(
        &mut self,
        obj: &'j [(String, Json)],
        fields: &[Field],
        location: &str,
    ) -> Fields<'j> {
        let mut values = vec![None; fields.len()];
        let mut spelt: Vec<Vec<&str>> = vec![Vec::new(); fields.len()];
        let mut unknown = Vec::new();
        for (key, value) in obj {
            let index = fields
                .iter()
                .position(|f| f.name == key)
                .or_else(|| fields.iter().position(|f| go_fold_eq(key, f.name)));
            match index {
                Some(i) => {
                    values[i] = Some(value);
                    spelt[i].push(key);
                }
                None => unknown.push(key.clone()),
            }
        }
        for (f, keys) in fields.iter().zip(spelt) {
            if keys.len() > 1 || keys.first().is_some_and(|k| *k != f.name) {
                self.spellings.push(KeySpelling {
                    file: self.file.clone(),
                    location: location.to_owned(),
                    field: f.name.to_owned(),
                    spellings: keys.iter().map(|k| (*k).to_owned()).collect(),
                });
            }
        }
        Fields { values, unknown }
    }

    /// Records a key repeated in a JSON object decoded as a Go map (the
    /// last one wins).
    fn map_key_seen(&mut self, seen: bool, location: &str, key: &str) {
        if !seen {
            return;
        }
        if let Some(s) = self
            .spellings
            .iter_mut()
            .find(|s| s.location == location && s.field == key)
        {
            s.spellings.push(key.to_owned());
            return;
        }
        self.spellings.push(KeySpelling {
            file: self.file.clone(),
            location: location.to_owned(),
            field: key.to_owned(),
            spellings: vec![key.to_owned(), key.to_owned()],
        });
    }

    fn string(&mut self, v: Option<&Json>, location: &str, f: &Field) -> String {
        match v {
            None | Some(Json::Null) => String::new(),
            Some(Json::Str(s)) => s.clone(),
            Some(other) => {
                self.type_error(at_field(location, f.name), f.clients, "a string", other);
                String::new()
            }
        }
    }

    fn int(&mut self, v: Option<&Json>, location: &str, f: &Field) -> i64 {
        match v {
            None | Some(Json::Null) => 0,
            Some(Json::Int(n)) => *n,
            Some(other @ Json::UInt(_)) => {
                self.type_error(
                    at_field(location, f.name),
                    f.clients,
                    "an integer that fits in 64 bits (Go int64)",
                    other,
                );
                0
            }
            Some(other) => {
                self.type_error(at_field(location, f.name), f.clients, "an integer", other);
                0
            }
        }
    }

    fn boolean(&mut self, v: Option<&Json>, location: &str, f: &Field) -> bool {
        match v {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(other) => {
                self.type_error(at_field(location, f.name), f.clients, "a boolean", other);
                false
            }
        }
    }

    /// A `map[string]string`; `None` when absent or `null` (Go's nil map).
    fn string_map(
        &mut self,
        v: Option<&Json>,
        location: &str,
        f: &Field,
    ) -> Option<BTreeMap<String, String>> {
        let v = v?;
        let here = at_field(location, f.name);
        let obj = self.expect_object(v, &here, f.clients)?;
        let mut out = BTreeMap::new();
        for (key, value) in obj {
            let text = match value {
                Json::Null => String::new(),
                Json::Str(s) => s.clone(),
                other => {
                    self.type_error(at_name(&here, key), f.clients, "a string", other);
                    continue;
                }
            };
            self.map_key_seen(out.contains_key(key), &here, key);
            out.insert(key.clone(), text);
        }
        Some(out)
    }

    fn index(&mut self, json: &Json) -> (Vec<IndexEntry>, String) {
        let Some(obj) = self.expect_object(json, "", BOTH) else {
            return (Vec::new(), String::new());
        };
        let top = self.fields(obj, STREAM_FIELDS, "");
        self.string(top.get(STREAM_FIELDS, "updated"), "", &STREAM_FIELDS[1]);
        let format = self.string(top.get(STREAM_FIELDS, "format"), "", &STREAM_FIELDS[2]);
        let mut entries: BTreeMap<String, IndexEntry> = BTreeMap::new();
        if let Some(index) = top.get(STREAM_FIELDS, "index") {
            let Some(map) = self.expect_object(index, "index", BOTH) else {
                return (Vec::new(), format);
            };
            for (key, value) in map {
                let here = at_key("index", key);
                let mut entry = IndexEntry {
                    key: key.clone(),
                    ..IndexEntry::default()
                };
                if let Some(obj) = self.expect_object(value, &here, BOTH) {
                    let f = self.fields(obj, ENTRY_FIELDS, &here);
                    let get = |name| f.get(ENTRY_FIELDS, name);
                    entry.datatype = self.string(get("datatype"), &here, &ENTRY_FIELDS[0]);
                    entry.path = self.string(get("path"), &here, &ENTRY_FIELDS[1]);
                    self.string(get("updated"), &here, &ENTRY_FIELDS[2]);
                    entry.format = self.string(get("format"), &here, &ENTRY_FIELDS[4]);
                    match get("products") {
                        None | Some(Json::Null) => {}
                        Some(Json::Arr(list)) => {
                            for (i, p) in list.iter().enumerate() {
                                match p {
                                    Json::Str(s) => entry.products.push(s.clone()),
                                    // Go leaves a null element as "".
                                    Json::Null => entry.products.push(String::new()),
                                    other => self.type_error(
                                        format!("{here}.products[{i}]"),
                                        BOTH,
                                        "a string",
                                        other,
                                    ),
                                }
                            }
                        }
                        Some(other) => self.type_error(
                            format!("{here}.products"),
                            BOTH,
                            "an array of strings",
                            other,
                        ),
                    }
                }
                // A repeated key: the last one wins, as in a Go map.
                self.map_key_seen(entries.contains_key(key), "index", key);
                entries.insert(key.clone(), entry);
            }
        }
        (entries.into_values().collect(), format)
    }

    fn products_file(&mut self, json: &Json) -> ProductsFile {
        let mut file = ProductsFile::default();
        let Some(obj) = self.expect_object(json, "", BOTH) else {
            return file;
        };
        let top = self.fields(obj, PRODUCTS_FIELDS, "");
        let get = |name| top.get(PRODUCTS_FIELDS, name);
        file.content_id = self.string(get("content_id"), "", &PRODUCTS_FIELDS[0]);
        self.string(get("datatype"), "", &PRODUCTS_FIELDS[1]);
        file.format = self.string(get("format"), "", &PRODUCTS_FIELDS[2]);
        self.string(get("license"), "", &PRODUCTS_FIELDS[3]);
        self.string(get("updated"), "", &PRODUCTS_FIELDS[5]);
        if let Some(products) = get("products") {
            if let Some(map) = self.expect_object(products, "products", BOTH) {
                for (id, value) in map {
                    let here = at_key("products", id);
                    let product = self.product(value, &here);
                    self.map_key_seen(file.products.contains_key(id), "products", id);
                    file.products.insert(id.clone(), product);
                }
            }
        }
        file
    }

    fn product(&mut self, json: &Json, here: &str) -> Product {
        let mut p = Product::default();
        let Some(obj) = self.expect_object(json, here, BOTH) else {
            return p;
        };
        let f = self.fields(obj, PRODUCT_FIELDS, here);
        let field = |name: &str| {
            PRODUCT_FIELDS.iter().find(|f| f.name == name).expect(
                "the name is one of PRODUCT_FIELDS because the callers below use literals from it",
            )
        };
        let get = |name| f.get(PRODUCT_FIELDS, name);
        p.aliases = self.string(get("aliases"), here, field("aliases"));
        p.arch = self.string(get("arch"), here, field("arch"));
        p.os = self.string(get("os"), here, field("os"));
        p.requirements = self.string_map(get("requirements"), here, field("requirements"));
        p.lxd_requirements =
            self.string_map(get("lxd_requirements"), here, field("lxd_requirements"));
        p.release = self.string(get("release"), here, field("release"));
        p.release_codename = self.string(get("release_codename"), here, field("release_codename"));
        p.release_title = self.string(get("release_title"), here, field("release_title"));
        p.supported = self.boolean(get("supported"), here, field("supported"));
        p.support_eol = self.string(get("support_eol"), here, field("support_eol"));
        p.version = self.string(get("version"), here, field("version"));
        p.variant = self.string(get("variant"), here, field("variant"));
        if let Some(versions) = get("versions") {
            let loc = at_field(here, "versions");
            if let Some(map) = self.expect_object(versions, &loc, BOTH) {
                for (name, value) in map {
                    let vloc = at_key(&loc, name);
                    let v = self.version(value, &vloc);
                    self.map_key_seen(p.versions.contains_key(name), &loc, name);
                    p.versions.insert(name.clone(), v);
                }
            }
        }
        p
    }

    fn version(&mut self, json: &Json, here: &str) -> Version {
        let mut v = Version::default();
        let Some(obj) = self.expect_object(json, here, BOTH) else {
            return v;
        };
        let f = self.fields(obj, VERSION_FIELDS, here);
        v.label = self.string(f.get(VERSION_FIELDS, "label"), here, &VERSION_FIELDS[1]);
        v.pubname = self.string(f.get(VERSION_FIELDS, "pubname"), here, &VERSION_FIELDS[2]);
        if let Some(items) = f.get(VERSION_FIELDS, "items") {
            let loc = at_field(here, "items");
            if let Some(map) = self.expect_object(items, &loc, BOTH) {
                for (key, value) in map {
                    let iloc = at_key(&loc, key);
                    let item = self.item(value, &iloc);
                    self.map_key_seen(v.items.contains_key(key), &loc, key);
                    v.items.insert(key.clone(), item);
                }
            }
        }
        v
    }

    fn item(&mut self, json: &Json, here: &str) -> Item {
        let mut it = Item::default();
        let Some(obj) = self.expect_object(json, here, BOTH) else {
            return it;
        };
        let f = self.fields(obj, ITEM_FIELDS, here);
        let s = |dec: &mut Decoder, name: &str| {
            let fld = ITEM_FIELDS.iter().find(|f| f.name == name).expect(
                "the name is one of ITEM_FIELDS because the callers below use literals from it",
            );
            dec.string(f.get(ITEM_FIELDS, name), here, fld)
        };
        it.combined_disk_kvm_img_sha256 = s(self, "combined_disk-kvm-img_sha256");
        it.combined_disk1_img_sha256 = s(self, "combined_disk1-img_sha256");
        it.combined_uefi1_img_sha256 = s(self, "combined_uefi1-img_sha256");
        it.combined_rootxz_sha256 = s(self, "combined_rootxz_sha256");
        it.combined_sha256 = s(self, "combined_sha256");
        it.combined_squashfs_sha256 = s(self, "combined_squashfs_sha256");
        it.ftype = s(self, "ftype");
        s(self, "md5");
        it.path = s(self, "path");
        it.sha256 = s(self, "sha256");
        it.delta_base = s(self, "delta_base");
        it.combined_type = s(self, "combined_type");
        it.size = self.int(f.get(ITEM_FIELDS, "size"), here, &ITEM_FIELDS[10]);
        it.unknown_keys = f.unknown;
        it
    }
}

// ----- What a client shows ----------------------------------------------------

/// Container or virtual machine (§4.2).
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

/// A delta the client would download before the root file (§5.4).
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
    /// squashfs fingerprint even for a `disk-kvm.img.vcdiff` (§5.4).
    pub wrong_base: bool,
}

/// One image as a client lists it (§4.6).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    /// The fingerprint (verbatim from the catalog, §5.1).
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
    /// The aliases in the image's own list (§7.1 step 4).
    pub aliases: Vec<String>,
    /// `created_at`, from the version name: `YYYY-MM-DD`.
    pub created: String,
    /// `expires_at` from `support_eol`, when it parses.
    pub expires: Option<String>,
    /// Deltas the client would try.
    pub deltas: Vec<Delta>,
    /// Whether another image of this client has the same fingerprint (§5.5).
    pub duplicate: bool,
}

/// An alias a client registers (§7.1).
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

/// An alias registration that lost to an earlier one (§7.1 step 3).
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

/// Something a client drops silently, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Hidden {
    /// A stable id for the reason (the lint code).
    pub code: &'static str,
    /// The products file.
    pub file: String,
    /// The product id.
    pub product: String,
    /// The version, when the reason is about a version or an item.
    pub version: Option<String>,
    /// The item key, when the reason is about an item.
    pub item: Option<String>,
    /// Why, in words.
    pub reason: String,
}

impl Hidden {
    /// The JSON location: `file#products["p"].versions["v"].items["i"]`.
    #[must_use]
    pub fn location(&self) -> String {
        location(
            &self.file,
            &self.product,
            self.version.as_deref(),
            self.item.as_deref(),
        )
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
/// but `GetImage` fails for it ("More than one match", §5.5).
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
    /// The images, in the client's alias order (§7.2).
    pub images: Vec<Image>,
    /// The aliases, in registration order.
    pub aliases: Vec<Alias>,
    /// Alias registrations that lost.
    pub shadowed: Vec<Shadowed>,
    /// What the client drops silently.
    pub hidden: Vec<Hidden>,
    /// Fingerprints carried by several images.
    pub duplicates: Vec<Duplicate>,
}

impl serde::Serialize for RemoteError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.problems)
    }
}

/// The images, aliases and silent drops `client` computes from `remote`,
/// on a host whose architecture is `host_arch` (any name the client knows,
/// e.g. `x86_64` or `amd64`; it only decides which short aliases appear in
/// each image's own list).
///
/// This follows Incus's `ToAPI` and LXD HEAD's `ToLXD` (§4.4), then
/// `applyAliases` (§7). When the client refuses the remote, the view is
/// empty and [`View::error`] says why.
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
struct Pending {
    image: Image,
    alias_entries: Vec<String>,
}

fn hidden(
    code: &'static str,
    file: &ProductsFile,
    product: &str,
    version: Option<&str>,
    item: Option<&str>,
    reason: String,
) -> Hidden {
    Hidden {
        code,
        file: file.path.clone(),
        product: product.to_owned(),
        version: version.map(str::to_owned),
        item: item.map(str::to_owned),
        reason,
    }
}

fn product_images(
    client: Client,
    file: &ProductsFile,
    id: &str,
    product: &Product,
    images: &mut Vec<Pending>,
    dropped: &mut Vec<Hidden>,
) {
    let Some(architecture) = client.normalise_arch(&product.arch) else {
        dropped.push(hidden(
            "hidden-unknown-arch",
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
                "invalid-version-name",
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
            created: &created,
        };
        let before = images.len();
        let mut saw_meta = false;
        for (key, item) in &version.items {
            if item.ftype == client.combined_ftype() {
                saw_meta = true;
                if item.sha256.is_empty() {
                    dropped.push(hidden(
                        "missing-combined-hash",
                        file,
                        id,
                        Some(name),
                        Some(key),
                        format!(
                            "the unified {} item has no sha256, which is its fingerprint, so the image is dropped",
                            item.ftype
                        ),
                    ));
                } else if item.path.is_empty() {
                    dropped.push(hidden(
                        "meta-empty-path",
                        file,
                        id,
                        Some(name),
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
                    .filter(|(_, r)| ROOT_FTYPES.contains(&r.ftype.as_str()))
                    .collect();
                if roots.is_empty() {
                    dropped.push(hidden(
                        "meta-without-root",
                        file,
                        id,
                        Some(name),
                        Some(key),
                        format!(
                            "the {} item has no root item (squashfs, root.tar.xz, disk-kvm.img, …) in its version to pair with",
                            item.ftype
                        ),
                    ));
                }
                for (rkey, root) in roots {
                    let key_name = combined_key(&root.ftype).unwrap_or("combined_*");
                    if item.combined_for(&root.ftype).is_empty() {
                        // Another metadata item may serve this root (§4.4:
                        // one metadata item per root type is allowed).
                        let served = version.items.values().any(|m| {
                            m.ftype == item.ftype
                                && !m.path.is_empty()
                                && !m.combined_for(&root.ftype).is_empty()
                        });
                        if served {
                            continue;
                        }
                        dropped.push(hidden(
                            "missing-combined-hash",
                            file,
                            id,
                            Some(name),
                            Some(key),
                            format!(
                                "the {} item has no {key_name}, so its pair with the {} item {} is dropped",
                                item.ftype,
                                root.ftype,
                                quote(rkey)
                            ),
                        ));
                    } else if item.path.is_empty() {
                        dropped.push(hidden(
                            "meta-empty-path",
                            file,
                            id,
                            Some(name),
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
            dropped.push(hidden(
                "no-metadata",
                file,
                id,
                Some(name),
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
    created: &'a str,
}

impl VersionCtx<'_> {
    fn image(&self, meta_key: &str, meta: &Item, root: Option<(&String, &Item)>) -> Pending {
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
            Some((_, r))
                if matches!(r.ftype.as_str(), "disk-kvm.img" | "disk1.img" | "uefi1.img") =>
            {
                ImageType::VirtualMachine
            }
            None if client == Client::Incus && meta.combined_type == "virtual-machine" => {
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
            created: self.created.to_owned(),
            expires: eol_date(&product.support_eol),
            deltas,
            duplicate: false,
        };
        Pending {
            image,
            alias_entries: product
                .alias_entries()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The base fingerprint the client looks up for a delta item, or why it
    /// ignores it.
    fn delta_base(&self, delta: &Item) -> Result<(String, bool), (&'static str, String)> {
        let Some(base) = self.product.versions.get(&delta.delta_base) else {
            return Err((
                "delta-base-missing",
                format!(
                    "delta_base {} is not a version of this product, so the delta is ignored",
                    quote(&delta.delta_base)
                ),
            ));
        };
        let meta_ftype = self.client.meta_ftype();
        // The clients stop at the first metadata item (in Go map order).
        let meta = base.items.values().find(|i| i.ftype == meta_ftype);
        let vm = delta.ftype == "disk-kvm.img.vcdiff";
        let (fp, wrong) = match (self.client, meta) {
            (_, None) => ("", false),
            (Client::Incus, Some(m)) => (m.combined_squashfs_sha256.as_str(), vm),
            (Client::Lxd, Some(m)) if vm => (m.combined_disk_kvm_img_sha256.as_str(), false),
            (Client::Lxd, Some(m)) => (m.combined_squashfs_sha256.as_str(), false),
        };
        if fp.is_empty() {
            let code = if vm && self.client == Client::Incus {
                "vm-delta-incus"
            } else {
                "delta-base-no-hash"
            };
            let key = if vm && self.client == Client::Lxd {
                "combined_disk-kvm-img_sha256"
            } else {
                "combined_squashfs_sha256"
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
        if !matches!(root.ftype.as_str(), "squashfs" | "disk-kvm.img") {
            return Vec::new();
        }
        let want = format!("{}.vcdiff", root.ftype);
        self.version
            .items
            .iter()
            .filter(|(_, d)| d.ftype == want)
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
    fn delta_problem(&self, key: &str, item: &Item, made_images: bool) -> Option<Hidden> {
        if !DELTA_FTYPES.contains(&item.ftype.as_str()) || !made_images {
            return None;
        }
        let root_ftype = item.ftype.trim_end_matches(".vcdiff");
        let h = |code, reason| {
            Some(hidden(
                code,
                self.file,
                self.id,
                Some(self.name),
                Some(key),
                reason,
            ))
        };
        if !self.version.items.values().any(|r| r.ftype == root_ftype) {
            return h(
                "delta-orphan",
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

/// The clients' sort (§7.2): `os`, `release`, `variant` ascending, `serial`
/// descending, `architecture` ascending, then the root-type rank.
///
/// Go's comparator is not a consistent order when a property is empty (it
/// tests the left-hand side twice); here empty values sort last, and the
/// linter warns that the real order is undefined.
fn image_order(a: &Pending, b: &Pending) -> Ordering {
    for prop in ["os", "release", "variant", "serial", "architecture"] {
        let x = a.image.properties.get(prop).map_or("", String::as_str);
        let y = b.image.properties.get(prop).map_or("", String::as_str);
        if x == y {
            continue;
        }
        return match (x.is_empty(), y.is_empty()) {
            (true, _) => Ordering::Greater,
            (_, true) => Ordering::Less,
            _ if prop == "serial" => y.cmp(x),
            _ => x.cmp(y),
        };
    }
    root_rank(&a.image.root_ftype).cmp(&root_rank(&b.image.root_ftype))
}

/// Makes the order total and deterministic where Go's is random.
fn tie_break(a: &Pending, b: &Pending) -> Ordering {
    fn key(p: &Pending) -> (&str, &str, &str, Option<&str>, &str) {
        let i = &p.image;
        (
            &i.product,
            &i.file,
            &i.meta_item,
            i.root_item.as_deref(),
            &i.fingerprint,
        )
    }
    key(a).cmp(&key(b))
}

fn apply_aliases(client: Client, host_arch: &str, pending: &mut Vec<Pending>, out: &mut View) {
    let host = client
        .normalise_arch(host_arch)
        .map_or_else(|| host_arch.to_owned(), str::to_owned);
    // (name, type, arch) → index into out.aliases, and the winner's position.
    let mut registered: BTreeMap<(String, ImageType, String), (usize, usize)> = BTreeMap::new();
    let mut images = Vec::with_capacity(pending.len());
    for (pos, p) in pending.iter().enumerate() {
        let mut image = p.image.clone();
        for entry in &p.alias_entries {
            let medium = format!("{entry}/{}", image.raw_arch);
            for (name, short) in [(entry.clone(), true), (medium, false)] {
                let alias = Alias {
                    name: name.clone(),
                    image_type: image.image_type,
                    architecture: image.architecture.clone(),
                    fingerprint: image.fingerprint.clone(),
                    product: image.product.clone(),
                    version: image.version.clone(),
                };
                let key = (name.clone(), image.image_type, image.architecture.clone());
                if let Some(&(index, winner_pos)) = registered.get(&key) {
                    let tie = image_order(&pending[winner_pos], p) == Ordering::Equal
                        && pending[winner_pos].image.fingerprint != image.fingerprint;
                    out.shadowed.push(Shadowed {
                        alias,
                        winner: out.aliases[index].clone(),
                        tie,
                    });
                    continue;
                }
                registered.insert(key, (out.aliases.len(), pos));
                out.aliases.push(alias);
                if !short || image.architecture == host {
                    image.aliases.push(name);
                }
            }
        }
        images.push(Pending {
            image,
            alias_entries: Vec::new(),
        });
    }
    *pending = images;
}

fn mark_duplicates(pending: &mut [Pending], duplicates: &mut Vec<Duplicate>) {
    let mut by_fp: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in pending.iter().enumerate() {
        by_fp
            .entry(p.image.fingerprint.clone())
            .or_default()
            .push(i);
    }
    for (fingerprint, positions) in by_fp {
        if positions.len() < 2 {
            continue;
        }
        let mut images = Vec::new();
        for i in positions {
            let image = &mut pending[i].image;
            image.duplicate = true;
            images.push(ImageRef {
                file: image.file.clone(),
                product: image.product.clone(),
                version: image.version.clone(),
                meta_item: image.meta_item.clone(),
                root_item: image.root_item.clone(),
            });
        }
        duplicates.push(Duplicate {
            fingerprint,
            images,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"format":"index:1.0","index":{"images":{"datatype":"image-downloads",
        "path":"streams/v1/images.json","format":"products:1.0","products":["p"]}}}"#;

    fn remote(products: &str) -> Remote {
        let text = products.to_owned();
        Remote::parse(INDEX, &move |p| {
            (p == "streams/v1/images.json").then(|| text.clone())
        })
    }

    /// One product `p` with the given fields and versions JSON.
    fn product(fields: &str, versions: &str) -> Remote {
        remote(&format!(
            r#"{{"products":{{"p":{{"os":"debian","release":"12","release_title":"12","variant":"default",
            "aliases":"debian/12","arch":"amd64",{fields}"versions":{versions}}}}}}}"#
        ))
    }

    fn split(version: &str, meta_ftypes: &[&str], root_ftype: &str, fp: &str) -> String {
        let key = combined_key(root_ftype).unwrap_or("combined_x");
        let mut items: Vec<String> = meta_ftypes
            .iter()
            .map(|m| {
                format!(
                    r#""{m}":{{"ftype":"{m}","path":"i/{version}/meta","sha256":"aa","size":1,"{key}":"{fp}"}}"#
                )
            })
            .collect();
        items.push(format!(
            r#""root":{{"ftype":"{root_ftype}","path":"i/{version}/root","sha256":"bb","size":2}}"#
        ));
        format!(r#""{version}":{{"items":{{{}}}}}"#, items.join(","))
    }

    const BOTH_META: &[&str] = &["lxd.tar.xz", "incus.tar.xz"];

    #[test]
    fn pairs_every_root_with_its_combined_key() {
        let r = product(
            "",
            &format!("{{{}}}", split("20260801", BOTH_META, "root.tar.xz", "ff")),
        );
        for c in Client::ALL {
            let v = view(&r, c, "x86_64");
            assert_eq!(v.images.len(), 1, "{c}");
            let i = &v.images[0];
            assert_eq!((i.fingerprint.as_str(), i.size), ("ff", 3));
            assert_eq!(i.meta_item, c.meta_ftype());
            assert_eq!(i.filename, "meta");
            assert_eq!(i.created, "2026-08-01");
        }
        // root.tar.xz falls back to the legacy combined_sha256.
        let legacy = r#"{"20260801":{"items":{
            "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,"combined_sha256":"11"},
            "r":{"ftype":"root.tar.xz","path":"r","sha256":"bb","size":2}}}}"#;
        let v = view(&product("", legacy), Client::Incus, "x86_64");
        assert_eq!(v.images[0].fingerprint, "11");
        let both = legacy.replace(
            r#""combined_sha256":"11""#,
            r#""combined_sha256":"11","combined_rootxz_sha256":"22""#,
        );
        assert_eq!(
            view(&product("", &both), Client::Incus, "x86_64").images[0].fingerprint,
            "22"
        );
    }

    #[test]
    fn go_decoding_semantics() {
        // Case-insensitive keys, null for anything, unknown keys ignored.
        let r = product(
            r#""ARCH":"arm64","Requirements":null,"supported":null,"distro":[1],"#,
            &format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff")),
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let v = view(&r, Client::Lxd, "x86_64");
        assert_eq!(v.images[0].architecture, "aarch64");
        assert_eq!(v.images[0].raw_arch, "arm64");
        // The short alias is listed only on a host of the image's arch.
        assert_eq!(v.images[0].aliases, ["debian/12/arm64"]);
        let v = view(&r, Client::Lxd, "arm64");
        assert_eq!(v.images[0].aliases, ["debian/12", "debian/12/arm64"]);
        assert_eq!(r.spellings.len(), 2);

        for (bad, location) in [
            (r#""size":"1""#, ".size"),
            (r#""size":1.5"#, ".size"),
            (r#""size":9223372036854775808"#, ".size"),
        ] {
            let versions = format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff"))
                .replacen(r#""size":2"#, bad, 1);
            let r = product("", &versions);
            assert_eq!(r.problems.len(), 1, "{bad}");
            assert_eq!(r.problems[0].kind, ProblemKind::Type);
            assert!(r.problems[0].location.ends_with(location));
        }
        // Negative sizes fit Go's int64.
        let versions = format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff")).replacen(
            r#""size":2"#,
            r#""size":-2"#,
            1,
        );
        assert!(product("", &versions).problems.is_empty());
    }

    #[test]
    fn one_client_type_errors() {
        let versions = format!("{{{}}}", split("20260801", BOTH_META, "squashfs", "ff"));
        let r = product(r#""lxd_requirements":{"nesting":true},"#, &versions);
        assert_eq!(r.problems[0].clients, [Client::Lxd]);
        assert_eq!(
            r.problems[0].to_string(),
            r#"streams/v1/images.json: products["p"].lxd_requirements.nesting: expected a string, found true"#
        );
        assert!(view(&r, Client::Lxd, "x86_64").error.is_some());
        assert_eq!(view(&r, Client::Incus, "x86_64").images.len(), 1);
        let versions = versions.replacen(
            r#""ftype":"squashfs""#,
            r#""ftype":"squashfs","combined_type":7"#,
            1,
        );
        let r = product("", &versions);
        assert_eq!(r.problems[0].clients, [Client::Incus]);
    }

    #[test]
    fn index_entries_are_filtered() {
        let products = format!(
            r#"{{"products":{{"p":{{"arch":"amd64","versions":{{{}}}}}}}}}"#,
            split("20260801", BOTH_META, "squashfs", "ff")
        );
        let fetch = |p: &str| (p == "a.json").then(|| products.clone());
        let r = Remote::parse(
            r#"{"index":{"x":{"datatype":"image-ids","path":"a.json","products":["p"]},
                        "y":{"datatype":"image-downloads","path":"b.json","products":[]}}}"#,
            &fetch,
        );
        assert!(r.problems.is_empty() && r.files.is_empty());
        let r = Remote::parse(
            r#"{"index":{"z":{"datatype":"image-downloads","path":"/./x/../a.json","products":["p"]}}}"#,
            &fetch,
        );
        assert_eq!(r.files.len(), 1);
        assert_eq!(r.files[0].path, "a.json");
        let r = Remote::parse(
            r#"{"index":{"z":{"datatype":"image-downloads","path":"c.json","products":["p"]}}}"#,
            &fetch,
        );
        assert_eq!(r.problems[0].kind, ProblemKind::Missing);
        assert!(load_remote(r#"[]"#, &fetch).is_err());
        // A JSON null index is an empty index for Go.
        assert!(load_remote("null", &fetch).is_ok_and(|r| r.entries.is_empty()));
    }

    #[test]
    fn versions_and_descriptions() {
        let versions = format!(
            "{{{},{},{}}}",
            split("20260801_1512", BOTH_META, "squashfs", "new"),
            split("20260731", BOTH_META, "squashfs", "old"),
            split("2026-08-02", BOTH_META, "squashfs", "bad"),
        )
        .replacen(r#""items""#, r#""label":"rc","items""#, 1);
        let r = product(r#""variant":"cloud","#, &versions);
        let lxd = view(&r, Client::Lxd, "x86_64");
        let incus = view(&r, Client::Incus, "x86_64");
        let fps: Vec<&str> = incus
            .images
            .iter()
            .map(|i| i.fingerprint.as_str())
            .collect();
        assert_eq!(fps, ["new", "old"], "newest first");
        assert_eq!(incus.hidden[0].code, "invalid-version-name");
        assert_eq!(
            incus.images[0].description,
            "debian 12 amd64 (cloud) (rc) (20260801_1512)"
        );
        assert_eq!(lxd.images[0].description, "debian 12 (rc) (cloud)");
        let alias = incus
            .aliases
            .iter()
            .find(|a| a.name == "debian/12")
            .expect("alias");
        assert_eq!(alias.fingerprint, "new");
        assert_eq!(incus.images[1].aliases, Vec::<String>::new());
        assert_eq!(incus.images[0].properties["serial"], "20260801_1512");
        assert_eq!(incus.images[0].properties["label"], "rc");
        assert!(!incus.images[0].properties.contains_key("version"));
    }

    #[test]
    fn squashfs_ranks_before_root_tar_xz() {
        let versions = r#"{"20260801":{"items":{
            "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,
                 "combined_rootxz_sha256":"xz","combined_squashfs_sha256":"sq"},
            "a":{"ftype":"root.tar.xz","path":"a","sha256":"b1","size":2},
            "b":{"ftype":"squashfs","path":"b","sha256":"b2","size":2}}}}"#;
        let v = view(&product("", versions), Client::Incus, "x86_64");
        assert_eq!(v.images[0].fingerprint, "sq");
        assert_eq!(v.aliases[0].fingerprint, "sq");
        assert!(
            v.shadowed
                .iter()
                .all(|s| !s.tie && s.alias.fingerprint == "xz")
        );
    }

    #[test]
    fn one_metadata_item_per_root_is_fine() {
        let versions = r#"{"20260801":{"items":{
            "m1":{"ftype":"incus.tar.xz","path":"m1","sha256":"a1","size":1,"combined_squashfs_sha256":"sq"},
            "m2":{"ftype":"incus.tar.xz","path":"m2","sha256":"a2","size":1,"combined_disk-kvm-img_sha256":"vm"},
            "s":{"ftype":"squashfs","path":"s","sha256":"b1","size":2},
            "d":{"ftype":"disk-kvm.img","path":"d","sha256":"b2","size":2}}}}"#;
        let v = view(&product("", versions), Client::Incus, "x86_64");
        assert_eq!(v.images.len(), 2);
        assert!(v.hidden.is_empty(), "{:?}", v.hidden);
        let no_vm = versions.replace(r#""combined_disk-kvm-img_sha256":"vm""#, r#""x":"y""#);
        let v = view(&product("", &no_vm), Client::Incus, "x86_64");
        assert_eq!(v.hidden.len(), 2, "neither item pairs with the disk");
        assert!(v.hidden.iter().all(|h| h.code == "missing-combined-hash"));
    }

    #[test]
    fn duplicates_are_recorded() {
        let versions = r#"{"20260801":{"items":{
            "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,"combined_squashfs_sha256":"sq"},
            "a":{"ftype":"squashfs","path":"a","sha256":"b1","size":2},
            "b":{"ftype":"squashfs","path":"b","sha256":"b2","size":2}}}}"#;
        let v = view(&product("", versions), Client::Incus, "x86_64");
        assert_eq!(v.images.len(), 2);
        assert!(v.images.iter().all(|i| i.duplicate));
        assert_eq!(v.duplicates.len(), 1);
        assert_eq!(v.duplicates[0].images.len(), 2);
    }

    #[test]
    fn deltas_per_client() {
        let versions = r#"{
          "20260801":{"items":{
            "m":{"ftype":"incus.tar.xz","path":"m1","sha256":"a1","size":1,"combined_squashfs_sha256":"sq1","combined_disk-kvm-img_sha256":"vm1"},
            "l":{"ftype":"lxd.tar.xz","path":"m1","sha256":"a1","size":1,"combined_squashfs_sha256":"sq1","combined_disk-kvm-img_sha256":"vm1"},
            "s":{"ftype":"squashfs","path":"s1","sha256":"b1","size":2},
            "d":{"ftype":"disk-kvm.img","path":"d1","sha256":"c1","size":2}}},
          "20260802":{"items":{
            "m":{"ftype":"incus.tar.xz","path":"m2","sha256":"a2","size":1,"combined_squashfs_sha256":"sq2","combined_disk-kvm-img_sha256":"vm2"},
            "l":{"ftype":"lxd.tar.xz","path":"m2","sha256":"a2","size":1,"combined_squashfs_sha256":"sq2","combined_disk-kvm-img_sha256":"vm2"},
            "s":{"ftype":"squashfs","path":"s2","sha256":"b2","size":2},
            "d":{"ftype":"disk-kvm.img","path":"d2","sha256":"c2","size":2},
            "sd":{"ftype":"squashfs.vcdiff","path":"sd","sha256":"e1","size":1,"delta_base":"20260801"},
            "dd":{"ftype":"disk-kvm.img.vcdiff","path":"dd","sha256":"e2","size":1,"delta_base":"20260801"}}}}"#;
        let r = product("", versions);
        let base = |c, fp: &str| -> Vec<(String, bool)> {
            let v = view(&r, c, "x86_64");
            let image = v
                .images
                .iter()
                .find(|i| i.fingerprint == fp)
                .cloned()
                .expect("image");
            image
                .deltas
                .iter()
                .map(|d| (d.base_fingerprint.clone(), d.wrong_base))
                .collect()
        };
        assert_eq!(base(Client::Lxd, "sq2"), [("sq1".to_owned(), false)]);
        assert_eq!(base(Client::Lxd, "vm2"), [("vm1".to_owned(), false)]);
        assert_eq!(base(Client::Incus, "sq2"), [("sq1".to_owned(), false)]);
        assert_eq!(base(Client::Incus, "vm2"), [("sq1".to_owned(), true)]);
    }

    #[test]
    fn helpers() {
        assert_eq!(clean_path("/a//b/./c/../d"), "a/b/d");
        assert_eq!(clean_path("../../x"), "x");
        assert_eq!(eol_date("2028-02-29"), Some("2028-02-29".to_owned()));
        assert_eq!(eol_date("2027-02-29"), None);
        assert_eq!(eol_date("2028-6-30"), None);
        assert!(go_fold_eq("\u{212A}ey", "key"));
        assert!(go_fold_eq("\u{017F}ize", "size"));
        assert!(!go_fold_eq("sizé", "size"));
        assert_eq!(Client::Incus.normalise_arch("x86_64_v2"), Some("x86_64"));
        assert_eq!(Client::Lxd.normalise_arch("x86_64_v2"), None);
        assert_eq!(Client::Lxd.normalise_arch("amd64v3"), Some("x86_64"));
        assert_eq!(
            serde_json::to_string(&Client::Incus).ok().as_deref(),
            Some("\"incus\"")
        );
    }
}
