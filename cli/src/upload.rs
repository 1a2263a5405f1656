//! The upload API of `ssgen serve`: `PUT` of one file, the multipart form
//! `POST /images/` of lxd-image-server's users, `POST …?combined`, and
//! `DELETE`, which withdraws.
//!
//! What may go where, which headers an upload carries and which bytes are
//! refused are the core's serving contract
//! ([`ssgen_core::serve::upload`]), which the edge Worker follows too: a
//! file the build would never publish (a bad version name, an unknown
//! architecture, a name that is no image file) is refused at once with
//! the build's reason, and a file the build would refuse (cut short, a
//! metadata tarball the daemons cannot import, bytes that are not what
//! the name says) before it is stored.
//!
//! Every write goes through [`crate::confine`]: a body is streamed into a
//! hidden staging file that its writer keeps locked (so that a build can
//! tell an abandoned one from a live one), and renamed into place under
//! the root lock without replacing anything, so that of two different
//! bodies for one new path exactly one is stored. Only a side file
//! (`metadata.json`, `.requirements`) is replaced, which no client
//! downloads. A PUT and a form answer alike: one `<status> <path>` line
//! per file, or with `Accept: application/json` the JSON the edge answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, BodyStream};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap};
use hyper::{Request, Response, StatusCode};
use rustix::fs::{FlockOperation, flock};
use sha2::Digest as _;
use ssgen_core::serve::{api, upload as rules};
use ssgen_core::withdrawn::{self, Withdrawn};
use ssgen_core::{Client, HashJob, HashPlan, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::confine::{self, Place, Renamed, Root};
use crate::http::{Body, HttpError, RequestBody, Server, bad, internal, json, text, wants_json};

/// A staging file younger than this is never taken for abandoned: its
/// writer may not have locked it yet.
const FRESH: Duration = Duration::from_secs(60);

/// Whether the upload staging file at `path` has no live writer: nobody
/// holds its lock, and it is not fresh.
pub fn is_abandoned(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let old = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > FRESH);
    old && flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// A file stored (or found there already).
struct Kept {
    status: StatusCode,
    path: String,
    sha256: Sha256,
    size: u64,
}

/// `PUT /images/<os>/<release>/<arch>/<variant>/<version>/<file>`, or a
/// side file at its level.
pub async fn put(
    server: &Server,
    rel: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, HttpError> {
    let target = target(rel)?;
    let headers = req.headers().clone();
    let text_of = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    let expected = rules::claimed_sha256(
        text_of(rules::SHA256_HEADER),
        text_of(rules::CHECKSUM_HEADER),
    )
    .map_err(bad)?;
    let claims = match text_of(rules::COMBINED_HEADER) {
        Some(h) => rules::parse_combined(&target, h).map_err(|e| bad(format!("{target}: {e}")))?,
        None => Vec::new(),
    };
    let kept = store(server, &target, req.into_body(), expected).await?;
    if !wants_json(&headers) && claims.is_empty() {
        return Ok(answer(&[(kept.status, kept.path)]));
    }
    let combined = if rules::has_magic(&target) && !rules::is_metadata(&target) {
        let have = combined_of(server, &target, kept.size).await?;
        check_claims(
            &target,
            &claims,
            &have,
            "the file is stored, the false fingerprint was not",
        )?;
        Some(have)
    } else {
        None
    };
    let created = kept.status == StatusCode::CREATED;
    let stored = api::Stored {
        path: kept.path,
        sha256: kept.sha256.to_hex(),
        size: kept.size,
        stored: Some(created),
        reason: (!created).then(|| api::Stored::ALREADY.to_owned()),
        combined,
    };
    Ok(json(kept.status, &stored))
}

/// `curl -F "upload=@file;filename=<path under images/>" URL/images/`,
/// the habit of lxd-image-server's users. A part that fails stops the
/// form; the answer says which parts before it were stored.
pub async fn form(server: &Server, req: Request<RequestBody>) -> Result<Response<Body>, HttpError> {
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| bad("expected multipart/form-data"))?;
    let stream = BodyStream::new(req.into_body())
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut stored: Vec<(StatusCode, String)> = Vec::new();
    let with_stored = |e: HttpError, stored: &[(StatusCode, String)]| {
        if stored.is_empty() {
            return e;
        }
        let lines: Vec<String> = stored
            .iter()
            .map(|(s, p)| format!("{} {p}", s.as_u16()))
            .collect();
        HttpError::new(
            e.status(),
            format!(
                "{}\nstored before this failure (kept):\n{}",
                e.message(),
                lines.join("\n")
            ),
        )
    };
    loop {
        let field = match parts.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(with_stored(bad(format!("malformed form: {e}")), &stored)),
        };
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let rel = ssgen_core::serve::in_images_dir(&file_name);
        let target = match target(&rel) {
            Ok(t) => t,
            Err(e) => return Err(with_stored(e, &stored)),
        };
        let body = http_body_util::StreamBody::new(
            field
                .map_ok(Frame::data)
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        match store(server, &target, body, None).await {
            Ok(kept) => stored.push((kept.status, kept.path)),
            Err(e) => return Err(with_stored(e, &stored)),
        }
    }
    if stored.is_empty() {
        return Err(bad(
            "no file in the form (use -F \"upload=@FILE;filename=PATH\")",
        ));
    }
    Ok(answer(&stored))
}

/// `POST /images/<root>?combined` with `X-Ssgen-Combined`: the combined
/// fingerprints of a stored root file with the metadata files beside it,
/// computed from the files, and the claims checked against them (for a
/// metadata file that arrived after its root).
pub async fn combined(
    server: &Server,
    rel: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, HttpError> {
    let header = headers
        .get(rules::COMBINED_HEADER)
        .map(|v| v.to_str().unwrap_or_default())
        .unwrap_or_default();
    let claims = rules::parse_combined(rel, header).map_err(|e| bad(format!("{rel}: {e}")))?;
    if claims.is_empty() {
        return Err(bad(format!(
            "{rel}: ?combined takes a root file and X-Ssgen-Combined: <metadata file>=<sha256(metadata ‖ root)>"
        )));
    }
    let root = Root::open(&server.root).map_err(|e| place_error(server, &e))?;
    let size = match root.place(rel, false).and_then(|p| p.stat()) {
        Ok(Some(st)) if !confine::is_dir(&st) => u64::try_from(st.st_size).unwrap_or(0),
        Ok(_) => {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                format!("{rel}: no such file"),
            ));
        }
        Err(e) => return Err(place_error(server, &e)),
    };
    let have = combined_of(server, rel, size).await?;
    let missing: Vec<&str> = claims
        .iter()
        .filter(|(m, _)| !have.contains_key(m))
        .map(|(m, _)| m.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "{rel}: X-Ssgen-Combined names {}, which the server does not hold: upload the metadata file first",
                missing.join(", ")
            ),
        ));
    }
    check_claims(rel, &claims, &have, "the right one is computed")?;
    let sha = sha256_file(&root.join(rel)).await.map_err(internal)?;
    Ok(json(
        StatusCode::OK,
        &api::Stored {
            path: rel.to_owned(),
            sha256: sha.to_hex(),
            size,
            stored: None,
            reason: None,
            combined: Some(have),
        },
    ))
}

