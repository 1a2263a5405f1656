//! The serving contract of an ssgen image server: what `ssgen serve` and
//! the edge Worker answer, and what their upload API takes. Both adapters
//! call these functions and keep no rule of their own, so a client, a
//! cache or `ssgen push` meets one server whichever of the two it reaches.
//!
//! - [`http`]: content types, cache policy, byte ranges, preconditions and
//!   HTTP dates.
//! - [`auth`]: the upload API's bearer token, and the read tokens of a
//!   private feed (`/<token>/…`).
//! - [`upload`]: where a file may be uploaded, whether a path may take
//!   other bytes, the upload headers and the check of an upload's bytes.
//! - [`api`]: the JSON documents of the upload API (listing, stored file,
//!   publish), shared by both servers and by `ssgen push`.
//!
//! Paths here are relative to the server root, without a leading `/`
//! (`streams/v1/index.json`), as both adapters see them once the
//! request's path is decoded (and, for a private feed, its token prefix
//! taken off).
//!
//! ```
//! use ssgen_core::serve::{http, upload};
//!
//! let root = "images/debian/12/amd64/default/20260801_0312/rootfs.squashfs";
//! assert!(upload::check_path(root).is_ok());
//! assert_eq!(http::cache_control(root), http::IMMUTABLE);
//! assert_eq!(http::cache_control("images/debian/12/amd64/default/metadata.json"), http::SHORT);
//! ```

pub mod api;
pub mod auth;
pub mod http;
pub mod upload;

/// The health check: 200 while the server runs.
pub const HEALTHZ: &str = "healthz";

/// The upload API's listing of what the server holds (bearer token).
pub const FILES_API: &str = "api/v1/files";

/// The upload API's publish step (bearer token).
pub const PUBLISH: &str = "publish";

/// Where content-addressed catalog snapshots are served (the edge keeps
/// every published `images.json` there under its sha256).
pub const SNAPSHOTS: &str = "streams/v1/snapshots/";

/// Whether `rel` asks for the page for people: `/` or `/index.html`.
#[must_use]
pub fn is_page(rel: &str) -> bool {
    rel.is_empty() || rel == crate::html::FILE_NAME
}

/// Whether `rel` is one of the catalog documents (`streams/v1/index.json`,
/// `streams/v1/images.json`).
#[must_use]
pub fn is_catalog(rel: &str) -> bool {
    rel == crate::INDEX_JSON || rel == crate::IMAGES_JSON
}

/// The images directory as the prefix of the paths below it: every image
/// file, side file and upload lives there.
pub const IMAGES_DIR: &str = "images/";

/// Whether `rel` is below the images directory.
#[must_use]
pub fn in_images(rel: &str) -> bool {
    rel.starts_with(IMAGES_DIR)
}

/// Whether `rel` is the images directory itself (`images` or `images/`),
/// where a form upload is posted.
#[must_use]
pub fn is_images_dir(rel: &str) -> bool {
    rel == crate::vocab::IMAGES || rel == IMAGES_DIR
}

/// The path below the images directory of `name`, a form part's file name
/// (`debian/12/…/rootfs.squashfs`, with or without a leading `/`).
#[must_use]
pub fn in_images_dir(name: &str) -> String {
    format!("{IMAGES_DIR}{}", name.trim_start_matches('/'))
}

/// The segments of a request path as both the server and its access log
/// read it: empty ones and `.` name no directory, so `//<token>/…` and
/// `/./<token>/…` are `/<token>/…`.
pub fn path_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty() && *s != ".")
}

/// A request path in the one form both servers route on: its
/// [`path_segments`] joined, relative (no leading `/`), a trailing `/`
/// kept.
#[must_use]
pub fn normalized(path: &str) -> String {
    let mut rel = path_segments(path).collect::<Vec<_>>().join("/");
    if !rel.is_empty() && path.ends_with('/') {
        rel.push('/');
    }
    rel
}

/// The request headers in which a daemon importing by direct URL says its
/// architectures, Incus's first.
pub const ARCH_HEADERS: [&str; 2] = ["incus-server-architectures", "lxd-server-architectures"];

/// The architectures a daemon says it runs, from the values of
/// [`ARCH_HEADERS`] (Incus's, else LXD's). A header that is empty or only
/// commas says nothing, so it does not hide the other one.
#[must_use]
pub fn daemon_arches<'a>(incus: Option<&'a str>, lxd: Option<&'a str>) -> Option<&'a str> {
    let said = |h: Option<&'a str>| h.filter(|v| v.split(',').any(|a| !a.trim().is_empty()));
    said(incus).or_else(|| said(lxd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources() {
        assert_eq!(IMAGES_DIR, format!("{}/", crate::vocab::IMAGES));
        assert!(in_images("images/a") && !in_images("images") && !in_images("imagesx/a"));
        assert!(is_images_dir("images") && is_images_dir("images/") && !is_images_dir("images/a"));
        assert_eq!(in_images_dir("/debian/x"), "images/debian/x");
        assert!(is_page("") && is_page("index.html") && !is_page("index.htm"));
        assert!(is_catalog("streams/v1/images.json") && !is_catalog("streams/v1/x.json"));
    }

    #[test]
    fn empty_architecture_headers_say_nothing() {
        assert_eq!(
            daemon_arches(Some("x86_64"), Some("aarch64")),
            Some("x86_64")
        );
        assert_eq!(daemon_arches(Some(""), Some("aarch64")), Some("aarch64"));
        assert_eq!(daemon_arches(Some(" , "), Some("aarch64")), Some("aarch64"));
        assert_eq!(daemon_arches(None, Some("aarch64")), Some("aarch64"));
        assert_eq!(daemon_arches(Some(""), None), None);
    }
}
