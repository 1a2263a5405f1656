//! Sending files: one signed `PUT` each, or a multipart upload for files
//! larger than a part, resumable across runs. Several files go at once,
//! with a progress bar for each and one for all.
//!
//! Every body is signed with its sha256, so the store refuses bytes that
//! are not the ones hashed. A multipart upload's id is kept in
//! `ROOT/.ssgen/s3-uploads.json` from the moment it is created; a later
//! run asks the store which parts it holds, re-reads those parts locally
//! and keeps each whose MD5 is the part's ETag, so only the missing parts
//! are sent again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{MultiProgress, ProgressBar};
use md5::Md5;
use sha2::{Digest as _, Sha256 as Sha2};

use super::client::{Answer, Body, Call, Store, xml_text};
use super::local::LocalFile;
use crate::fsx;

/// S3 allows at most this many parts.
const MAX_PARTS: u64 = 10_000;

/// What the store must hold at the key for a write to go ahead.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Nothing (`If-None-Match: *`).
    Absent,
    /// The object with this ETag (`If-Match`), a leftover never published.
    Etag(String),
}

pub struct Job<'a> {
    pub file: &'a LocalFile,
    pub key: String,
    pub expect: Expect,
}

/// How uploads are sent.
pub struct Options<'a> {
    pub root: &'a Path,
    pub part_size: u64,
    pub parallel: usize,
    /// Whether the store honours conditional writes.
    pub conditional: bool,
}

/// Content type and cache policy, as `ssgen serve` sends them.
pub fn object_headers(path: &str) -> Vec<(String, String)> {
    vec![
        (
            "content-type".into(),
            crate::http::content_type(Path::new(path)).to_owned(),
        ),
        (
            "cache-control".into(),
            crate::http::cache_control(path).to_owned(),
        ),
    ]
}

/// Sends every job; the first failure stops the others from starting more.
pub fn run_all(store: &Store, jobs: Vec<Job<'_>>, opts: &Options<'_>) -> Result<()> {
    let total: u64 = jobs.iter().map(|j| j.file.size).sum();
    let multi = crate::progress::multi();
    let overall = multi.add(crate::progress::bytes(total, "uploading"));
    overall.set_message(format!("{} file(s)", jobs.len()));
    let state = Mutex::new(ResumeState::load(opts.root));
    let queue = Mutex::new(jobs.into_iter().rev().collect::<Vec<_>>());
    let failed = AtomicBool::new(false);
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.parallel.max(1) {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let Some(job) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return;
                    };
                    let result = upload(store, &job, opts, &state, &multi, &overall);
                    if let Err(e) = result {
                        failed.store(true, Ordering::SeqCst);
                        if let Ok(mut errs) = errors.lock() {
                            errs.push(e);
                        }
                    }
                }
            });
        }
    });
    overall.finish_and_clear();
    let mut errors = errors.into_inner().unwrap_or_default();
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        n => {
            let first = errors.remove(0);
            for e in &errors {
                eprintln!("error: {e:#}");
            }
            Err(first.context(format!("{n} uploads failed (the others above)")))
        }
    }
}

fn upload(
    store: &Store,
    job: &Job<'_>,
    opts: &Options<'_>,
    state: &Mutex<ResumeState>,
    multi: &MultiProgress,
    overall: &ProgressBar,
) -> Result<()> {
    let name = job.file.path.rsplit('/').next().unwrap_or(&job.file.path);
    let bar = multi.insert_before(overall, crate::progress::bytes(job.file.size, "  "));
    bar.set_message(name.to_owned());
    let bars = [&bar, overall];
    let path = opts.root.join(&job.file.path);
    let result = if job.file.size > opts.part_size {
        multipart(store, job, opts, &path, state, &bars)
    } else {
        single(store, job, opts, &path, &bars)
    };
    bar.finish_and_clear();
    multi.remove(&bar);
    result.with_context(|| format!("uploading {}", job.file.path))
}

fn conditions<'a>(call: Call<'a>, expect: &Expect, conditional: bool) -> Call<'a> {
    match (expect, conditional) {
        (_, false) => call,
        (Expect::Absent, true) => call.header("if-none-match", "*"),
        (Expect::Etag(e), true) => call.header("if-match", e),
    }
}

fn single(
    store: &Store,
    job: &Job<'_>,
    opts: &Options<'_>,
    path: &Path,
    bars: &[&ProgressBar],
) -> Result<()> {
    let sha = job.file.sha256.to_hex();
    let body = match &job.file.contents {
        Some(text) => Body::Bytes(text.as_bytes()),
        None => Body::File {
            path,
            offset: 0,
            len: job.file.size,
            bars,
        },
    };
    let mut call = Call::new("PUT", Some(&job.key))
        .body(body, &sha)
        .header("x-amz-meta-sha256", &sha);
    for (k, v) in object_headers(&job.file.path) {
        call = call.header(&k, &v);
    }
    let a = store.send(&conditions(call, &job.expect, opts.conditional))?;
    if job.file.contents.is_some() {
        for b in bars {
            b.inc(job.file.size);
        }
    }
    settle(store, job, &a, "PUT")
}

