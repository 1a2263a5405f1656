//! `ssgen verify`: checks that the files a catalog advertises are what it
//! says they are, on disk or on a server, and reports every problem.
//!
//! It trusts nothing but the catalog: `index.json` names the products
//! files, each item names a path, a size and a sha256, and each metadata
//! item names the combined digests of its pairs (spec §4.4, §5). Every file
//! is read once; the combined digests come from the core's hashing state
//! machine, which forks the metadata file's state into the root's bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::ProgressBar;
use ssgen_core::{Digests, FileHasher, HashJob, HashPlan, Prefixes};

use crate::exit::{self, Invalid};
use crate::{hashing, net};

/// Check every file a catalog advertises: size, sha256 and the combined
/// digests (the image fingerprints).
///
/// With a ROOT folder, every file referenced by ROOT/streams/v1/index.json
/// and its products files is read once and its size, sha256 and combined
/// digests are recomputed; image files under ROOT/images that no item
/// references are reported too (other files, such as SHA256SUMS or logs,
/// are only noted; hidden files and metadata.json are side files).
///
/// With an https:// URL (the one given to `lxc remote add`), the index and
/// the catalog are fetched and every file is checked by a HEAD request
/// (its size); --deep downloads every file and checks all digests.
///
/// Every problem is reported (one line each on stdout), not just the first.
/// Exit status: 0 all good, 1 problems found or the catalog is invalid,
/// 2 the files or the server could not be read. For a server with a private
/// CA, point SSL_CERT_FILE at the CA's PEM file.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen verify /var/www/html
  ssgen verify --json /var/www/html > problems.json
  ssgen verify https://images.example.com
  ssgen verify --deep https://images.example.com")]
pub struct VerifyArgs {
    /// The server root, or its https:// URL.
    #[arg(default_value = ".", value_name = "ROOT|URL")]
    pub target: String,

    /// For a URL: download every file and check its sha256 and the
    /// combined digests, not only its size.
    #[arg(long)]
    pub deep: bool,

    /// Print the problems as a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One file the catalog references, with what it claims.
#[derive(Debug, Default)]
struct FileClaim {
    size: Option<u64>,
    sha256: Option<String>,
    /// Who references it (`product version item`), for messages.
    refs: Vec<String>,
}

/// A combined digest the catalog claims for (metadata, root).
#[derive(Debug)]
struct CombinedClaim {
    meta: String,
    root: String,
    key: String,
    expected: String,
    label: String,
}

#[derive(Debug, Default)]
struct Catalog {
    files: BTreeMap<String, FileClaim>,
    combined: Vec<CombinedClaim>,
    /// Problems in the catalog itself (types, paths).
    problems: Vec<Problem>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Problem {
    path: String,
    kind: &'static str,
    message: String,
}

impl Problem {
    fn new(path: impl Into<String>, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }
}

/// Root ftypes and the combined key on the metadata item for each (§4.2).
const ROOT_KEYS: &[(&str, &[&str])] = &[
    ("squashfs", &["combined_squashfs_sha256"]),
    (
        "root.tar.xz",
        &["combined_rootxz_sha256", "combined_sha256"],
    ),
    ("disk-kvm.img", &["combined_disk-kvm-img_sha256"]),
    ("disk1.img", &["combined_disk1-img_sha256"]),
    ("uefi1.img", &["combined_uefi1-img_sha256"]),
];

pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let problems = if args.target.starts_with("https://") || args.target.starts_with("http://") {
        verify_url(&args.target, args.deep)?
    } else {
        if args.deep {
            eprintln!(
                "note: --deep only matters for a URL; a local verify always checks every digest"
            );
        }
        verify_root(Path::new(&args.target))?
    };
    report(&problems, args.json)?;
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::INVALID)
    })
}

