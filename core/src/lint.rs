//! The client-compatibility lint: what LXD and Incus would hide, refuse or
//! mishandle in a catalog, for humans and machines.
//!
//! The lint runs any catalog (ours or a foreign one) through the emulation
//! of both clients in [`crate::client`] and adds the traps the clients do
//! not report at all (spec §6 and the peer survey §(d)1): images hidden and
//! why, type errors that break the whole remote, duplicate fingerprints,
//! alias clashes, requirement traps, paths, digests and deltas.
//!
//! ```
//! let index = r#"{"index":{"i":{"datatype":"image-downloads",
//!   "path":"streams/v1/images.json","products":["p"]}}}"#;
//! let products = r#"{"products":{"p":{"arch":"x86-64","versions":{}}}}"#;
//! let report = ssgen_core::lint::lint(index, &|_| Some(products.to_owned()));
//! assert!(!report.is_clean());
//! assert!(report.codes().contains(&"hidden-unknown-arch"));
//! println!("{report}");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::client::{
    self, Client, INDEX_PATH, Item, ProblemKind, Product, ProductsFile, Remote, View, clean_path,
    location, view_lenient,
};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A client refuses the whole remote, or an image cannot be downloaded.
    Error,
    /// An image or product is hidden from a client, or a trap.
    Warning,
    /// For information (older client releases, other tools).
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// A stable kebab-case id, e.g. `hidden-unknown-arch`.
    pub code: &'static str,
    /// The clients affected.
    pub clients: Vec<Client>,
    /// Where: `file#products["p"].versions["v"].items["i"]` (or a file).
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] {}: {}",
            self.severity.as_str(),
            self.code,
            self.location,
            self.message
        )?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// All findings about a catalog, most serious first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The findings, sorted by severity, then location.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when nothing is hidden, broken or trapped: notes only.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.severity == Severity::Note)
    }

    /// How many findings have `severity`.
    #[must_use]
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// `2 errors, 1 warning, 0 notes`.
    #[must_use]
    pub fn summary(&self) -> String {
        let n = |s, one: &str, many: &str| {
            let c = self.count(s);
            format!("{c} {}", if c == 1 { one } else { many })
        };
        format!(
            "{}, {}, {}",
            n(Severity::Error, "error", "errors"),
            n(Severity::Warning, "warning", "warnings"),
            n(Severity::Note, "note", "notes")
        )
    }

    /// The codes of the findings, in order (handy in tests).
    #[must_use]
    pub fn codes(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.code).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        Ok(())
    }
}

/// Lints a remote given its `index.json` text; `products` returns a
/// products file's text by its path relative to the base URL (see
/// [`client::load_remote`]).
#[must_use]
pub fn lint(index_json: &str, products: &dyn Fn(&str) -> Option<String>) -> Report {
    lint_remote(&Remote::parse(index_json, products))
}

/// Lints a lone products file (e.g. `images.json` without its index), as if
/// an index listed it at `path` with all its products.
#[must_use]
pub fn lint_products(path: &str, text: &str) -> Report {
    let index = client::index_for_products(path, text);
    let wanted = clean_path(path);
    lint(&index, &|p| (p == wanted).then(|| text.to_owned()))
}

/// Lints a decoded remote.
#[must_use]
pub fn lint_remote(remote: &Remote) -> Report {
    let mut l = Linter::default();
    l.problems(remote);
    l.spellings(remote);
    l.index(remote);
    // The host only decides which short aliases an image lists, which no
    // rule looks at.
    let views = Client::ALL.map(|c| view_lenient(remote, c, "x86_64"));
    l.hidden(&views);
    for v in &views {
        l.view(remote, v);
    }
    for file in &remote.files {
        for (id, product) in &file.products {
            l.product(file, id, product);
        }
    }
    l.finish()
}

#[derive(Default)]
struct Linter {
    findings: Vec<Finding>,
}

fn who(clients: &[Client]) -> String {
    let names: Vec<&str> = clients.iter().map(|c| c.name()).collect();
    names.join(" and ")
}

