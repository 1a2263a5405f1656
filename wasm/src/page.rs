//! The browser page's exports: the core's listing → scan → hash plan →
//! documents, the per-file hashing state machine (which checks each file
//! as `ssgen build` does, on the same read), the layout names the page's
//! scripts need, and ([`export`]) the files of one image export.
//!
//! Two kinds of value cross the boundary. Plain data (hash jobs, hash
//! results, the scan and build summaries) goes out as ordinary JavaScript
//! objects, so the page can send it between threads with `postMessage`.
//! State that cannot be copied (a running SHA-256, the finished states of
//! the metadata files) stays inside wasm objects owned by one thread: a
//! [`Builder`] on the main thread, and a [`PrefixStore`] with one [`Hasher`]
//! per file in each hashing worker.
//!
//! ```js
//! // main thread
//! const b = new Builder(1785556800);
//! const { files } = treeFiles(paths);      // which dropped files are the tree's
//! b.addFile(path, size, head);
//! const { plan } = b.scan();               // plan.prefixes, then plan.bodies
//! // worker, for each job: prefixes first, then bodies
//! const h = new Hasher(job, store);
//! h.update(chunk); …
//! const result = h.finish(store);           // plain object, postMessage it
//! // main thread
//! b.record(result);
//! const { indexJson, imagesJson } = b.build();
//! ```

mod export;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ssgen_core::check::Checked;
use ssgen_core::lint::{Finding, Report};
use ssgen_core::remote::{IMAGE_DOWNLOADS, PRODUCTS_FORMAT, Remote, clean_path};
use ssgen_core::vocab::IMAGES;
use ssgen_core::{
    Client, Clients, Config, Diagnostic, Digests, Entry, FileHasher, FileRole, Ftype, HEAD_LEN,
    HashJob, HashPlan, IMAGES_JSON, INDEX_JSON, Prefixes, Scan, Sha256, time,
};
use wasm_bindgen::prelude::*;

pub use export::{Export, field_problem, identify_export, propose_version};

/// Converts serialisable data into a plain JavaScript object.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value)
        .map_err(|e| JsError::new(&format!("cannot serialise a result: {e}")))?;
    js_sys::JSON::parse(&text).map_err(|_| JsError::new("cannot pass a result to JavaScript"))
}

/// Reads a plain JavaScript object into `T`; `what` names it in the error.
fn from_js<T: DeserializeOwned>(value: &JsValue, what: &str) -> Result<T, JsError> {
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| JsError::new(&format!("{what}: not a plain object")))?;
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

/// Unix seconds from JavaScript: a whole number well inside `i64`.
fn whole_seconds(value: f64) -> Result<i64, String> {
    if !value.is_finite() || value.fract() != 0.0 || value.abs() > 1e15 {
        return Err("timestamp must be whole Unix seconds".to_owned());
    }
    // A whole number well inside i64: checked above.
    Ok(value as i64)
}

/// A byte count from JavaScript: a whole number of at most 2^53.
fn byte_count(value: f64, what: &str) -> Result<u64, String> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if (0.0..=MAX_SAFE).contains(&value) && value.fract() == 0.0 {
        // A whole number in u64's range: checked just above.
        Ok(value as u64)
    } else {
        Err(format!("{what}: size must be a whole number of bytes"))
    }
}

/// One file to read, as the page passes it to a worker.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Path relative to the root.
    pub path: String,
    /// Size from the listing.
    pub size: u64,
    /// A metadata file whose finished state later jobs fork.
    pub is_prefix: bool,
    /// Metadata paths whose finished state feeds this file's bytes.
    pub prefixes: Vec<String>,
}

impl From<&HashJob> for Job {
    fn from(job: &HashJob) -> Self {
        Self {
            path: job.path.clone(),
            size: job.size,
            is_prefix: job.is_prefix,
            prefixes: job.prefixes.clone(),
        }
    }
}

impl From<Job> for HashJob {
    fn from(job: Job) -> Self {
        Self {
            path: job.path,
            size: job.size,
            is_prefix: job.is_prefix,
            prefixes: job.prefixes,
        }
    }
}

/// What one file yielded, as a worker sends it back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hashed {
    /// Path relative to the root.
    pub path: String,
    /// Bytes hashed.
    pub size: u64,
    /// The file's SHA-256, lower-case hex.
    pub sha256: String,
    /// `[metadata path, sha256(metadata ‖ this file)]` pairs.
    pub combined: Vec<(String, String)>,
}

/// Combined digests keyed by (metadata path, root path), as [`Digests`]
/// holds them.
type Combined = Vec<((String, String), Sha256)>;

