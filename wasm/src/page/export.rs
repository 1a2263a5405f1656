//! The files of one image export dropped on the page: what each is (in a
//! worker, which reads its first bytes and, for a tarball, its
//! `metadata.yaml`), where the core places it, and the documents it makes
//! wherever the page's form files it. Every rule is the core's
//! (`ssgen_core::export`, `ssgen_core::side`, `ssgen_core::requirements`),
//! so an export lands where `ssgen import` puts it.
//!
//! ```js
//! // worker, per file: what it is, read from its first bytes
//! const { head, identified, metadata } = identifyExport(pull);
//! // main thread
//! const exp = new Export([{ name, size, head, identified }, …]);
//! exp.placements();                 // [{name, target, ftype, staged, reason}]
//! const plan = exp.plan();          // hash the staged paths once
//! exp.record(result); …
//! exp.layout(fields);               // {versionDir, files, sideFiles}
//! const builder = exp.builder(fields, timestamp);
//! ```

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use ssgen_core::classify::RootType;
use ssgen_core::export::{self, ExportFile, Identified};
use ssgen_core::metadata::{self, Compression, ImageMetadata, UnifiedKind};
use ssgen_core::side::{METADATA_JSON, ProductFields};
use ssgen_core::vocab::ImageType;
use ssgen_core::{Config, Digests, Entry, Ftype, HEAD_LEN, ProductPath, requirements, rules};
use wasm_bindgen::prelude::*;

use super::{Builder, Hashed, PlanView, from_js, to_js};

/// How many first bytes of a file [`identify_export`] looks at: a plain
/// tarball says `ustar` at byte 257 of its first header.
const IDENTIFY_HEAD: u64 = 512;

/// What a file of an export is, as plain data that crosses `postMessage`
/// (the core's [`Identified`]). Flat rather than a tagged enum: serde's
/// code for those weighs on the page's download.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct IdentifiedView {
    is: Is,
    /// For a root, its ftype.
    #[serde(skip_serializing_if = "Option::is_none")]
    ftype: Option<String>,
    /// For a unified tarball, whether it makes a virtual machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    vm: Option<bool>,
    /// For what is no image file, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Is {
    Root,
    Metadata,
    Unified,
    Tarball,
    #[default]
    Not,
}

impl From<&Identified> for IdentifiedView {
    fn from(identified: &Identified) -> Self {
        let is = |is| IdentifiedView {
            is,
            ..IdentifiedView::default()
        };
        match identified {
            Identified::Root(root) => IdentifiedView {
                ftype: Some(root.ftype().to_owned()),
                ..is(Is::Root)
            },
            Identified::Metadata => is(Is::Metadata),
            Identified::Unified(kind) => IdentifiedView {
                vm: Some(*kind == UnifiedKind::VirtualMachine),
                ..is(Is::Unified)
            },
            Identified::Tarball => is(Is::Tarball),
            Identified::Not(reason) => IdentifiedView {
                reason: Some(reason.clone()),
                ..is(Is::Not)
            },
        }
    }
}

impl TryFrom<IdentifiedView> for Identified {
    type Error = String;

    fn try_from(view: IdentifiedView) -> Result<Self, String> {
        Ok(match view.is {
            Is::Root => {
                let ftype = view.ftype.unwrap_or_default();
                Identified::Root(
                    [RootType::Squashfs, RootType::RootTarXz, RootType::DiskKvm]
                        .into_iter()
                        .find(|r| r.ftype() == ftype)
                        .ok_or_else(|| format!("{ftype:?} is no root ftype"))?,
                )
            }
            Is::Metadata => Identified::Metadata,
            Is::Unified => Identified::Unified(if view.vm == Some(true) {
                UnifiedKind::VirtualMachine
            } else {
                UnifiedKind::Container
            }),
            Is::Tarball => Identified::Tarball,
            Is::Not => Identified::Not(view.reason.unwrap_or_default()),
        })
    }
}

/// What `metadata.yaml` says, and where the page proposes to file the
/// image.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetadataView {
    architecture: String,
    creation_date: i64,
    expiry_date: Option<i64>,
    properties: BTreeMap<String, String>,
    /// `container` or `virtual-machine` for a unified tarball, else null.
    unified: Option<&'static str>,
    compression: &'static str,
    description: Option<String>,
    proposal: Proposal,
}