/// Success, or a lost race that left the same bytes there.
fn settle(store: &Store, job: &Job<'_>, a: &Answer, what: &str) -> Result<()> {
    if a.ok() {
        return Ok(());
    }
    if a.status == 412 {
        let head = store.send(&Call::new("HEAD", Some(&job.key)))?;
        if head.ok() && head.header("x-amz-meta-sha256") == Some(&job.file.sha256.to_hex()) {
            return Ok(());
        }
        return Err(crate::exit::Invalid(format!(
            "{}: another push wrote other bytes to {} at the same time; files never change once uploaded: \
             give one of the builds another version directory",
            job.file.path, job.key
        ))
        .into());
    }
    if a.status == 400 && a.code().as_deref() == Some("XAmzContentSHA256Mismatch") {
        bail!(
            "{}: the file changed while it was sent (the store computed another sha256); run the push again once it is complete",
            job.file.path
        );
    }
    Err(store.error(what, a))
}

fn multipart(
    store: &Store,
    job: &Job<'_>,
    opts: &Options<'_>,
    path: &Path,
    state: &Mutex<ResumeState>,
    bars: &[&ProgressBar],
) -> Result<()> {
    let f = job.file;
    let part_size = opts
        .part_size
        .max(f.size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20));
    let sha = f.sha256.to_hex();
    let state_key = format!(
        "{} {} {}",
        store.endpoint.shown, store.endpoint.bucket, job.key
    );
    let resumed = state
        .lock()
        .ok()
        .and_then(|s| s.uploads.get(&state_key).cloned())
        .filter(|u| u.sha256 == sha && u.size == f.size && u.part_size == part_size);
    let (id, held) = match resumed.and_then(|u| {
        list_parts(store, &job.key, &u.upload_id)
            .transpose()
            .map(|parts| parts.map(|p| (u.upload_id, p)))
    }) {
        Some(r) => r?,
        None => {
            let mut call = Call::new("POST", Some(&job.key))
                .query("uploads", "")
                .header("x-amz-meta-sha256", &sha);
            for (k, v) in object_headers(&f.path) {
                call = call.header(&k, &v);
            }
            let a = store.send(&call)?;
            if !a.ok() {
                return Err(store.error("starting a multipart upload", &a));
            }
            let id = xml_text(&a.body, "UploadId").ok_or_else(|| {
                anyhow!("the store's answer to CreateMultipartUpload has no UploadId")
            })?;
            if let Ok(mut s) = state.lock() {
                s.uploads.insert(
                    state_key.clone(),
                    Upload {
                        upload_id: id.clone(),
                        sha256: sha.clone(),
                        size: f.size,
                        part_size,
                    },
                );
                s.save();
            }
            (id, BTreeMap::new())
        }
    };

    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut whole = Sha2::new();
    let mut etags = Vec::new();
    let mut offset = 0;
    let mut number: u64 = 1;
    while offset < f.size {
        let len = part_size.min(f.size - offset);
        // MD5 only to match a part the store already holds.
        let (part_sha, part_md5) = hash_part(
            &mut file,
            offset,
            len,
            &mut whole,
            held.contains_key(&number),
        )
        .with_context(|| format!("cannot read {}", path.display()))?;
        let etag = match held.get(&number) {
            Some((etag, size)) if *size == len && etag.trim_matches('"') == part_md5 => {
                for b in bars {
                    b.inc(len);
                }
                etag.clone()
            }
            _ => {
                let n = number.to_string();
                let call = Call::new("PUT", Some(&job.key))
                    .query("partNumber", &n)
                    .query("uploadId", &id)
                    .body(
                        Body::File {
                            path,
                            offset,
                            len,
                            bars,
                        },
                        &part_sha,
                    );
                let a = store.send(&call)?;
                if !a.ok() {
                    return Err(store
                        .error(
                            &format!("part {number} (bytes {offset}..{})", offset + len),
                            &a,
                        )
                        .context("the parts sent so far are kept: push again to resume"));
                }
                a.etag()
                    .ok_or_else(|| anyhow!("part {number}: the store's answer has no ETag"))?
            }
        };
        etags.push((number, etag));
        offset += len;
        number += 1;
    }
    if hex(&whole.finalize()) != sha {
        let _ = store.send(&Call::new("DELETE", Some(&job.key)).query("uploadId", &id));
        forget(state, &state_key);
        bail!(
            "{}: the file changed since it was hashed; run the push again once it is complete",
            f.path
        );
    }
    let xml: String = std::iter::once("<CompleteMultipartUpload>".to_owned())
        .chain(etags.iter().map(|(n, e)| {
            format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                xml_escape(e)
            )
        }))
        .chain(std::iter::once("</CompleteMultipartUpload>".to_owned()))
        .collect();
    let xml_sha = hex(&Sha2::digest(xml.as_bytes()));
    let call = Call::new("POST", Some(&job.key))
        .query("uploadId", &id)
        .header("content-type", "application/xml")
        .body(Body::Bytes(xml.as_bytes()), &xml_sha);
    let a = store.send(&conditions(call, &job.expect, opts.conditional))?;
    // CompleteMultipartUpload may fail after answering 200: the error is
    // then in the body.
    let failed_late = a.ok() && xml_text(&a.body, "Code").is_some();
    if failed_late {
        return Err(store.error(
            "completing the multipart upload",
            &Answer {
                status: 500,
                headers: a.headers,
                body: a.body,
            },
        ));
    }
    if a.status == 412 {
        let _ = store.send(&Call::new("DELETE", Some(&job.key)).query("uploadId", &id));
    }
    let done = settle(store, job, &a, "completing the multipart upload");
    if done.is_ok() || a.status == 404 {
        forget(state, &state_key);
    }
    done
}

