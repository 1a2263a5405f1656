//! `ssgen push`: publish a tree to a target (today the edge handler of
//! `edge/`): send what the target does not hold yet (compared by sha256),
//! withdraw what `ssgen prune` and `ssgen remove` withdrew, check that
//! everything arrived as sent, and only then publish.
//!
//! The steps are functions over [`Target`], what push needs of a place it
//! publishes to, so another kind of target fits beside the edge:
//!
//! 1. [`local_files`]: hash the tree as `ssgen build` does; the files the
//!    catalog needs, and the ones `.withdrawn` markers withdraw.
//! 2. [`Target::list`]: what the target holds.
//! 3. [`plan`]: what to upload, which combined fingerprints the target
//!    must add, what to remove.
//! 4. [`carry_out`]: each upload and removal, its answer checked.
//! 5. [`Target::list`] again and [`not_as_sent`]: every file there as
//!    sent, every removal done; otherwise nothing is published.
//! 6. [`Target::publish`], told which files it must publish.
//!
//! Resumable by construction: each file is stored whole or not at all, and
//! a second run skips whatever arrived.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::ProgressBar;
use ssgen_core::classify::{self, Kind};
use ssgen_core::serve::{api, upload as rules};
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{Digests, Level, Sha256};

use crate::cache::Cache;
use crate::exit::Invalid;
use crate::{hashing, net, walk};

/// Upload ROOT/images to an ssgen edge handler or an S3 bucket, and
/// publish its catalog.
///
/// Hashes the tree (cached like `ssgen build`), asks the edge which files
/// it holds, uploads only the missing ones (each streamed, with its
/// sha256; the edge computes the combined fingerprints itself and checks
/// them against ours), removes from the edge what `ssgen prune` or `ssgen
/// remove` withdrew, lists the edge again to check that every file arrived
/// as sent, then POSTs /publish so the edge rebuilds images.json and swaps
/// it in. Run it again after an interruption: what arrived is skipped.
///
/// With --to s3://BUCKET[/PREFIX] it publishes to S3-compatible storage
/// (AWS S3, R2, Garage, MinIO, Ceph) the same way: only what the bucket
/// lacks, image files before images.json before index.json, resumable,
/// and concurrent pushes keep each other's images. Credentials come from
/// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE with
/// ~/.aws/credentials, never from a flag.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  SSGEN_TOKEN=... ssgen push /var/www/html --to https://images.example.com
  AWS_PROFILE=r2 ssgen push /var/www/html --to s3://images/lxd --endpoint https://ACCOUNT.r2.cloudflarestorage.com --region auto
  ssgen push --dry-run --delete . --to s3://my-images")]
pub struct PushArgs {
    /// The server root (holding images/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// The edge handler's URL, e.g. https://images.example.com, or a bucket:
    /// s3://BUCKET[/PREFIX].
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// The upload token (the Worker's UPLOAD_TOKEN secret). Default: the
    /// SSGEN_TOKEN environment variable, which keeps it out of `ps`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Send the upload token over plain http:// to a host other than this
    /// machine (127.0.0.1, ::1, localhost). Anyone on the way can read the
    /// token and publish with it: only for a network you trust.
    #[arg(long)]
    pub allow_http: bool,

    /// Upload only; leave the published catalog as it is. The files are
    /// downloadable by their paths all the same: the edge serves every
    /// file it holds.
    #[arg(long)]
    pub no_publish: bool,

    /// Also remove from the edge what is not in the tree at all (after
    /// `ssgen prune` deleted withdrawn files, say). Withdrawn versions are
    /// removed with or without it. Removed files leave the catalog at the
    /// publish and stay downloadable for the edge's grace period.
    #[arg(long)]
    pub delete: bool,