/// The directory names proposed for an image: the user may edit them.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Proposal {
    os: String,
    release: String,
    arch: String,
    variant: String,
    version: String,
}

/// The names `ssgen import` files the image under ([`export::product_names`],
/// [`export::version_name`] for a product without versions yet); an
/// architecture no client knows is shown as written, for the user to fix.
fn propose(meta: &ImageMetadata) -> Proposal {
    let names = export::product_names(meta);
    Proposal {
        os: names.os.unwrap_or_default(),
        release: names.release.unwrap_or_default(),
        arch: names.arch.unwrap_or(meta.image_arch()).to_owned(),
        variant: names.variant,
        version: export::version_name(meta.creation_date, &[]),
    }
}

fn metadata_view(meta: &ImageMetadata) -> MetadataView {
    MetadataView {
        architecture: meta.architecture.clone(),
        creation_date: meta.creation_date,
        expiry_date: meta.expiry_date,
        properties: meta.properties.clone(),
        unified: meta.unified.map(|u| match u {
            UnifiedKind::Container => ImageType::Container.as_str(),
            UnifiedKind::VirtualMachine => ImageType::VirtualMachine.as_str(),
        }),
        compression: match meta.compression {
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        },
        description: meta.property("description").map(str::to_owned),
        proposal: propose(meta),
    }
}

#[derive(Serialize)]
struct IdentifiedFile {
    /// The first bytes, as [`Builder::add_file`] takes them.
    head: Vec<u8>,
    identified: IdentifiedView,
    /// What `metadata.yaml` says, for a metadata or unified tarball.
    metadata: Option<MetadataView>,
}

/// What one file of an export is ([`export::identify`]), read through
/// `pull()`, which returns the next bytes of the file as a `Uint8Array`
/// (empty at the end), e.g. read with `FileReaderSync` in a worker:
/// `{head, identified, metadata}`. Only a tarball is read past its first
/// bytes, and only until its `metadata.yaml` is known, so a multi-GB
/// unified tarball is not read to its end.
///
/// # Errors
/// For a tarball the clients could not use, as `ssgen import` refuses it:
/// a metadata tarball that is damaged, truncated or whose `metadata.yaml`
/// is invalid, or a root filesystem tarball that is not xz; and when
/// `pull` throws or returns something else.
#[wasm_bindgen(js_name = identifyExport)]
pub fn identify_export(pull: &js_sys::Function) -> Result<JsValue, JsError> {
    let mut reader = JsPull {
        pull,
        buf: Vec::new(),
        pos: 0,
    };
    let mut head = Vec::new();
    (&mut reader)
        .take(IDENTIFY_HEAD)
        .read_to_end(&mut head)
        .map_err(|e| JsError::new(&format!("cannot be read: {e}")))?;
    let (identified, meta) = identify(&head, io::Cursor::new(head.clone()).chain(reader))
        .map_err(|why| JsError::new(&why))?;
    head.truncate(HEAD_LEN);
    to_js(&IdentifiedFile {
        head,
        identified: (&identified).into(),
        metadata: meta.as_ref().map(metadata_view),
    })
}

/// [`export::identify`] of a file starting with `head`, reading the whole
/// file from `file` only when it is a tarball. A tarball that is not an
/// image file is an error (`ssgen import` refuses it); other bytes are
/// left out with a reason.
fn identify(head: &[u8], file: impl Read) -> Result<(Identified, Option<ImageMetadata>), String> {
    let first = export::identify(head, None);
    if first != Identified::Tarball {
        return Ok((first, None));
    }
    let read = metadata::read_from(file);
    match export::identify(head, Some(&read)) {
        Identified::Not(why) => Err(why),
        identified => Ok((identified, read.ok())),
    }
}

/// One file of an export, as the page passes it to [`Export::new`].
#[derive(Clone, Debug, Deserialize)]
struct ExportFileIn {
    name: String,
    size: u64,
    head: Vec<u8>,
    identified: IdentifiedView,
}

/// One file placed in the version directory.
#[derive(Clone, Debug)]
struct Placed {
    ftype: Ftype,
    size: u64,
    head: Vec<u8>,
}

