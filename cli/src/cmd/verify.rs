//! `ssgen verify`: checks that the files a catalog advertises are what it
//! says they are, on disk or on a server, and reports every problem.
//!
//! The core decodes the catalog as the clients do and says what it claims
//! (each file's size and sha256, each pair's fingerprint), which files to
//! read and how what was read compares; this module only stats, requests,
//! downloads and walks. Every file is read once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::ProgressBar;
use ssgen_core::lint::Code;
use ssgen_core::remote::{Claims, FileClaim, Remote};
use ssgen_core::rules::escape_controls;
use ssgen_core::{Config, Diagnostic, Digests, FileHasher, HashJob, Prefixes};

use crate::cache::Cache;
use crate::exit::{self, Invalid};
use crate::{hashing, net, walk};

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
/// Deltas (`.vcdiff`) are checked like any file. With a ROOT folder,
/// --deep also decodes each delta against its base root file and checks
/// that the result is the root file of its version, byte for byte, as a
/// daemon that holds the base would.
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
    /// combined digests, not only its size. For a ROOT folder: also decode
    /// every delta and check that it gives its target.
    #[arg(long)]
    pub deep: bool,

    /// Print the problems as a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One problem, as `--json` writes it.
#[derive(Debug, serde::Serialize)]
struct Problem<'a> {
    path: &'a str,
    kind: &'static str,
    message: &'a str,
}

/// The kind `--json` gives a finding.
fn kind(d: &Diagnostic) -> &'static str {
    match d.code {
        Some(Code::SizeMismatch) => "size",
        Some(Code::Sha256Mismatch) => "sha256",
        Some(Code::CombinedMismatch) => "combined",
        Some(Code::FileMissing) => "missing",
        Some(Code::FileUnreferenced) => "unreferenced",
        Some(Code::DeltaWrong) => "delta",
        _ => "catalog",
    }
}

pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let problems = if args.target.starts_with("https://") || args.target.starts_with("http://") {
        verify_url(&args.target, args.deep)?
    } else {
        verify_root(Path::new(&args.target), args.deep)?
    };
    report(&problems, args.json)?;
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::INVALID)
    })
}

fn report(problems: &[Diagnostic], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<Problem<'_>> = problems
            .iter()
            .map(|d| Problem {
                path: &d.path,
                kind: kind(d),
                message: &d.message,
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list).context("cannot write to stdout")?;
        writeln!(out).context("cannot write to stdout")?;
    } else {
        for p in problems {
            // A remote's names are written inert, as `list` and `lint` do.
            writeln!(
                out,
                "{}: {}",
                escape_controls(&p.path),
                escape_controls(&p.message)
            )
            .context("cannot write to stdout")?;
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

/// Decodes the remote whose index is `index_text`, fetching each products
/// file with `fetch`; the first failure of `fetch` is the error.
fn decode(index_text: &str, fetch: &dyn Fn(&str) -> Result<Option<String>>) -> Result<Remote> {
    let failure = RefCell::new(None);
    let remote = Remote::parse(index_text, &|path| match fetch(path) {
        Ok(text) => text,
        Err(e) => {
            failure.borrow_mut().get_or_insert(e);
            None
        }
    });
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(remote),
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

fn verify_root(root: &Path, deep: bool) -> Result<Vec<Diagnostic>> {
    if !root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root or its https:// URL",
            root.display()
        )));
    }
    let index_text = read_text(&root.join(ssgen_core::INDEX_JSON))?;
    let remote = decode(&index_text, &|rel| {
        let path = root.join(rel);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
        }
    })?;
    let claims = remote.claims();
    let mut problems = claims.problems.clone();

    let mut sizes = BTreeMap::new();
    for path in claims.files.keys() {
        match fs::metadata(root.join(path)) {
            Ok(m) if m.is_file() => {
                sizes.insert(path.clone(), m.len());
            }
            Ok(_) => problems.push(claims.missing(path, "is not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(claims.missing(path, "missing"));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot stat {}", root.join(path).display()));
            }
        }
    }
    let plan = claims.plan(&sizes);
    let mut digests = Digests::default();
    hashing::run(root, &plan, &mut digests, hashing::Check::None)?;
    problems.extend(claims.compare(&digests, &sizes));
    problems.extend(unreferenced(root, &claims)?);
    if deep {
        problems.extend(decode_deltas(root, &remote, &sizes));
    }
    Ok(problems)
}

