//! `ssgen push`: publish a tree to the edge handler (`edge/`): upload the
//! files the edge does not hold yet (compared by sha256), then ask it to
//! rebuild and swap in the catalog.
//!
//! Resumable by construction: each file is one streamed `PUT` that R2
//! stores whole or not at all, and a second run skips whatever arrived.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::ProgressBar;
use ssgen_core::{Digests, Level, Sha256};

use crate::cache::Cache;
use crate::exit::Invalid;
use crate::{hashing, net, walk};

/// Upload ROOT/images to an ssgen edge handler or an S3 bucket, and
/// publish its catalog.
///
/// Hashes the tree (cached like `ssgen build`), asks the edge which files
/// it holds, uploads only the missing or incomplete ones (each streamed,
/// with its sha256 and, for root files, the combined fingerprints), then
/// POSTs /publish so the edge rebuilds images.json and swaps it in. Run it
/// again after an interruption: what arrived is skipped.
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

    /// Upload only; leave the published catalog as it is.
    #[arg(long)]
    pub no_publish: bool,

    /// Also remove from the edge what is no longer in the tree (after
    /// `ssgen prune`, say). Removed files leave the catalog at once and
    /// stay downloadable for the edge's grace period.
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
}

/// One file the edge should hold.
struct Wanted {
    path: String,
    size: u64,
    sha256: Sha256,
    /// Metadata file name → sha256(meta ‖ this file).
    combined: BTreeMap<String, Sha256>,
}

/// What the edge says it holds.
#[derive(serde::Deserialize)]
struct RemoteFile {
    path: String,
    sha256: Option<String>,
    #[serde(default)]
    combined: BTreeMap<String, String>,
    #[serde(default)]
    removed: bool,
    /// False while (or if) a multipart upload's sha256 was not confirmed.
    #[serde(default = "yes")]
    verified: bool,
}

fn yes() -> bool {
    true
}

#[derive(serde::Deserialize)]
struct RemoteFiles {
    files: Vec<RemoteFile>,
}