fn report(problems: &[Problem], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, problems).context("cannot write to stdout")?;
        writeln!(out).context("cannot write to stdout")?;
    } else {
        for p in problems {
            writeln!(out, "{}: {}", p.path, p.message).context("cannot write to stdout")?;
        }
    }
    if problems.is_empty() {
        eprintln!("verify: every file matches the catalog");
    } else {
        eprintln!(
            "verify: {} problem(s); fix the files, or run `ssgen build` if the files are right and the catalog is stale",
            problems.len()
        );
    }
    Ok(())
}

/// A relative path that stays under the root.
fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Parses `index.json`: the products files it names.
fn products_paths(index_name: &str, text: &str) -> Result<Vec<String>> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Invalid(format!(
            "{index_name}: is not valid JSON ({e}); run `ssgen build` to rewrite it"
        ))
    })?;
    let Some(index) = doc.get("index").and_then(|i| i.as_object()) else {
        bail!(Invalid(format!(
            "{index_name}: has no \"index\" object; this is not a simplestreams index (run `ssgen build`)"
        )));
    };
    let mut out = BTreeSet::new();
    for (key, entry) in index {
        if entry.get("datatype").and_then(|d| d.as_str()) != Some("image-downloads") {
            continue;
        }
        match entry.get("path").and_then(|p| p.as_str()) {
            Some(p) if safe_path(p) => {
                out.insert(p.to_owned());
            }
            _ => bail!(Invalid(format!(
                "{index_name}: entry {key:?} has no valid relative \"path\"; run `ssgen build`"
            ))),
        }
    }
    if out.is_empty() {
        bail!(Invalid(format!(
            "{index_name}: lists no image-downloads products file; clients would see no image"
        )));
    }
    Ok(out.into_iter().collect())
}

/// Adds what a products file claims to `catalog`.
fn parse_products(name: &str, text: &str, catalog: &mut Catalog) -> Result<()> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Invalid(format!(
            "{name}: is not valid JSON ({e}); run `ssgen build` to rewrite it"
        ))
    })?;
    let Some(products) = doc.get("products").and_then(|p| p.as_object()) else {
        bail!(Invalid(format!(
            "{name}: has no \"products\" object; run `ssgen build` to rewrite it"
        )));
    };
    for (pid, product) in products {
        let Some(versions) = product.get("versions").and_then(|v| v.as_object()) else {
            catalog.problems.push(Problem::new(
                name,
                "catalog",
                format!("product {pid}: \"versions\" is not an object"),
            ));
            continue;
        };
        for (vname, version) in versions {
            let Some(items) = version.get("items").and_then(|i| i.as_object()) else {
                catalog.problems.push(Problem::new(
                    name,
                    "catalog",
                    format!("{pid} {vname}: \"items\" is not an object"),
                ));
                continue;
            };
            parse_version(name, pid, vname, items, catalog);
        }
    }
    Ok(())
}

