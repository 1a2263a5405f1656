//! `ssgen push ROOT --to s3://BUCKET[/PREFIX]`: publish a tree to
//! S3-compatible object storage (AWS S3, R2, Garage, MinIO, Ceph, B2), so
//! that a CDN or the bucket's public URL serves it to LXD and Incus.
//!
//! A push reads what the bucket holds (its listing and the manifest
//! object, see [`manifest`]), uploads what is missing (compared by sha256),
//! then commits:
//!
//! 1. the new manifest (the bucket's manifest plus this tree's files, minus
//!    removals with `--delete`), written only if nobody replaced it since it
//!    was read (`If-Match`); if someone did, the push rebuilds on theirs
//!    and tries again, so concurrent pushes never lose each other's images;
//! 2. `streams/v1/images.json`, then `streams/v1/index.json`, built by the
//!    core from that manifest (the same bytes `ssgen build` writes for the
//!    same files) and each written only over the object it saw, tagged with
//!    the manifest's generation, so a slower, older push never puts its
//!    catalog over a newer one;
//! 3. deletions of files whose grace period is over, after a catalog
//!    without them is in place.
//!
//! Every object a catalog names is in the bucket before the catalog that
//! names it, and objects are replaced whole, so a reader sees the old
//! catalog or the new one, never one that names missing files.

mod client;
mod credentials;
mod local;
mod manifest;
mod sigv4;
mod upload;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use ssgen_core::vocab::IMAGES;
use ssgen_core::{IMAGES_JSON, INDEX_JSON, Sha256};

use self::client::{Answer, Body, Call, Endpoint, Store, xml_text};
use self::local::{Local, LocalFile};
use self::manifest::{FileInfo, Manifest};
use self::upload::{Expect, Job};
use crate::cmd::push::PushArgs;
use crate::exit::Invalid;

/// Whether `--to` names a bucket.
pub fn is_target(to: &str) -> bool {
    to.starts_with("s3://")
}

/// Conditional writes lost to concurrent pushes before giving up.
const ATTEMPTS: u32 = 10;

/// `s3://BUCKET[/PREFIX]`.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
}