/// Refuses claims that differ from what the files say.
fn check_claims(
    rel: &str,
    claims: &[(String, Sha256)],
    have: &BTreeMap<String, String>,
    file: &str,
) -> Result<(), HttpError> {
    let false_claims: Vec<String> = claims
        .iter()
        .filter(|(m, d)| have.get(m) != Some(&d.to_hex()))
        .map(|(m, d)| {
            format!(
                "X-Ssgen-Combined {m}={d} is not sha256({m} ‖ {}) of the files here, which is {}",
                rel.rsplit('/').next().unwrap_or(rel),
                have.get(m).map_or("unknown", String::as_str)
            )
        })
        .collect();
    if false_claims.is_empty() {
        Ok(())
    } else {
        Err(bad(format!(
            "{rel}: {}; {file}: compute sha256(metadata ‖ root) over the files as uploaded",
            false_claims.join("; ")
        )))
    }
}

/// The combined fingerprints of the root file `rel` (of `size` bytes) with
/// each metadata file beside it, read as a build reads them.
async fn combined_of(
    server: &Server,
    rel: &str,
    size: u64,
) -> Result<BTreeMap<String, String>, HttpError> {
    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let (root, rel) = (server.root.clone(), rel.to_owned());
    tokio::task::spawn_blocking(move || -> anyhow::Result<BTreeMap<String, String>> {
        let mut plan = HashPlan::default();
        for name in Client::ALL.map(|c| c.meta().file_name().unwrap_or_default()) {
            let path = format!("{dir}/{name}");
            if let Ok(meta) = std::fs::metadata(root.join(&path))
                && meta.is_file()
            {
                plan.prefixes.push(HashJob {
                    path,
                    size: meta.len(),
                    is_prefix: true,
                    prefixes: Vec::new(),
                });
            }
        }
        plan.bodies.push(HashJob {
            path: rel.clone(),
            size,
            is_prefix: false,
            prefixes: plan.prefixes.iter().map(|j| j.path.clone()).collect(),
        });
        let mut digests = ssgen_core::Digests::default();
        crate::hashing::run(&root, &plan, &mut digests, crate::hashing::Check::None)?;
        Ok(digests
            .combined
            .iter()
            .filter(|((_, r), _)| *r == rel)
            .map(|((m, _), d)| (m.rsplit('/').next().unwrap_or(m).to_owned(), d.to_hex()))
            .collect())
    })
    .await
    .map_err(internal)?
    .map_err(|e| internal(format!("{e:#}")))
}