    /// Files larger than this many MiB go up in parts of this size
    /// (Cloudflare caps a request body at 100 MB on the Free and Pro plans;
    /// R2 wants parts of at least 5 MiB).
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(5..=4096))]
    pub part_size: u64,

    /// Fail on any warning (a version, product or file left out, or
    /// something a client would mishandle) before anything is uploaded, as
    /// `ssgen build --strict` does.
    #[arg(long)]
    pub strict: bool,

    /// The catalog's `updated` time as Unix seconds (default:
    /// SOURCE_DATE_EPOCH when set, else the edge's clock). An unchanged tree
    /// keeps its old time either way.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub timestamp: Option<i64>,

    /// S3: the store's API endpoint (default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS S3), e.g.
    /// https://ACCOUNT.r2.cloudflarestorage.com or http://127.0.0.1:3900.
    #[arg(
        long,
        value_name = "URL",
        help_heading = "S3 (--to s3://BUCKET[/PREFIX])"
    )]
    pub endpoint: Option<String>,

    /// S3: the bucket's region (default: AWS_REGION, AWS_DEFAULT_REGION,
    /// the profile's region, else us-east-1; R2 takes auto, Garage garage).
    #[arg(
        long,
        value_name = "REGION",
        help_heading = "S3 (--to s3://BUCKET[/PREFIX])"
    )]
    pub region: Option<String>,

    /// S3: address the bucket as ENDPOINT/BUCKET rather than
    /// BUCKET.ENDPOINT (MinIO and Garage want it; automatic for an IP
    /// address or localhost).
    #[arg(long, help_heading = "S3 (--to s3://BUCKET[/PREFIX])")]
    pub path_style: bool,

    /// S3: print what would be uploaded, withdrawn and deleted, and change
    /// nothing.
    #[arg(long, short = 'n', help_heading = "S3 (--to s3://BUCKET[/PREFIX])")]
    pub dry_run: bool,

    /// S3: hours a file withdrawn with --delete stays in the bucket before
    /// a later push deletes it (clients keep a catalog for up to an hour).
    #[arg(
        long,
        value_name = "HOURS",
        default_value_t = 6,
        help_heading = "S3 (--to s3://BUCKET[/PREFIX])"
    )]
    pub grace: u32,

    /// S3: files uploaded at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64), help_heading = "S3 (--to s3://BUCKET[/PREFIX])")]
    pub jobs: usize,

    // S3: index.html, the page for people, goes up after the catalog.
    #[command(flatten, next_help_heading = "S3 (--to s3://BUCKET[/PREFIX])")]
    pub page: crate::page::HtmlArgs,

    /// Seconds to wait for each answer of the edge, and for a stalled
    /// upload to move, before giving up. An answer for which the edge
    /// reads a file (checking a large upload, computing a combined
    /// fingerprint) gets one more second per 16 MiB it reads.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

/// One file the target should hold.
pub(crate) struct Wanted {
    pub path: String,
    pub size: u64,
    pub sha256: Sha256,
    /// Metadata file name → sha256(meta ‖ this file), for root files.
    pub combined: BTreeMap<String, Sha256>,
}

impl Wanted {
    fn is_meta(&self) -> bool {
        matches!(classify::by_name(file_name(&self.path)), Kind::Meta(_))
    }
}

/// The tree as push sees it.
pub(crate) struct Local {
    /// What the catalog needs: the files of published versions, and the
    /// side files.
    pub files: Vec<Wanted>,
    /// Files that `.withdrawn` markers withdraw.
    pub withdrawn: BTreeSet<String>,
}

/// What a target holds of one path.
#[derive(Clone, Debug, Default)]
pub(crate) struct Held {
    pub sha256: Option<String>,
    /// Removed, waiting for its grace period to end.
    pub removed: bool,
    /// Removed and deleted: the path holds nothing.
    pub purged: bool,
    /// Combined fingerprints the target holds, by metadata file name.
    pub combined: BTreeMap<String, String>,
}

impl Held {
    /// Whether the path serves a file that is not removed.
    fn live(&self) -> bool {
        !self.removed && !self.purged
    }
}

/// What a target holds.
#[derive(Debug, Default)]
pub(crate) struct Holding {
    pub files: BTreeMap<String, Held>,
    /// Whether the target keeps combined fingerprints (the edge computes
    /// them and builds the catalog); a target whose catalog push writes
    /// itself has none to check.
    pub tracks_combined: bool,
}

/// What a publish answered.
pub(crate) struct Published {
    pub generation: u64,
    pub products: u64,
    pub images: u64,
    pub changed: bool,
    /// (level, path, message) of what the target's build reported.
    pub diagnostics: Vec<(String, String, String)>,
}

/// A place `ssgen push` publishes to.
pub(crate) trait Target {
    /// Everything it holds.
    fn list(&self) -> Result<Holding>;
    /// Stores one file, checking the answer says so.
    fn upload(&self, root: &Path, file: &Wanted, bar: &ProgressBar) -> Result<()>;
    /// Makes it hold `file`'s combined fingerprints (the file is there).
    fn add_combined(&self, file: &Wanted) -> Result<()>;
    /// Removes one file from the catalog.
    fn remove(&self, path: &str) -> Result<()>;
    /// Publishes the catalog, which must list every file of `sent`.
    fn publish(&self, sent: &[Wanted], timestamp: Option<i64>) -> Result<Published>;
}