fn parse_version(
    name: &str,
    pid: &str,
    vname: &str,
    items: &serde_json::Map<String, serde_json::Value>,
    catalog: &mut Catalog,
) {
    let mut paths: BTreeMap<&str, (&str, &serde_json::Value)> = BTreeMap::new();
    for (key, item) in items {
        let label = format!("{pid} {vname} {key}");
        let Some(path) = item.get("path").and_then(|p| p.as_str()) else {
            catalog.problems.push(Problem::new(
                name,
                "catalog",
                format!("{label}: has no string \"path\""),
            ));
            continue;
        };
        if !safe_path(path) {
            catalog.problems.push(Problem::new(
                name,
                "catalog",
                format!("{label}: path {path:?} is not a relative path under the server root"),
            ));
            continue;
        }
        let size = match item.get("size") {
            Some(v) => match v.as_u64() {
                Some(s) => Some(s),
                None => {
                    catalog.problems.push(Problem::new(
                        name,
                        "catalog",
                        format!("{label}: \"size\" is {v}, not a number of bytes"),
                    ));
                    None
                }
            },
            None => None,
        };
        let sha256 = match item.get("sha256") {
            Some(serde_json::Value::String(s)) if ssgen_core::Sha256::from_hex(s).is_ok() => {
                Some(s.clone())
            }
            Some(v) => {
                catalog.problems.push(Problem::new(
                    name,
                    "catalog",
                    format!("{label}: \"sha256\" is {v}, not 64 lower-case hex digits"),
                ));
                None
            }
            None => {
                catalog.problems.push(Problem::new(
                    name,
                    "catalog",
                    format!("{label}: has no \"sha256\"; clients cannot download it"),
                ));
                None
            }
        };
        let claim = catalog.files.entry(path.to_owned()).or_default();
        for (old, new, what) in [
            (
                claim.size.map(|s| s.to_string()),
                size.map(|s| s.to_string()),
                "size",
            ),
            (claim.sha256.clone(), sha256.clone(), "sha256"),
        ] {
            if let (Some(old), Some(new)) = (&old, &new)
                && old != new
            {
                catalog.problems.push(Problem::new(
                    path,
                    "catalog",
                    format!(
                        "items disagree on its {what} ({old} and {new}, the latter in {label})"
                    ),
                ));
            }
        }
        claim.size = claim.size.or(size);
        claim.sha256 = claim.sha256.clone().or(sha256);
        claim.refs.push(label);
        if let Some(ftype) = item.get("ftype").and_then(|f| f.as_str()) {
            paths.insert(key, (ftype, item));
        }
    }
    // Combined digests: each metadata item against each root item (§4.4).
    for (mkey, (ftype, meta)) in &paths {
        if *ftype != "lxd.tar.xz" && *ftype != "incus.tar.xz" {
            continue;
        }
        let Some(meta_path) = meta.get("path").and_then(|p| p.as_str()) else {
            continue;
        };
        for (rkey, (rtype, root)) in &paths {
            let Some((_, keys)) = ROOT_KEYS.iter().find(|(t, _)| t == rtype) else {
                continue;
            };
            let Some(root_path) = root.get("path").and_then(|p| p.as_str()) else {
                continue;
            };
            for key in *keys {
                match meta.get(*key) {
                    None => {}
                    Some(serde_json::Value::String(expected)) => {
                        // lxd.tar.xz and incus.tar.xz items often share one
                        // file: one claim, both labels.
                        if let Some(same) = catalog.combined.iter_mut().find(|c| {
                            c.meta == meta_path
                                && c.root == root_path
                                && c.key == *key
                                && c.expected == *expected
                        }) {
                            same.label.push_str(&format!(", {mkey}+{rkey}"));
                            continue;
                        }
                        catalog.combined.push(CombinedClaim {
                            meta: meta_path.to_owned(),
                            root: root_path.to_owned(),
                            key: (*key).to_owned(),
                            expected: expected.clone(),
                            label: format!("{pid} {vname} {mkey}+{rkey}"),
                        });
                    }
                    Some(v) => catalog.problems.push(Problem::new(
                        name,
                        "catalog",
                        format!("{pid} {vname} {mkey}: {key:?} is {v}, not a string; it breaks the whole remote"),
                    )),
                }
            }
        }
    }
}

impl Catalog {
    /// The hash plan: metadata files first, each root forking the metadata
    /// files it pairs with. `sizes` gives each readable file's real size.
    fn plan(&self, sizes: &BTreeMap<String, u64>) -> HashPlan {
        let metas: BTreeSet<&str> = self
            .combined
            .iter()
            .filter(|c| sizes.contains_key(&c.root))
            .map(|c| c.meta.as_str())
            .filter(|m| sizes.contains_key(*m))
            .collect();
        let mut pairs: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for c in &self.combined {
            if metas.contains(c.meta.as_str()) && sizes.contains_key(&c.root) {
                pairs.entry(&c.root).or_default().insert(c.meta.clone());
            }
        }
        let mut plan = HashPlan::default();
        for (path, size) in sizes {
            let job = HashJob {
                path: path.clone(),
                size: *size,
                is_prefix: metas.contains(path.as_str()),
                prefixes: pairs
                    .get(path.as_str())
                    .map(|m| m.iter().cloned().collect())
                    .unwrap_or_default(),
            };
            if job.is_prefix {
                plan.prefixes.push(job);
            } else {
                plan.bodies.push(job);
            }
        }
        plan
    }