/// Where a file goes, or why it is left out, as the page shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlacementView {
    name: String,
    /// Its name in the version directory; null when left out.
    target: Option<&'static str>,
    /// The ftype it is published under.
    ftype: Option<&'static str>,
    /// Where it is hashed (see [`Export::plan`]).
    staged: Option<String>,
    /// Its path under the version directory the form gives
    /// ([`Export::layout`]).
    path: Option<String>,
    /// Why it is left out.
    reason: Option<String>,
}

/// The fields of the page's form.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Fields {
    os: String,
    release: String,
    arch: String,
    variant: String,
    version: String,
    os_title: String,
    release_title: String,
    aliases: Vec<String>,
    requirements: BTreeMap<String, String>,
}

impl Fields {
    fn product(&self) -> ProductPath {
        ProductPath::new(&self.os, &self.release, &self.arch, &self.variant)
    }

    /// The product and version, once every name can be published.
    fn place(&self) -> Result<(ProductPath, &str), String> {
        for (name, value) in [
            ("os", &self.os),
            ("release", &self.release),
            ("arch", &self.arch),
            ("variant", &self.variant),
            ("version", &self.version),
        ] {
            if let Some(why) = field_problem(name, value) {
                return Err(format!("{name} {value:?}: {why}"));
            }
        }
        Ok((self.product(), &self.version))
    }

    /// The side files that give the product these titles, aliases and
    /// requirements in a build: `(path, text)`, written by the inverse of
    /// what a build reads them with.
    fn side_files(&self, product: &ProductPath) -> Vec<(String, String)> {
        let fields = ProductFields {
            os: Some(self.os_title.clone()).filter(|s| !s.is_empty()),
            release_title: Some(self.release_title.clone()).filter(|s| !s.is_empty()),
            aliases: self.aliases.clone(),
            other: BTreeMap::new(),
        };
        let dir = product.dir();
        let mut out = Vec::new();
        if fields != ProductFields::default() {
            out.push((format!("{dir}/{METADATA_JSON}"), fields.to_text()));
        }
        if !self.requirements.is_empty() {
            out.push((
                format!("{dir}/{}", requirements::FILE_NAME),
                requirements::to_text(&self.requirements),
            ));
        }
        out
    }
}

/// Why `value` cannot be the `name` field (`os`, `release`, `arch`,
/// `variant` or `version`) of the page's form, as a build would refuse or
/// skip it: `null` when it can.
#[wasm_bindgen(js_name = fieldProblem)]
#[must_use]
pub fn field_problem(name: &str, value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("fill it in".to_owned());
    }
    if !rules::is_dir_name(value) {
        return Some(
            "only A-Z a-z 0-9 . _ ~ : - (and no dot first): it becomes a directory name in a URL"
                .to_owned(),
        );
    }
    (name == "version" && !rules::is_version_name(value)).then(|| {
        "start it with a valid date, YYYYMMDD (e.g. the image's creation date): the clients hide a version whose name does not".to_owned()
    })
}

/// The version name `ssgen import` gives an image created at
/// `creation_date` (Unix seconds) in the product the form names, beside the
/// versions the server's products file lists for it, if given (read as
/// the merge reads it).
///
/// # Errors
/// When `creation_date` is not whole seconds or the fields are malformed.
#[wasm_bindgen(js_name = proposeVersion)]
pub fn propose_version(
    creation_date: f64,
    fields: &JsValue,
    server_images_json: Option<String>,
) -> Result<String, JsError> {
    let seconds = super::whole_seconds(creation_date).map_err(|e| JsError::new(&e))?;
    let fields: Fields = from_js(fields, "fields")?;
    let id = fields.product().id();
    let existing: Vec<String> = server_images_json
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|doc| {
            doc.get("products")?
                .get(&id)?
                .get("versions")?
                .as_object()
                .map(|v| v.keys().cloned().collect())
        })
        .unwrap_or_default();
    let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
    Ok(export::version_name(seconds, &existing))
}

/// The files of one export: placed by the core, hashed once under a
/// staging directory (their digests do not depend on where they go), then
/// laid out where the form says, as often as it changes.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Export {
    placements: Vec<export::Placement>,
    /// The placed files, by index in `placements`.
    placed: BTreeMap<usize, Placed>,
    results: Vec<Hashed>,
}