pub fn run(args: &PushArgs) -> Result<ExitCode> {
    if crate::s3::is_target(&args.to) {
        return crate::s3::run(args);
    }
    if args.page.html {
        return Err(Invalid(
            "--html works with --to s3:// only; the edge serves the catalog without a page for now"
                .into(),
        )
        .into());
    }
    let token = match &args.token {
        Some(t) => t.clone(),
        None => std::env::var("SSGEN_TOKEN").map_err(|_| {
            Invalid("no upload token: pass --token TOKEN or set SSGEN_TOKEN".into())
        })?,
    };
    let base = args.to.trim_end_matches('/').to_owned();
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Invalid(format!(
            "--to {base:?}: give the edge's http(s):// URL, or s3://BUCKET[/PREFIX]"
        ))
        .into());
    }
    let timestamp = match args.timestamp {
        Some(t) => Some(t),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => Some(v.parse().map_err(|_| {
                Invalid(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds; unset it or fix it"
                ))
            })?),
            Err(_) => None,
        },
    };
    let wanted = local_files(&args.root, timestamp, args.strict)?;
    let edge = Edge::new(base, token)?;
    let remote = edge.files()?;
    let todo: Vec<&Wanted> = wanted
        .iter()
        .filter(|w| {
            remote.get(&w.path).is_none_or(|r| {
                r.removed
                    || !r.verified
                    || r.sha256.as_deref() != Some(w.sha256.to_hex().as_str())
                    || w.combined
                        .iter()
                        .any(|(m, d)| r.combined.get(m).map(String::as_str) != Some(&d.to_hex()))
            })
        })
        .collect();
    let bytes: u64 = todo.iter().map(|w| w.size).sum();
    eprintln!(
        "push: {} file(s) in the tree, {} to upload ({} bytes)",
        wanted.len(),
        todo.len(),
        bytes
    );
    let bar = progress(bytes);
    let part_size = args.part_size << 20;
    for w in &todo {
        bar.set_message(w.path.rsplit('/').next().unwrap_or(&w.path).to_owned());
        if w.size > part_size {
            edge.put_multipart(&args.root, w, part_size, &bar)?;
        } else {
            edge.put(&args.root, w, &bar)?;
        }
    }
    bar.finish_and_clear();
    if args.delete {
        let local: std::collections::BTreeSet<&str> =
            wanted.iter().map(|w| w.path.as_str()).collect();
        let gone: Vec<&str> = remote
            .values()
            .filter(|r| !r.removed && !local.contains(r.path.as_str()))
            .map(|r| r.path.as_str())
            .collect();
        for path in &gone {
            edge.delete(path)?;
        }
        eprintln!("push: {} file(s) removed from the edge", gone.len());
    }
    if args.no_publish {
        eprintln!("push: uploaded; not published (--no-publish)");
        return Ok(ExitCode::SUCCESS);
    }
    let summary = edge.publish(timestamp)?;
    for d in summary["diagnostics"].as_array().into_iter().flatten() {
        eprintln!(
            "{}: {}: {}",
            d["level"].as_str().unwrap_or("note"),
            d["path"].as_str().unwrap_or(""),
            d["message"].as_str().unwrap_or("")
        );
    }
    eprintln!(
        "push: published generation {} ({} product(s), {} image(s){})",
        summary["generation"],
        summary["products"],
        summary["images"],
        if summary["changed"] == serde_json::Value::Bool(false) {
            ", unchanged"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Hashes the tree as `ssgen build` does and lists what to send: every
/// file of a published version, and the side files.
fn local_files(root: &Path, timestamp: Option<i64>, strict: bool) -> Result<Vec<Wanted>> {
    if !root.join("images").is_dir() {
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
    if strict {
        crate::publish::refuse_catalog_warnings(&scan, &digests, &config, &listing)?;
    }
    cache.update(&listing, &digests);
    // The cache only saves work; failing to write it must not stop a push.
    if let Err(e) = cache.save() {
        eprintln!("warning: {e:#}");
    }

    let mut out = Vec::new();
    for f in scan.files() {
        let sha256 = *digests
            .files
            .get(&f.path)
            .ok_or_else(|| anyhow!("{}: not hashed", f.path))?;
        let combined = digests
            .combined
            .iter()
            .filter(|((_, r), _)| *r == f.path)
            .map(|((m, _), d)| (m.rsplit('/').next().unwrap_or(m).to_owned(), *d))
            .collect();
        out.push(Wanted {
            path: f.path.clone(),
            size: f.size,
            sha256,
            combined,
        });
    }
    for listed in listing.files.values() {
        let e = &listed.entry;
        if let Some(contents) = e
            .contents
            .as_deref()
            .filter(|_| ssgen_core::needs_contents(&e.path))
        {
            out.push(Wanted {
                path: e.path.clone(),
                size: e.size,
                sha256: Sha256::of(contents),
                combined: BTreeMap::new(),
            });
        }
    }
    Ok(out)
}

fn progress(total: u64) -> ProgressBar {
    crate::progress::bytes(total, "uploading")
}

/// The edge's upload API.
struct Edge {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Edge {
    fn new(base: String, token: String) -> Result<Self> {
        // Uploads take as long as they take: only the connection is timed.
        let config = net::agent_config()?;
        Ok(Self {
            agent: config.build().into(),
            base,
            auth: format!("Bearer {token}"),
        })
    }

    fn check(&self, what: &str, resp: &mut ureq::http::Response<ureq::Body>) -> Result<String> {
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned());
        match status {
            401 => Err(Invalid(format!("{what}: the edge refused the token ({message})")).into()),
            400 | 409 | 411 | 422 => Err(Invalid(format!("{what}: {status}: {message}")).into()),
            _ => bail!("{what}: the edge answered {status}: {message}"),
        }
    }

    fn files(&self) -> Result<BTreeMap<String, RemoteFile>> {
        let url = format!("{}/api/v1/files", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("authorization", &self.auth)
            .call()
            .with_context(|| format!("cannot reach {url}"))?;
        let body = self.check("listing the edge's files", &mut resp)?;
        let list: RemoteFiles = serde_json::from_str(&body)
            .with_context(|| format!("{url}: not an ssgen edge listing"))?;
        Ok(list
            .files
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect())
    }

    fn put(&self, root: &Path, w: &Wanted, bar: &ProgressBar) -> Result<()> {
        let url = format!("{}/{}", self.base, w.path);
        let file =
            File::open(root.join(&w.path)).with_context(|| format!("cannot open {}", w.path))?;
        let mut reader = Counted { inner: file, bar };
        let combined = w
            .combined
            .iter()
            .map(|(m, d)| format!("{m}={d}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut req = self
            .agent
            .put(&url)
            .header("authorization", &self.auth)
            .header("content-length", w.size.to_string())
            .header("content-type", "application/octet-stream")
            .header("x-ssgen-sha256", w.sha256.to_hex());
        if !combined.is_empty() {
            req = req.header("x-ssgen-combined", &combined);
        }
        let mut resp = req
            .send(ureq::SendBody::from_reader(&mut reader))
            .with_context(|| format!("uploading {}", w.path))?;
        self.check(&format!("uploading {}", w.path), &mut resp)?;
        Ok(())
    }

    /// A file too large for one request body: start, parts, complete (the
    /// edge then checks the whole file's sha256 itself).
    fn put_multipart(
        &self,
        root: &Path,
        w: &Wanted,
        part_size: u64,
        bar: &ProgressBar,
    ) -> Result<()> {
        let what = format!("uploading {}", w.path);
        let url = format!("{}/{}", self.base, w.path);
        let mut req = self
            .agent
            .post(&format!("{url}?uploads"))
            .header("authorization", &self.auth)
            .header("x-ssgen-sha256", w.sha256.to_hex())
            .header("x-ssgen-size", w.size.to_string());
        if !w.combined.is_empty() {
            req = req.header("x-ssgen-combined", combined_header(w));
        }
        let mut resp = req.send_empty().with_context(|| what.clone())?;
        let started: serde_json::Value =
            serde_json::from_str(&self.check(&what, &mut resp)?).with_context(|| what.clone())?;
        let Some(id) = started["upload_id"].as_str() else {
            bar.inc(w.size);
            return Ok(());
        };
        let id = query_escape(id);
        let result = (|| -> Result<()> {
            let mut file = File::open(root.join(&w.path))
                .with_context(|| format!("cannot open {}", w.path))?;
            let mut parts = Vec::new();
            let mut offset = 0;
            let mut number = 1;
            while offset < w.size {
                let len = part_size.min(w.size - offset);
                let mut reader = Counted {
                    inner: (&mut file).take(len),
                    bar,
                };
                let mut resp = self
                    .agent
                    .put(&format!("{url}?upload_id={id}&part={number}"))
                    .header("authorization", &self.auth)
                    .header("content-length", len.to_string())
                    .send(ureq::SendBody::from_reader(&mut reader))
                    .with_context(|| format!("{what}, part {number}"))?;
                let done: serde_json::Value = serde_json::from_str(
                    &self.check(&format!("{what}, part {number}"), &mut resp)?,
                )?;
                parts.push(serde_json::json!({"part": number, "etag": done["etag"]}));
                offset += len;
                number += 1;
            }
            let mut resp = self
                .agent
                .post(&format!("{url}?upload_id={id}"))
                .header("authorization", &self.auth)
                .header("content-type", "application/json")
                .send(serde_json::json!({ "parts": parts }).to_string())
                .with_context(|| what.clone())?;
            self.check(&what, &mut resp)?;
            Ok(())
        })();
        if result.is_err() {
            // Best effort: R2 would drop the parts after a week anyway.
            let _ = self
                .agent
                .delete(&format!("{url}?upload_id={id}"))
                .header("authorization", &self.auth)
                .call();
        }
        result
    }

    fn delete(&self, path: &str) -> Result<()> {
        let url = format!("{}/{path}", self.base);
        let mut resp = self
            .agent
            .delete(&url)
            .header("authorization", &self.auth)
            .call()
            .with_context(|| format!("removing {path}"))?;
        self.check(&format!("removing {path}"), &mut resp)?;
        Ok(())
    }

    fn publish(&self, timestamp: Option<i64>) -> Result<serde_json::Value> {
        let mut url = format!("{}/publish", self.base);
        if let Some(t) = timestamp {
            url.push_str(&format!("?timestamp={t}"));
        }
        let mut resp = self
            .agent
            .post(&url)
            .header("authorization", &self.auth)
            .send_empty()
            .with_context(|| format!("cannot reach {url}"))?;
        let body = self.check("publishing", &mut resp)?;
        serde_json::from_str(&body).context("publishing: the edge's answer is not JSON")
    }
}

fn combined_header(w: &Wanted) -> String {
    w.combined
        .iter()
        .map(|(m, d)| format!("{m}={d}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percent-encodes a query value (R2 upload ids hold `+`, `/` and `=`).
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