/// Decodes every delta the catalog names whose files are there, as a
/// daemon holding its base would, and names each that does not give the
/// root file of its version.
fn decode_deltas(root: &Path, remote: &Remote, present: &BTreeMap<String, u64>) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for d in ssgen_core::delta::claimed(remote) {
        if !present.contains_key(&d.path) || !present.contains_key(&d.base) {
            continue;
        }
        let Ok(want) = ssgen_core::Sha256::from_hex(&d.target_sha256) else {
            continue;
        };
        match crate::delta::decodes(root, &d.path, &d.base, d.target_size, want) {
            crate::delta::Verdict::Good => {}
            crate::delta::Verdict::Wrong(why) => problems.push(Diagnostic::coded(
                Code::DeltaWrong,
                &[],
                &d.path,
                format!("does not decode to {}: {why}", d.target),
            )),
            crate::delta::Verdict::Unchecked(why) => {
                eprintln!("note: {}: not decoded: {why}", d.path);
            }
        }
    }
    problems
}

/// The image files under `images/` that no item references, judged by the
/// core against what a build of the tree would leave out.
fn unreferenced(root: &Path, claims: &Claims) -> Result<Vec<Diagnostic>> {
    let listing = walk::list(root, &Cache::default())?.entries();
    let scan = ssgen_core::scan(&listing, &Config::new(0));
    let found = claims.unreferenced(&listing, &scan);
    if let Some(first) = found.others.first() {
        eprintln!(
            "note: {} other file(s) under images/ are not image files and not in the catalog (e.g. {first}); fine for checksums and logs",
            found.others.len()
        );
    }
    if let Some(first) = found.withdrawn.first() {
        eprintln!(
            "note: {} withdrawn file(s) under images/ wait for `ssgen prune` to delete them after the grace period (e.g. {first}); clients may still fetch them meanwhile",
            found.withdrawn.len()
        );
    }
    Ok(found.problems)
}

/// An HTTP client with the clients' trust, patient with large files.
fn agent() -> Result<ureq::Agent> {
    Ok(net::agent_config()?
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(300)))
        .build()
        .into())
}

fn verify_url(url: &str, deep: bool) -> Result<Vec<Diagnostic>> {
    let trimmed = url.trim_end_matches('/');
    let base = trimmed
        .strip_suffix(ssgen_core::INDEX_JSON)
        .unwrap_or(trimmed)
        .trim_end_matches('/')
        .to_owned();
    let agent = agent()?;
    let index_url = format!("{base}/{}", ssgen_core::INDEX_JSON);
    let index_text = net::fetch_catalog(&agent, &index_url)?;
    let remote = decode(&index_text, &|rel| {
        net::fetch_catalog(&agent, &format!("{base}/{rel}")).map(Some)
    })?;
    let claims = remote.claims();
    let mut problems = claims.problems.clone();

    let bar = |len: u64, template: &str| crate::progress::bar(len, template);

    // Sizes first (HEAD, or GET headers when HEAD is refused).
    let heads = bar(
        claims.files.len() as u64,
        "{spinner} checking {pos}/{len} files [{bar:30}] eta {eta}",
    );
    let answers = parallel_heads(&agent, &base, &claims.files, &heads)?;
    let mut sizes = BTreeMap::new();
    for ((path, claim), answer) in claims.files.iter().zip(answers) {
        match answer {
            Answer::Missing(status) => {
                problems.push(claims.missing(path, &format!("the server answered {status}")));
            }
            Answer::Size(size) => {
                sizes.insert(path.clone(), size);
            }
            Answer::Unknown => {
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
        let plan = claims.plan(&sizes);
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
    problems.extend(claims.compare(&digests, &sizes));
    Ok(problems)
}

/// Concurrent HEAD requests: a server with thousands of files answers in
/// seconds instead of minutes. Answers come back in the order of `files`.
fn parallel_heads(
    agent: &ureq::Agent,
    base: &str,
    files: &BTreeMap<String, FileClaim>,
    bar: &ProgressBar,
) -> Result<Vec<Answer>> {
    const WORKERS: usize = 8;
    let paths: Vec<&String> = files.keys().collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<Answer>>>> =
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

/// What a server says of a file before its body.
enum Answer {
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

fn remote_size(agent: &ureq::Agent, url: &str) -> Result<Answer> {
    let resp = agent
        .head(url)
        .call()
        .map_err(|e| crate::net::unreachable(url, &e))?;
    let status = resp.status().as_u16();
    match status {
        200 => {
            if let Some(len) = content_length(&resp) {
                return Ok(Answer::Size(len));
            }
        }
        404 | 410 => return Ok(Answer::Missing(status)),
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
        return Ok(Answer::Missing(status));
    }
    Ok(content_length(&resp).map_or(Answer::Unknown, Answer::Size))
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