/// Where the files are hashed: a layout the core plans the pairs of.
fn staging() -> (ProductPath, &'static str) {
    (
        ProductPath::new("staging", "staging", "amd64", "default"),
        "20000101_0000",
    )
}

fn path_of(product: &ProductPath, version: &str, ftype: Ftype) -> String {
    export::file_path(product, version, ftype).unwrap_or_default()
}

#[wasm_bindgen]
impl Export {
    /// Places the files of an export (`[{name, size, head, identified}]`,
    /// `head` and `identified` from [`identify_export`]) as `ssgen import`
    /// does ([`export::place`]).
    ///
    /// # Errors
    /// When the input is malformed.
    #[wasm_bindgen(constructor)]
    pub fn new(files: &JsValue) -> Result<Export, JsError> {
        let files: Vec<ExportFileIn> = from_js(files, "export files")?;
        Export::from_files(files).map_err(|e| JsError::new(&e))
    }

    /// Where each file goes, in the order given: `[{name, target, ftype,
    /// staged, reason}]`; `target` (its name in the version directory) is
    /// null, with a `reason`, for a file left out.
    ///
    /// # Errors
    /// Only if the result cannot be passed to JavaScript.
    pub fn placements(&self) -> Result<JsValue, JsError> {
        let (product, version) = staging();
        to_js(&self.views(&product, version, true))
    }

    /// The hash plan of the placed files, under their `staged` paths:
    /// `{prefixes, bodies, totalBytes}`.
    ///
    /// # Errors
    /// Only if the plan cannot be passed to JavaScript.
    pub fn plan(&self) -> Result<JsValue, JsError> {
        let (product, version) = staging();
        let entries = self.entries(&product, version);
        let scan = ssgen_core::scan(&entries, &Config::new(0));
        to_js(&PlanView::of(&scan.plan(&Digests::default())))
    }

    /// Keeps a worker's result for a job of [`Export::plan`].
    ///
    /// # Errors
    /// When the result is malformed.
    pub fn record(&mut self, result: &JsValue) -> Result<(), JsError> {
        let hashed: Hashed = from_js(result, "hash result")?;
        hashed.digests().map_err(|e| JsError::new(&e))?;
        self.results.push(hashed);
        Ok(())
    }

    /// Where the files go for the form's `fields` (`{os, release, arch,
    /// variant, version, osTitle, releaseTitle, aliases, requirements}`):
    /// `{versionDir, files: [{name, target, ftype, path, reason}],
    /// sideFiles: [{path, name, text}]}`.
    ///
    /// # Errors
    /// When a field cannot be published ([`field_problem`]).
    pub fn layout(&self, fields: &JsValue) -> Result<JsValue, JsError> {
        let fields: Fields = from_js(fields, "fields")?;
        let view = self.layout_view(&fields).map_err(|e| JsError::new(&e))?;
        to_js(&view)
    }