impl Hashed {
    /// The digests, checked: the file's own, and each combined one keyed
    /// by (metadata path, this path).
    fn digests(&self) -> Result<(Sha256, Combined), String> {
        let digest = |hex: &str| Sha256::from_hex(hex).map_err(|e| format!("{}: {e}", self.path));
        let mut combined = Vec::with_capacity(self.combined.len());
        for (meta, hex) in &self.combined {
            combined.push(((meta.clone(), self.path.clone()), digest(hex)?));
        }
        Ok((digest(&self.sha256)?, combined))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanView {
    prefixes: Vec<Job>,
    bodies: Vec<Job>,
    total_bytes: u64,
}

impl PlanView {
    fn of(plan: &HashPlan) -> Self {
        PlanView {
            total_bytes: plan.total_bytes(),
            prefixes: plan.prefixes.iter().map(Job::from).collect(),
            bodies: plan.bodies.iter().map(Job::from).collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileView {
    path: String,
    size: u64,
    /// The item's ftype; null for a unified tarball, whose ftype is each
    /// client's own.
    ftype: Option<&'static str>,
    /// For a delta, the version it patches.
    delta_base: Option<String>,
}

/// A delta found in the tree, as the catalog publishes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeltaView {
    product: String,
    /// The version whose root it makes.
    version: String,
    /// The older version whose root it patches.
    base: String,
    path: String,
    size: u64,
}

#[derive(Serialize)]
struct VersionView {
    name: String,
    files: Vec<FileView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductView {
    id: String,
    os: String,
    release: String,
    arch: String,
    variant: String,
    os_title: String,
    release_title: String,
    aliases: Vec<String>,
    requirements: BTreeMap<String, String>,
    lxd_requirements: Option<BTreeMap<String, String>>,
    versions: Vec<VersionView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScanView {
    products: Vec<ProductView>,
    /// Every delta the catalog names, by product and version.
    deltas: Vec<DeltaView>,
    diagnostics: Vec<Diagnostic>,
    has_errors: bool,
    plan: PlanView,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildView {
    index_json: String,
    images_json: String,
    diagnostics: Vec<Diagnostic>,
    products: usize,
    images: usize,
    /// The documents' `updated`, as written.
    updated: String,
    /// Whether `updated` is the published catalog's, kept because nothing
    /// else changed, rather than the builder's timestamp.
    updated_kept: bool,
    /// With a server catalog to merge into: what the merge did.
    merged: Option<MergeView>,
    /// What LXD and Incus make of the documents (the core's lint).
    lint: LintView,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MergeView {
    /// Products in the merged catalog.
    products: usize,
    /// `product id version` of each version added to the server's catalog.
    added: Vec<String>,
}

#[derive(Serialize)]
struct LintView {
    findings: Vec<Finding>,
    summary: String,
}

impl From<Report> for LintView {
    fn from(report: Report) -> Self {
        LintView {
            summary: report.summary(),
            findings: report.findings,
        }
    }
}

/// Lints documents as the clients would read them from a server.
fn lint_documents(index_json: &str, images_json: &str) -> Report {
    ssgen_core::lint::lint(index_json, &|path| {
        (path == IMAGES_JSON).then(|| images_json.to_owned())
    })
}

fn ftype_of(role: &FileRole) -> Option<Ftype> {
    match role {
        FileRole::Meta(client) => Some(client.meta()),
        FileRole::Root(root) => Some(root.kind()),
        FileRole::Unified => None,
        // The layout publishes squashfs deltas only.
        FileRole::Delta { .. } => Ftype::Squashfs.delta(),
    }
}

fn deltas(scan: &Scan) -> Vec<DeltaView> {
    let mut out = Vec::new();
    for p in &scan.products {
        for v in &p.versions {
            for f in &v.files {
                if let FileRole::Delta { base } = &f.role {
                    out.push(DeltaView {
                        product: p.id.clone(),
                        version: v.name.clone(),
                        base: base.clone(),
                        path: f.path.clone(),
                        size: f.size,
                    });
                }
            }
        }
    }
    out
}

fn scan_view(scan: &Scan, digests: &Digests) -> ScanView {
    let plan = scan.plan(digests);
    ScanView {
        deltas: deltas(scan),
        products: scan
            .products
            .iter()
            .map(|p| ProductView {
                id: p.id.clone(),
                os: p.os.clone(),
                release: p.release.clone(),
                arch: p.arch.clone(),
                variant: p.variant.clone(),
                os_title: p.os_title.clone(),
                release_title: p.release_title.clone(),
                aliases: p.aliases.clone(),
                requirements: p.requirements.clone(),
                lxd_requirements: p.lxd_requirements.clone(),
                versions: p
                    .versions
                    .iter()
                    .map(|v| VersionView {
                        name: v.name.clone(),
                        files: v
                            .files
                            .iter()
                            .map(|f| FileView {
                                path: f.path.clone(),
                                size: f.size,
                                ftype: ftype_of(&f.role).map(Ftype::as_str),
                                delta_base: match &f.role {
                                    FileRole::Delta { base } => Some(base.clone()),
                                    _ => None,
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        diagnostics: scan.diagnostics.clone(),
        has_errors: scan.has_errors(),
        plan: PlanView::of(&plan),
    }
}

/// The listing of a tree, the digests learnt so far, and the documents
/// built from them. Lives on the page's main thread.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Builder {
    entries: Vec<Entry>,
    config: Config,
    digests: Digests,
    previous: Option<String>,
    server: Option<String>,
}

#[wasm_bindgen]
impl Builder {
    /// An empty listing; `timestamp` (Unix seconds) becomes `updated`.
    ///
    /// # Errors
    /// When `timestamp` is not a whole number.
    #[wasm_bindgen(constructor)]
    pub fn new(timestamp: f64) -> Result<Builder, JsError> {
        let seconds = whole_seconds(timestamp).map_err(|e| JsError::new(&e))?;
        Ok(Builder {
            entries: Vec::new(),
            config: Config::new(seconds),
            digests: Digests::default(),
            previous: None,
            server: None,
        })
    }

    /// Which clients to serve: `both` (the default), `lxd` or `incus`.
    ///
    /// # Errors
    /// For any other word.
    #[wasm_bindgen(js_name = setClients)]
    pub fn set_clients(&mut self, which: &str) -> Result<(), JsError> {
        self.config.clients = match (which, Client::parse(which)) {
            ("both", _) => Clients::Both,
            (_, Some(client)) => Clients::Only(client),
            (other, None) => {
                return Err(JsError::new(&format!(
                    "clients must be both, {} or {}, not {other:?}",
                    Client::Lxd.id(),
                    Client::Incus.id()
                )));
            }
        };
        Ok(())
    }

    /// Adds a file by path (relative to the server root, `/`-separated),
    /// size, and its first bytes (at most [`HEAD_LEN`] are kept) for the
    /// magic check.
    ///
    /// # Errors
    /// When `size` is not a whole number of bytes.
    #[wasm_bindgen(js_name = addFile)]
    pub fn add_file(
        &mut self,
        path: String,
        size: f64,
        head: Option<Vec<u8>>,
    ) -> Result<(), JsError> {
        let size = byte_count(size, &path).map_err(|e| JsError::new(&e))?;
        let head = head.map(|mut h| {
            h.truncate(HEAD_LEN);
            h
        });
        self.entries.push(Entry {
            path,
            size,
            head,
            contents: None,
        });
        Ok(())
    }

    /// Adds a small side file with its contents (the requirements files, a
    /// product's fields: see [`needsContents`]).
    #[wasm_bindgen(js_name = addSideFile)]
    pub fn add_side_file(&mut self, path: String, contents: Vec<u8>) {
        self.entries.push(Entry::side(path, contents));
    }

    /// The products file ([`IMAGES_JSON`]) now published, if any: when nothing but
    /// the time changed, its `updated` is kept (as `ssgen build` does).
    #[wasm_bindgen(js_name = setPrevious)]
    pub fn set_previous(&mut self, images_json: Option<String>) {
        self.previous = images_json;
    }

    /// The products file ([`IMAGES_JSON`]) a server publishes now, for a listing
    /// of only some of its images (the files of one export): the built
    /// catalog is that one with the listed versions added, so that
    /// publishing it loses none of the server's images. A version the
    /// server already lists with other files is refused.
    #[wasm_bindgen(js_name = mergeInto)]
    pub fn merge_into(&mut self, images_json: Option<String>) {
        self.server = images_json;
    }

    /// Number of files listed.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn length(&self) -> usize {
        self.entries.len()
    }

    /// Lays the listing out: `{products, diagnostics, hasErrors, plan:
    /// {prefixes, bodies, totalBytes}}`. Every job of `plan.prefixes` must be
    /// hashed before any job of `plan.bodies` that names it.
    ///
    /// # Errors
    /// Only if the summary cannot be passed to JavaScript.
    pub fn scan(&self) -> Result<JsValue, JsError> {
        let scan = ssgen_core::scan(&self.entries, &self.config);
        to_js(&scan_view(&scan, &self.digests))
    }

    /// Records a worker's result (what [`Hasher::finish`] returned).
    ///
    /// # Errors
    /// When the result is malformed.
    pub fn record(&mut self, result: &JsValue) -> Result<(), JsError> {
        let hashed: Hashed = from_js(result, "hash result")?;
        self.record_hashed(hashed).map_err(|e| JsError::new(&e))
    }

    /// Builds `index.json` and `images.json`: `{indexJson, imagesJson,
    /// diagnostics, products, images}`.
    ///
    /// # Errors
    /// When an error blocks publishing (the message lists every problem)
    /// or a digest is missing.
    pub fn build(&self) -> Result<JsValue, JsError> {
        let out = self.build_output().map_err(|e| JsError::new(&e))?;
        to_js(&out)
    }
}

impl Builder {
    fn record_hashed(&mut self, hashed: Hashed) -> Result<(), String> {
        let (own, combined) = hashed.digests()?;
        self.digests.files.insert(hashed.path, own);
        self.digests.combined.extend(combined);
        Ok(())
    }

    fn build_output(&self) -> Result<BuildView, String> {
        let scan = ssgen_core::scan(&self.entries, &self.config);
        let mut out =
            ssgen_core::build(&scan, &self.digests, &self.config, self.previous.as_deref())
                .map_err(|e| e.to_string())?;
        let now = time::rfc2822(self.config.timestamp);
        let mut merged = None;
        if let Some(server) = &self.server {
            let m = merge(server, &out.images_json, &now)
                .map_err(|e| format!("the server's {IMAGES_JSON}: {e}"))?;
            refuse_new_errors(server, &m)?;
            out.index_json = m.index_json;
            out.images_json = m.images_json;
            out.diagnostics.extend(m.notes);
            merged = Some(MergeView {
                products: m.products,
                added: m.added,
            });
        }
        let updated = top_level_updated(&out.index_json).unwrap_or_default();
        Ok(BuildView {
            lint: lint_documents(&out.index_json, &out.images_json).into(),
            updated_kept: updated != now,
            updated,
            merged,
            index_json: out.index_json,
            images_json: out.images_json,
            diagnostics: out.diagnostics,
            products: out.products,
            images: out.images,
        })
    }
}

/// The `updated` of a document.
fn top_level_updated(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("updated")?.as_str().map(str::to_owned)
}

/// A catalog merged from a server's and ours.
#[derive(Debug)]
struct Merged {
    index_json: String,
    images_json: String,
    products: usize,
    added: Vec<String>,
    notes: Vec<Diagnostic>,
}

/// Adds the versions of `ours` (a catalog of some images only) to
/// `server` (the `images.json` a server publishes now). Everything the
/// server lists stays as it is, including the fields of a product it
/// already has; a version it already lists must be the very same, because
/// published files never change. `updated` becomes `now` unless nothing
/// was added.
fn merge(server: &str, ours: &str, now: &str) -> Result<Merged, String> {
    use serde_json::Value;
    let mut doc: Value = serde_json::from_str(server)
        .map_err(|e| format!("is not JSON ({e}); give the {IMAGES_JSON} the server publishes"))?;
    let format = doc.get("format").and_then(Value::as_str).unwrap_or("");
    if format != PRODUCTS_FORMAT {
        return Err(format!(
            "is not a simplestreams products file (format {format:?}, not {PRODUCTS_FORMAT:?}); give the {IMAGES_JSON} the server publishes, not its {INDEX_JSON}"
        ));
    }
    let ours: Value =
        serde_json::from_str(ours).map_err(|e| format!("our catalog is not JSON: {e}"))?;
    let ours = ours
        .get("products")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let products = doc
        .get_mut("products")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            format!("has no \"products\" object; give the {IMAGES_JSON} the server publishes")
        })?;
    let mut added = Vec::new();
    let mut notes = Vec::new();
    for (id, mut product) in ours {
        let Some(there) = products.get_mut(&id) else {
            let versions = product.get("versions").and_then(Value::as_object);
            added.extend(
                versions
                    .into_iter()
                    .flatten()
                    .map(|(v, _)| format!("{id} {v}")),
            );
            products.insert(id, product);
            continue;
        };
        let new_versions = match product.get_mut("versions").map(Value::take) {
            Some(Value::Object(v)) => v,
            _ => serde_json::Map::new(),
        };
        let fields_differ = {
            let mut theirs = there.clone();
            if let Some(t) = theirs.as_object_mut() {
                t.remove("versions");
            }
            if let Some(o) = product.as_object_mut() {
                o.remove("versions");
            }
            theirs != product
        };
        let versions = there
            .get_mut("versions")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("product {id} has no \"versions\" object"))?;
        for (name, version) in new_versions {
            match versions.get(&name) {
                Some(same) if *same == version => {}
                Some(_) => {
                    return Err(format!(
                        "product {id} already has version {name}, with other files; published files never change, so give this image another version name"
                    ));
                }
                None => {
                    added.push(format!("{id} {name}"));
                    versions.insert(name, version);
                }
            }
        }
        if fields_differ {
            notes.push(Diagnostic::new(
                ssgen_core::Level::Note,
                IMAGES_JSON,
                format!("product {id} is on the server already: its titles, aliases and requirements stay as the server publishes them"),
                format!(
                    "change them on the server ({}, {}) if they should change",
                    ssgen_core::side::METADATA_JSON,
                    ssgen_core::requirements::FILE_NAME
                ),
            ));
        }
    }
    let ids: Vec<String> = products.keys().cloned().collect();
    let updated = match doc.get("updated").and_then(Value::as_str) {
        Some(kept) if added.is_empty() => kept.to_owned(),
        _ => now.to_owned(),
    };
    if let Some(o) = doc.as_object_mut() {
        o.insert("updated".to_owned(), Value::String(updated.clone()));
    }
    let mut images_json = serde_json::to_string_pretty(&Sorted(&doc))
        .map_err(|e| format!("cannot be written back: {e}"))?;
    images_json.push('\n');
    Ok(Merged {
        index_json: ssgen_core::index_json(&ids, &updated),
        images_json,
        products: ids.len(),
        added,
        notes,
    })
}

/// Refuses a merge that makes LXD or Incus refuse something the server's
/// catalog alone does not (the same image under a second version name gives
/// both one fingerprint, and neither can be downloaded any more): the merge
/// must not break what is published.
fn refuse_new_errors(server: &str, merged: &Merged) -> Result<(), String> {
    let errors = |report: Report| -> Vec<(String, String)> {
        report
            .findings
            .into_iter()
            .filter(|f| f.level == ssgen_core::Level::Error)
            .map(|f| (f.code_str().to_owned(), f.message))
            .collect()
    };
    let before = errors(lint_documents(
        &ssgen_core::client::index_for_products(IMAGES_JSON, server),
        server,
    ));
    let new: Vec<String> = errors(lint_documents(&merged.index_json, &merged.images_json))
        .into_iter()
        .filter(|e| !before.contains(e))
        .map(|(code, message)| format!("{code}: {message}"))
        .collect();
    if new.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "merged with the server's {IMAGES_JSON}, this image would break the catalog for LXD or Incus ({}); nothing was merged: check that the server does not publish this image already, under another version name",
            new.join("; ")
        ))
    }
}

/// A JSON value written as the core writes its documents: every object's
/// keys sorted, whatever order they came in.
struct Sorted<'a>(&'a serde_json::Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        use serde_json::Value;
        match self.0 {
            Value::Object(m) => {
                let mut entries: Vec<_> = m.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &Sorted(v))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Lints a catalog (ours or anyone's): `{findings: [{severity, code,
/// clients, location, message, help}], summary}` for an index and the
/// products file ([`IMAGES_JSON`]) it points at.
///
/// # Errors
/// Only if the report cannot be passed to JavaScript.
#[wasm_bindgen]
pub fn lint(index_json: &str, images_json: &str) -> Result<JsValue, JsError> {
    to_js(&LintView::from(lint_documents(index_json, images_json)))
}

/// Whether the page must pass a file's contents ([`Builder::add_side_file`])
/// rather than only its size.
#[wasm_bindgen(js_name = needsContents)]
#[must_use]
pub fn needs_contents(path: &str) -> bool {
    ssgen_core::needs_contents(path)
}

/// How many leading bytes of each file [`Builder::add_file`] uses.
#[wasm_bindgen(js_name = headLength)]
#[must_use]
pub fn head_length() -> usize {
    HEAD_LEN
}

/// The paths of the server root the page's scripts name: `{images,
/// indexJson, imagesJson}` (the images directory, the index, the products
/// file).
///
/// # Errors
/// Only if the result cannot be passed to JavaScript.
#[wasm_bindgen]
pub fn vocabulary() -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Vocabulary {
        images: &'static str,
        index_json: &'static str,
        images_json: &'static str,
    }
    to_js(&Vocabulary {
        images: IMAGES,
        index_json: INDEX_JSON,
        images_json: IMAGES_JSON,
    })
}

/// Which files of a dropped or chosen folder are the server root's.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct TreeView {
    /// `[index in the input, path relative to the root]`, for the files
    /// under the images directory.
    files: Vec<(usize, String)>,
    /// The index of the published products file, if the folder holds it.
    previous: Option<usize>,
}

/// Maps the paths of a dropped or chosen folder onto the server root: the
/// folder may be the images directory itself or the root that holds it
/// (with, perhaps, the published products file).
fn tree_view(paths: &[String]) -> Result<TreeView, String> {
    let split: Vec<Vec<&str>> = paths.iter().map(|p| p.split('/').collect()).collect();
    // The shallowest images directory: 0 when the folder is it, 1 when it
    // is the root above it.
    let Some(cut) = split
        .iter()
        .filter_map(|parts| parts.iter().position(|p| *p == IMAGES))
        .filter(|d| *d <= 1)
        .min()
    else {
        return Err(format!(
            "no {IMAGES}/ folder found: choose the folder laid out as {IMAGES}/<os>/<release>/<arch>/<variant>/<version>/ (or the folder that holds it)"
        ));
    };
    let mut out = TreeView {
        files: Vec::new(),
        previous: None,
    };
    for (i, parts) in split.iter().enumerate() {
        if parts.len() <= cut || (cut == 0 && parts[0] != IMAGES) {
            continue;
        }
        let rel = parts[cut..].join("/");
        if rel.strip_prefix(IMAGES).is_some_and(|r| r.starts_with('/')) {
            out.files.push((i, rel));
        } else if rel == IMAGES_JSON {
            out.previous = Some(i);
        }
    }
    Ok(out)
}

/// [`tree_view`] for JavaScript: `paths` relative to the folder dropped
/// or chosen; returns `{files: [[index, path]], previous}`.
///
/// # Errors
/// When the folder holds no images directory (the message says what to
/// choose).
#[wasm_bindgen(js_name = treeFiles)]
pub fn tree_files(paths: Vec<String>) -> Result<JsValue, JsError> {
    to_js(&tree_view(&paths).map_err(|e| JsError::new(&e))?)
}

/// Where the products file an index lists is, relative to the index's
/// own URL; `None` when `text` is no index (a products file, say).
fn catalog_in(text: &str) -> Result<Option<String>, String> {
    if serde_json::from_str::<serde_json::Value>(text).is_err() {
        return Err(format!(
            "is not JSON: give the server's URL, or its {IMAGES_JSON}"
        ));
    }
    let remote = Remote::parse(text, &|_| None);
    if remote.entries.is_empty() {
        return Ok(None);
    }
    let catalogs: Vec<String> = remote
        .entries
        .iter()
        .filter(|e| e.datatype == IMAGE_DOWNLOADS && !e.path.is_empty())
        .map(|e| clean_path(&e.path))
        .collect();
    let [path] = catalogs.as_slice() else {
        return Err(format!(
            "lists {} image catalogs, not one: download the one to merge into and choose it as a file",
            catalogs.len()
        ));
    };
    // Paths in an index are relative to the server root, which is as many
    // levels above the index as its path has directories.
    let up = "../".repeat(INDEX_JSON.matches('/').count());
    Ok(Some(format!("{up}{path}")))
}

/// [`catalog_in`] for JavaScript: the products file's path relative to
/// the index's URL, or `null` when `text` is no index.
///
/// # Errors
/// When `text` is not JSON, or an index that does not list exactly one
/// image catalog.
#[wasm_bindgen(js_name = catalogInIndex)]
pub fn catalog_in_index(text: &str) -> Result<Option<String>, JsError> {
    catalog_in(text).map_err(|e| JsError::new(&e))
}

/// The finished SHA-256 states of the metadata files one worker hashed,
/// which the files paired with them fork. Not copyable between threads: a
/// worker that gets a body job whose metadata it has not hashed hashes that
/// (small) metadata file first.
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct PrefixStore {
    prefixes: Prefixes,
    known: Vec<String>,
}

#[wasm_bindgen]
impl PrefixStore {
    /// An empty store.
    #[wasm_bindgen(constructor)]
    #[must_use]
    pub fn new() -> PrefixStore {
        PrefixStore::default()
    }

    /// Whether the metadata file at `path` was hashed in this store.
    #[must_use]
    pub fn has(&self, path: &str) -> bool {
        self.known.iter().any(|p| p == path)
    }
}

/// Hashes one file from chunks the page reads in order: its own digest and,
/// from the same bytes, every combined digest it takes part in. On the same
/// bytes it makes `ssgen build`'s check ([`Checked`]): no file cut short,
/// and no metadata tarball whose `metadata.yaml` the daemons would refuse.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Hasher {
    inner: FileHasher,
    is_prefix: bool,
    path: String,
    check: Checked,
}

#[wasm_bindgen]
impl Hasher {
    /// Starts the file of `job` (an element of `plan.prefixes` or
    /// `plan.bodies`).
    ///
    /// # Errors
    /// When the job is malformed, or a metadata file it pairs with is not in
    /// `store` yet.
    #[wasm_bindgen(constructor)]
    pub fn new(job: &JsValue, store: &PrefixStore) -> Result<Hasher, JsError> {
        let job: Job = from_js(job, "hash job")?;
        Hasher::start(job, store).map_err(|e| JsError::new(&e.to_string()))
    }

    /// Feeds the next chunk of the file.
    pub fn update(&mut self, chunk: &[u8]) {
        self.inner.update(chunk);
        self.check.update(chunk);
    }

    /// Bytes fed so far.
    #[wasm_bindgen(getter, js_name = bytesSeen)]
    #[must_use]
    // File sizes stay far below 2^53, so the conversion is exact.
    pub fn bytes_seen(&self) -> f64 {
        self.inner.bytes_seen() as f64
    }

    /// Finishes the file: `{path, size, sha256, combined: [[meta, sha256]…]}`.
    /// A metadata file's finished state is kept in `store` for the files
    /// paired with it. The hasher cannot be used afterwards.
    ///
    /// # Errors
    /// As `ssgen build` refuses it, with the path: the file was cut short
    /// (an xz stream without its end, a squashfs shorter than its
    /// superblock says), a metadata tarball has no `metadata.yaml` the
    /// daemons would import, or the number of bytes fed differs from the
    /// job's size (the file changed while it was read).
    pub fn finish(self, store: &mut PrefixStore) -> Result<JsValue, JsError> {
        let hashed = self
            .finish_into(store)
            .map_err(|e| JsError::new(&e.to_string()))?;
        to_js(&hashed)
    }
}

impl Hasher {
    fn start(job: Job, store: &PrefixStore) -> Result<Hasher, ssgen_core::Error> {
        let is_prefix = job.is_prefix;
        let path = job.path.clone();
        let inner = FileHasher::new(&HashJob::from(job), &store.prefixes)?;
        Ok(Hasher {
            inner,
            is_prefix,
            path,
            // A prefix job is a metadata tarball: the build reads its
            // metadata.yaml too.
            check: Checked::new(is_prefix),
        })
    }

    fn finish_into(self, store: &mut PrefixStore) -> Result<Hashed, FinishError> {
        // In the build's order: the check, then the size.
        self.check
            .finish(self.inner.bytes_seen())
            .map_err(|why| FinishError::Refused {
                path: self.path.clone(),
                why,
            })?;
        let result = self.inner.finish().map_err(FinishError::Core)?;
        if self.is_prefix {
            store.prefixes.insert(&result);
            if !store.has(&result.path) {
                store.known.push(result.path.clone());
            }
        }
        Ok(Hashed {
            path: result.path.clone(),
            size: result.size,
            sha256: result.sha256.to_hex(),
            combined: result
                .combined
                .iter()
                .map(|(meta, d)| (meta.clone(), d.to_hex()))
                .collect(),
        })
    }
}

/// Why a file's hashing could not finish.
#[derive(Debug)]
enum FinishError {
    /// The hasher refused it (the size changed while it was read); the
    /// message names the file.
    Core(ssgen_core::Error),
    /// The build's check refused it: cut short, or a metadata tarball the
    /// daemons would not import.
    Refused {
        path: String,
        why: ssgen_core::Error,
    },
}

impl std::fmt::Display for FinishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Core(e) => e.fmt(f),
            Self::Refused { path, why } => write!(f, "{path}: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "images/debian/12/amd64/default/20260801_0312/incus.tar.xz";
    const ROOT: &str = "images/debian/12/amd64/default/20260801_0312/rootfs.squashfs";

    /// A real metadata tarball (tar + gzip) holding `files`.
    fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *bytes)
                .expect("in memory");
        }
        tar.into_inner()
            .and_then(flate2::write::GzEncoder::finish)
            .expect("in memory")
    }

    const YAML: &[u8] = b"architecture: x86_64\ncreation_date: 1785556320\nproperties:\n  os: debian\n  release: \"12\"\n";

    fn hash_all(store: &mut PrefixStore, job: &HashJob, bytes: &[u8]) -> Hashed {
        let mut h = Hasher::start(Job::from(job), store).expect("prefixes were hashed first");
        for chunk in bytes.chunks(3) {
            h.update(chunk);
        }
        h.finish_into(store).expect("sizes match")
    }

    #[test]
    fn results_round_trip_through_plain_data_into_the_same_documents() {
        let meta = tarball(&[("metadata.yaml", YAML)]);
        let root = b"hsqs and the rest of a squashfs, long enough to hold the 96-byte superblock a squashfs starts with".to_vec();
        let mut b = Builder::new(1_785_556_800.0).expect("whole seconds");
        b.entries.push(Entry {
            head: Some(meta[..8].to_vec()),
            ..Entry::file(META, meta.len() as u64)
        });
        b.entries.push(Entry {
            head: Some(root[..8].to_vec()),
            ..Entry::file(ROOT, root.len() as u64)
        });
        let scan = ssgen_core::scan(&b.entries, &b.config);
        let plan = scan.plan(&b.digests);
        assert_eq!(plan.prefixes.len(), 1);
        assert_eq!(plan.bodies.len(), 1);

        // Hashed in a "worker": only plain data comes back, via JSON.
        let mut store = PrefixStore::new();
        for (job, bytes) in [(&plan.prefixes[0], &meta), (&plan.bodies[0], &root)] {
            let hashed = hash_all(&mut store, job, bytes);
            let text = serde_json::to_string(&hashed).expect("plain data");
            b.record_hashed(serde_json::from_str(&text).expect("round trip"))
                .expect("valid digests");
        }
        assert!(store.has(META));
        assert!(scan.plan(&b.digests).is_empty());

        // The same documents as the core fed directly.
        let mut digests = Digests::default();
        let mut prefixes = Prefixes::default();
        for job in plan.jobs() {
            let mut h = FileHasher::new(job, &prefixes).expect("prefix first");
            h.update(if job.is_prefix { &meta } else { &root });
            let r = h.finish().expect("sizes match");
            prefixes.insert(&r);
            digests.record(&r);
        }
        let direct = ssgen_core::build(&scan, &digests, &b.config, None).expect("complete");
        let out = b.build_output().expect("complete");
        assert_eq!(out.images_json, direct.images_json);
        assert_eq!(out.index_json, direct.index_json);
        let mut both = meta.clone();
        both.extend_from_slice(&root);
        assert!(out.images_json.contains(&Sha256::of(&both).to_hex()));
    }

    #[test]
    fn a_body_before_its_metadata_and_a_short_file_are_refused() {
        let job = Job {
            path: ROOT.into(),
            size: 10,
            is_prefix: false,
            prefixes: vec![META.into()],
        };
        let store = PrefixStore::new();
        assert!(matches!(
            Hasher::start(job.clone(), &store),
            Err(ssgen_core::Error::MissingPrefix { .. })
        ));
        let mut h = Hasher::start(
            Job {
                prefixes: vec![],
                ..job
            },
            &store,
        )
        .expect("no prefix needed");
        h.update(b"short");
        let mut store = store;
        assert!(matches!(
            h.finish_into(&mut store),
            Err(FinishError::Core(ssgen_core::Error::SizeChanged {
                read: 5,
                ..
            }))
        ));
    }

    #[test]
    fn a_file_cut_short_is_refused_and_not_kept() {
        let mut store = PrefixStore::default();
        let cut = b"\xFD7zXZ\0 an xz stream that stops".to_vec();
        let job = Job {
            path: META.into(),
            size: cut.len() as u64,
            is_prefix: true,
            prefixes: vec![],
        };
        let mut h = Hasher::start(job, &store).expect("no prefix needed");
        h.update(&cut);
        let err = h.finish_into(&mut store).expect_err("cut short");
        assert!(matches!(
            err,
            FinishError::Refused {
                why: ssgen_core::Error::CutShort(_),
                ..
            }
        ));
        assert!(err.to_string().starts_with(META), "{err}");
        assert!(
            !store.has(META),
            "a cut file must not feed combined digests"
        );
    }

    /// The build reads every metadata tarball's metadata.yaml on the read
    /// that hashes it, and refuses one the daemons would not import: so
    /// does the page, in the build's words.
    #[test]
    fn a_metadata_tarball_the_daemons_refuse_is_refused_as_the_build_refuses_it() {
        for (bytes, says) in [
            (
                tarball(&[("templates/a.tpl", b"x")]),
                "has no metadata.yaml",
            ),
            (
                tarball(&[("metadata.yaml", b"architecture: [1\n")]),
                "is not valid YAML",
            ),
        ] {
            let mut store = PrefixStore::default();
            let job = Job {
                path: META.into(),
                size: bytes.len() as u64,
                is_prefix: true,
                prefixes: vec![],
            };
            let mut h = Hasher::start(job, &store).expect("no prefix needed");
            for chunk in bytes.chunks(7) {
                h.update(chunk);
            }
            let err = h.finish_into(&mut store).expect_err("refused");
            let build = ssgen_core::check::check(&bytes, true).expect_err("the build refuses it");
            assert_eq!(err.to_string(), format!("{META}: {build}"));
            assert!(err.to_string().contains(says), "{err}");
            assert!(!store.has(META));
        }
        // The same bytes as a body (a unified tarball, say) are not read.
        let bytes = tarball(&[("templates/a.tpl", b"x")]);
        let job = Job {
            path: ROOT.into(),
            size: bytes.len() as u64,
            is_prefix: false,
            prefixes: vec![],
        };
        let mut store = PrefixStore::default();
        let mut h = Hasher::start(job, &store).expect("no prefix needed");
        h.update(&bytes);
        assert!(h.finish_into(&mut store).is_ok());
    }

    #[test]
    fn a_dropped_folder_is_mapped_onto_the_server_root() {
        let paths = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // The root above images/, with its published catalog.
        let view = tree_view(&paths(&[
            "www/images/debian/12/amd64/default/v/incus.tar.xz",
            "www/streams/v1/images.json",
            "www/notes.txt",
        ]))
        .expect("a root");
        assert_eq!(
            view.files,
            [(
                0,
                "images/debian/12/amd64/default/v/incus.tar.xz".to_owned()
            )]
        );
        assert_eq!(view.previous, Some(1));
        // images/ itself.
        let view = tree_view(&paths(&[
            "images/a/b/c/d/v/x",
            "other/streams/v1/images.json",
        ]))
        .expect("images/");
        assert_eq!(view.files, [(0, "images/a/b/c/d/v/x".to_owned())]);
        assert_eq!(view.previous, None);
        let err = tree_view(&paths(&["a/b/images/x", "imagesx/y"])).expect_err("none");
        assert!(err.contains("no images/ folder"), "{err}");
    }

    #[test]
    fn an_index_names_its_catalog_relative_to_itself() {
        let index = ssgen_core::index_json(&["p".to_owned()], "now");
        assert_eq!(
            catalog_in(&index),
            Ok(Some("../../streams/v1/images.json".to_owned()))
        );
        let products = r#"{"format": "products:1.0", "products": {}}"#;
        assert_eq!(catalog_in(products), Ok(None));
        assert!(catalog_in("not json").is_err_and(|e| e.contains("not JSON")));
        let two = r#"{"index": {"a": {"datatype": "image-downloads", "path": "a.json", "products": ["p"]},
            "b": {"datatype": "image-downloads", "path": "b.json", "products": ["q"]}}}"#;
        assert!(catalog_in(two).is_err_and(|e| e.contains("2 image catalogs")));
    }

    /// What the core builds from real bytes: `(path, bytes)` of each file
    /// (side files are passed as contents).
    fn built(files: &[(&str, &[u8])], timestamp: i64) -> ssgen_core::Output {
        let entries: Vec<Entry> = files
            .iter()
            .map(|(path, bytes)| {
                if ssgen_core::needs_contents(path) {
                    Entry::side(*path, bytes.to_vec())
                } else {
                    Entry {
                        head: Some(bytes[..8].to_vec()),
                        ..Entry::file(*path, bytes.len() as u64)
                    }
                }
            })
            .collect();
        let config = Config::new(timestamp);
        let scan = ssgen_core::scan(&entries, &config);
        let mut digests = Digests::default();
        let mut prefixes = Prefixes::default();
        for job in scan.plan(&digests).jobs() {
            let bytes = files
                .iter()
                .find(|(p, _)| *p == job.path)
                .expect("listed")
                .1;
            let mut h = FileHasher::new(job, &prefixes).expect("prefix first");
            h.update(bytes);
            let r = h.finish().expect("sizes match");
            prefixes.insert(&r);
            digests.record(&r);
        }
        ssgen_core::build(&scan, &digests, &config, None).expect("complete")
    }

    const META_BYTES: &[u8] = b"\xFD7zXZ\0 metadata of one version YZ";
    const META_BYTES_2: &[u8] = b"\xFD7zXZ\0 metadata of another version YZ";
    const META_ALPINE: &[u8] = b"\xFD7zXZ\0 metadata of alpine YZ";
    const ROOT_BYTES: &[u8] = b"hsqs and the rest of a squashfs, long enough to hold the 96-byte superblock a squashfs starts with";
    const V1: &str = "images/debian/12/amd64/default/20260801_0312";
    const V2: &str = "images/debian/12/amd64/default/20260802_0312";
    const V3: &str = "images/debian/12/amd64/default/20260803_0312";
    const ALPINE: &str = "images/alpine/3.20/arm64/cloud/20260730_1200";

    #[test]
    fn merging_one_export_into_a_server_gives_what_a_build_of_everything_gives() {
        let (m1, r1) = (
            format!("{V1}/incus.tar.xz"),
            format!("{V1}/rootfs.squashfs"),
        );
        let (m2, r2) = (
            format!("{V2}/incus.tar.xz"),
            format!("{V2}/rootfs.squashfs"),
        );
        let (ma, ra) = (
            format!("{ALPINE}/lxd.tar.xz"),
            format!("{ALPINE}/root.squashfs"),
        );
        let req = "images/alpine/.requirements".to_owned();
        let on_server: Vec<(&str, &[u8])> = vec![
            (&m1, META_BYTES),
            (&r1, ROOT_BYTES),
            (&ma, META_ALPINE),
            (&ra, ROOT_BYTES),
            (&req, br#"{"secureboot": "false"}"#),
        ];
        let server = built(&on_server, 1_785_500_000);
        assert!(server.diagnostics.is_empty(), "{:?}", server.diagnostics);
        assert_eq!(server.images, 2);
        let export: Vec<(&str, &[u8])> = vec![(&m2, META_BYTES_2), (&r2, ROOT_BYTES)];
        let ours = built(&export, 1_785_556_800);
        let everything = built(&[on_server, export].concat(), 1_785_556_800);

        let now = time::rfc2822(1_785_556_800);
        let merged = merge(&server.images_json, &ours.images_json, &now).expect("merges");
        assert_eq!(merged.images_json, everything.images_json);
        assert_eq!(merged.index_json, everything.index_json);
        assert_eq!(merged.added, ["debian:12:amd64:default 20260802_0312"]);
        assert_eq!(merged.products, 2);
        assert!(merged.notes.is_empty(), "{:?}", merged.notes);
        refuse_new_errors(&server.images_json, &merged).expect("breaks nothing");

        // The same export again: nothing added, the server's bytes and time.
        let again = merge(&merged.images_json, &ours.images_json, "later").expect("merges");
        assert_eq!(again.images_json, merged.images_json);
        assert!(again.added.is_empty());

        // The same image under another version name: one fingerprint for
        // two images breaks both, so the merge is refused.
        let (m3, r3) = (
            format!("{V3}/incus.tar.xz"),
            format!("{V3}/rootfs.squashfs"),
        );
        let copy = built(&[(&m3, META_BYTES), (&r3, ROOT_BYTES)], 1_785_556_800);
        let twice = merge(&server.images_json, &copy.images_json, &now).expect("merges");
        let err = refuse_new_errors(&server.images_json, &twice)
            .expect_err("one fingerprint, two images");
        assert!(err.contains("duplicate-fingerprint"), "{err}");

        // Other files under a version the server lists: refused by name.
        let other: Vec<(&str, &[u8])> = vec![(&m1, META_BYTES_2), (&r1, ROOT_BYTES)];
        let clash = built(&other, 1_785_556_800);
        let err = merge(&server.images_json, &clash.images_json, &now).expect_err("clash");
        assert!(
            err.contains("debian:12:amd64:default") && err.contains("20260801_0312"),
            "{err}"
        );
    }

    #[test]
    fn merging_keeps_what_the_server_says_of_its_products_and_refuses_other_files() {
        let (m2, r2) = (
            format!("{V2}/incus.tar.xz"),
            format!("{V2}/rootfs.squashfs"),
        );
        let ours = built(&[(&m2, META_BYTES_2), (&r2, ROOT_BYTES)], 1_785_556_800);
        // A catalog from another tool: keys in its own order, fields ssgen
        // does not write, and the product under other titles.
        let server = r#"{"format": "products:1.0", "content_id": "images", "products": {
            "debian:12:amd64:default": {"versions": {}, "release_title": "Bookworm (ours)",
              "aliases": "debian/12/default,bookworm", "arch": "amd64", "os": "Debian",
              "release": "12", "variant": "default", "x_flag": true, "x_ratio": 0.5}},
            "updated": "Mon, 01 Jan 2024 00:00:00 +0000"}"#;
        let merged = merge(server, &ours.images_json, "now").expect("merges");
        let doc: serde_json::Value = serde_json::from_str(&merged.images_json).expect("JSON");
        let product = &doc["products"]["debian:12:amd64:default"];
        assert_eq!(product["release_title"], "Bookworm (ours)");
        assert_eq!(product["x_flag"], true);
        assert_eq!(product["x_ratio"], 0.5);
        assert!(product["versions"]["20260802_0312"]["items"].is_object());
        assert_eq!(doc["updated"], "now");
        assert_eq!(merged.notes.len(), 1);
        assert!(
            merged.notes[0]
                .message
                .contains("stay as the server publishes")
        );
        // Sorted at every level, as the core writes.
        let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
        let pos = |k: &str| merged.images_json.find(&format!("\"{k}\"")).expect("key");
        assert!(
            pos("content_id") < pos("format") && pos("format") < pos("products"),
            "{keys:?}"
        );

        for (bad, says) in [
            ("[]", "not a simplestreams"),
            (
                "{\"format\": \"index:1.0\"}",
                "not its streams/v1/index.json",
            ),
            ("{\"format\": \"products:1.0\"}", "no \"products\""),
            ("not json", "not JSON"),
        ] {
            let err = merge(bad, &ours.images_json, "now").expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_digests_are_refused() {
        let mut b = Builder::new(0.0).expect("whole seconds");
        let bad = Hashed {
            path: ROOT.into(),
            size: 1,
            sha256: "ABC".into(),
            combined: vec![],
        };
        assert!(b.record_hashed(bad).unwrap_err().contains(ROOT));
        assert!(b.digests.files.is_empty());
    }

    #[test]
    fn lint_sees_what_the_clients_hide() {
        let index = r#"{"format":"index:1.0","index":{"images":{"datatype":"image-downloads","path":"streams/v1/images.json","format":"products:1.0","products":["p"]}}}"#;
        let images = r#"{"content_id":"images","format":"products:1.0","products":{"p":{"arch":"x86-64","versions":{}}}}"#;
        let report = lint_documents(index, images);
        assert!(report.codes().contains(&"hidden-unknown-arch"), "{report}");
    }

    #[test]
    fn byte_counts_must_be_whole() {
        assert_eq!(byte_count(3.0, "x").ok(), Some(3));
        assert!(byte_count(-1.0, "x").is_err());
        assert!(byte_count(1.5, "x").is_err());
        assert!(byte_count(f64::NAN, "x").is_err());
    }
}