impl Target {
    fn parse(to: &str) -> Result<Self> {
        let rest = to.strip_prefix("s3://").unwrap_or(to);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !bucket_ok {
            return Err(Invalid(format!(
                "--to {to:?}: {bucket:?} is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens); give s3://BUCKET or s3://BUCKET/PREFIX"
            ))
            .into());
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|c| c == "." || c == ".." || (c.is_empty() && !prefix.is_empty()))
            || prefix.contains('\\')
        {
            return Err(Invalid(format!(
                "--to {to:?}: the prefix {prefix:?} must be plain names separated by /"
            ))
            .into());
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }
}

/// The store's endpoint, region and addressing style.
fn endpoint(
    target: &Target,
    args: &PushArgs,
    settings: &credentials::Settings,
    env: &dyn credentials::Env,
) -> Result<Endpoint> {
    let region = args
        .region
        .clone()
        .or_else(|| env.var("AWS_REGION"))
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .or_else(|| settings.region.clone())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let given = args
        .endpoint
        .clone()
        .or_else(|| env.var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
        .or_else(|| settings.endpoint.clone());
    let (scheme, authority, shown) = match &given {
        Some(url) => {
            let (scheme, rest) = url.split_once("://").ok_or_else(|| {
                Invalid(format!(
                    "--endpoint {url:?}: give a URL such as https://ACCOUNT.r2.cloudflarestorage.com"
                ))
            })?;
            let authority = rest.trim_end_matches('/');
            if !matches!(scheme, "http" | "https")
                || authority.is_empty()
                || authority.contains(['/', '?', '#', '@'])
            {
                return Err(Invalid(format!(
                    "--endpoint {url:?}: give scheme and host only (https://HOST[:PORT]); the bucket goes in --to s3://BUCKET"
                ))
                .into());
            }
            // ureq sends Host without a default port; the signature must
            // sign the same text.
            let authority = authority
                .strip_suffix(if scheme == "https" { ":443" } else { ":80" })
                .unwrap_or(authority);
            (scheme.to_owned(), authority.to_owned(), url.clone())
        }
        None => {
            let a = format!("s3.{region}.amazonaws.com");
            ("https".to_owned(), a.clone(), format!("https://{a}"))
        }
    };
    let host_only = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority.as_str(), |(h, _)| h);
    // An address or localhost cannot carry the bucket as a subdomain, and
    // a dotted bucket name breaks the TLS name of virtual-hosted URLs.
    let path_style = args.path_style
        || host_only.parse::<std::net::IpAddr>().is_ok()
        || host_only.starts_with('[')
        || host_only == "localhost"
        || (scheme == "https" && target.bucket.contains('.'));
    let (host, base_path) = if path_style {
        (authority, format!("/{}", target.bucket))
    } else {
        (format!("{}.{authority}", target.bucket), String::new())
    };
    Ok(Endpoint {
        scheme,
        host,
        base_path,
        bucket: target.bucket.clone(),
        region,
        shown,
    })
}

pub fn run(args: &PushArgs) -> Result<ExitCode> {
    if args.token.is_some() {
        return Err(Invalid(
            "--token is for the edge; an S3 push takes its credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE and ~/.aws/credentials".into(),
        )
        .into());
    }
    let target = Target::parse(&args.to)?;
    // A bad --url stops the push before anything is sent.
    args.page.options()?;
    let env = credentials::Real;
    let settings = credentials::load(&env)?;
    let endpoint = endpoint(&target, args, &settings, &env)?;
    let creds = settings.credentials.clone().ok_or_else(|| {
        Invalid(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials".into(),
        )
    })?;
    let build = crate::publish::Settings::new(&crate::publish::BuildOptions {
        timestamp: args.timestamp,
        strict: args.strict,
        ..Default::default()
    })?;
    let config = build.config();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));

    let local = local::scan(&args.root, &build)?;
    let store = Store::new(endpoint, creds, settings.source.clone())?;
    let push = Push {
        store: &store,
        prefix: &target.prefix,
        args,
        config: &config,
        now,
    };
    push.run(&local)
}

struct Push<'a> {
    store: &'a Store,
    prefix: &'a str,
    args: &'a PushArgs,
    config: &'a ssgen_core::Config,
    now: i64,
}

/// What the bucket holds before the push: key below the prefix → (size,
/// ETag).
type Listing = BTreeMap<String, (u64, String)>;

/// What a push will do.
struct Plan<'a> {
    upload: Vec<Job<'a>>,
    /// In the bucket already.
    present: usize,
    /// Paths this run put there or checked by their metadata.
    verified: BTreeSet<String>,
    /// Local files the bucket is deleting after their grace period.
    waiting: Vec<String>,
}