    /// A [`Builder`] listing the files where `fields` put them, with the
    /// side files and every digest recorded, to scan and build.
    ///
    /// # Errors
    /// When a field cannot be published, or `timestamp` is not whole
    /// seconds.
    pub fn builder(&self, fields: &JsValue, timestamp: f64) -> Result<Builder, JsError> {
        let fields: Fields = from_js(fields, "fields")?;
        let mut builder = Builder::new(timestamp)?;
        self.fill(&mut builder, &fields)
            .map_err(|e| JsError::new(&e))?;
        Ok(builder)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SideFileView {
    path: String,
    name: String,
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayoutView {
    version_dir: String,
    files: Vec<PlacementView>,
    side_files: Vec<SideFileView>,
}

impl Export {
    fn from_files(files: Vec<ExportFileIn>) -> Result<Export, String> {
        let mut described = Vec::with_capacity(files.len());
        for f in &files {
            described.push(ExportFile {
                name: f.name.clone(),
                size: f.size,
                identified: Identified::try_from(f.identified.clone())
                    .map_err(|e| format!("{}: {e}", f.name))?,
            });
        }
        let placements = export::place(&described);
        let placed = placements
            .iter()
            .enumerate()
            .zip(files)
            .filter_map(|((i, p), f)| {
                p.target.map(|ftype| {
                    (
                        i,
                        Placed {
                            ftype,
                            size: f.size,
                            head: f.head,
                        },
                    )
                })
            })
            .collect();
        Ok(Export {
            placements,
            placed,
            results: Vec::new(),
        })
    }

    fn views(&self, product: &ProductPath, version: &str, staged: bool) -> Vec<PlacementView> {
        self.placements
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let path = self
                    .placed
                    .get(&i)
                    .map(|f| path_of(product, version, f.ftype));
                PlacementView {
                    name: p.name.clone(),
                    target: p.target.and_then(Ftype::file_name),
                    ftype: p.target.map(Ftype::as_str),
                    staged: if staged { path.clone() } else { None },
                    path: if staged { None } else { path },
                    reason: p.reason.clone(),
                }
            })
            .collect()
    }

    fn entries(&self, product: &ProductPath, version: &str) -> Vec<Entry> {
        self.placed
            .values()
            .map(|f| Entry {
                head: Some(f.head.iter().copied().take(HEAD_LEN).collect()),
                ..Entry::file(path_of(product, version, f.ftype), f.size)
            })
            .collect()
    }

    fn layout_view(&self, fields: &Fields) -> Result<LayoutView, String> {
        let (product, version) = fields.place()?;
        Ok(LayoutView {
            version_dir: product.version_dir(version),
            files: self.views(&product, version, false),
            side_files: fields
                .side_files(&product)
                .into_iter()
                .map(|(path, text)| SideFileView {
                    name: path.rsplit('/').next().unwrap_or(&path).to_owned(),
                    path,
                    text,
                })
                .collect(),
        })
    }

    fn fill(&self, builder: &mut Builder, fields: &Fields) -> Result<(), String> {
        let (product, version) = fields.place()?;
        let (staging, staged_version) = staging();
        let moved: BTreeMap<String, String> = self
            .placed
            .values()
            .map(|f| {
                (
                    path_of(&staging, staged_version, f.ftype),
                    path_of(&product, version, f.ftype),
                )
            })
            .collect();
        let to = |path: &str| moved.get(path).cloned().unwrap_or_else(|| path.to_owned());
        builder.entries.extend(self.entries(&product, version));
        for (path, text) in fields.side_files(&product) {
            builder.entries.push(Entry::side(path, text.into_bytes()));
        }
        for r in &self.results {
            builder.record_hashed(Hashed {
                path: to(&r.path),
                size: r.size,
                sha256: r.sha256.clone(),
                combined: r
                    .combined
                    .iter()
                    .map(|(meta, digest)| (to(meta), digest.clone()))
                    .collect(),
            })?;
        }
        Ok(())
    }
}

/// A [`Read`] over a JavaScript function returning chunks.
struct JsPull<'a> {
    pull: &'a js_sys::Function,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for JsPull<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            let value = self.pull.call0(&JsValue::NULL).map_err(|e| {
                io::Error::other(
                    e.as_string()
                        .or_else(|| {
                            e.dyn_ref::<js_sys::Error>()
                                .map(|e| String::from(e.message()))
                        })
                        .unwrap_or_else(|| "the reader failed".to_owned()),
                )
            })?;
            let chunk = value
                .dyn_into::<js_sys::Uint8Array>()
                .map_err(|_| io::Error::other("the reader did not return a Uint8Array"))?;
            self.buf = chunk.to_vec();
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, head: &[u8], identified: Identified) -> ExportFileIn {
        ExportFileIn {
            name: name.into(),
            size,
            head: head.to_vec(),
            identified: (&identified).into(),
        }
    }

    fn fields(version: &str) -> Fields {
        Fields {
            os: "Debian".into(),
            release: "bookworm".into(),
            arch: "amd64".into(),
            variant: "default".into(),
            version: version.into(),
            ..Fields::default()
        }
    }

    #[test]
    fn identified_files_survive_plain_data() {
        for identified in [
            Identified::Root(RootType::Squashfs),
            Identified::Root(RootType::RootTarXz),
            Identified::Root(RootType::DiskKvm),
            Identified::Metadata,
            Identified::Unified(UnifiedKind::VirtualMachine),
            Identified::Unified(UnifiedKind::Container),
            Identified::Tarball,
            Identified::Not("text".into()),
        ] {
            let view = IdentifiedView::from(&identified);
            let text = serde_json::to_string(&view).expect("plain data");
            let back: IdentifiedView = serde_json::from_str(&text).expect("round trip");
            assert_eq!(Identified::try_from(back), Ok(identified));
        }
        let bad = IdentifiedView {
            is: Is::Root,
            ftype: Some("lxd.tar.xz".into()),
            ..IdentifiedView::default()
        };
        assert!(Identified::try_from(bad).is_err());
    }

    #[test]
    fn exports_are_placed_and_laid_out_by_the_core() {
        let xz = b"\xFD7zXZ\0\0\x04";
        let exp = Export::from_files(vec![
            file("meta-0f3c.tar.xz", 900, xz, Identified::Metadata),
            file(
                "0f3c.tar.xz",
                9000,
                xz,
                Identified::Root(RootType::RootTarXz),
            ),
            file("notes.txt", 5, b"hello", Identified::Not("no image".into())),
        ])
        .expect("valid");
        let (staging, staged_version) = staging();
        let views = exp.views(&staging, staged_version, true);
        assert_eq!(
            views.iter().map(|v| v.target).collect::<Vec<_>>(),
            [Some("incus.tar.xz"), Some("root.tar.xz"), None]
        );
        assert_eq!(views[2].reason.as_deref(), Some("no image"));

        let mut f = fields("20260801_0352");
        f.requirements.insert("nesting".into(), "true".into());
        f.aliases = vec!["debian/stable".into()];
        let layout = exp.layout_view(&f).expect("valid fields");
        let dir = "images/Debian/bookworm/amd64/default";
        assert_eq!(layout.version_dir, format!("{dir}/20260801_0352"));
        assert_eq!(
            layout.files[1].path.as_deref(),
            Some(format!("{dir}/20260801_0352/root.tar.xz").as_str())
        );
        let side: Vec<(&str, &str)> = layout
            .side_files
            .iter()
            .map(|s| (s.path.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(
            side,
            [
                (
                    format!("{dir}/metadata.json").as_str(),
                    "{\n  \"aliases\": [\n    \"debian/stable\"\n  ]\n}\n"
                ),
                (
                    format!("{dir}/.requirements").as_str(),
                    "{\n  \"nesting\": \"true\"\n}\n"
                )
            ]
        );
        // What the side files say is what a build reads from them.
        let (read, _) = ProductFields::parse("m", side[0].1.as_bytes()).expect("valid");
        assert_eq!(read.aliases, f.aliases);
        let (req, _) = requirements::parse("r", side[1].1.as_bytes()).expect("valid");
        assert_eq!(req.set, f.requirements);

        let err = exp.layout_view(&fields("latest")).err().unwrap_or_default();
        assert!(err.contains("YYYYMMDD"), "{err}");
        let mut spaced = fields("20260801_0352");
        spaced.os = "Deb ian".into();
        let err = exp.layout_view(&spaced).err().unwrap_or_default();
        assert!(err.starts_with("os \"Deb ian\""), "{err}");
    }

    #[test]
    fn metadata_proposes_what_import_files_it_under() {
        let yaml = "architecture: x86_64\ncreation_date: 1785556320\nproperties:\n  os: Debian\n  release: bookworm\n  description: Debian bookworm\n";
        let meta = metadata::parse_yaml(yaml.as_bytes()).expect("valid yaml");
        let view = metadata_view(&meta);
        assert_eq!(
            view.proposal,
            Proposal {
                os: "Debian".into(),
                release: "bookworm".into(),
                arch: "amd64".into(),
                variant: "default".into(),
                version: "20260801_0352".into(),
            }
        );
        assert_eq!(view.description.as_deref(), Some("Debian bookworm"));
    }

    #[test]
    fn only_tarballs_are_read_and_a_bad_one_is_refused() {
        assert_eq!(
            identify(b"hsqs\0\0\0\0 and the rest", FailingRead),
            Ok((Identified::Root(RootType::Squashfs), None))
        );
        assert!(matches!(
            identify(b"hello, world", FailingRead),
            Ok((Identified::Not(_), None))
        ));
        let cut = b"\xFD7zXZ\0\0\x04 an xz stream that stops";
        let err = identify(cut, &cut[..]).expect_err("cut short");
        assert!(
            err.contains("truncated") || err.contains("corrupt"),
            "{err}"
        );
    }

    /// A reader that must not be read.
    struct FailingRead;

    impl Read for FailingRead {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("only tarballs are read past their head");
        }
    }
}