    /// Compares what was computed with what the catalog claims.
    fn compare(&self, digests: &Digests, sizes: &BTreeMap<String, u64>, out: &mut Vec<Problem>) {
        for (path, claim) in &self.files {
            let Some(&size) = sizes.get(path) else {
                continue;
            };
            if let Some(claimed) = claim.size
                && claimed != size
            {
                out.push(Problem::new(
                    path,
                    "size",
                    format!("is {size} bytes, the catalog says {claimed}"),
                ));
            }
            if let (Some(claimed), Some(actual)) = (&claim.sha256, digests.files.get(path)) {
                let actual = actual.to_hex();
                if *claimed != actual {
                    out.push(Problem::new(
                        path,
                        "sha256",
                        format!("sha256 is {actual}, the catalog says {claimed}"),
                    ));
                }
            }
        }
        for c in &self.combined {
            let Some(actual) = digests.combined.get(&(c.meta.clone(), c.root.clone())) else {
                continue;
            };
            let actual = actual.to_hex();
            if actual != c.expected {
                let root_name = c.root.rsplit('/').next().unwrap_or(&c.root);
                out.push(Problem::new(
                    format!("{} + {root_name}", c.meta),
                    "combined",
                    format!(
                        "{} is {actual}, the catalog says {} ({}); clients will refuse the download",
                        c.key, c.expected, c.label
                    ),
                ));
            }
        }
    }
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(Invalid(format!(
                "{}: missing; run `ssgen build` first (or give the server root)",
                path.display()
            )))
        } else {
            anyhow!(e).context(format!("cannot read {}", path.display()))
        }
    })
}

fn verify_root(root: &Path) -> Result<Vec<Problem>> {
    if !root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root or its https:// URL",
            root.display()
        )));
    }
    let index_path = root.join(ssgen_core::INDEX_JSON);
    let index_text = read_text(&index_path)?;
    let mut catalog = Catalog::default();
    for rel in products_paths(&index_path.display().to_string(), &index_text)? {
        let path = root.join(&rel);
        parse_products(
            &path.display().to_string(),
            &read_text(&path)?,
            &mut catalog,
        )?;
    }
    let mut problems = std::mem::take(&mut catalog.problems);

    let mut sizes = BTreeMap::new();
    for (path, claim) in &catalog.files {
        match fs::metadata(root.join(path)) {
            Ok(m) if m.is_file() => {
                sizes.insert(path.clone(), m.len());
            }
            Ok(_) => problems.push(Problem::new(path, "missing", "is not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(Problem::new(
                path,
                "missing",
                format!("missing (referenced by {})", claim.refs.join(", ")),
            )),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot stat {}", root.join(path).display()));
            }
        }
    }
    let plan = catalog.plan(&sizes);
    let mut digests = Digests::default();
    hashing::run(root, &plan, &mut digests, hashing::Check::None)?;
    catalog.compare(&digests, &sizes, &mut problems);

    let referenced: BTreeSet<&str> = catalog.files.keys().map(String::as_str).collect();
    let images = root.join("images");
    if images.is_dir() {
        let mut others = Vec::new();
        unreferenced(&images, "images", &referenced, &mut problems, &mut others)?;
        if let Some(first) = others.first() {
            eprintln!(
                "note: {} other file(s) under images/ are not image files and not in the catalog (e.g. {first}); fine for checksums and logs",
                others.len()
            );
        }
    }
    Ok(problems)
}