pub fn run(args: &PushArgs) -> Result<ExitCode> {
    if crate::s3::is_target(&args.to) {
        return crate::s3::run(args);
    }
    if args.page.html {
        return Err(Invalid(
            "--html works with --to s3:// only; the edge and ssgen serve make the page for people themselves"
                .into(),
        )
        .into());
    }
    let timestamp = crate::publish::timestamp(args.timestamp)?;
    let target = open_target(args)?;
    let local = local_files(&args.root, timestamp, args.strict)?;
    let remote = target.list()?;
    let plan = plan(&local, &remote, args.delete);
    let bytes: u64 = plan.uploads.iter().map(|w| w.size).sum();
    eprintln!(
        "push: {} file(s) in the tree, {} to upload ({} bytes)",
        local.files.len(),
        plan.uploads.len(),
        bytes
    );
    carry_out(target.as_ref(), &args.root, &plan)?;
    if !plan.removals.is_empty() {
        eprintln!(
            "push: {} file(s) removed from the edge",
            plan.removals.len()
        );
    }
    let problems = not_as_sent(&local, &plan.removals, &target.list()?);
    if !problems.is_empty() {
        bail!(
            "{} file(s) are not on the edge as sent, so nothing was published:\n  {}\n\
             Something between here and the edge (a proxy, a cache) may have answered in its \
             place, or another publisher changed them; run the push again",
            problems.len(),
            problems.join("\n  ")
        );
    }
    if args.no_publish {
        eprintln!(
            "push: uploaded and checked; not published (--no-publish): no catalog lists the new \
             files, but they are downloadable by their paths"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let published = target.publish(&local.files, timestamp)?;
    for (level, path, message) in &published.diagnostics {
        eprintln!("{level}: {path}: {message}");
    }
    eprintln!(
        "push: published generation {} ({} product(s), {} image(s){})",
        published.generation,
        published.products,
        published.images,
        if published.changed { "" } else { ", unchanged" }
    );
    Ok(ExitCode::SUCCESS)
}

/// The target `--to` names.
fn open_target(args: &PushArgs) -> Result<Box<dyn Target>> {
    let base = args.to.trim_end_matches('/').to_owned();
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Invalid(format!(
            "--to {base:?}: give the edge's http(s):// URL, or s3://BUCKET[/PREFIX]"
        ))
        .into());
    }
    if let Some(rest) = base.strip_prefix("http://")
        && !args.allow_http
        && !is_loopback(rest)
    {
        return Err(Invalid(format!(
            "--to {base}: plain http:// would send the upload token unencrypted to another machine; use https://, or pass --allow-http if the network is trusted"
        ))
        .into());
    }
    let token = match &args.token {
        Some(t) => t.clone(),
        None => std::env::var("SSGEN_TOKEN").map_err(|_| {
            Invalid("no upload token: pass --token TOKEN or set SSGEN_TOKEN".into())
        })?,
    };
    Ok(Box::new(Edge::new(
        base,
        &token,
        args.part_size << 20,
        Duration::from_secs(args.timeout),
    )?))
}

/// Whether the authority of a URL (`host[:port]/…`, after the scheme)
/// names this machine, where plain http:// never leaves it.
fn is_loopback(authority: &str) -> bool {
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Hashes the tree as `ssgen build` does and lists what to send: every
/// file of a published version, and the side files; and the files that
/// `.withdrawn` markers withdraw (the markers themselves are the tree's
/// own bookkeeping and never sent).
fn local_files(root: &Path, timestamp: Option<i64>, strict: bool) -> Result<Local> {
    if !root.join(ssgen_core::vocab::IMAGES).is_dir() {
        return Err(Invalid(format!(
            "{}: no images/ directory; give the server root",
            root.display()
        ))
        .into());
    }
    let config = ssgen_core::Config::new(timestamp.unwrap_or(0));
    let mut cache = Cache::load(root);
    let listing = walk::list(root, &cache)?;
    let scan = ssgen_core::scan(&listing.entries(), &config);
    crate::publish::report(&scan.diagnostics, &listing);
    if scan.has_errors() {
        let n = scan
            .diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .count();
        return Err(Invalid(format!("{n} error(s) above; nothing was pushed")).into());
    }
    crate::publish::refuse_warnings(strict, &scan.diagnostics)?;
    let mut digests: Digests = cache.known(&listing);
    let plan = scan.plan(&digests);
    hashing::run(root, &plan, &mut digests, hashing::Check::Whole)?;
    // A push sends no delta a build would withhold.
    let mut listing = listing;
    let scan = crate::delta::proved(
        &crate::confine::Root::open(root)?,
        &mut listing,
        scan,
        &mut digests,
        &config,
    )?;
    if strict {
        crate::publish::refuse_catalog_warnings(&scan, &digests, &config, &listing)?;
    }
    cache.update(&listing, &digests);
    // The cache only saves work; failing to write it must not stop a push.
    if let Err(e) = cache.save() {
        eprintln!("warning: {e:#}");
    }

    let mut withdrawn = BTreeSet::new();
    for (path, listed) in &listing.files {
        if file_name(path) != withdrawn::FILE_NAME {
            continue;
        }
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        // As the build reads it: a marker it cannot parse withdraws all.
        let marker = Withdrawn::parse(listed.entry.contents.as_deref().unwrap_or_default())
            .unwrap_or(Withdrawn {
                since: 0,
                files: None,
            });
        withdrawn.extend(
            listing
                .files
                .keys()
                .filter(|p| p.rsplit_once('/').is_some_and(|(d, _)| d == dir))
                .filter(|p| {
                    let name = file_name(p);
                    name != withdrawn::FILE_NAME && marker.covers(name)
                })
                .cloned(),
        );
    }

    let mut files = Vec::new();
    for f in scan.files() {
        let sha256 = *digests
            .files
            .get(&f.path)
            .ok_or_else(|| anyhow!("{}: not hashed", f.path))?;
        let combined = digests
            .combined
            .iter()
            .filter(|((_, r), _)| *r == f.path)
            .map(|((m, _), d)| (file_name(m).to_owned(), *d))
            .collect();
        files.push(Wanted {
            path: f.path.clone(),
            size: f.size,
            sha256,
            combined,
        });
    }
    for listed in listing.files.values() {
        let e = &listed.entry;
        if withdrawn.contains(&e.path) || e.name() == withdrawn::FILE_NAME {
            continue;
        }
        if let Some(contents) = e
            .contents
            .as_deref()
            .filter(|_| ssgen_core::needs_contents(&e.path))
        {
            files.push(Wanted {
                path: e.path.clone(),
                size: e.size,
                sha256: Sha256::of(contents),
                combined: BTreeMap::new(),
            });
        }
    }
    Ok(Local { files, withdrawn })
}

/// What a push does, decided from the tree and what the target holds.
pub(crate) struct Plan<'a> {
    /// Files to send, metadata files first (the edge computes a root's
    /// combined fingerprints from the metadata files it already holds).
    pub uploads: Vec<&'a Wanted>,
    /// Root files there as sent whose combined fingerprints are not.
    pub combined: Vec<&'a Wanted>,
    /// Paths to remove.
    pub removals: Vec<String>,
}

