//! The upload API of `ssgen serve`: `PUT` of one file, the multipart form
//! `POST /images/` of lxd-image-server's users, and `DELETE`, which
//! withdraws. Every write goes through [`crate::confine`]; a file is
//! streamed into a hidden staging file that its writer keeps locked, and
//! renamed into place without replacing anything.

use std::path::Path;
use std::time::Duration;

use rustix::fs::{FlockOperation, flock};

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