/// One `<status> <path>` line per file; 201 when anything was created.
fn answer(stored: &[(StatusCode, String)]) -> Response<Body> {
    let status = if stored.iter().any(|(s, _)| *s == StatusCode::CREATED) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let lines: Vec<String> = stored
        .iter()
        .map(|(s, p)| format!("{} {p}", s.as_u16()))
        .collect();
    text(status, &lines.join("\n"))
}

/// Where an upload goes, or why the build would never publish it there.
fn target(rel: &str) -> Result<String, HttpError> {
    match rules::check_path(rel) {
        Ok(_) => Ok(rel.to_owned()),
        Err(why) => Err(bad(format!(
            "{rel}: {why}; the build would never publish it, so it was not stored"
        ))),
    }
}

/// An error of a confined place: the input's fault (400) or the server's,
/// naming paths relative to the root.
fn place_error(server: &Server, e: &anyhow::Error) -> HttpError {
    let message = relative(server, &format!("{e:#}"));
    if crate::exit::is_invalid(e) {
        bad(message)
    } else {
        internal(message)
    }
}

/// `message` with the root's own path left out: a publisher knows paths
/// relative to the root, and the server's layout is none of its business.
fn relative(server: &Server, message: &str) -> String {
    let mut out = message.to_owned();
    let canonical = std::fs::canonicalize(&server.root).ok();
    // Only absolute forms: a relative root such as `.` would match inside
    // `../`.
    for root in std::iter::once(server.root.as_path())
        .chain(canonical.as_deref())
        .filter(|r| r.is_absolute())
    {
        out = out.replace(&format!("{}/", root.display()), "");
    }
    out
}

/// Streams `body` into a hidden staging file beside `target`, checks it
/// (its sha256, and what the build checks), and renames it into place
/// unless a file is there (then the same bytes are 200 and other bytes
/// 409; a side file is replaced). A failure leaves neither the staging
/// file nor the directories made for it.
async fn store(
    server: &Server,
    target: &str,
    body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Display> + Unpin,
    expected: Option<Sha256>,
) -> Result<Kept, HttpError> {
    let root = Root::open(&server.root).map_err(|e| place_error(server, &e))?;
    let dest = root
        .place(target, true)
        .map_err(|e| place_error(server, &e))?;
    let (dir, name) = target.rsplit_once('/').ok_or_else(|| bad("no file name"))?;
    let outcome = async {
        let staging = root
            .place(&format!("{dir}/{}", confine::upload_name(name)), false)
            .map_err(|e| place_error(server, &e))?;
        let file = staging.create_new().map_err(|e| place_error(server, &e))?;
        // Held while the body streams in: a build removes only staging
        // files nobody holds.
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(internal)?;
        let result = async {
            let (digest, size) = stream_to(&file, target, body).await?;
            if let Some(want) = expected {
                if want != digest {
                    return Err(HttpError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{target}: sha256 is {digest}, not {want} as the upload says (X-Ssgen-Sha256 or X-Checksum-Sha256); the file was not stored"),
                    ));
                }
            }
            let status = commit(server, &root, &staging, &dest, target, &digest).await?;
            Ok(Kept {
                status,
                path: target.to_owned(),
                sha256: digest,
                size,
            })
        }
        .await;
        if result.as_ref().map_or(true, |k| k.status != StatusCode::CREATED) {
            let _ = staging.remove();
        }
        drop(file);
        result
    }
    .await;
    match &outcome {
        Ok(_) => {
            let _ = server.rebuild.send(());
        }
        Err(_) => root.remove_empty_dirs(&dest.created),
    }
    outcome
}