/// Messages of findings found per client say `{who}` where the clients go,
/// filled in once the findings of both clients are merged; `(s)` becomes
/// the verb ending for one client.
fn fill_who(message: &str, clients: &[Client]) -> String {
    if !message.contains("{who}") {
        return message.to_owned();
    }
    let ending = if clients.len() == 1 { "s" } else { "" };
    message
        .replace("{who}", &who(clients))
        .replace("(s)", ending)
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

const BOTH: &[Client] = &Client::ALL;

impl Linter {
    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        clients: &[Client],
        location: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.findings.push(Finding {
            severity,
            code,
            clients: clients.to_vec(),
            location: location.into(),
            message: message.into(),
            help: help.into(),
        });
    }

    /// Sorts, and merges findings that differ only in their clients.
    fn finish(self) -> Report {
        let mut merged: BTreeMap<
            (Severity, String, &'static str, String, String),
            BTreeSet<Client>,
        > = BTreeMap::new();
        for f in self.findings {
            merged
                .entry((f.severity, f.location, f.code, f.message, f.help))
                .or_default()
                .extend(f.clients);
        }
        let findings = merged
            .into_iter()
            .map(|((severity, location, code, message, help), clients)| {
                let clients: Vec<Client> = clients.into_iter().collect();
                Finding {
                    severity,
                    code,
                    message: fill_who(&message, &clients),
                    clients,
                    location,
                    help,
                }
            })
            .collect();
        Report { findings }
    }

    fn problems(&mut self, remote: &Remote) {
        for p in &remote.problems {
            let (code, help) = match p.kind {
                ProblemKind::Syntax => (
                    "remote-invalid-json",
                    "write valid JSON (UTF-8, no byte-order mark, no trailing commas)",
                ),
                ProblemKind::Type => (
                    "remote-type-error",
                    "write the JSON type the clients' Go structs expect: strings for requirement values, \
                     aliases and digests (\"false\", not false), an integer for size, a bool for supported, \
                     an array of strings for the index's products",
                ),
                ProblemKind::Missing => (
                    "products-file-missing",
                    "publish the products file at that path, or fix the index entry's path",
                ),
                ProblemKind::Empty => ("remote-empty-file", "publish the file's content"),
            };
            let location = if p.location.is_empty() {
                p.file.clone()
            } else {
                format!("{}#{}", p.file, p.location)
            };
            let verb = if p.clients.len() == 1 {
                "refuses"
            } else {
                "refuse"
            };
            self.push(
                Severity::Error,
                code,
                &p.clients,
                location,
                format!(
                    "{}; {} {verb} the whole remote (\"Failed parsing products\")",
                    p.message,
                    who(&p.clients)
                ),
                help,
            );
        }
    }

    fn spellings(&mut self, remote: &Remote) {
        for s in &remote.spellings {
            let location = if s.location.is_empty() {
                s.file.clone()
            } else {
                format!("{}#{}", s.file, s.location)
            };
            if s.spellings.len() > 1 {
                let list: Vec<String> = s.spellings.iter().map(|k| quote(k)).collect();
                self.push(
                    Severity::Warning,
                    "duplicate-key",
                    BOTH,
                    location,
                    format!(
                        "key {} is given {} times ({}); Go's decoder matches keys case-insensitively and keeps the last one, other tools may keep another",
                        quote(&s.field),
                        s.spellings.len(),
                        list.join(", ")
                    ),
                    format!("keep exactly one key, spelt {}", quote(&s.field)),
                );
            } else {
                let spelt = s.spellings.first().map_or("", String::as_str);
                self.push(
                    Severity::Note,
                    "key-case",
                    BOTH,
                    location,
                    format!(
                        "key {} is read as {} by LXD and Incus (Go matches keys case-insensitively), but not by other tools",
                        quote(spelt),
                        quote(&s.field)
                    ),
                    format!("spell it {}", quote(&s.field)),
                );
            }
        }
    }

    fn index(&mut self, remote: &Remote) {
        if !remote.index_ok {
            return;
        }
        if remote.index_format != "index:1.0" {
            self.push(
                Severity::Note,
                "index-format",
                BOTH,
                INDEX_PATH,
                format!(
                    "format is {}, not \"index:1.0\"; LXD and Incus ignore it, python-simplestreams refuses the file",
                    quote(&remote.index_format)
                ),
                "add \"format\": \"index:1.0\"",
            );
        }
        if remote.entries.is_empty() {
            self.push(
                Severity::Error,
                "index-no-entries",
                BOTH,
                INDEX_PATH,
                "the index has no entries, so the clients show an empty remote",
                "add an entry with datatype \"image-downloads\", the path of the products file and its product ids",
            );
            return;
        }
        let mut paths: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for e in &remote.entries {
            let loc = format!("{INDEX_PATH}#index[{}]", quote(&e.key));
            if e.datatype != "image-downloads" {
                let (severity, tail) = if e.datatype == "image-ids" {
                    (Severity::Note, "")
                } else {
                    (
                        Severity::Warning,
                        "; a products file listed here is never read",
                    )
                };
                self.push(
                    severity,
                    "index-datatype",
                    BOTH,
                    loc.clone(),
                    format!(
                        "datatype is {}, not \"image-downloads\", so the clients skip this entry{tail}",
                        quote(&e.datatype)
                    ),
                    "set \"datatype\": \"image-downloads\" on entries that list images",
                );
                continue;
            }
            if e.products.is_empty() {
                self.push(
                    Severity::Warning,
                    "index-empty-products",
                    BOTH,
                    loc.clone(),
                    format!(
                        "products is empty, so the clients do not even fetch {}",
                        quote(&e.path)
                    ),
                    "list the product ids of the products file (any non-empty list works for the clients)",
                );
                continue;
            }
            if e.format != "products:1.0" {
                self.push(
                    Severity::Note,
                    "index-format",
                    BOTH,
                    loc.clone(),
                    format!(
                        "format is {}, not \"products:1.0\"; LXD and Incus ignore it, python-simplestreams skips the entry",
                        quote(&e.format)
                    ),
                    "add \"format\": \"products:1.0\"",
                );
            }
            self.path(&format!("{loc}.path"), &e.path, true);
            paths.entry(clean_path(&e.path)).or_default().push(&e.key);
        }
        if paths.is_empty() {
            self.push(
                Severity::Error,
                "index-nothing-loaded",
                BOTH,
                INDEX_PATH,
                "no index entry has datatype \"image-downloads\" and a non-empty products list, so the clients show an empty remote",
                "give the entry of each products file datatype \"image-downloads\" and its product ids",
            );
        }
        let mut basenames: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (path, keys) in &paths {
            if keys.len() > 1 {
                let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
                self.push(
                    Severity::Error,
                    "index-duplicate-path",
                    BOTH,
                    INDEX_PATH,
                    format!(
                        "entries {} all load {}; the clients load it once per entry, so every image appears twice with the same fingerprint and none can be downloaded",
                        list.join(", "),
                        quote(path)
                    ),
                    "keep one index entry per products file",
                );
            }
            let base = path.rsplit('/').next().unwrap_or(path);
            basenames.entry(base).or_default().push(path);
        }
        for (base, list) in basenames {
            if list.len() > 1 {
                let list: Vec<String> = list.iter().map(|k| quote(k)).collect();
                self.push(
                    Severity::Warning,
                    "products-basename-clash",
                    BOTH,
                    INDEX_PATH,
                    format!(
                        "products files {} share the basename {}; the clients cache them by basename, so one overwrites the other in their cache",
                        list.join(", "),
                        quote(base)
                    ),
                    "give each products file a distinct file name",
                );
            }
        }
        for file in &remote.files {
            let listed: BTreeSet<&str> = remote
                .entries
                .iter()
                .filter(|e| e.key == file.index_key)
                .flat_map(|e| e.products.iter().map(String::as_str))
                .collect();
            let actual: BTreeSet<&str> = file.products.keys().map(String::as_str).collect();
            if listed != actual && !listed.contains(client::ANY_PRODUCT) {
                self.push(
                    Severity::Note,
                    "index-products-mismatch",
                    BOTH,
                    format!("{INDEX_PATH}#index[{}].products", quote(&file.index_key)),
                    format!(
                        "the list differs from the products in {} ({} listed, {} present); LXD and Incus do not compare them, other tools do",
                        file.path,
                        listed.len(),
                        actual.len()
                    ),
                    "list exactly the product ids of the products file, sorted",
                );
            }
            if file.format != "products:1.0" || file.content_id.is_empty() {
                self.push(
                    Severity::Note,
                    "products-format",
                    BOTH,
                    file.path.clone(),
                    "format \"products:1.0\" or content_id is missing; LXD and Incus ignore both, python-simplestreams needs them",
                    "add \"format\": \"products:1.0\" and \"content_id\"",
                );
            }
        }
    }

    /// Turns what each client drops silently into findings, merged across
    /// clients.
    fn hidden(&mut self, views: &[View; 2]) {
        // Reasons that differ between the clients stay separate findings.
        type Key = (String, &'static str, String);
        let mut by: BTreeMap<Key, Vec<Client>> = BTreeMap::new();
        for v in views {
            for h in &v.hidden {
                let reason = if h.code == "no-metadata" {
                    String::new()
                } else {
                    h.reason.clone()
                };
                by.entry((h.location(), h.code, reason))
                    .or_default()
                    .push(v.client);
            }
        }
        for ((loc, code, reason), clients) in by {
            let one = clients.len() == 1;
            match code {
                "no-metadata" if one => {
                    let (code, seen_by, missing) = match clients[0] {
                        Client::Lxd => ("incus-only", "Incus", "lxd.tar.xz or lxd_combined.tar.gz"),
                        Client::Incus => ("lxd-only", "LXD", "incus.tar.xz or incus_combined.tar.gz"),
                    };
                    self.push(
                        Severity::Warning,
                        code,
                        &clients,
                        loc,
                        format!(
                            "only {seen_by} sees this version: it has no {missing} item, so {} hides it",
                            who(&clients)
                        ),
                        "publish both metadata ftypes: an lxd.tar.xz and an incus.tar.xz item pointing at the same file, with the same sha256, size and combined_* keys (spec §4.1)",
                    );
                }
                "no-metadata" => self.push(
                    Severity::Warning,
                    code,
                    &clients,
                    loc,
                    "the version has no metadata item (lxd.tar.xz, incus.tar.xz or a unified tarball), so no client shows it",
                    "add lxd.tar.xz and incus.tar.xz items for the metadata tarball",
                ),
                "hidden-unknown-arch" if one => self.push(
                    Severity::Warning,
                    "arch-one-client",
                    &clients,
                    loc,
                    format!(
                        "hidden from {}: {reason}; the other client knows the name",
                        who(&clients)
                    ),
                    "use a name both clients know, Debian style: amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64, loong64 (spec §8)",
                ),
                _ => self.push(
                    Severity::Warning,
                    code,
                    &clients,
                    loc,
                    format!("hidden from {}: {reason}", who(&clients)),
                    hidden_help(code),
                ),
            }
        }
    }

    fn view(&mut self, remote: &Remote, v: &View) {
        let client = [v.client];
        let files: BTreeMap<&str, &str> = v
            .images
            .iter()
            .map(|i| (i.fingerprint.as_str(), i.file.as_str()))
            .collect();
        let file_of = |fp: &str| files.get(fp).copied().unwrap_or_default();
        for d in &v.duplicates {
            let Some(first) = d.images.first() else {
                continue;
            };
            let list: Vec<String> = d
                .images
                .iter()
                .map(|r| {
                    let root = r
                        .root_item
                        .as_deref()
                        .map_or(String::new(), |k| format!(" with {}", quote(k)));
                    format!("{} {}{root}", quote(&r.product), quote(&r.version))
                })
                .collect();
            self.push(
                Severity::Error,
                "duplicate-fingerprint",
                &client,
                location(&first.file, &first.product, Some(&first.version), None),
                format!(
                    "fingerprint {} is given to {} images ({}); {{who}} list(s) them all but cannot download any of them (\"More than one match\")",
                    d.fingerprint,
                    d.images.len(),
                    list.join(", ")
                ),
                "give each (metadata, root) pair its own fingerprint: do not publish the same files under two products or versions, nor two root items of one ftype in a version (spec §5.5)",
            );
        }
        // One finding per pair of images (or products), listing the aliases.
        type Pair<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a str,
            String,
            &'a str,
            bool,
        );
        let mut pairs: BTreeMap<Pair<'_>, BTreeSet<&str>> = BTreeMap::new();
        for s in &v.shadowed {
            let same = s.alias.product == s.winner.product;
            if same && !s.tie {
                // Older versions of a product lose its aliases: normal.
                continue;
            }
            let key = (
                file_of(&s.alias.fingerprint),
                s.alias.product.as_str(),
                same.then_some(s.alias.version.as_str()),
                s.winner.product.as_str(),
                format!("{}, {}", s.alias.image_type, s.alias.architecture),
                if same {
                    s.winner.fingerprint.as_str()
                } else {
                    ""
                },
                s.tie,
            );
            pairs.entry(key).or_default().insert(&s.alias.name);
        }
        for ((file, product, version, winner, kind, winner_fp, tie), names) in pairs {
            let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
            let (noun, verb) = if list.len() == 1 {
                ("alias", "is")
            } else {
                ("aliases", "are")
            };
            if let Some(version) = version {
                self.push(
                    Severity::Warning,
                    "alias-ambiguous",
                    &client,
                    location(file, product, Some(version), None),
                    format!(
                        "two images of this version sort equal (one is {winner_fp}), so {{who}} give(s) {noun} {} ({kind}) to either one at random",
                        list.join(", ")
                    ),
                    "publish one image per root ftype in a version: one metadata item per client ftype (spec §4.4)",
                );
                continue;
            }
            let how = if tie {
                "the images sort equal, so {who} pick(s) one at random".to_owned()
            } else {
                format!(
                    "the product that sorts first by os, release and variant wins ({}), even if this one is newer",
                    quote(winner)
                )
            };
            self.push(
                Severity::Warning,
                "alias-clash",
                &client,
                location(file, product, None, None),
                format!(
                    "{noun} {} ({kind}) {verb} also claimed by product {}: {how}",
                    list.join(", "),
                    quote(winner)
                ),
                "keep each alias unique per (type, architecture) across the whole server (spec §7.2b)",
            );
        }
        for image in &v.images {
            for d in image.deltas.iter().filter(|d| d.wrong_base) {
                self.push(
                    Severity::Error,
                    "vm-delta-incus",
                    &client,
                    location(&image.file, &image.product, Some(&image.version), Some(&d.item)),
                    format!(
                        "Incus takes the base of this disk-kvm.img delta to be the squashfs image {} of version {}; on hosts that have it cached it applies the VM delta to a container root and the download of {} fails",
                        d.base_fingerprint,
                        quote(&d.base_version),
                        image.fingerprint
                    ),
                    "do not publish disk-kvm.img.vcdiff deltas; publish squashfs.vcdiff only (spec §5.4)",
                );
            }
        }
        let has_products = remote.files.iter().any(|f| !f.products.is_empty());
        if v.images.is_empty() && has_products {
            self.push(
                Severity::Warning,
                "no-images",
                &client,
                INDEX_PATH,
                "{who} show(s) no image at all from this remote",
                "see the other findings for why each version is hidden",
            );
        }
    }

    fn product(&mut self, file: &ProductsFile, id: &str, p: &Product) {
        let loc = location(&file.path, id, None, None);
        if Client::ALL
            .iter()
            .any(|c| c.normalise_arch(&p.arch) == Some("loongarch64"))
        {
            self.push(
                Severity::Note,
                "loongarch-old-lxd",
                &[Client::Lxd],
                loc.clone(),
                format!(
                    "arch {} is unknown to LXD 4.0, 5.0.0–5.0.2 and 5.18, which hide the product",
                    quote(&p.arch)
                ),
                "nothing to do unless those LXD releases must see it",
            );
        }
        self.aliases(&loc, p);
        if !p.aliases.is_empty() {
            for (name, value) in [
                ("os", &p.os),
                ("release", &p.release),
                ("variant", &p.variant),
            ] {
                if value.is_empty() {
                    self.push(
                        Severity::Warning,
                        "empty-sort-property",
                        BOTH,
                        loc.clone(),
                        format!(
                            "{name} is empty; the clients' image sort is undefined with empty properties, so which image gets an alias is unpredictable"
                        ),
                        format!("fill in {name}"),
                    );
                }
            }
        }
        self.requirements(&loc, p);
        if !p.support_eol.is_empty() && client::eol_date(&p.support_eol).is_none() {
            self.push(
                Severity::Warning,
                "support-eol-format",
                BOTH,
                format!("{loc}.support_eol"),
                format!(
                    "support_eol {} is not a YYYY-MM-DD date; the clients show the image as expiring at the Unix epoch",
                    quote(&p.support_eol)
                ),
                "write the date as YYYY-MM-DD, e.g. 2028-06-30",
            );
        }
        let shapes: BTreeSet<String> = p
            .versions
            .keys()
            .map(|n| {
                n.chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect()
            })
            .collect();
        if shapes.len() > 1 {
            let list: Vec<String> = shapes.iter().map(|s| quote(s)).collect();
            let newest = p.versions.keys().next_back().map_or("", String::as_str);
            self.push(
                Severity::Warning,
                "mixed-version-format",
                BOTH,
                loc.clone(),
                format!(
                    "version names mix formats ({}); the clients sort them as plain strings and give the aliases to {}, which may not be the newest",
                    list.join(", "),
                    quote(newest)
                ),
                "use one format for every version, e.g. YYYYMMDD_HHMM in UTC (spec §10)",
            );
        }
        if p.versions.is_empty() {
            self.push(
                Severity::Warning,
                "empty-product",
                BOTH,
                loc.clone(),
                "the product has no versions, so the clients show nothing for it",
                "add a version, or remove the product",
            );
        }
        for (vname, version) in &p.versions {
            self.version(file, id, vname, &version.items);
        }
    }

    fn aliases(&mut self, loc: &str, p: &Product) {
        let entries = p.alias_entries();
        if entries.is_empty() {
            self.push(
                Severity::Note,
                "no-aliases",
                BOTH,
                loc.to_owned(),
                "the product has no aliases; its images are reachable by fingerprint only",
                "add aliases such as os/release/variant",
            );
            return;
        }
        let loc = format!("{loc}.aliases");
        if entries.iter().any(|e| e.is_empty()) {
            self.push(
                Severity::Warning,
                "alias-empty-entry",
                BOTH,
                loc.clone(),
                format!(
                    "aliases {} has an empty entry (a leading, trailing or doubled comma); the clients register an alias \"\" and \"/{}\"",
                    quote(&p.aliases),
                    p.arch
                ),
                "remove the stray comma",
            );
        }
        let arch_names: BTreeSet<&str> = [p.arch.as_str()].into_iter().collect();
        for e in entries.iter().filter(|e| !e.is_empty()) {
            let medium = format!("{e}/{}", p.arch);
            let mut why = Vec::new();
            if medium.len() > 64 {
                why.push(format!(
                    "{} is {} bytes with the /{} the clients add, over the 64 a local server accepts",
                    quote(&medium),
                    medium.len(),
                    p.arch
                ));
            }
            if e.chars().any(char::is_whitespace) {
                why.push(
                    "it contains whitespace (entries are split on \",\" without trimming)"
                        .to_owned(),
                );
            }
            let bad: BTreeSet<char> = e.chars().filter(|c| "$?&+\"'*`".contains(*c)).collect();
            if !bad.is_empty() {
                why.push(format!(
                    "it contains {}",
                    bad.iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if e.contains(':') {
                why.push("it contains \":\", which the CLI reads as remote:alias".to_owned());
            }
            let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
            if !alnum(e.chars().next()) || !alnum(e.chars().next_back()) {
                why.push("it does not start and end with a letter or digit".to_owned());
            }
            if !why.is_empty() {
                self.push(
                    Severity::Warning,
                    "alias-invalid",
                    BOTH,
                    loc.clone(),
                    format!(
                        "alias {}: {}; copying the image with its aliases to a local server fails",
                        quote(e),
                        why.join("; ")
                    ),
                    "use short names of letters, digits, '.', '-', '_' and '/', starting and ending with a letter or digit (spec §7.4)",
                );
            }
            let last = e.rsplit('/').next().unwrap_or(e);
            if e.contains('/')
                && (arch_names.contains(last) || crate::arch::normalise(last).is_some())
            {
                self.push(
                    Severity::Warning,
                    "alias-arch-suffix",
                    BOTH,
                    loc.clone(),
                    format!(
                        "alias {} already ends in an architecture; the clients add /{} themselves, giving {}",
                        quote(e),
                        p.arch,
                        quote(&medium)
                    ),
                    "write aliases without the architecture",
                );
            }
        }
    }

    fn requirements(&mut self, loc: &str, p: &Product) {
        let empty = BTreeMap::new();
        let reqs = p.requirements.as_ref().unwrap_or(&empty);
        match &p.lxd_requirements {
            Some(lxd) if lxd.is_empty() && !reqs.is_empty() => self.push(
                Severity::Warning,
                "empty-lxd-requirements",
                &[Client::Lxd],
                format!("{loc}.lxd_requirements"),
                "lxd_requirements is {} next to non-empty requirements; LXD reads lxd_requirements whenever it is present, so it applies none of the requirements",
                "remove lxd_requirements, or copy requirements into it",
            ),
            Some(lxd) if !lxd.is_empty() && reqs.is_empty() => self.push(
                Severity::Warning,
                "lxd-requirements-only",
                &[Client::Incus],
                format!("{loc}.lxd_requirements"),
                "only lxd_requirements is set; Incus reads only requirements, so it applies none of them",
                "write the same object as requirements (and keep lxd_requirements identical)",
            ),
            Some(lxd) if !lxd.is_empty() && lxd != reqs => self.push(
                Severity::Warning,
                "lxd-requirements-differ",
                BOTH,
                format!("{loc}.lxd_requirements"),
                "lxd_requirements differs from requirements: LXD applies one, Incus the other",
                "make them identical, or leave lxd_requirements out",
            ),
            None if !reqs.is_empty() => self.push(
                Severity::Note,
                "requirements-old-lxd",
                &[Client::Lxd],
                format!("{loc}.requirements"),
                "LXD 4.0 and 5.0.0–5.0.2 read only lxd_requirements and ignore these requirements",
                "add an identical lxd_requirements object if those LXD releases must honour them",
            ),
            _ => {}
        }
        for (field, map) in [
            ("requirements", &p.requirements),
            ("lxd_requirements", &p.lxd_requirements),
        ] {
            let Some(map) = map else { continue };
            let here = format!("{loc}.{field}");
            for (key, value) in map {
                let at = client::at_name(&here, key);
                let squashed: String = key
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase();
                if key != "secureboot" && squashed == "secureboot" {
                    self.push(
                        Severity::Warning,
                        "secure_boot-typo",
                        BOTH,
                        at,
                        format!(
                            "{} is not read by any client: the key is secureboot",
                            quote(key)
                        ),
                        format!("rename {} to \"secureboot\"", quote(key)),
                    );
                    continue;
                }
                if !crate::requirements::KNOWN_KEYS.contains(&key.as_str()) {
                    self.push(
                        Severity::Warning,
                        "requirement-unknown-key",
                        BOTH,
                        at,
                        format!(
                            "no client acts on requirement {}; the known keys are {}",
                            quote(key),
                            crate::requirements::KNOWN_KEYS.join(", ")
                        ),
                        "check the spelling, or remove it",
                    );
                    continue;
                }
                let ok = if key == "cgroup" {
                    matches!(value.as_str(), "v1" | "v2")
                } else {
                    matches!(
                        value.to_ascii_lowercase().as_str(),
                        "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off"
                    )
                };
                if !ok {
                    let expect = if key == "cgroup" {
                        "\"v1\" or \"v2\""
                    } else {
                        "\"true\" or \"false\""
                    };
                    self.push(
                        Severity::Warning,
                        "requirement-value",
                        BOTH,
                        at,
                        format!(
                            "requirement {} is {}; the clients expect {expect}",
                            quote(key),
                            quote(value)
                        ),
                        format!("write {expect}"),
                    );
                }
            }
        }
    }

    fn version(
        &mut self,
        file: &ProductsFile,
        id: &str,
        vname: &str,
        items: &BTreeMap<String, Item>,
    ) {
        let vloc = location(&file.path, id, Some(vname), None);
        // LXD 5.18–5.20 and 5.0.3 keep the first compatible metadata item.
        let metas: BTreeSet<(&str, &str)> = items
            .values()
            .filter(|i| {
                matches!(
                    i.ftype.as_str(),
                    "lxd.tar.xz" | "incus.tar.xz" | "lxd_combined.tar.gz" | "incus_combined.tar.gz"
                )
            })
            .map(|i| (i.path.as_str(), i.sha256.as_str()))
            .collect();
        if metas.len() > 1 {
            self.push(
                Severity::Note,
                "lxd-first-meta-only",
                &[Client::Lxd],
                vloc.clone(),
                "the version holds several different metadata items; LXD 5.18–5.20 and 5.0.3 keep only one of them, at random",
                "put images that need different metadata tarballs in different versions",
            );
        }
        // Two metadata items for the same file must agree on fingerprints.
        let split: Vec<(&String, &Item)> = items
            .iter()
            .filter(|(_, i)| {
                matches!(i.ftype.as_str(), "lxd.tar.xz" | "incus.tar.xz") && !i.sha256.is_empty()
            })
            .collect();
        for (n, (ka, a)) in split.iter().enumerate() {
            for (kb, b) in &split[n + 1..] {
                if a.sha256 != b.sha256 {
                    continue;
                }
                for root in client::ROOT_FTYPES {
                    let (x, y) = (a.combined_for(root), b.combined_for(root));
                    if !x.is_empty() && !y.is_empty() && x != y {
                        self.push(
                            Severity::Error,
                            "combined-hash-inconsistent",
                            BOTH,
                            vloc.clone(),
                            format!(
                                "items {} and {} describe the same metadata file (sha256 {}) but give different {} fingerprints ({x} and {y}); at most one is right, and downloads with the other fail",
                                quote(ka),
                                quote(kb),
                                a.sha256,
                                root
                            ),
                            "recompute the combined hash as sha256(metadata bytes ‖ root bytes) and write it on both items",
                        );
                    }
                }
            }
        }
        for (key, item) in items {
            self.item(&location(&file.path, id, Some(vname), Some(key)), item);
        }
    }

    fn item(&mut self, loc: &str, item: &Item) {
        let ftype = item.ftype.as_str();
        let meta = matches!(ftype, "lxd.tar.xz" | "incus.tar.xz");
        let unified = matches!(ftype, "lxd_combined.tar.gz" | "incus_combined.tar.gz");
        let root = client::ROOT_FTYPES.contains(&ftype);
        let delta = client::DELTA_FTYPES.contains(&ftype);
        if !(meta || unified || root || delta) {
            let (severity, help) = match suggest_ftype(ftype) {
                Some(s) => (Severity::Warning, format!("use ftype \"{s}\"")),
                None if looks_like_image(ftype) => (
                    Severity::Warning,
                    "use one of squashfs, disk-kvm.img, root.tar.xz, lxd.tar.xz, incus.tar.xz (spec §4)".to_owned(),
                ),
                None => (Severity::Note, "nothing to do if the file is not meant for the clients".to_owned()),
            };
            self.push(
                severity,
                "unknown-ftype",
                BOTH,
                loc.to_owned(),
                format!(
                    "ftype {} is not one the clients know, so they ignore this item",
                    quote(ftype)
                ),
                help,
            );
            return;
        }
        // The unified item's sha256 is its fingerprint: the view reports it.
        if item.sha256.is_empty() && !unified {
            self.push(
                Severity::Error,
                "missing-sha256",
                BOTH,
                loc.to_owned(),
                "the item has no sha256; the clients check every download against it, so the download fails",
                "write the file's sha256 as 64 lower-case hex characters",
            );
        } else {
            self.digest(loc, "sha256", &item.sha256);
        }
        for (key, value) in item.combined_hashes() {
            self.digest(&client::at_name(loc, key), key, value);
        }
        if item.path.is_empty() {
            if root || delta {
                self.push(
                    Severity::Error,
                    "empty-path",
                    BOTH,
                    loc.to_owned(),
                    "the item has an empty path, so its download URL is the base URL and fails",
                    "write the file's path relative to the server root",
                );
            }
        } else {
            self.path(&format!("{loc}.path"), &item.path, false);
        }
        if item.size < 0 {
            self.push(
                Severity::Error,
                "bad-size",
                BOTH,
                format!("{loc}.size"),
                format!("size is {}", item.size),
                "write the file's exact size in bytes",
            );
        } else if item.size == 0 {
            self.push(
                Severity::Error,
                "bad-size",
                &[Client::Lxd],
                format!("{loc}.size"),
                "size is 0 or missing; current LXD reads at most size bytes, so the download fails (other clients show a wrong size)",
                "write the file's exact size in bytes",
            );
        }
        for key in &item.unknown_keys {
            let lower = key.to_ascii_lowercase();
            if !lower.starts_with("combined") {
                continue;
            }
            let wanted = suggest_combined_key(key);
            let message = match wanted {
                Some(w) => format!(
                    "{} is not a key any client reads; the key is {w}",
                    quote(key)
                ),
                None => format!("{} is not a key any client reads", quote(key)),
            };
            self.push(
                Severity::Warning,
                "combined-key-spelling",
                BOTH,
                client::at_name(loc, key),
                message,
                match wanted {
                    Some("combined_disk-kvm-img_sha256") => {
                        "rename it to combined_disk-kvm-img_sha256 (with hyphens), or no client sees the VM image".to_owned()
                    }
                    Some(w) => format!("rename it to {w}"),
                    None => "use one of combined_squashfs_sha256, combined_disk-kvm-img_sha256, combined_rootxz_sha256".to_owned(),
                },
            );
        }
        if !item.combined_type.is_empty() {
            if !matches!(item.combined_type.as_str(), "container" | "virtual-machine") || !unified {
                self.push(
                    Severity::Note,
                    "combined-type-value",
                    &[Client::Incus],
                    format!("{loc}.combined_type"),
                    format!(
                        "combined_type {} has no effect here (Incus reads \"virtual-machine\" on unified items only)",
                        quote(&item.combined_type)
                    ),
                    "remove it, or set \"virtual-machine\" on a unified VM tarball",
                );
            } else if item.combined_type == "virtual-machine" {
                let (severity, clients, message) = if ftype == "lxd_combined.tar.gz" {
                    (
                        Severity::Warning,
                        &[Client::Lxd][..],
                        "LXD ignores combined_type and lists this unified VM image as a container",
                    )
                } else {
                    (
                        Severity::Note,
                        &[Client::Incus][..],
                        "Incus before 7.1 ignores combined_type and lists this unified VM image as a container",
                    )
                };
                self.push(
                    severity,
                    "unified-vm",
                    clients,
                    format!("{loc}.combined_type"),
                    message,
                    "publish VMs as split images (metadata + disk-kvm.img)",
                );
            }
        }
    }

    fn digest(&mut self, loc: &str, key: &str, value: &str) {
        let hex64 = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
        if hex64 && value.bytes().any(|b| b.is_ascii_uppercase()) {
            self.push(
                Severity::Error,
                "non-lowercase-digest",
                BOTH,
                loc.to_owned(),
                format!("{key} has upper-case hex digits; the clients compare against lower-case hex, so the download fails"),
                "write digests in lower case",
            );
        } else if !hex64 && !value.is_empty() {
            self.push(
                Severity::Error,
                "bad-digest",
                BOTH,
                loc.to_owned(),
                format!(
                    "{key} {} is not 64 hex characters, so the hash check fails",
                    quote(value)
                ),
                "write the sha256 as 64 lower-case hex characters",
            );
        }
    }

    fn path(&mut self, loc: &str, path: &str, products_file: bool) {
        let what = if products_file {
            "products file"
        } else {
            "file"
        };
        if path.contains("://") {
            self.push(
                Severity::Error,
                "bad-path",
                BOTH,
                loc.to_owned(),
                format!(
                    "path {} is an absolute URL; the clients append it to the remote's URL, so the {what} is not found",
                    quote(path)
                ),
                "serve the file under the remote's URL and write its relative path (redirects are followed)",
            );
            return;
        }
        let mut why = Vec::new();
        if path.starts_with('/') {
            why.push("it starts with \"/\" (the clients still join it to the remote's URL, python-simplestreams refuses it)".to_owned());
        }
        if path.split('/').any(|s| s == "..") {
            why.push(
                "it contains \"..\" (python-simplestreams refuses it, the clients resolve it)"
                    .to_owned(),
            );
        }
        let bad: BTreeSet<char> = path
            .chars()
            .filter(|c| !(c.is_ascii_alphanumeric() || "._~/:-".contains(*c)))
            .collect();
        if !bad.is_empty() {
            why.push(format!(
                "it contains {} (Incus and LXD escape such characters differently)",
                bad.iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !why.is_empty() {
            self.push(
                Severity::Warning,
                "bad-path",
                BOTH,
                loc.to_owned(),
                format!("path {}: {}", quote(path), why.join("; ")),
                "write paths relative to the server root, without a leading \"/\" or \"..\", using only [A-Za-z0-9._~/:-] (spec §11.3)",
            );
        }
    }
}

fn hidden_help(code: &str) -> &'static str {
    match code {
        "hidden-unknown-arch" => {
            "use an architecture name from spec §8, Debian style: amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64, loong64"
        }
        "invalid-version-name" => {
            "name versions YYYYMMDD_HHMM (UTC); the first 8 characters must be a valid date (spec §10)"
        }
        "missing-combined-hash" => {
            "write the combined key for each root ftype on the metadata item: sha256(metadata bytes ‖ root bytes) (spec §4.2, §5.1)"
        }
        "meta-empty-path" => "write the metadata file's path",
        "meta-without-root" => {
            "add the root item (ftype squashfs or disk-kvm.img) to the version, or remove the metadata item"
        }
        "vm-delta-incus" => {
            "do not publish disk-kvm.img.vcdiff deltas; publish squashfs.vcdiff only (spec §5.4)"
        }
        "delta-base-missing" => {
            "set delta_base to the name of an older version of the same product, or remove the delta"
        }
        "delta-base-no-hash" => {
            "the base version needs the metadata item and combined hash the delta's client looks for"
        }
        "delta-orphan" => "remove the delta, or add the root item it patches",
        _ => "",
    }
}

/// The ftype meant by a common wrong one (e.g. `root.squashfs`).
fn suggest_ftype(ftype: &str) -> Option<&'static str> {
    let f = ftype.to_ascii_lowercase();
    if f.ends_with(".vcdiff") {
        return None;
    }
    Some(if f.contains("squashfs") || f == "sqfs" {
        "squashfs"
    } else if f.contains("qcow2")
        || f.contains("disk-kvm")
        || f.contains("disk_kvm")
        || f == "disk.img"
    {
        "disk-kvm.img"
    } else if f == "rootfs.tar.xz" || f == "root.tar" {
        "root.tar.xz"
    } else if f.contains("combined") && f.contains("incus") {
        "incus_combined.tar.gz"
    } else if f.contains("combined") && f.contains("lxd") {
        "lxd_combined.tar.gz"
    } else if f.starts_with("incus") && f.contains("tar") {
        "incus.tar.xz"
    } else if (f.starts_with("lxd") || f == "meta.tar.xz" || f == "metadata.tar.xz")
        && f.contains("tar")
    {
        "lxd.tar.xz"
    } else {
        return None;
    })
}

fn looks_like_image(ftype: &str) -> bool {
    ["root", "disk", "img", "tar", "squash", "qcow"]
        .iter()
        .any(|w| ftype.to_ascii_lowercase().contains(w))
}

/// The known `combined_*` key a misspelt one stands for.
fn suggest_combined_key(key: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let k = squash(key);
    [
        "combined_squashfs_sha256",
        "combined_disk-kvm-img_sha256",
        "combined_rootxz_sha256",
        "combined_sha256",
        "combined_disk1-img_sha256",
        "combined_uefi1-img_sha256",
    ]
    .into_iter()
    .find(|known| squash(known) == k)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::client::{ImageType, load_remote, view};

    const SPEC14_INDEX: &str = include_str!("../tests/lint/spec14/index.json");
    const SPEC14_IMAGES: &str = include_str!("../tests/lint/spec14/images.json");
    const IMAGES: &str = "streams/v1/images.json";
    const DEF: &str = "/products/debian:12:amd64:default";
    const CLOUD: &str = "/products/debian:12:amd64:cloud";
    const DEF_V: &str = "/products/debian:12:amd64:default/versions/20260801_0312";
    const CLOUD_V: &str = "/products/debian:12:amd64:cloud/versions/20260801_0345";

    fn run(index: &str, images: &str) -> Report {
        lint(index, &|p| (p == IMAGES).then(|| images.to_owned()))
    }

    fn spec14() -> (Value, Value) {
        (
            serde_json::from_str(SPEC14_INDEX).expect("valid fixture"),
            serde_json::from_str(SPEC14_IMAGES).expect("valid fixture"),
        )
    }

    /// Lints the §14 catalog after `edit` changed its images.json.
    fn with(edit: impl FnOnce(&mut Value)) -> Report {
        let (index, mut images) = spec14();
        edit(&mut images);
        run(&index.to_string(), &images.to_string())
    }

    /// Lints the §14 catalog after `edit` changed its index.json.
    fn with_index(edit: impl FnOnce(&mut Value)) -> Report {
        let (mut index, images) = spec14();
        edit(&mut index);
        run(&index.to_string(), &images.to_string())
    }

    fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
        v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer} is in the fixture"))
    }

    fn obj<'a>(v: &'a mut Value, pointer: &str) -> &'a mut serde_json::Map<String, Value> {
        at(v, pointer).as_object_mut().expect("an object")
    }

    fn find<'a>(r: &'a Report, code: &str) -> &'a Finding {
        r.findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} in:\n{r}"))
    }

    fn lacks(r: &Report, code: &str) {
        assert!(
            r.findings.iter().all(|f| f.code != code),
            "unexpected {code} in:\n{r}"
        );
    }

    const LXD: &[Client] = &[Client::Lxd];
    const INCUS: &[Client] = &[Client::Incus];

    fn hex(seed: &str) -> String {
        crate::digest::Sha256::of(seed.as_bytes()).to_hex()
    }

    /// Adds a copy of the default version under `name`, with new digests.
    fn add_default_version(images: &mut Value, name: &str) {
        let mut v = at(images, DEF_V).clone();
        for key in ["incus.tar.xz", "lxd.tar.xz"] {
            let item = obj(&mut v, &format!("/items/{key}"));
            item.insert("sha256".into(), json!(hex(&format!("{name}-meta"))));
            item.insert(
                "combined_squashfs_sha256".into(),
                json!(hex(&format!("{name}-fp"))),
            );
        }
        obj(&mut v, "/items/root.squashfs")
            .insert("sha256".into(), json!(hex(&format!("{name}-root"))));
        obj(images, &format!("{DEF}/versions")).insert(name.into(), v);
    }

    #[test]
    fn spec14_example_is_clean_and_shows_the_table() {
        let r = run(SPEC14_INDEX, SPEC14_IMAGES);
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.count(Severity::Warning) + r.count(Severity::Error), 0);
        let remote = load_remote(SPEC14_INDEX, &|p| {
            (p == IMAGES).then(|| SPEC14_IMAGES.to_owned())
        })
        .expect("the example loads");
        let fp_c = "1599ea550e68efb99e1474cbab37589466a5e937570ae626fbeff6eafac2447e";
        let fp_v = "c1e55601b1325b88ec0dca387c3671f54c84466918e2ee9ef7cb80c1116a86ec";
        for client in Client::ALL {
            let v = view(&remote, client, "x86_64");
            assert!(v.error.is_none() && v.hidden.is_empty() && v.duplicates.is_empty());
            assert_eq!(v.images.len(), 2, "{client}");
            let c = v
                .images
                .iter()
                .find(|i| i.fingerprint == fp_c)
                .expect("container");
            assert_eq!(c.image_type, ImageType::Container);
            assert_eq!(c.architecture, "x86_64");
            assert_eq!(c.root_ftype, "squashfs");
            assert_eq!(c.version, "20260801_0312");
            assert_eq!(c.size, 2048 + 104_857_600);
            assert_eq!(c.created, "2026-08-01");
            assert_eq!(
                c.meta_path,
                "images/debian/12/amd64/default/20260801_0312/incus.tar.xz"
            );
            let vm = v.images.iter().find(|i| i.fingerprint == fp_v).expect("vm");
            assert_eq!(vm.image_type, ImageType::VirtualMachine);
            assert_eq!(vm.root_ftype, "disk-kvm.img");
            assert_eq!(
                vm.properties
                    .get("requirements.secureboot")
                    .map(String::as_str),
                Some("false")
            );
            assert_eq!(
                vm.root_path.as_deref(),
                Some("images/debian/12/amd64/cloud/20260801_0345/disk.qcow2")
            );
            let mut table: Vec<(String, ImageType, String)> = v
                .aliases
                .iter()
                .map(|a| (a.name.clone(), a.image_type, a.fingerprint.clone()))
                .collect();
            table.sort();
            let mut want = Vec::new();
            for a in [
                "debian/12/default",
                "debian/12",
                "debian/bookworm/default",
                "debian/bookworm",
            ] {
                want.push((a.to_owned(), ImageType::Container, fp_c.to_owned()));
                want.push((format!("{a}/amd64"), ImageType::Container, fp_c.to_owned()));
            }
            for a in ["debian/12/cloud", "debian/bookworm/cloud"] {
                want.push((a.to_owned(), ImageType::VirtualMachine, fp_v.to_owned()));
                want.push((
                    format!("{a}/amd64"),
                    ImageType::VirtualMachine,
                    fp_v.to_owned(),
                ));
            }
            want.sort();
            assert_eq!(table, want, "{client}");
            assert_eq!(c.aliases.len(), 8);
            assert!(v.aliases.iter().all(|a| a.architecture == "x86_64"));
        }
    }

    #[test]
    fn unknown_arch_is_hidden_from_both() {
        let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("x86-64"));
        let f = find(&r, "hidden-unknown-arch");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.clients, BOTH);
        assert_eq!(
            f.location,
            "streams/v1/images.json#products[\"debian:12:amd64:default\"]"
        );
        assert!(!r.is_clean());
    }

    #[test]
    fn arch_known_to_one_client() {
        let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("x86_64_v3"));
        assert_eq!(find(&r, "arch-one-client").clients, LXD);
        lacks(&r, "hidden-unknown-arch");
        let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("amd64v3"));
        assert_eq!(find(&r, "arch-one-client").clients, INCUS);
        // LXD HEAD keeps the first word; Incus does not.
        let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("amd64 (64-bit)"));
        assert_eq!(find(&r, "arch-one-client").clients, INCUS);
    }

    #[test]
    fn loongarch_note() {
        let r = with(|v| *at(v, &format!("{DEF}/arch")) = json!("loong64"));
        let f = find(&r, "loongarch-old-lxd");
        assert_eq!((f.severity, f.clients.as_slice()), (Severity::Note, LXD));
        assert!(r.is_clean(), "{r}");
    }

    #[test]
    fn invalid_version_name() {
        let r = with(|v| {
            let versions = obj(v, &format!("{DEF}/versions"));
            let version = versions.remove("20260801_0312").expect("present");
            versions.insert("2026-08-01".into(), version);
        });
        assert_eq!(find(&r, "invalid-version-name").clients, BOTH);
        let r = with(|v| {
            let versions = obj(v, &format!("{DEF}/versions"));
            let version = versions.remove("20260801_0312").expect("present");
            versions.insert("20260231_0312".into(), version);
        });
        find(&r, "invalid-version-name");
    }

    #[test]
    fn metadata_for_one_client_only() {
        let r = with(|v| {
            obj(v, &format!("{DEF_V}/items")).remove("lxd.tar.xz");
        });
        let f = find(&r, "incus-only");
        assert_eq!(f.clients, LXD);
        assert!(
            f.location.ends_with(".versions[\"20260801_0312\"]"),
            "{}",
            f.location
        );
        let r = with(|v| {
            obj(v, &format!("{DEF_V}/items")).remove("incus.tar.xz");
        });
        assert_eq!(find(&r, "lxd-only").clients, INCUS);
        let r = with(|v| {
            let items = obj(v, &format!("{DEF_V}/items"));
            items.remove("incus.tar.xz");
            items.remove("lxd.tar.xz");
        });
        assert_eq!(find(&r, "no-metadata").clients, BOTH);
    }

    #[test]
    fn missing_combined_hash() {
        let r = with(|v| {
            obj(v, &format!("{DEF_V}/items/lxd.tar.xz")).remove("combined_squashfs_sha256");
        });
        let f = find(&r, "missing-combined-hash");
        assert_eq!(f.clients, LXD);
        assert!(
            f.message.contains("combined_squashfs_sha256"),
            "{}",
            f.message
        );
    }

    #[test]
    fn underscore_disk_kvm_key() {
        let r = with(|v| {
            for key in ["incus.tar.xz", "lxd.tar.xz"] {
                let item = obj(v, &format!("{CLOUD_V}/items/{key}"));
                let fp = item
                    .remove("combined_disk-kvm-img_sha256")
                    .expect("present");
                item.insert("combined_disk_kvm_img_sha256".into(), fp);
            }
        });
        let f = find(&r, "combined-key-spelling");
        assert!(
            f.help.contains("combined_disk-kvm-img_sha256"),
            "{}",
            f.help
        );
        assert_eq!(
            r.codes()
                .iter()
                .filter(|c| **c == "missing-combined-hash")
                .count(),
            2
        );
    }

    #[test]
    fn empty_meta_path_and_lonely_meta() {
        let r = with(|v| *at(v, &format!("{DEF_V}/items/incus.tar.xz/path")) = json!(""));
        assert_eq!(find(&r, "meta-empty-path").clients, INCUS);
        let r = with(|v| {
            obj(v, &format!("{DEF_V}/items")).remove("root.squashfs");
        });
        let lonely: Vec<&[Client]> = r
            .findings
            .iter()
            .filter(|f| f.code == "meta-without-root")
            .map(|f| f.clients.as_slice())
            .collect();
        assert_eq!(lonely, [INCUS, LXD]);
    }

    #[test]
    fn type_errors_break_the_remote() {
        let (index, mut images) = spec14();
        *at(&mut images, &format!("{CLOUD}/requirements/secureboot")) = json!(false);
        let text = images.to_string();
        let r = run(&index.to_string(), &text);
        let f = find(&r, "remote-type-error");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.clients, BOTH);
        assert_eq!(
            f.location,
            "streams/v1/images.json#products[\"debian:12:amd64:cloud\"].requirements.secureboot"
        );
        assert!(
            f.message.starts_with("expected a string, found false"),
            "{}",
            f.message
        );
        let err = load_remote(&index.to_string(), &|_| Some(text.clone())).expect_err("broken");
        assert!(
            err.to_string()
                .contains("requirements.secureboot: expected a string, found false"),
            "{err}"
        );

        for (pointer, value, field) in [
            (
                format!("{DEF_V}/items/root.squashfs/size"),
                json!("104857600"),
                ".size",
            ),
            (
                format!("{DEF_V}/items/root.squashfs/size"),
                json!(1.0),
                ".size",
            ),
            (
                format!("{DEF_V}/items/root.squashfs/size"),
                json!(u64::MAX),
                ".size",
            ),
            (format!("{DEF}/aliases"), json!(["debian/12"]), ".aliases"),
            (format!("{DEF}/supported"), json!("yes"), ".supported"),
            (format!("{DEF}/versions"), json!([]), ".versions"),
        ] {
            let r = with(|v| {
                if let Some(slot) = v.pointer_mut(&pointer) {
                    *slot = value.clone();
                } else {
                    obj(v, DEF).insert("supported".into(), value.clone());
                }
            });
            let f = find(&r, "remote-type-error");
            assert!(f.location.ends_with(field), "{pointer}: {}", f.location);
        }
        let r = with_index(|v| *at(v, "/index/images/products") = json!("debian:12:amd64:default"));
        assert!(
            find(&r, "remote-type-error")
                .location
                .ends_with("index[\"images\"].products")
        );
        let r = with_index(|v| *at(v, "/index/images/products") = json!([1]));
        assert!(
            find(&r, "remote-type-error")
                .location
                .ends_with(".products[0]")
        );
    }

    #[test]
    fn lxd_only_type_error() {
        let (index, mut images) = spec14();
        *at(&mut images, &format!("{CLOUD}/lxd_requirements/secureboot")) = json!(false);
        let text = images.to_string();
        let r = run(&index.to_string(), &text);
        assert_eq!(find(&r, "remote-type-error").clients, LXD);
        let remote =
            load_remote(&index.to_string(), &|_| Some(text.clone())).expect("Incus still reads it");
        assert!(view(&remote, Client::Lxd, "x86_64").error.is_some());
        assert_eq!(view(&remote, Client::Incus, "x86_64").images.len(), 2);
    }

    #[test]
    fn null_and_unknown_keys_are_fine() {
        let r = with(|v| {
            obj(v, DEF).insert("requirements".into(), Value::Null);
            obj(v, DEF).insert("distro".into(), json!({"anything": [1, 2]}));
            obj(v, &format!("{DEF_V}/items/root.squashfs")).insert("md5".into(), Value::Null);
        });
        assert!(r.is_clean(), "{r}");
    }

    #[test]
    fn invalid_json_empty_and_missing_files() {
        let (index, _) = spec14();
        let r = run(&index.to_string(), "{\"products\": {");
        assert_eq!(find(&r, "remote-invalid-json").location, IMAGES);
        let r = run(&format!("\u{feff}{index}"), SPEC14_IMAGES);
        assert_eq!(find(&r, "remote-invalid-json").location, INDEX_PATH);
        let r = run(&index.to_string(), "");
        find(&r, "remote-empty-file");
        let r = lint(&index.to_string(), &|_| None);
        let f = find(&r, "products-file-missing");
        assert_eq!((f.severity, f.location.as_str()), (Severity::Error, IMAGES));
    }

    #[test]
    fn duplicate_fingerprint_across_products() {
        let r = with(|v| {
            let mut copy = at(v, DEF).clone();
            copy["aliases"] = json!("debian/12/other");
            copy["variant"] = json!("other");
            obj(v, "/products").insert("debian:12:amd64:other".into(), copy);
        });
        let f = find(&r, "duplicate-fingerprint");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.clients, BOTH);
        assert!(f.message.contains("1599ea550e68"), "{}", f.message);
        assert!(
            f.message.contains("; LXD and Incus list them all"),
            "{}",
            f.message
        );
    }

    #[test]
    fn alias_clash_goes_to_the_first_product() {
        let r = with(|v| {
            let mut copy = at(v, DEF).clone();
            copy["os"] = json!("Devuan");
            copy["aliases"] = json!("debian/12");
            let item = &mut copy["versions"]["20260801_0312"]["items"];
            for key in ["incus.tar.xz", "lxd.tar.xz"] {
                item[key]["combined_squashfs_sha256"] = json!(hex("devuan"));
            }
            // Newer, yet it loses: Debian sorts before Devuan.
            let version = copy["versions"]["20260801_0312"].clone();
            copy["versions"] = json!({"20270101_0000": version});
            obj(v, "/products").insert("devuan:5:amd64:default".into(), copy);
        });
        let f = find(&r, "alias-clash");
        assert_eq!(f.clients, BOTH);
        assert!(
            f.location.contains("devuan:5:amd64:default"),
            "{}",
            f.location
        );
        assert!(
            f.message.contains("debian:12:amd64:default"),
            "{}",
            f.message
        );
        // Older versions of one product losing aliases is normal.
        let r = with(|v| add_default_version(v, "20260901_0312"));
        lacks(&r, "alias-clash");
        assert!(r.is_clean(), "{r}");
    }

    #[test]
    fn newest_version_wins_aliases() {
        let (index, mut images) = spec14();
        add_default_version(&mut images, "20260901_0312");
        let text = images.to_string();
        let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
        let v = view(&remote, Client::Incus, "amd64");
        let a = v
            .aliases
            .iter()
            .find(|a| a.name == "debian/12")
            .expect("alias");
        assert_eq!(a.version, "20260901_0312");
        assert_eq!(v.shadowed.iter().filter(|s| !s.tie).count(), 8);
    }

    #[test]
    fn alias_ambiguous_on_a_tie() {
        let r = with(|v| {
            let items = obj(v, &format!("{DEF_V}/items"));
            for key in ["incus.tar.xz", "lxd.tar.xz"] {
                let mut second = items[key].clone();
                second["path"] = json!(format!("images/other-{key}"));
                second["sha256"] = json!(hex("other-meta"));
                second["combined_squashfs_sha256"] = json!(hex("other-fp"));
                items.insert(format!("{key}.2"), second);
            }
        });
        assert_eq!(find(&r, "alias-ambiguous").clients, BOTH);
        find(&r, "lxd-first-meta-only");
    }

    #[test]
    fn requirement_traps() {
        let r = with(|v| *at(v, &format!("{CLOUD}/lxd_requirements")) = json!({}));
        let f = find(&r, "empty-lxd-requirements");
        assert_eq!((f.severity, f.clients.as_slice()), (Severity::Warning, LXD));
        let r =
            with(|v| *at(v, &format!("{CLOUD}/lxd_requirements")) = json!({"secureboot": "true"}));
        assert_eq!(find(&r, "lxd-requirements-differ").clients, BOTH);
        let r = with(|v| *at(v, &format!("{CLOUD}/requirements")) = json!({}));
        assert_eq!(find(&r, "lxd-requirements-only").clients, INCUS);
        let r = with(|v| {
            obj(v, CLOUD).remove("lxd_requirements");
        });
        assert_eq!(find(&r, "requirements-old-lxd").severity, Severity::Note);
        assert!(r.is_clean());
        let r = with(|v| {
            *at(v, &format!("{CLOUD}/requirements")) = json!({"secure_boot": "false"});
            *at(v, &format!("{CLOUD}/lxd_requirements")) = json!({"secure_boot": "false"});
        });
        let f = find(&r, "secure_boot-typo");
        assert!(
            f.location.ends_with(".requirements.secure_boot")
                || f.location.ends_with(".lxd_requirements.secure_boot")
        );
        lacks(&r, "requirement-unknown-key");
        let r = with(|v| *at(v, &format!("{DEF}/requirements")) = json!({"gpu": "yes"}));
        find(&r, "requirement-unknown-key");
        let r = with(|v| *at(v, &format!("{DEF}/requirements")) = json!({"cgroup": "1"}));
        find(&r, "requirement-value");
    }

    #[test]
    fn lxd_reads_empty_lxd_requirements() {
        let (index, mut images) = spec14();
        *at(&mut images, &format!("{CLOUD}/lxd_requirements")) = json!({});
        let text = images.to_string();
        let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
        let lxd = view(&remote, Client::Lxd, "x86_64");
        let incus = view(&remote, Client::Incus, "x86_64");
        let vm = |v: &View| {
            v.images
                .iter()
                .find(|i| i.image_type == ImageType::VirtualMachine)
                .cloned()
                .expect("vm")
        };
        assert!(!vm(&lxd).properties.contains_key("requirements.secureboot"));
        assert!(
            vm(&incus)
                .properties
                .contains_key("requirements.secureboot")
        );
        // null is no map: LXD falls back to requirements.
        *at(&mut images, &format!("{CLOUD}/lxd_requirements")) = Value::Null;
        let text = images.to_string();
        let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
        assert!(
            vm(&view(&remote, Client::Lxd, "x86_64"))
                .properties
                .contains_key("requirements.secureboot")
        );
    }

    #[test]
    fn support_eol_format() {
        let r = with(|v| {
            obj(v, DEF).insert("support_eol".into(), json!("2028/06/30"));
        });
        find(&r, "support-eol-format");
        let r = with(|v| {
            obj(v, DEF).insert("support_eol".into(), json!("2028-06-30"));
        });
        lacks(&r, "support-eol-format");
    }

    #[test]
    fn mixed_version_formats() {
        let r = with(|v| add_default_version(v, "202608010400"));
        let f = find(&r, "mixed-version-format");
        assert!(f.message.contains("\"20260801_0312\""), "{}", f.message);
    }

    /// The cloud product with a second version carrying a VM delta; when
    /// `squashfs_in_base`, the base version also has a squashfs root.
    fn vm_delta(squashfs_in_base: bool) -> Report {
        with(|v| {
            let base = at(v, CLOUD_V).clone();
            if squashfs_in_base {
                let items = obj(v, &format!("{CLOUD_V}/items"));
                items.insert(
                    "root.squashfs".into(),
                    json!({"ftype": "squashfs", "path": "images/x/rootfs.squashfs", "sha256": hex("sq"), "size": 5}),
                );
                for key in ["incus.tar.xz", "lxd.tar.xz"] {
                    items[key]["combined_squashfs_sha256"] = json!(hex("base-sq-fp"));
                }
            }
            let mut newer = base;
            for key in ["incus.tar.xz", "lxd.tar.xz"] {
                newer["items"][key]["sha256"] = json!(hex("m2"));
                newer["items"][key]["combined_disk-kvm-img_sha256"] = json!(hex("fp2"));
            }
            newer["items"]["disk.qcow2"]["sha256"] = json!(hex("d2"));
            newer["items"]["delta"] = json!({"ftype": "disk-kvm.img.vcdiff", "path": "images/x/d.vcdiff",
                "sha256": hex("delta"), "size": 10, "delta_base": "20260801_0345"});
            obj(v, &format!("{CLOUD}/versions")).insert("20260802_0345".into(), newer);
        })
    }

    #[test]
    fn vm_deltas_and_incus() {
        let r = vm_delta(false);
        let f = find(&r, "vm-delta-incus");
        assert_eq!(
            (f.severity, f.clients.as_slice()),
            (Severity::Warning, INCUS)
        );
        let r = vm_delta(true);
        let f = find(&r, "vm-delta-incus");
        assert_eq!((f.severity, f.clients.as_slice()), (Severity::Error, INCUS));
        assert!(f.message.contains(&hex("base-sq-fp")), "{}", f.message);
    }

    #[test]
    fn delta_bases() {
        let add = |base: &'static str, ftype: &'static str| {
            with(move |v| {
                obj(v, &format!("{DEF_V}/items")).insert(
                    "delta".into(),
                    json!({"ftype": ftype, "path": "images/d.vcdiff", "sha256": hex("d"), "size": 3, "delta_base": base}),
                );
                if base == "20260701_0000" {
                    let mut old = at(v, DEF_V).clone();
                    for key in ["incus.tar.xz", "lxd.tar.xz"] {
                        obj(&mut old, &format!("/items/{key}")).remove("combined_squashfs_sha256");
                    }
                    obj(v, &format!("{DEF}/versions")).insert(base.into(), old);
                }
            })
        };
        assert_eq!(
            find(
                &add("20200101_0000", "squashfs.vcdiff"),
                "delta-base-missing"
            )
            .clients,
            BOTH
        );
        find(
            &add("20260701_0000", "squashfs.vcdiff"),
            "delta-base-no-hash",
        );
        find(&add("20260801_0312", "disk-kvm.img.vcdiff"), "delta-orphan");
    }

    #[test]
    fn digests() {
        let root = format!("{DEF_V}/items/root.squashfs");
        let r = with(|v| {
            let s = at(v, &format!("{root}/sha256"))
                .as_str()
                .expect("str")
                .to_ascii_uppercase();
            *at(v, &format!("{root}/sha256")) = json!(s);
        });
        assert_eq!(find(&r, "non-lowercase-digest").severity, Severity::Error);
        let r = with(|v| {
            *at(
                v,
                &format!("{DEF_V}/items/lxd.tar.xz/combined_squashfs_sha256"),
            ) = json!("abc")
        });
        assert!(
            find(&r, "bad-digest")
                .location
                .ends_with(".combined_squashfs_sha256")
        );
        let r = with(|v| {
            obj(v, &root).remove("sha256");
        });
        find(&r, "missing-sha256");
    }

    #[test]
    fn paths() {
        let root = format!("{DEF_V}/items/root.squashfs/path");
        let r = with(|v| *at(v, &root) = json!("https://cdn.example/rootfs.squashfs"));
        assert_eq!(find(&r, "bad-path").severity, Severity::Error);
        for bad in [
            "/images/rootfs.squashfs",
            "images/../rootfs.squashfs",
            "images/root fs.squashfs",
        ] {
            let r = with(|v| *at(v, &root) = json!(bad));
            assert_eq!(find(&r, "bad-path").severity, Severity::Warning, "{bad}");
        }
        let r = with(|v| *at(v, &root) = json!(""));
        find(&r, "empty-path");
        let r = with_index(|v| *at(v, "/index/images/path") = json!("/streams/v1/images.json"));
        assert!(find(&r, "bad-path").location.starts_with(INDEX_PATH));
    }

    #[test]
    fn sizes() {
        let size = format!("{DEF_V}/items/root.squashfs/size");
        let r = with(|v| *at(v, &size) = json!(0));
        assert_eq!(find(&r, "bad-size").clients, LXD);
        let r = with(|v| *at(v, &size) = json!(-1));
        assert_eq!(find(&r, "bad-size").clients, BOTH);
    }

    #[test]
    fn alias_rules() {
        let set = |aliases: &'static str| {
            with(move |v| *at(v, &format!("{DEF}/aliases")) = json!(aliases))
        };
        let long = Box::leak(format!("debian/{}", "x".repeat(52)).into_boxed_str());
        for bad in [
            "debian/12, debian/bookworm",
            "debian/12*",
            "images:debian/12",
            "debian/12/",
            long,
        ] {
            let r = set(bad);
            assert!(r.codes().contains(&"alias-invalid"), "{bad}: {r}");
        }
        assert!(
            set(Box::leak(
                format!("debian/{}", "x".repeat(50)).into_boxed_str()
            ))
            .is_clean()
        );
        find(&set("debian/12,"), "alias-empty-entry");
        find(&set("debian/12/amd64"), "alias-arch-suffix");
        assert_eq!(find(&set(""), "no-aliases").severity, Severity::Note);
    }

    #[test]
    fn empty_product() {
        let r = with(|v| *at(v, &format!("{DEF}/versions")) = json!({}));
        find(&r, "empty-product");
        let r = with(|v| *at(v, &format!("{DEF}/versions")) = Value::Null);
        find(&r, "empty-product");
    }

    #[test]
    fn empty_sort_property() {
        let r = with(|v| *at(v, &format!("{DEF}/os")) = json!(""));
        find(&r, "empty-sort-property");
    }

    #[test]
    fn unknown_ftype() {
        let r = with(|v| {
            *at(v, &format!("{DEF_V}/items/root.squashfs/ftype")) = json!("root.squashfs")
        });
        let f = find(&r, "unknown-ftype");
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.help.contains("\"squashfs\""), "{}", f.help);
        find(&r, "meta-without-root");
        let r = with(|v| {
            obj(v, &format!("{DEF_V}/items"))
                .insert("sums".into(), json!({"ftype": "SHA256SUMS", "path": "x/SHA256SUMS", "sha256": hex("s"), "size": 1}));
        });
        assert_eq!(find(&r, "unknown-ftype").severity, Severity::Note);
        assert!(r.is_clean());
    }

    #[test]
    fn inconsistent_combined_hashes() {
        let r = with(|v| {
            *at(
                v,
                &format!("{DEF_V}/items/lxd.tar.xz/combined_squashfs_sha256"),
            ) = json!(hex("wrong"))
        });
        assert_eq!(
            find(&r, "combined-hash-inconsistent").severity,
            Severity::Error
        );
    }

    #[test]
    fn unified_vm() {
        let (index, mut images) = spec14();
        let items = obj(&mut images, &format!("{CLOUD_V}/items"));
        items.clear();
        for ftype in ["incus_combined.tar.gz", "lxd_combined.tar.gz"] {
            items.insert(
                ftype.into(),
                json!({"ftype": ftype, "path": "images/u.tar.gz", "sha256": hex("unified"), "size": 9,
                       "combined_type": "virtual-machine"}),
            );
        }
        let text = images.to_string();
        let r = run(&index.to_string(), &text);
        let lxd = r
            .findings
            .iter()
            .find(|f| f.code == "unified-vm" && f.clients == LXD)
            .expect("lxd");
        assert_eq!(lxd.severity, Severity::Warning);
        let remote = load_remote(&index.to_string(), &|_| Some(text.clone())).expect("loads");
        let kind = |c| {
            view(&remote, c, "x86_64")
                .images
                .iter()
                .find(|i| i.fingerprint == hex("unified"))
                .map(|i| (i.image_type, i.root_ftype.clone()))
        };
        assert_eq!(
            kind(Client::Incus),
            Some((ImageType::VirtualMachine, "tar.gz".to_owned()))
        );
        assert_eq!(
            kind(Client::Lxd),
            Some((ImageType::Container, "tar.gz".to_owned()))
        );
        let r = with(|v| {
            obj(v, &format!("{DEF_V}/items/root.squashfs"))
                .insert("combined_type".into(), json!("vm"));
        });
        find(&r, "combined-type-value");
    }

    #[test]
    fn index_rules() {
        let r = with_index(|v| *at(v, "/index/images/datatype") = json!("image-download"));
        find(&r, "index-datatype");
        find(&r, "index-nothing-loaded");
        let r = with_index(|v| *at(v, "/index/images/products") = json!([]));
        let f = find(&r, "index-empty-products");
        assert_eq!(f.location, "streams/v1/index.json#index[\"images\"]");
        let r = with_index(|v| *at(v, "/index") = json!({}));
        find(&r, "index-no-entries");
        let r = with_index(|v| {
            let entry = at(v, "/index/images").clone();
            obj(v, "/index").insert("again".into(), entry);
        });
        find(&r, "index-duplicate-path");
        find(&r, "duplicate-fingerprint");
        let r = with_index(|v| {
            let mut entry = at(v, "/index/images").clone();
            entry["path"] = json!("other/images.json");
            obj(v, "/index").insert("again".into(), entry);
        });
        find(&r, "products-basename-clash");
        let r = with_index(|v| {
            obj(v, "").remove("format");
            *at(v, "/index/images/products") = json!(["debian:12:amd64:default"]);
        });
        assert_eq!(r.codes(), ["index-format", "index-products-mismatch"]);
        let r = with(|v| {
            obj(v, "").remove("format");
        });
        assert_eq!(r.codes(), ["products-format"]);
    }

    #[test]
    fn key_spellings() {
        let text = SPEC14_IMAGES.replacen("\"arch\": \"amd64\"", "\"Arch\": \"amd64\"", 1);
        let r = run(SPEC14_INDEX, &text);
        let f = find(&r, "key-case");
        assert!(f.message.contains("\"Arch\""), "{}", f.message);
        assert!(r.is_clean(), "{r}");
        // The last spelling wins, as in Go.
        let text = SPEC14_IMAGES.replacen(
            "\"arch\": \"amd64\"",
            "\"arch\": \"amd64\", \"ARCH\": \"x86-64\"",
            1,
        );
        let r = run(SPEC14_INDEX, &text);
        find(&r, "duplicate-key");
        find(&r, "hidden-unknown-arch");
        // The Kelvin sign folds to k in Go.
        let text = SPEC14_IMAGES.replacen("\"sha256\": \"87cb", "\"\u{017F}ha256\": \"87cb", 1);
        let r = run(SPEC14_INDEX, &text);
        lacks(&r, "missing-sha256");
        find(&r, "key-case");
    }

    #[test]
    fn no_images_and_display() {
        let r = with(|v| {
            for p in [DEF, CLOUD] {
                *at(v, &format!("{p}/arch")) = json!("pdp11");
            }
        });
        let f = find(&r, "no-images");
        assert_eq!(f.clients, BOTH);
        assert_eq!(
            f.message,
            "LXD and Incus show no image at all from this remote"
        );
        let text = r.to_string();
        assert!(text.contains("warning[hidden-unknown-arch] streams/v1/images.json#products[\"debian:12:amd64:cloud\"]: hidden from LXD and Incus"), "{text}");
        assert!(
            text.contains("\n  help: use an architecture name"),
            "{text}"
        );
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(json["findings"][0]["severity"], "warning");
        assert_eq!(json["findings"][0]["clients"], json!(["lxd", "incus"]));
        assert!(r.summary().ends_with("0 notes"), "{}", r.summary());
    }

    #[test]
    fn lone_products_file() {
        let r = lint_products("images.json", SPEC14_IMAGES);
        assert!(r.findings.is_empty(), "{r}");
        let r = lint_products("images.json", "{\"products\": {\"p\": {\"arch\": 5}}}");
        find(&r, "remote-type-error");
    }
}