/// Compares the tree with what the target holds.
pub(crate) fn plan<'a>(local: &'a Local, remote: &Holding, delete: bool) -> Plan<'a> {
    let as_sent = |w: &Wanted| {
        remote
            .files
            .get(&w.path)
            .is_some_and(|r| r.live() && r.sha256.as_deref() == Some(w.sha256.to_hex().as_str()))
    };
    let fingerprints_there = |w: &Wanted| {
        !remote.tracks_combined
            || remote.files.get(&w.path).is_some_and(|r| {
                w.combined
                    .iter()
                    .all(|(m, d)| r.combined.get(m) == Some(&d.to_hex()))
            })
    };
    let mut uploads: Vec<&Wanted> = local.files.iter().filter(|w| !as_sent(w)).collect();
    uploads.sort_by_key(|w| (!w.is_meta(), w.path.as_str()));
    let combined = local
        .files
        .iter()
        .filter(|w| as_sent(w) && !fingerprints_there(w))
        .collect();
    let wanted: BTreeSet<&str> = local.files.iter().map(|w| w.path.as_str()).collect();
    let removals = remote
        .files
        .iter()
        .filter(|(path, held)| {
            held.live()
                && !wanted.contains(path.as_str())
                && (delete || local.withdrawn.contains(path.as_str()))
        })
        .map(|(path, _)| path.clone())
        .collect();
    Plan {
        uploads,
        combined,
        removals,
    }
}

/// Uploads, adds fingerprints and removes, in that order.
pub(crate) fn carry_out(target: &dyn Target, root: &Path, plan: &Plan<'_>) -> Result<()> {
    let bar = crate::progress::bytes(plan.uploads.iter().map(|w| w.size).sum(), "uploading");
    for w in &plan.uploads {
        bar.set_message(file_name(&w.path).to_owned());
        target.upload(root, w, &bar)?;
    }
    bar.finish_and_clear();
    for w in &plan.combined {
        target.add_combined(w)?;
    }
    for path in &plan.removals {
        target.remove(path)?;
    }
    Ok(())
}