/// The parts the store holds for an upload: number → (ETag, size), or
/// `None` when the upload is gone (completed, aborted or expired).
fn list_parts(
    store: &Store,
    key: &str,
    upload_id: &str,
) -> Result<Option<BTreeMap<u64, (String, u64)>>> {
    let mut parts = BTreeMap::new();
    let mut marker = String::new();
    loop {
        let mut call = Call::new("GET", Some(key)).query("uploadId", upload_id);
        if !marker.is_empty() {
            call = call.query("part-number-marker", &marker);
        }
        let a = store.send(&call)?;
        if a.status == 404 {
            return Ok(None);
        }
        if !a.ok() {
            return Err(store.error("listing the parts of an interrupted upload", &a));
        }
        let text = String::from_utf8_lossy(&a.body);
        let doc = roxmltree::Document::parse(&text)
            .map_err(|e| anyhow!("the store's ListParts answer is not XML ({e})"))?;
        for p in doc.descendants().filter(|n| n.has_tag_name("Part")) {
            let field = |tag: &str| {
                p.children()
                    .find(|c| c.has_tag_name(tag))
                    .and_then(|c| c.text())
                    .map(str::to_owned)
            };
            if let (Some(n), Some(etag), Some(size)) = (
                field("PartNumber").and_then(|n| n.parse().ok()),
                field("ETag"),
                field("Size").and_then(|s| s.parse().ok()),
            ) {
                parts.insert(n, (etag, size));
            }
        }
        let truncated = xml_text(&a.body, "IsTruncated").as_deref() == Some("true");
        match xml_text(&a.body, "NextPartNumberMarker") {
            Some(next) if truncated && next != marker => marker = next,
            _ => return Ok(Some(parts)),
        }
    }
}

/// Reads `len` bytes at `offset`: (sha256 hex, md5 hex when `with_md5`,
/// else empty), feeding `whole`.
fn hash_part(
    file: &mut File,
    offset: u64,
    len: u64,
    whole: &mut Sha2,
    with_md5: bool,
) -> std::io::Result<(String, String)> {
    file.seek(SeekFrom::Start(offset))?;
    let mut sha = Sha2::new();
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than when it was hashed",
            ));
        }
        sha.update(&buf[..n]);
        if with_md5 {
            md5.update(&buf[..n]);
        }
        whole.update(&buf[..n]);
        left -= n as u64;
    }
    let md5 = if with_md5 {
        hex(&md5.finalize())
    } else {
        String::new()
    };
    Ok((hex(&sha.finalize()), md5))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn forget(state: &Mutex<ResumeState>, key: &str) {
    if let Ok(mut s) = state.lock()
        && s.uploads.remove(key).is_some()
    {
        s.save();
    }
}

/// Multipart uploads under way, by `endpoint bucket key`.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct ResumeState {
    uploads: BTreeMap<String, Upload>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Upload {
    upload_id: String,
    sha256: String,
    size: u64,
    part_size: u64,
}

impl ResumeState {
    fn load(root: &Path) -> Self {
        let path = root.join(".ssgen").join("s3-uploads.json");
        let mut s: Self = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        s.path = Some(path);
        s
    }

    /// Saving only makes a later run faster: a failure is a warning.
    fn save(&self) {
        let Some(path) = &self.path else { return };
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        if let Err(e) = fsx::write_atomic(path, text.as_bytes()) {
            eprintln!("warning: an interrupted push will not resume its multipart uploads: {e:#}");
        }
    }
}
