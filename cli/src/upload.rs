//! The upload API of `ssgen serve`: `PUT` of one file, the multipart form
//! `POST /images/` of lxd-image-server's users, and `DELETE`, which
//! withdraws.
//!
//! A file the build would never publish (a bad version name, an unknown
//! architecture, a name that is no image file) is refused at once with the
//! build's reason. Every write goes through [`crate::confine`]: a body is
//! streamed into a hidden staging file that its writer keeps locked (so
//! that a build can tell an abandoned one from a live one), and renamed
//! into place under the root lock without replacing anything, so that of
//! two different bodies for one new path exactly one is stored. A PUT and
//! a form answer alike: one `<status> <path>` line per file.

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
use ssgen_core::withdrawn::{self, Withdrawn};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::confine::{self, Place, Renamed, Root};
use crate::exit::Invalid;
use crate::http::{Body, HttpError, RequestBody, Server, bad, internal, text};

/// The header a publisher sends with the file's SHA-256 (hex).
const CHECKSUM_HEADER: &str = "x-checksum-sha256";

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

/// `PUT /images/<os>/<release>/<arch>/<variant>/<version>/<file>`.
pub async fn put(
    server: &Server,
    rel: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, HttpError> {
    let target = target(rel)?;
    let expected = checksum(req.headers())?;
    let status = store(server, &target, req.into_body(), expected).await?;
    Ok(answer(&[(status, target)]))
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
        let rel = format!("images/{}", file_name.trim_start_matches('/'));
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
            Ok(status) => stored.push((status, target)),
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
    for part in rel.split('/') {
        if let Some(why) = confine::name_problem(part) {
            let shown: String = part.chars().take(80).collect();
            return Err(bad(format!(
                "{rel}: the name {shown:?}… {why}; nothing was stored"
            )));
        }
    }
    match ssgen_core::unpublishable(rel) {
        None => Ok(rel.to_owned()),
        Some(why) => Err(bad(format!(
            "{rel}: {why}; the build would never publish it, so it was not stored"
        ))),
    }
}

fn checksum(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let Some(value) = headers.get(CHECKSUM_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ssgen_core::Sha256::from_hex(&text)
        .map(|d| Some(d.to_hex()))
        .map_err(|_| bad(format!("{CHECKSUM_HEADER} must be 64 hex digits")))
}

/// An error of a confined place: the input's fault (400) or the server's.
fn place_error(e: &anyhow::Error) -> HttpError {
    if e.chain().any(|c| c.is::<Invalid>()) {
        bad(format!("{e:#}"))
    } else {
        internal(format!("{e:#}"))
    }
}

/// Streams `body` into a hidden staging file beside `target`, checks its
/// SHA-256, and renames it into place unless a file is there (then the
/// same bytes are 200 and other bytes 409). A failure leaves neither the
/// staging file nor the directories made for it.
async fn store(
    server: &Server,
    target: &str,
    body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Display> + Unpin,
    expected: Option<String>,
) -> Result<StatusCode, HttpError> {
    let root = Root::open(&server.root).map_err(|e| place_error(&e))?;
    let dest = root.place(target, true).map_err(|e| place_error(&e))?;
    let (dir, name) = target.rsplit_once('/').ok_or_else(|| bad("no file name"))?;
    let outcome = async {
        let staging = root
            .place(&format!("{dir}/{}", confine::upload_name(name)), false)
            .map_err(|e| place_error(&e))?;
        let file = staging.create_new().map_err(|e| place_error(&e))?;
        // Held while the body streams in: a build removes only staging
        // files nobody holds.
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(internal)?;
        let result = async {
            let digest = stream_to(&file, &staging, body).await?;
            if let Some(want) = &expected {
                if *want != digest {
                    return Err(HttpError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("{target}: sha256 is {digest}, not {want} as {CHECKSUM_HEADER} says; the file was not stored"),
                    ));
                }
            }
            commit(server, &root, &staging, &dest, target, &digest).await
        }
        .await;
        if result.as_ref().map_or(true, |s| *s != StatusCode::CREATED) {
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

async fn stream_to(
    file: &std::fs::File,
    staging: &Place,
    mut body: impl hyper::body::Body<Data = Bytes, Error = impl std::fmt::Display> + Unpin,
) -> Result<String, HttpError> {
    let std_file = file.try_clone().map_err(internal)?;
    let mut out = tokio::fs::File::from_std(std_file);
    let mut hasher = sha2::Sha256::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(format!("upload interrupted: {e}")))?;
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            out.write_all(&data)
                .await
                .map_err(|e| internal(format!("cannot write {}: {e}", staging.path().display())))?;
        }
    }
    out.sync_all()
        .await
        .map_err(|e| internal(format!("cannot write {}: {e}", staging.path().display())))?;
    Ok(ssgen_core::Sha256(hasher.finalize().into()).to_hex())
}

/// Renames the checked staging file into place under the root lock.
async fn commit(
    server: &Server,
    root: &Root,
    staging: &Place,
    dest: &Place,
    target: &str,
    digest: &str,
) -> Result<StatusCode, HttpError> {
    let lock = take_lock(server).await?;
    let renamed = staging
        .rename_noreplace(dest)
        .map_err(|e| place_error(&e))?;
    drop(lock);
    match renamed {
        Renamed::Done => Ok(StatusCode::CREATED),
        Renamed::Exists => {
            let existing = sha256_file(&root.join(target)).await.map_err(internal)?;
            if existing == digest {
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
async fn take_lock(server: &Server) -> Result<crate::lock::RootLock, HttpError> {
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

async fn sha256_file(path: &Path) -> std::io::Result<String> {
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
    Ok(ssgen_core::Sha256(hasher.finalize().into()).to_hex())
}

/// DELETE withdraws: the file or version leaves the catalog, its files
/// stay for the grace period (`ssgen prune` deletes them). A version or a
/// file that is not there is 404, and nothing is marked.
pub async fn delete(server: &Server, rel: &str) -> Result<Response<Body>, HttpError> {
    let rel = rel.trim_end_matches('/');
    let parts: Vec<&str> = rel.split('/').collect();
    let (dir, file) = match parts.len() {
        7 => (parts[..6].join("/"), Some(parts[6].to_owned())),
        6 => (rel.to_owned(), None),
        _ => {
            return Err(bad(
                "DELETE takes images/<os>/<release>/<arch>/<variant>/<version>[/<file>]",
            ));
        }
    };
    if parts[0] != "images" || parts.iter().any(|p| !confine::is_plain_visible(p)) {
        return Err(bad(format!(
            "{rel}: DELETE takes images/<os>/<release>/<arch>/<variant>/<version>[/<file>] with plain names"
        )));
    }
    let lock = take_lock(server).await?;
    let root = Root::open(&server.root).map_err(|e| place_error(&e))?;
    let not_found = |what: &str| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            format!("{what}: not found; nothing was withdrawn"),
        )
    };
    let version = root.place(&dir, false).map_err(|e| place_error(&e))?;
    if !version
        .stat()
        .map_err(|e| place_error(&e))?
        .is_some_and(|st| confine::is_dir(&st))
    {
        return Err(not_found(&dir));
    }
    if let Some(f) = &file {
        let place = root
            .place(&format!("{dir}/{f}"), false)
            .map_err(|e| place_error(&e))?;
        if place.stat().map_err(|e| place_error(&e))?.is_none() {
            return Err(not_found(rel));
        }
    }
    let marker_rel = format!("{dir}/{}", withdrawn::FILE_NAME);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
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
        .map_err(|e| place_error(&e))?;
    drop(lock);
    let _ = server.rebuild.send(());
    Ok(text(StatusCode::OK, &format!("withdrawn {rel}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_what_the_build_publishes() {
        let d = "images/debian/12/amd64/default";
        assert!(target(&format!("{d}/20260801_0312/rootfs.squashfs")).is_ok());
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