/// Files under `images/` that no item references. Hidden entries (staging
/// folders, `.requirements`) and `metadata.json` side files are not images;
/// files whose names are no image file's go to `others`.
fn unreferenced(
    dir: &Path,
    rel: &str,
    referenced: &BTreeSet<&str>,
    out: &mut Vec<Problem>,
    others: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = format!("{rel}/{name}");
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?;
        if kind.is_dir() {
            unreferenced(&entry.path(), &path, referenced, out, others)?;
        } else if name != "metadata.json" && !referenced.contains(path.as_str()) {
            // Checksums, logs and signatures beside the images (lxc-ci
            // trees have them) are no client's business: noted, not failed.
            if ssgen_core::classify::by_name(&name) == ssgen_core::classify::Kind::Other {
                others.push(path);
            } else {
                out.push(Problem::new(
                    path,
                    "unreferenced",
                    "is not referenced by the catalog (run `ssgen build` to publish it, or remove it)",
                ));
            }
        }
    }
    Ok(())
}

/// An HTTP client with the clients' trust, patient with large files.
fn agent() -> Result<ureq::Agent> {
    Ok(net::agent_config()?
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(300)))
        .build()
        .into())
}

fn verify_url(url: &str, deep: bool) -> Result<Vec<Problem>> {
    let trimmed = url.trim_end_matches('/');
    let base = trimmed
        .strip_suffix(ssgen_core::INDEX_JSON)
        .unwrap_or(trimmed)
        .trim_end_matches('/')
        .to_owned();
    let agent = agent()?;
    let index_url = format!("{base}/{}", ssgen_core::INDEX_JSON);
    let index_text = net::fetch_catalog(&agent, &index_url)?;
    let mut catalog = Catalog::default();
    for rel in products_paths(&index_url, &index_text)? {
        let products_url = format!("{base}/{rel}");
        let text = net::fetch_catalog(&agent, &products_url)?;
        parse_products(&products_url, &text, &mut catalog)?;
    }
    let mut problems = std::mem::take(&mut catalog.problems);

    let bar = |len: u64, template: &str| crate::progress::bar(len, template);

    // Sizes first (HEAD, or GET headers when HEAD is refused).
    let heads = bar(
        catalog.files.len() as u64,
        "{spinner} checking {pos}/{len} files [{bar:30}] eta {eta}",
    );
    let answers = parallel_heads(&agent, &base, &catalog.files, &heads)?;
    let mut sizes = BTreeMap::new();
    for ((path, claim), answer) in catalog.files.iter().zip(answers) {
        match answer {
            Remote::Missing(status) => problems.push(Problem::new(
                path,
                "missing",
                format!(
                    "the server answered {status} (referenced by {})",
                    claim.refs.join(", ")
                ),
            )),
            Remote::Size(size) => {
                sizes.insert(path.clone(), size);
            }
            Remote::Unknown => {
                if let Some(s) = claim.size {
                    // Without Content-Length only a download can tell.
                    sizes.insert(path.clone(), s);
                }
            }
        }
    }
    heads.finish_and_clear();

    let mut digests = Digests::default();
    if deep {
        let plan = catalog.plan(&sizes);
        let total = bar(
            plan.total_bytes(),
            "{spinner} downloading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        );
        let mut prefixes = Prefixes::default();
        for job in plan.jobs() {
            let file_url = format!("{base}/{}", job.path);
            match download_hash(&agent, &file_url, job, &prefixes, &total)? {
                Ok(result) => {
                    prefixes.insert(&result);
                    digests.record(&result);
                }
                Err(read) => {
                    sizes.insert(job.path.clone(), read);
                }
            }
        }
        total.finish_and_clear();
    }
    catalog.compare(&digests, &sizes, &mut problems);
    Ok(problems)
}

/// Concurrent HEAD requests: a server with thousands of files answers in
/// seconds instead of minutes. Answers come back in the order of `files`.
fn parallel_heads(
    agent: &ureq::Agent,
    base: &str,
    files: &BTreeMap<String, FileClaim>,
    bar: &ProgressBar,
) -> Result<Vec<Remote>> {
    const WORKERS: usize = 8;
    let paths: Vec<&String> = files.keys().collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<Remote>>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(paths.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let answer = remote_size(agent, &format!("{base}/{path}"));
                    let failed = answer.is_err();
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(answer);
                    }
                    bar.inc(1);
                    if failed {
                        // The server is gone: stop asking.
                        next.store(paths.len(), std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(paths.len());
    for (slot, path) in slots.into_iter().zip(paths) {
        let answer = slot
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or_else(|| {
                Err(anyhow!(
                    "{base}/{path}: not checked, the server stopped answering"
                ))
            });
        out.push(answer?);
    }
    Ok(out)
}

enum Remote {
    Size(u64),
    Missing(u16),
    Unknown,
}

fn content_length(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    resp.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn remote_size(agent: &ureq::Agent, url: &str) -> Result<Remote> {
    let resp = agent
        .head(url)
        .call()
        .map_err(|e| crate::net::unreachable(url, &e))?;
    let status = resp.status().as_u16();
    match status {
        200 => {
            if let Some(len) = content_length(&resp) {
                return Ok(Remote::Size(len));
            }
        }
        404 | 410 => return Ok(Remote::Missing(status)),
        _ => {}
    }
    // HEAD refused or without a length: the GET's headers tell; the body
    // is not read.
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| crate::net::unreachable(url, &e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Ok(Remote::Missing(status));
    }
    Ok(content_length(&resp).map_or(Remote::Unknown, Remote::Size))
}

/// Downloads and hashes one file. The inner `Err` is the number of bytes
/// actually served when it differs from the expected size.
fn download_hash(
    agent: &ureq::Agent,
    url: &str,
    job: &HashJob,
    prefixes: &Prefixes,
    bar: &ProgressBar,
) -> Result<std::result::Result<ssgen_core::FileResult, u64>> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| crate::net::unreachable(url, &e))?;
    if resp.status() != 200 {
        bail!(
            "{url}: the server answered {} during the download",
            resp.status()
        );
    }
    let mut hasher = FileHasher::new(job, prefixes)?;
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!("{url}: the download failed ({e})")),
        };
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    let read = hasher.bytes_seen();
    Ok(hasher.finish().map_err(|_| read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_path("images/a/b"));
        assert!(!safe_path("/etc/passwd"));
        assert!(!safe_path("images/../../x"));
        assert!(!safe_path("images//x"));
        assert!(!safe_path(""));
    }

    #[test]
    fn combined_claims_pair_metadata_with_every_root() {
        let text = r#"{"products":{"p":{"versions":{"v":{"items":{
            "incus.tar.xz":{"ftype":"incus.tar.xz","path":"images/m","size":1,"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","combined_squashfs_sha256":"x","combined_disk-kvm-img_sha256":"y"},
            "lxd.tar.xz":{"ftype":"lxd.tar.xz","path":"images/m","size":1,"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","combined_squashfs_sha256":"x"},
            "root":{"ftype":"squashfs","path":"images/r","size":"big"}}}}}}}"#;
        let mut c = Catalog::default();
        parse_products("images.json", text, &mut c).expect("valid JSON");
        assert_eq!(c.files.len(), 2);
        // disk-kvm.img has no root in this version: only squashfs pairs.
        // lxd.tar.xz and incus.tar.xz share the file and the claim.
        assert_eq!(c.combined.len(), 1, "{:?}", c.combined);
        assert_eq!(c.combined[0].root, "images/r");
        assert!(c.combined[0].label.contains("lxd.tar.xz+root"));
        // The root's string size and missing sha256 are catalog problems.
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    }
}