/// What is not on the target as the push left it: files missing, other,
/// removed or without their fingerprints, and removals not done.
pub(crate) fn not_as_sent(local: &Local, removals: &[String], remote: &Holding) -> Vec<String> {
    let mut out = Vec::new();
    for w in &local.files {
        let sha = w.sha256.to_hex();
        match remote.files.get(&w.path) {
            None => out.push(format!("{}: not on the edge", w.path)),
            Some(r) if !r.live() => out.push(format!("{}: removed on the edge", w.path)),
            Some(r) if r.sha256.as_deref() != Some(sha.as_str()) => out.push(format!(
                "{}: the edge holds sha256 {}, not {sha}",
                w.path,
                r.sha256.as_deref().unwrap_or("unknown")
            )),
            Some(r) if remote.tracks_combined => {
                for (m, d) in &w.combined {
                    if r.combined.get(m) != Some(&d.to_hex()) {
                        out.push(format!(
                            "{}: the edge has no combined fingerprint {d} with {m}",
                            w.path
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
    for path in removals {
        if remote.files.get(path).is_some_and(Held::live) {
            out.push(format!("{path}: still published on the edge, not removed"));
        }
    }
    out
}

/// The upload API of the edge handler, which `ssgen serve --token`
/// speaks too (the documents are the core's, `ssgen_core::serve::api`).
struct Edge {
    agent: ureq::Agent,
    base: String,
    auth: String,
    part_size: u64,
    timeout: Duration,
    /// The server takes any file in one request (its listing says so).
    whole_files: std::cell::Cell<bool>,
}

/// How fast the edge is assumed to read a file it checks, for the time
/// an answer may take (R2 reads run far faster; this is the margin).
const EDGE_READ_BYTES_PER_SEC: u64 = 16 << 20;

/// The largest answer read (one listing page is a few hundred KB).
const ANSWER_LIMIT: u64 = 256 << 20;

/// One answer of the edge.
struct Answer {
    status: u16,
    body: String,
    html: bool,
}

impl Edge {
    fn new(base: String, token: &str, part_size: u64, timeout: Duration) -> Result<Self> {
        Ok(Self {
            agent: net::agent_config()?.build().into(),
            base,
            auth: format!("Bearer {token}"),
            part_size,
            timeout,
            whole_files: std::cell::Cell::new(false),
        })
    }

    /// The wait for an answer for which the edge reads `reads` bytes.
    fn wait_for(&self, reads: u64) -> Duration {
        self.timeout + Duration::from_secs(reads / EDGE_READ_BYTES_PER_SEC)
    }

    /// Sends one request and reads its answer whole, with the timeouts:
    /// `wait` for the answer, `self.timeout` for any stalled read or write.
    fn send(
        &self,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: impl ureq::AsSendBody,
        wait: Duration,
    ) -> Result<Answer> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("authorization", &self.auth)
            // `ssgen serve` answers lines of text to curl, JSON to this.
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(body)
            .with_context(|| format!("{what}: {url} is not a URL"))?;
        let req = self
            .agent
            .configure_request(req)
            .timeout_recv_response(Some(wait))
            .timeout_per_read(Some(wait))
            .timeout_per_write(Some(self.timeout))
            .build();
        let mut resp = self.agent.run(req).map_err(|e| match e {
            ureq::Error::Timeout(_) => anyhow!(
                "{what}: no answer from {} within {} s (--timeout); the edge, or something in \
                 between, stalled",
                self.base,
                wait.as_secs()
            ),
            e => anyhow!("{what}: cannot reach {} ({e})", self.base),
        })?;
        let status = resp.status().as_u16();
        let html = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("html"));
        let body = resp
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => anyhow!(
                    "{what}: the answer from {} stalled for {} s (--timeout)",
                    self.base,
                    wait.as_secs()
                ),
                e => anyhow!("{what}: cannot read the answer of {} ({e})", self.base),
            })?;
        Ok(Answer { status, body, html })
    }

    /// A 2xx answer's JSON object; any other answer as an error.
    fn json(&self, what: &str, a: &Answer) -> Result<serde_json::Value> {
        let parsed = serde_json::from_str::<serde_json::Value>(&a.body)
            .ok()
            .filter(serde_json::Value::is_object);
        if !(200..300).contains(&a.status) {
            let message = parsed
                .as_ref()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| summarise(&a.body, a.html));
            return match a.status {
                401 => {
                    Err(Invalid(format!("{what}: the edge refused the token ({message})")).into())
                }
                400 | 404 | 409 | 411 | 414 | 422 => {
                    Err(Invalid(format!("{what}: {}: {message}", a.status)).into())
                }
                s => bail!("{what}: the edge answered {s}: {message}"),
            };
        }
        parsed.ok_or_else(|| {
            anyhow!(
                "{what}: the answer ({} {}) is not the edge's; something between here and the \
                 edge answered in its place",
                a.status,
                summarise(&a.body, a.html)
            )
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// Checks an upload's answer: it must name the file, its sha256 and,
    /// for a root file, hold its combined fingerprints.
    fn check_stored(what: &str, w: &Wanted, v: &serde_json::Value) -> Result<()> {
        let sha = w.sha256.to_hex();
        if v["path"].as_str() != Some(w.path.as_str())
            || v["sha256"].as_str() != Some(sha.as_str())
            || !v["stored"].is_boolean()
        {
            bail!(
                "{what}: the answer does not say the edge holds it (sha256 {sha}): {}; something \
                 between here and the edge answered in its place",
                summarise(&v.to_string(), false)
            );
        }
        Self::check_combined(what, w, v)
    }

    fn check_combined(what: &str, w: &Wanted, v: &serde_json::Value) -> Result<()> {
        for (m, d) in &w.combined {
            if v["combined"][m].as_str() != Some(d.to_hex().as_str()) {
                bail!(
                    "{what}: the edge computed no combined fingerprint {d} with {m} (it has {})",
                    v["combined"][m].as_str().unwrap_or("none")
                );
            }
        }
        Ok(())
    }

    fn file_headers(w: &Wanted) -> Vec<(&'static str, String)> {
        let mut h = vec![(rules::SHA256_HEADER, w.sha256.to_hex())];
        if !w.combined.is_empty() {
            h.push((rules::COMBINED_HEADER, combined_header(w)));
        }
        h
    }

    fn put(&self, root: &Path, w: &Wanted, bar: &ProgressBar) -> Result<serde_json::Value> {
        let what = format!("uploading {}", w.path);
        let file =
            File::open(root.join(&w.path)).with_context(|| format!("cannot open {}", w.path))?;
        let mut reader = Counted { inner: file, bar };
        let mut headers = Self::file_headers(w);
        headers.push(("content-length", w.size.to_string()));
        headers.push(("content-type", "application/octet-stream".into()));
        let reads = if w.combined.is_empty() { 0 } else { w.size };
        let a = self.send(
            &what,
            "PUT",
            &self.url(&w.path),
            &headers,
            ureq::SendBody::from_reader(&mut reader),
            self.wait_for(reads),
        )?;
        self.answered(&what, w, &a)
    }

    /// An upload's answer: 503 is "send it again" (the path changed while
    /// it ran), anything else is checked.
    fn answered(&self, what: &str, w: &Wanted, a: &Answer) -> Result<serde_json::Value> {
        if a.status == 503 {
            return Ok(serde_json::Value::Null);
        }
        let v = self.json(what, a)?;
        Self::check_stored(what, w, &v)?;
        Ok(v)
    }

    /// A file too large for one request body: start, parts, complete (the
    /// edge then checks the whole file itself and copies it into place).
    fn put_multipart(
        &self,
        root: &Path,
        w: &Wanted,
        bar: &ProgressBar,
    ) -> Result<serde_json::Value> {
        let what = format!("uploading {}", w.path);
        let url = self.url(&w.path);
        let mut headers = Self::file_headers(w);
        headers.push((rules::SIZE_HEADER, w.size.to_string()));
        let a = self.send(
            &what,
            "POST",
            &format!("{url}?uploads"),
            &headers,
            b"".as_slice(),
            self.wait_for(if w.combined.is_empty() { 0 } else { w.size }),
        )?;
        if a.status == 503 {
            return Ok(serde_json::Value::Null);
        }
        let started = self.json(&what, &a)?;
        let Some(id) = started["upload_id"].as_str() else {
            // The edge holds it already: the answer says so.
            Self::check_stored(&what, w, &started)?;
            bar.inc(w.size);
            return Ok(started);
        };
        let id = query_escape(id);
        let result = (|| -> Result<serde_json::Value> {
            let mut file = File::open(root.join(&w.path))
                .with_context(|| format!("cannot open {}", w.path))?;
            let mut parts = Vec::new();
            let mut offset = 0;
            let mut number = 1;
            while offset < w.size {
                let len = self.part_size.min(w.size - offset);
                let mut reader = Counted {
                    inner: (&mut file).take(len),
                    bar,
                };
                let part_what = format!("{what}, part {number}");
                let a = self.send(
                    &part_what,
                    "PUT",
                    &format!("{url}?upload_id={id}&part={number}"),
                    &[("content-length", len.to_string())],
                    ureq::SendBody::from_reader(&mut reader),
                    self.timeout,
                )?;
                let done = self.json(&part_what, &a)?;
                let etag = done["etag"].as_str().filter(|_| done["part"] == number);
                let Some(etag) = etag else {
                    bail!(
                        "{part_what}: the answer does not acknowledge the part: {}",
                        summarise(&done.to_string(), false)
                    );
                };
                parts.push(serde_json::json!({"part": number, "etag": etag}));
                offset += len;
                number += 1;
            }
            let body = serde_json::json!({ "parts": parts }).to_string();
            // The edge reads the joined file (its digests) and copies it
            // into place: twice its size.
            let a = self.send(
                &what,
                "POST",
                &format!("{url}?upload_id={id}"),
                &[("content-type", "application/json".into())],
                body.as_bytes(),
                self.wait_for(2 * w.size),
            )?;
            self.answered(&what, w, &a)
        })();
        if result.is_err() {
            // Best effort: the edge drops abandoned uploads after a week.
            drop(self.send(
                &what,
                "DELETE",
                &format!("{url}?upload_id={id}"),
                &[],
                (),
                self.timeout,
            ));
        }
        result
    }

    /// One page of the listing.
    fn list_page(&self, cursor: Option<&str>, into: &mut Holding) -> Result<Option<String>> {
        let what = "listing the edge's files";
        let mut url = format!("{}/api/v1/files", self.base);
        if let Some(c) = cursor {
            url.push_str(&format!("?cursor={}", query_escape(c)));
        }
        let a = self.send(what, "GET", &url, &[], (), self.timeout)?;
        let page: api::ListPage = serde_json::from_value(self.json(what, &a)?).map_err(|e| {
            anyhow!(
                "{what}: {url} does not answer an ssgen edge listing ({e}); is --to the edge, or ssgen serve --token?"
            )
        })?;
        if page.whole_files {
            self.whole_files.set(true);
        }
        for f in page.files {
            let held = into.files.entry(f.path).or_default();
            held.sha256 = f.sha256;
            held.purged = f.purged;
        }
        for r in page.removed {
            into.files.entry(r.path).or_default().removed = true;
        }
        for c in page.combined {
            into.files.entry(c.path).or_default().combined.insert(
                c.meta,
                format!("{}\n{}\n{}", c.sha256, c.meta_sha256, c.root_sha256),
            );
        }
        Ok(page.next)
    }
}

impl Target for Edge {
    fn list(&self) -> Result<Holding> {
        let mut holding = Holding {
            tracks_combined: true,
            ..Holding::default()
        };
        let mut cursor: Option<String> = None;
        let mut seen = BTreeSet::new();
        loop {
            let next = self.list_page(cursor.as_deref(), &mut holding)?;
            match next {
                None => break,
                Some(c) if !seen.insert(c.clone()) => {
                    bail!("listing the edge's files: the edge gave cursor {c:?} twice")
                }
                Some(c) => cursor = Some(c),
            }
        }
        // A fingerprint counts only if it was computed from the bytes the
        // two files hold now.
        let shas: BTreeMap<String, Option<String>> = holding
            .files
            .iter()
            .map(|(p, h)| (p.clone(), h.sha256.clone()))
            .collect();
        for (path, held) in &mut holding.files {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            held.combined = std::mem::take(&mut held.combined)
                .into_iter()
                .filter_map(|(meta, joined)| {
                    let mut it = joined.split('\n');
                    let (sha, meta_sha, root_sha) = (it.next()?, it.next()?, it.next()?);
                    let meta_now = shas.get(&format!("{dir}/{meta}"))?.as_deref()?;
                    (meta_now == meta_sha && held.sha256.as_deref() == Some(root_sha))
                        .then(|| (meta, sha.to_owned()))
                })
                .collect();
        }
        Ok(holding)
    }

    fn upload(&self, root: &Path, w: &Wanted, bar: &ProgressBar) -> Result<()> {
        for attempt in 1..=3 {
            let answer = if w.size > self.part_size && !self.whole_files.get() {
                self.put_multipart(root, w, bar)?
            } else {
                self.put(root, w, bar)?
            };
            if !answer.is_null() {
                return Ok(());
            }
            eprintln!(
                "push: {} changed on the edge while it was sent (attempt {attempt} of 3); sending it again",
                w.path
            );
        }
        bail!(
            "uploading {}: the path kept changing on the edge while it was sent; run the push again",
            w.path
        )
    }

    fn add_combined(&self, w: &Wanted) -> Result<()> {
        let what = format!("adding the combined fingerprints of {}", w.path);
        let a = self.send(
            &what,
            "POST",
            &format!("{}?combined", self.url(&w.path)),
            &[(rules::COMBINED_HEADER, combined_header(w))],
            b"".as_slice(),
            self.wait_for(w.size),
        )?;
        let v = self.json(&what, &a)?;
        Self::check_combined(&what, w, &v)
    }

    fn remove(&self, path: &str) -> Result<()> {
        let what = format!("removing {path}");
        let a = self.send(&what, "DELETE", &self.url(path), &[], (), self.timeout)?;
        let v = self.json(&what, &a)?;
        if v["path"].as_str() != Some(path) {
            bail!(
                "{what}: the answer does not say the edge removed it: {}",
                summarise(&v.to_string(), false)
            );
        }
        Ok(())
    }

    fn publish(&self, sent: &[Wanted], timestamp: Option<i64>) -> Result<Published> {
        let what = "publishing";
        let mut url = format!("{}/publish", self.base);
        if let Some(t) = timestamp {
            url.push_str(&format!("?timestamp={t}"));
        }
        let require: BTreeMap<&str, String> = sent
            .iter()
            .map(|w| (w.path.as_str(), w.sha256.to_hex()))
            .collect();
        let body = serde_json::json!({ "require": require }).to_string();
        let a = self.send(
            what,
            "POST",
            &url,
            &[("content-type", "application/json".into())],
            body.as_bytes(),
            self.timeout,
        )?;
        let v = self.json(what, &a)?;
        let published: api::Published = serde_json::from_value(v.clone())
            .ok()
            .filter(|_| v["generation"].is_u64())
            .ok_or_else(|| {
                anyhow!(
                    "{what}: the answer names no generation: {}; something between here and the edge \
                     answered in its place",
                    summarise(&v.to_string(), false)
                )
            })?;
        Ok(Published {
            generation: published.generation,
            products: published.products,
            images: published.images,
            changed: published.changed,
            diagnostics: published.notes(),
        })
    }
}

fn combined_header(w: &Wanted) -> String {
    rules::combined_header(w.combined.iter().map(|(m, d)| (m.as_str(), d)))
}

/// An answer body in a line: an HTML page by its title and size (a proxy's
/// or a CDN's error page), anything else cut at 300 characters.
fn summarise(body: &str, html: bool) -> String {
    let text = body.trim();
    if html || text.starts_with('<') {
        let lower = text.to_ascii_lowercase();
        let title = lower
            .find("<title")
            .and_then(|i| Some(i + lower[i..].find('>')? + 1))
            .and_then(|start| Some((start, start + lower[start..].find("</title")?)))
            .map(|(a, b)| text[a..b].split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!(
                "an HTML page titled {:?} ({} bytes)",
                cut(&t, 120),
                body.len()
            ),
            None => format!("an HTML page ({} bytes)", body.len()),
        };
    }
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "an empty body".to_owned()
    } else {
        cut(&line, 300)
    }
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Percent-encodes a query value.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A reader that advances the progress bar.
struct Counted<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_loopback() {
        for yes in [
            "127.0.0.1:8443",
            "127.1.2.3/x",
            "localhost",
            "LOCALHOST:80/",
            "[::1]:8080",
            "u:p@127.0.0.1",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "images.example.org",
            "10.0.0.1:80",
            "[2001:db8::1]:80",
            "127.0.0.1.example.org",
            "localhost.example.org",
            "127.0.0.1@evil.example.org",
            "",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    fn wanted(path: &str, sha: u8) -> Wanted {
        Wanted {
            path: path.into(),
            size: 1,
            sha256: Sha256([sha; 32]),
            combined: BTreeMap::new(),
        }
    }

    fn held(sha: u8) -> Held {
        Held {
            sha256: Some(Sha256([sha; 32]).to_hex()),
            ..Held::default()
        }
    }

    #[test]
    fn plan_sends_metadata_first_and_withdraws_without_delete() {
        let dir = "images/d/12/amd64/default/20260801_0312";
        let mut root = wanted(&format!("{dir}/rootfs.squashfs"), 2);
        root.combined.insert("incus.tar.xz".into(), Sha256([3; 32]));
        let local = Local {
            files: vec![root, wanted(&format!("{dir}/incus.tar.xz"), 1)],
            withdrawn: ["images/d/12/amd64/default/old/rootfs.squashfs".to_owned()].into(),
        };
        let mut remote = Holding {
            tracks_combined: true,
            ..Holding::default()
        };
        remote.files.insert(
            "images/d/12/amd64/default/old/rootfs.squashfs".into(),
            held(9),
        );
        remote.files.insert("images/other".into(), held(8));
        let p = plan(&local, &remote, false);
        let order: Vec<&str> = p.uploads.iter().map(|w| file_name(&w.path)).collect();
        assert_eq!(order, ["incus.tar.xz", "rootfs.squashfs"]);
        assert_eq!(
            p.removals,
            ["images/d/12/amd64/default/old/rootfs.squashfs"]
        );
        let p = plan(&local, &remote, true);
        assert_eq!(p.removals.len(), 2);
    }

    #[test]
    fn a_root_there_without_its_fingerprint_gets_it_added() {
        let mut root = wanted("images/a/rootfs.squashfs", 2);
        root.combined.insert("lxd.tar.xz".into(), Sha256([3; 32]));
        let local = Local {
            files: vec![root],
            withdrawn: BTreeSet::new(),
        };
        let mut remote = Holding {
            tracks_combined: true,
            ..Holding::default()
        };
        remote
            .files
            .insert("images/a/rootfs.squashfs".into(), held(2));
        let p = plan(&local, &remote, false);
        assert!(p.uploads.is_empty());
        assert_eq!(p.combined.len(), 1);
        assert_eq!(not_as_sent(&local, &[], &remote).len(), 1);
        remote.files.get_mut("images/a/rootfs.squashfs").map(|h| {
            h.combined
                .insert("lxd.tar.xz".into(), Sha256([3; 32]).to_hex())
        });
        assert!(not_as_sent(&local, &[], &remote).is_empty());
    }

    #[test]
    fn not_as_sent_names_each_problem() {
        let local = Local {
            files: vec![
                wanted("images/a", 1),
                wanted("images/b", 1),
                wanted("images/c", 1),
            ],
            withdrawn: BTreeSet::new(),
        };
        let mut remote = Holding::default();
        remote.files.insert("images/b".into(), held(2));
        let mut removed = held(1);
        removed.removed = true;
        remote.files.insert("images/c".into(), removed);
        remote.files.insert("images/gone".into(), held(1));
        let problems = not_as_sent(&local, &["images/gone".into()], &remote);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("not on the edge"));
        assert!(problems[1].contains("holds sha256"));
        assert!(problems[2].contains("removed"));
        assert!(problems[3].contains("still published"));
    }

    #[test]
    fn html_pages_are_summarised() {
        let page = format!(
            "<!DOCTYPE html><html><head><TITLE>502 Bad\n Gateway</TITLE></head><body>{}</body></html>",
            "x".repeat(5000)
        );
        let s = summarise(&page, true);
        assert!(
            s.starts_with("an HTML page titled \"502 Bad Gateway\""),
            "{s}"
        );
        assert!(s.len() < 100);
        assert_eq!(summarise("<html>", false), "an HTML page (6 bytes)");
        assert!(summarise(&"y".repeat(1000), false).chars().count() <= 301);
        assert_eq!(summarise("  ", false), "an empty body");
    }
}