/// Writes the body to the staging file, hashing it and making the build's
/// checks on the same pass; the sha256 and the size.
async fn stream_to(
    file: &std::fs::File,
    target: &str,
    mut body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Display> + Unpin,
) -> Result<(Sha256, u64), HttpError> {
    let std_file = file.try_clone().map_err(internal)?;
    let mut out = tokio::fs::File::from_std(std_file);
    let mut hasher = sha2::Sha256::new();
    let mut checked = rules::body_check(target);
    let mut head = Vec::with_capacity(ssgen_core::HEAD_LEN);
    // A side file is read whole by the build, so it is checked whole.
    let mut side = rules::replaceable(target).then(Vec::new);
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("upload interrupted: {e}")))?;
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            if let Some(c) = &mut checked {
                c.update(&data);
            }
            let want = ssgen_core::HEAD_LEN
                .saturating_sub(head.len())
                .min(data.len());
            head.extend_from_slice(&data[..want]);
            if let Some(side) = &mut side {
                // Kept up to one byte over the limit: enough to refuse it.
                let room = (rules::SIDE_MAX_BYTES + 1).saturating_sub(side.len());
                side.extend_from_slice(&data[..room.min(data.len())]);
            }
            size += data.len() as u64;
            out.write_all(&data)
                .await
                .map_err(|e| internal(format!("cannot write {target}: {e}; nothing was stored")))?;
        }
    }
    let refused = |why: String| {
        HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{target}: {why}; the file was not stored"),
        )
    };
    rules::check_head(target, &head).map_err(|why| {
        let name = target.rsplit('/').next().unwrap_or(target);
        refused(format!("{name} {why}"))
    })?;
    if let Some(c) = checked {
        c.finish(size).map_err(|e| refused(e.to_string()))?;
    }
    if let Some(side) = &side {
        rules::check_side(target, side).map_err(|why| {
            refused(format!(
                "{why}; a build would refuse it and publish nothing until it is replaced"
            ))
        })?;
    }
    out.sync_all()
        .await
        .map_err(|e| internal(format!("cannot write {target}: {e}; nothing was stored")))?;
    Ok((Sha256(hasher.finalize().into()), size))
}

/// Renames the checked staging file into place under the root lock.
async fn commit(
    server: &Server,
    root: &Root,
    staging: &Place,
    dest: &Place,
    target: &str,
    digest: &Sha256,
) -> Result<StatusCode, HttpError> {
    let lock = take_lock(server).await?;
    if dest
        .stat()
        .map_err(|e| place_error(server, &e))?
        .is_some_and(|st| confine::is_dir(&st))
    {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "{target} is a directory on the server, where the file goes; nothing was stored (remove or move that directory under the server root, then upload again)"
            ),
        ));
    }
    if rules::replaceable(target) {
        let same = match std::fs::read(root.join(target)) {
            Ok(bytes) => Sha256::of(&bytes) == *digest,
            Err(_) => false,
        };
        if !same {
            staging
                .rename_over(dest)
                .map_err(|e| place_error(server, &e))?;
        }
        drop(lock);
        return Ok(if same {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        });
    }
    let renamed = staging
        .rename_noreplace(dest)
        .map_err(|e| place_error(server, &e))?;
    drop(lock);
    match renamed {
        Renamed::Done => Ok(StatusCode::CREATED),
        Renamed::Exists => {
            let existing = sha256_file(&root.join(target)).await.map_err(internal)?;
            if existing == *digest {
                Ok(StatusCode::OK)
            } else {
                Err(HttpError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{target} exists with other contents; published files never change (upload a new version)"
                    ),
                ))
            }
        }
    }
}

/// The root lock, waited for on a blocking thread; a timeout is 503.
pub(crate) async fn take_lock(server: &Server) -> Result<crate::lock::RootLock, HttpError> {
    let root = server.root.clone();
    let wait = server.settings.lock_wait;
    tokio::task::spawn_blocking(move || crate::lock::RootLock::acquire(&root, wait))
        .await
        .map_err(internal)?
        .map_err(|e| {
            HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e:#}; nothing was changed, try again later"),
            )
        })
}

async fn sha256_file(path: &Path) -> std::io::Result<Sha256> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Sha256(hasher.finalize().into()))
}