impl Push<'_> {
    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    fn run(&self, local: &Local) -> Result<ExitCode> {
        let store = self.store;
        let listing = self.list()?;
        let (manifest, _) = self.read_manifest()?;
        let plan = self.plan(local, &listing, &manifest)?;
        let bytes: u64 = plan.upload.iter().map(|j| j.file.size).sum();
        eprintln!(
            "push: {} file(s) in the tree; {} in {}{} already, {} to upload ({bytes} bytes)",
            local.files.len(),
            plan.present,
            store.bucket_url(),
            if self.prefix.is_empty() {
                String::new()
            } else {
                format!("/{}", self.prefix.trim_end_matches('/'))
            },
            plan.upload.len(),
        );
        for p in &plan.waiting {
            eprintln!(
                "warning: {p}: the bucket is deleting this path after its grace period; push again once that is done to publish it"
            );
        }
        if !self.args.delete {
            let still: Vec<&String> = local
                .withdrawn
                .iter()
                .filter(|p| manifest.live(p).is_some())
                .collect();
            if !still.is_empty() {
                eprintln!(
                    "note: {} withdrawn file(s) are still in the bucket's catalog (e.g. {}); push with --delete to withdraw them there too",
                    still.len(),
                    still[0]
                );
            }
        }
        if self.args.dry_run {
            return self.dry_run(local, &plan, &manifest);
        }
        let conditional = self.probe()?;
        let opts = upload::Options {
            root: &self.args.root,
            part_size: self.args.part_size << 20,
            parallel: self.args.jobs,
            conditional,
        };
        let mut verified = plan.verified.clone();
        verified.extend(plan.upload.iter().map(|j| j.file.path.clone()));
        upload::run_all(store, plan.upload, &opts)?;
        if self.args.no_publish {
            eprintln!("push: uploaded; not published (--no-publish)");
            return Ok(ExitCode::SUCCESS);
        }
        self.commit(local, &mut verified, &plan.waiting, conditional, &opts)
    }

    /// ListObjectsV2 of `PREFIX/images/`. The first call: it also tells
    /// wrong credentials, a missing bucket and a web page apart.
    fn list(&self) -> Result<Listing> {
        let mut out = Listing::new();
        let prefix = self.key(&format!("{IMAGES}/"));
        let mut token: Option<String> = None;
        loop {
            let mut call = Call::new("GET", None)
                .query("list-type", "2")
                .query("prefix", &prefix);
            if let Some(t) = &token {
                call = call.query("continuation-token", t);
            }
            let a = self.store.send(&call)?;
            if !a.ok() {
                return Err(self
                    .store
                    .error(&format!("listing {}", self.store.bucket_url()), &a));
            }
            let text = String::from_utf8_lossy(&a.body);
            let doc = roxmltree::Document::parse(&text)
                .ok()
                .filter(|d| d.root_element().has_tag_name("ListBucketResult"));
            let Some(doc) = doc else {
                return Err(self.store.error(
                    &format!("listing {}", self.store.bucket_url()),
                    &Answer {
                        status: a.status,
                        headers: a.headers.clone(),
                        body: if a.body.is_empty() {
                            b"(an empty answer)".to_vec()
                        } else {
                            a.body.clone()
                        },
                    },
                ))
                .context("the endpoint did not answer as S3 does (no ListBucketResult); check --endpoint");
            };
            for c in doc.descendants().filter(|n| n.has_tag_name("Contents")) {
                let field = |tag: &str| {
                    c.children()
                        .find(|n| n.has_tag_name(tag))
                        .and_then(|n| n.text())
                        .map(str::to_owned)
                };
                if let (Some(key), Some(size)) =
                    (field("Key"), field("Size").and_then(|s| s.parse().ok()))
                    && let Some(rel) = key.strip_prefix(self.prefix)
                {
                    out.insert(rel.to_owned(), (size, field("ETag").unwrap_or_default()));
                }
            }
            token = xml_text(&a.body, "NextContinuationToken")
                .filter(|_| xml_text(&a.body, "IsTruncated").as_deref() == Some("true"));
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    fn read_manifest(&self) -> Result<(Manifest, Option<String>)> {
        let key = self.key(manifest::KEY);
        let a = self.store.send(&Call::new("GET", Some(&key)))?;
        if a.status == 404 && a.code().as_deref() == Some("NoSuchKey") {
            return Ok((Manifest::empty(), None));
        }
        if !a.ok() {
            return Err(self.store.error(&format!("reading {key}"), &a));
        }
        let m = Manifest::parse(&a.body, &key).map_err(|e| Invalid(format!("{e:#}")))?;
        Ok((m, a.etag()))
    }

    fn plan<'l>(&self, local: &'l Local, listing: &Listing, m: &Manifest) -> Result<Plan<'l>> {
        let mut plan = Plan {
            upload: Vec::new(),
            present: 0,
            verified: BTreeSet::new(),
            waiting: Vec::new(),
        };
        let mut conflicts = Vec::new();
        for f in &local.files {
            let sha = f.sha256.to_hex();
            let job = |expect| Job {
                file: f,
                key: self.key(&f.path),
                expect,
            };
            if m.purging.contains(&f.path) {
                plan.waiting.push(f.path.clone());
                continue;
            }
            match (m.files.get(&f.path), listing.get(&f.path)) {
                (Some(info), Some(_)) if info.sha256 == sha => plan.present += 1,
                (Some(info), None) if info.sha256 == sha => plan.upload.push(job(Expect::Absent)),
                (Some(info), _) => conflicts.push(conflict(&f.path, &info.sha256, m)),
                (None, Some((size, etag))) => {
                    if *size == f.size && self.object_sha256(&f.path)?.as_deref() == Some(&sha) {
                        plan.present += 1;
                        plan.verified.insert(f.path.clone());
                    } else {
                        plan.upload.push(job(Expect::Etag(etag.clone())));
                    }
                }
                (None, None) => plan.upload.push(job(Expect::Absent)),
            }
        }
        if !conflicts.is_empty() {
            return Err(Invalid(format!(
                "{} file(s) differ from what the bucket publishes at the same path; nothing was pushed:\n  {}",
                conflicts.len(),
                conflicts.join("\n  ")
            ))
            .into());
        }
        // Image files and side files first, catalogs after: small first,
        // so a stopped push leaves the most files complete.
        plan.upload
            .sort_by_key(|j| (j.file.size, j.file.path.clone()));
        Ok(plan)
    }

    /// The `sha256` metadata of an object, if it has one.
    fn object_sha256(&self, rel: &str) -> Result<Option<String>> {
        let a = self.store.send(&Call::new("HEAD", Some(&self.key(rel))))?;
        if a.status == 404 {
            return Ok(None);
        }
        if !a.ok() {
            return Err(self.store.error(&format!("reading {rel}"), &a));
        }
        Ok(a.header("x-amz-meta-sha256").map(str::to_owned))
    }

    /// Whether the store honours `If-Match` on writes: a put conditional
    /// on an ETag no object has must be refused (412, or 404 when nothing
    /// is there), and then nothing was written.
    fn probe(&self) -> Result<bool> {
        let key = self.key(".ssgen/probe");
        let call = Call::new("PUT", Some(&key))
            .header("if-match", "\"ssgen-probe-matches-no-object\"")
            .body(Body::Bytes(b""), sigv4::EMPTY_SHA256);
        let a = self.store.send(&call)?;
        match a.status {
            412 | 404 => Ok(true),
            s if (200..300).contains(&s) => {
                let _ = self.store.send(&Call::new("DELETE", Some(&key)));
                eprintln!(
                    "warning: this store ignores conditional writes (If-Match): two pushes to {} at the same time could lose each other's images; run one at a time",
                    self.store.bucket_url()
                );
                Ok(false)
            }
            400 | 501
                if a.code()
                    .as_deref()
                    .is_some_and(|c| c.contains("NotImplemented")) =>
            {
                eprintln!(
                    "warning: this store does not support conditional writes: two pushes to {} at the same time could lose each other's images; run one at a time",
                    self.store.bucket_url()
                );
                Ok(false)
            }
            _ => Err(self.store.error("writing to the bucket", &a)),
        }
    }

    /// The manifest this push would write on `latest`, and the paths it
    /// must upload first because they went missing meanwhile.
    fn merge(
        &self,
        local: &Local,
        latest: &Manifest,
        verified: &BTreeSet<String>,
    ) -> Result<(Manifest, Vec<String>)> {
        let mut next = latest.clone();
        let mut missing = Vec::new();
        let mut conflicts = Vec::new();
        let ours: BTreeSet<&str> = local.files.iter().map(|f| f.path.as_str()).collect();
        for f in &local.files {
            if latest.purging.contains(&f.path) {
                continue;
            }
            let sha = f.sha256.to_hex();
            match latest.files.get(&f.path) {
                Some(info) if info.sha256 == sha => {
                    next.removed.remove(&f.path);
                }
                Some(info) => conflicts.push(conflict(&f.path, &info.sha256, latest)),
                None if !verified.contains(&f.path) => missing.push(f.path.clone()),
                None => {
                    next.files.insert(f.path.clone(), file_info(f));
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(Invalid(format!(
                "another push published other bytes at {} path(s) meanwhile; nothing was published:\n  {}",
                conflicts.len(),
                conflicts.join("\n  ")
            ))
            .into());
        }
        if self.args.delete {
            let grace = i64::from(self.args.grace) * 3600;
            // Only what an earlier push took out of the catalog goes now.
            for (path, since) in &latest.removed {
                if since + grace <= self.now && !ours.contains(path.as_str()) {
                    next.files.remove(path);
                    next.removed.remove(path);
                    next.purging.insert(path.clone());
                }
            }
            for path in latest.files.keys() {
                if !ours.contains(path.as_str()) && !latest.removed.contains_key(path) {
                    next.removed.insert(path.clone(), self.now);
                }
            }
        }
        Ok((next, missing))
    }

    /// The catalog the core builds from `m`, with the catalog now in the
    /// bucket as the previous one (an unchanged tree keeps its `updated`).
    fn build(&self, m: &Manifest) -> Result<ssgen_core::Output> {
        let (entries, digests) = m.listing();
        let scan = ssgen_core::scan(&entries, self.config);
        let plan = scan.plan(&digests);
        if let Some(job) = plan.jobs().next() {
            bail!(
                "{}: the bucket's manifest has no digest for {}; delete it and push again to rebuild it",
                self.key(manifest::KEY),
                job.path
            );
        }
        let key = self.key(IMAGES_JSON);
        let a = self.store.send(&Call::new("GET", Some(&key)))?;
        let previous = if a.ok() {
            String::from_utf8(a.body).ok()
        } else if a.status == 404 {
            None
        } else {
            return Err(self.store.error(&format!("reading {key}"), &a));
        };
        match ssgen_core::build(&scan, &digests, self.config, previous.as_deref()) {
            Ok(out) => Ok(out),
            Err(ssgen_core::Error::Invalid(problems)) => {
                for d in &problems {
                    eprintln!("{d}");
                }
                Err(Invalid(format!(
                    "{} problem(s) above in what the bucket would hold; nothing was published and its catalog is unchanged",
                    problems.len()
                ))
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn dry_run(&self, local: &Local, plan: &Plan<'_>, m: &Manifest) -> Result<ExitCode> {
        let mut verified = plan.verified.clone();
        verified.extend(plan.upload.iter().map(|j| j.file.path.clone()));
        for j in &plan.upload {
            println!("upload   {} ({} bytes)", j.file.path, j.file.size);
        }
        let (next, _) = self.merge(local, m, &verified)?;
        for p in next.removed.keys().filter(|p| !m.removed.contains_key(*p)) {
            println!("withdraw {p} (leaves the catalog; deleted after the grace period)");
        }
        for p in next.purging.difference(&m.purging) {
            println!("delete   {p} (grace period over)");
        }
        let out = self.build(&next)?;
        println!(
            "catalog  {} product(s), {} image(s){}",
            out.products,
            out.images,
            if next.same_contents(m) {
                " (unchanged)"
            } else {
                ""
            }
        );
        Ok(ExitCode::SUCCESS)
    }

    fn commit(
        &self,
        local: &Local,
        verified: &mut BTreeSet<String>,
        waiting: &[String],
        conditional: bool,
        opts: &upload::Options<'_>,
    ) -> Result<ExitCode> {
        let key = self.key(manifest::KEY);
        for attempt in 1..=ATTEMPTS {
            let (latest, etag) = self.read_manifest()?;
            let (mut next, missing) = self.merge(local, &latest, verified)?;
            if !missing.is_empty() {
                // Gone since the plan (another push deleted them after their
                // grace period): send them again, then merge again.
                let jobs = local
                    .files
                    .iter()
                    .filter(|f| missing.contains(&f.path))
                    .map(|f| Job {
                        file: f,
                        key: self.key(&f.path),
                        expect: Expect::Absent,
                    })
                    .collect();
                upload::run_all(self.store, jobs, opts)?;
                verified.extend(missing);
                continue;
            }
            let out = self.build(&next)?;
            let catalog = manifest::Catalog {
                images_sha256: Sha256::of(out.images_json.as_bytes()).to_hex(),
                index_sha256: Sha256::of(out.index_json.as_bytes()).to_hex(),
            };
            let changed = !next.same_contents(&latest) || latest.catalog.as_ref() != Some(&catalog);
            if changed {
                next.generation = latest.generation + 1;
                next.catalog = Some(catalog);
                let mut call = Call::new("PUT", Some(&key))
                    .header("content-type", "application/json")
                    .header("cache-control", "no-cache");
                if conditional {
                    call = match &etag {
                        Some(e) => call.header("if-match", e),
                        None => call.header("if-none-match", "*"),
                    };
                }
                let bytes = next.to_bytes();
                let sha = Sha256::of(&bytes).to_hex();
                let a = self.store.send(&call.body(Body::Bytes(&bytes), &sha))?;
                if a.status == 412 || a.status == 409 {
                    // Another push swapped first: rebuild on its manifest.
                    std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(attempt)));
                    continue;
                }
                if !a.ok() {
                    return Err(self.store.error(&format!("writing {key}"), &a).context(
                        "the files are uploaded but not published; the catalog is unchanged: push again",
                    ));
                }
            }
            let written = self.write_catalogs(&out, next.generation, conditional)?;
            self.purge(&next, conditional)?;
            eprintln!(
                "push: {} generation {} ({} product(s), {} image(s)){}",
                if changed { "published" } else { "unchanged at" },
                next.generation,
                out.products,
                out.images,
                if written {
                    ""
                } else {
                    "; a newer push has written its catalog, which includes these files"
                }
            );
            if !waiting.is_empty() {
                eprintln!(
                    "push: {} file(s) wait for the bucket's deletions: push again",
                    waiting.len()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(anyhow!(
            "{ATTEMPTS} other pushes replaced {key} first in a row; the files are uploaded, push again to publish them"
        ))
    }

    /// images.json, then index.json (then index.html with --html); false
    /// when a newer generation's catalog is there already.
    fn write_catalogs(
        &self,
        out: &ssgen_core::Output,
        generation: u64,
        conditional: bool,
    ) -> Result<bool> {
        for (rel, text) in [
            (IMAGES_JSON, &out.images_json),
            (INDEX_JSON, &out.index_json),
        ] {
            if !self.put_catalog(rel, text.as_bytes(), generation, conditional)? {
                return Ok(false);
            }
        }
        if self.args.page.html {
            // After index.json: the page lists what the catalog holds.
            let page = crate::page::render(
                &out.index_json,
                &out.images_json,
                &self.args.page.options()?,
            );
            let name = ssgen_core::html::FILE_NAME;
            if !self.put_catalog(name, page.as_bytes(), generation, conditional)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn put_catalog(
        &self,
        rel: &str,
        body: &[u8],
        generation: u64,
        conditional: bool,
    ) -> Result<bool> {
        let key = self.key(rel);
        let sha = Sha256::of(body).to_hex();
        let gen_text = generation.to_string();
        for _ in 0..ATTEMPTS {
            let head = self.store.send(&Call::new("HEAD", Some(&key)))?;
            let expect = if head.ok() {
                let theirs: u64 = head
                    .header("x-amz-meta-generation")
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0);
                if theirs > generation {
                    return Ok(false);
                }
                if theirs == generation && head.header("x-amz-meta-sha256") == Some(&sha) {
                    return Ok(true);
                }
                head.etag().map(Expect::Etag)
            } else if head.status == 404 {
                Some(Expect::Absent)
            } else {
                return Err(self.store.error(&format!("reading {key}"), &head));
            };
            let mut call = Call::new("PUT", Some(&key))
                .header("x-amz-meta-sha256", &sha)
                .header("x-amz-meta-generation", &gen_text);
            for (k, v) in upload::object_headers(rel) {
                call = call.header(&k, &v);
            }
            match (&expect, conditional) {
                (Some(Expect::Absent), true) => call = call.header("if-none-match", "*"),
                (Some(Expect::Etag(e)), true) => call = call.header("if-match", e),
                _ => {}
            }
            let a = self.store.send(&call.body(Body::Bytes(body), &sha))?;
            if a.ok() {
                return Ok(true);
            }
            if a.status != 412 && a.status != 409 {
                return Err(self
                    .store
                    .error(&format!("writing {key}"), &a)
                    .context("the manifest is published; push again to write the catalog"));
            }
        }
        bail!("{key}: other pushes kept replacing it; push again")
    }

    /// Deletes what the committed manifest is purging, then takes it out
    /// of the manifest.
    fn purge(&self, committed: &Manifest, conditional: bool) -> Result<()> {
        if committed.purging.is_empty() {
            return Ok(());
        }
        for rel in &committed.purging {
            let a = self
                .store
                .send(&Call::new("DELETE", Some(&self.key(rel))))?;
            if !a.ok() && a.status != 404 {
                return Err(self.store.error(&format!("deleting {rel}"), &a));
            }
        }
        eprintln!(
            "push: deleted {} file(s) whose grace period was over",
            committed.purging.len()
        );
        let key = self.key(manifest::KEY);
        for _ in 0..ATTEMPTS {
            let (mut m, etag) = self.read_manifest()?;
            let before = m.purging.len();
            m.purging.retain(|p| !committed.purging.contains(p));
            if m.purging.len() == before {
                return Ok(());
            }
            let bytes = m.to_bytes();
            let sha = Sha256::of(&bytes).to_hex();
            let mut call = Call::new("PUT", Some(&key))
                .header("content-type", "application/json")
                .header("cache-control", "no-cache");
            if conditional && let Some(e) = &etag {
                call = call.header("if-match", e);
            }
            let a = self.store.send(&call.body(Body::Bytes(&bytes), &sha))?;
            if a.ok() {
                return Ok(());
            }
            if a.status != 412 {
                return Err(self.store.error(&format!("writing {key}"), &a));
            }
        }
        // The next push finishes it; nothing is wrong meanwhile.
        Ok(())
    }
}

fn file_info(f: &LocalFile) -> FileInfo {
    FileInfo {
        size: f.size,
        sha256: f.sha256.to_hex(),
        combined: f
            .combined
            .iter()
            .map(|(k, v)| (k.clone(), v.to_hex()))
            .collect(),
        contents: f.contents.clone(),
    }
}

fn conflict(path: &str, theirs: &str, m: &Manifest) -> String {
    if m.removed.contains_key(path) {
        format!(
            "{path}: withdrawn from the bucket with other bytes (sha256 {theirs}), which stay for the grace period; \
             give the new build another version directory, or push it after `ssgen push --delete` has deleted the old one"
        )
    } else {
        format!(
            "{path}: the bucket publishes other bytes here (sha256 {theirs}); published files never change: \
             give the new build another version directory"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("s3://images/lxd/").expect("valid"),
            Target {
                bucket: "images".into(),
                prefix: "lxd/".into()
            }
        );
        assert_eq!(Target::parse("s3://my.bucket").expect("valid").prefix, "");
        for bad in [
            "s3://B",
            "s3://ab",
            "s3://x/../y",
            "s3://bucket/a//b",
            "s3://-x-/p",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