/// Unix seconds now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// DELETE withdraws: the file or version leaves the catalog, its files
/// stay for the grace period (`ssgen prune` deletes them). A side file,
/// which no client downloads, is deleted at once. A version or a file
/// that is not there is 404, and nothing is marked.
pub async fn delete(
    server: &Server,
    rel: &str,
    as_json: bool,
) -> Result<Response<Body>, HttpError> {
    let rel = rel.trim_end_matches('/');
    if rules::replaceable(rel) && rules::check_path(rel).is_ok() {
        return delete_side(server, rel, as_json).await;
    }
    let parts: Vec<&str> = rel.split('/').collect();
    let (dir, file) = match parts.len() {
        7 => (parts[..6].join("/"), Some(parts[6].to_owned())),
        6 => (rel.to_owned(), None),
        _ => {
            return Err(bad(
                "DELETE takes images/<os>/<release>/<arch>/<variant>/<version>[/<file>], or a side file",
            ));
        }
    };
    if parts[0] != ssgen_core::vocab::IMAGES || parts.iter().any(|p| !confine::is_plain_visible(p))
    {
        return Err(bad(format!(
            "{rel}: DELETE takes images/<os>/<release>/<arch>/<variant>/<version>[/<file>] with plain names"
        )));
    }
    let lock = take_lock(server).await?;
    let root = Root::open(&server.root).map_err(|e| place_error(server, &e))?;
    let not_found = |what: &str| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            format!("{what}: not found; nothing was withdrawn"),
        )
    };
    let version = root
        .place(&dir, false)
        .map_err(|e| place_error(server, &e))?;
    if !version
        .stat()
        .map_err(|e| place_error(server, &e))?
        .is_some_and(|st| confine::is_dir(&st))
    {
        return Err(not_found(&dir));
    }
    if let Some(f) = &file {
        let place = root
            .place(&format!("{dir}/{f}"), false)
            .map_err(|e| place_error(server, &e))?;
        if place.stat().map_err(|e| place_error(server, &e))?.is_none() {
            return Err(not_found(rel));
        }
    }
    let marker_rel = format!("{dir}/{}", withdrawn::FILE_NAME);
    let now = now();
    let previous = std::fs::read(root.join(&marker_rel))
        .ok()
        .and_then(|b| Withdrawn::parse(&b).ok());
    let files = match (file, previous.map(|p| p.files)) {
        (None, _) | (_, Some(None)) => None,
        (Some(f), Some(Some(mut list))) => {
            list.push(f);
            list.sort();
            list.dedup();
            Some(list)
        }
        (Some(f), None) => Some(vec![f]),
    };
    let marker = Withdrawn { since: now, files };
    root.place(&marker_rel, false)
        .and_then(|p| p.write_atomic(marker.to_text().as_bytes()))
        .map_err(|e| place_error(server, &e))?;
    drop(lock);
    let _ = server.rebuild.send(());
    if as_json {
        return Ok(removed_answer(
            rel,
            now,
            PRUNE_GRACE,
            "leaves the catalog at the next rebuild (a moment from now); `ssgen prune` deletes its files after its grace period (--grace, 6 h by default)",
        ));
    }
    Ok(text(StatusCode::OK, &format!("withdrawn {rel}")))
}

/// A DELETE's JSON answer, as the edge's.
fn removed_answer(rel: &str, removed_at: i64, grace_seconds: i64, note: &str) -> Response<Body> {
    json(
        StatusCode::OK,
        &api::Removed {
            path: rel.to_owned(),
            removed_at,
            withdrawn_at: None,
            grace_seconds,
            note: note.into(),
        },
    )
}

/// `ssgen prune`'s default grace period, which a DELETE's answer states.
const PRUNE_GRACE: i64 = 6 * 3600;

/// DELETE of a side file: it goes at once, under the root lock.
async fn delete_side(
    server: &Server,
    rel: &str,
    as_json: bool,
) -> Result<Response<Body>, HttpError> {
    let lock = take_lock(server).await?;
    let root = Root::open(&server.root).map_err(|e| place_error(server, &e))?;
    let removed = root
        .place(rel, false)
        .and_then(|p| p.remove())
        .map_err(|e| place_error(server, &e))?;
    drop(lock);
    if !removed {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("{rel}: not found; nothing was deleted"),
        ));
    }
    let _ = server.rebuild.send(());
    if as_json {
        return Ok(removed_answer(
            rel,
            now(),
            0,
            "a side file, deleted at once (no client downloads it)",
        ));
    }
    Ok(text(StatusCode::OK, &format!("deleted {rel}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_what_the_build_publishes() {
        let d = "images/debian/12/amd64/default";
        assert!(target(&format!("{d}/20260801_0312/rootfs.squashfs")).is_ok());
        assert!(target(&format!("{d}/metadata.json")).is_ok());
        for bad in [
            format!("{d}/.hidden/rootfs.squashfs"),
            "streams/v1/a/b/c/d/index.json".to_owned(),
            format!("{d}/latest/lxd.tar.xz"),
            format!("{d}/20260801_0312/notes.txt"),
            format!("{d}/20260801_0312/{}", "a".repeat(256)),
            format!("{d}/20260801_0312/../x"),
        ] {
            let err = target(&bad).expect_err(&bad);
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad}");
            let start: String = bad.chars().take(40).collect();
            assert!(err.message().contains(&start), "{}", err.message());
        }
    }
}
