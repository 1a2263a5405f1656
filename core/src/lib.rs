//! `ssgen-core`: a sans-IO generator of simplestreams catalogs for LXD and
//! Incus image servers.
//!
//! The caller lists the files under the server root (paths, sizes, the first
//! bytes of each file, and the contents of the small side files), the core
//! lays them out into products, versions and items, says which files must be
//! read to learn their digests, hashes the bytes the caller pushes, and
//! renders `streams/v1/index.json` and `streams/v1/images.json` as exact,
//! deterministic bytes. It never touches a file, a socket, the clock or the
//! environment, so the CLI, the browser page and the edge handler produce
//! the same catalog from the same files.
//!
//! ```
//! use ssgen_core::{Config, Digests, Entry, FileHasher, Prefixes};
//!
//! let meta = b"metadata tarball bytes".to_vec();
//! let root = b"squashfs bytes".to_vec();
//! let dir = "images/debian/12/amd64/default/20260801_0312";
//! let listing = vec![
//!     Entry::file(format!("{dir}/incus.tar.xz"), meta.len() as u64),
//!     Entry::file(format!("{dir}/rootfs.squashfs"), root.len() as u64),
//! ];
//! let config = Config::new(1_785_556_800);
//! let scan = ssgen_core::scan(&listing, &config);
//!
//! // Read what the plan asks for, prefixes (metadata) first.
//! let mut digests = Digests::default();
//! let mut prefixes = Prefixes::default();
//! let plan = scan.plan(&digests);
//! for job in plan.jobs() {
//!     let bytes = if job.path.ends_with(".tar.xz") { &meta } else { &root };
//!     let mut hasher = FileHasher::new(job, &prefixes).unwrap();
//!     hasher.update(bytes);
//!     let result = hasher.finish().unwrap();
//!     prefixes.insert(&result);
//!     digests.record(&result);
//! }
//!
//! let out = ssgen_core::build(&scan, &digests, &config, None).unwrap();
//! assert!(out.images_json.contains("combined_squashfs_sha256"));
//! assert!(out.index_json.contains("debian:12:amd64:default"));
//! ```
#![warn(missing_docs)]

pub mod arch;
mod catalog;
pub mod check;
pub mod checksums;
pub mod classify;
#[doc(hidden)]
pub mod client;
pub mod delta;
pub mod diag;
pub mod digest;
pub mod direct;
pub mod distro;
pub mod export;
pub mod html;
mod layout;
pub mod lint;
mod listing;
pub mod metadata;
pub mod remote;
pub mod render;
pub mod requirements;
pub mod rules;
pub mod serve;
pub mod side;
pub mod time;
pub mod vcdiff;
pub mod view;
pub mod vocab;
pub mod withdrawn;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testing;

pub use catalog::{
    IMAGES_JSON, INDEX_JSON, Output, STREAMS_DIR, build, duplicate_versions, index_json,
    without_duplicates,
};
pub use diag::{Diagnostic, Level};
pub use digest::{Digests, FileHasher, FileResult, HashJob, HashPlan, Prefixes, Sha256};
pub use layout::{FileRole, Product, Scan, Version, VersionFile, scan, unpublishable};
pub use listing::{Entry, HEAD_LEN, needs_contents};
pub use rules::{is_dir_name, is_product_name};
pub use vocab::{Client, Ftype, ProductPath};

/// Which clients a catalog is written for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clients {
    /// LXD and Incus (the default): every version carries both metadata
    /// ftypes (`docs/protocol.md#ftypes`).
    #[default]
    Both,
    /// Only one client's ftypes and requirement key.
    Only(Client),
}

impl Clients {
    /// Whether `client` is served.
    #[must_use]
    pub fn serves(self, client: Client) -> bool {
        match self {
            Clients::Both => true,
            Clients::Only(c) => c == client,
        }
    }
}

/// What the caller decides for a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Which clients to serve.
    pub clients: Clients,
    /// The build time, in Unix seconds, for `updated` (the core reads no
    /// clock).
    pub timestamp: i64,
}

impl Config {
    /// Both clients, with `timestamp` as the build time.
    #[must_use]
    pub fn new(timestamp: i64) -> Self {
        Self {
            clients: Clients::Both,
            timestamp,
        }
    }
}

/// Errors of the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest is not 64 lower-case hex characters.
    #[error("invalid sha256 digest {0:?}: expected 64 lower-case hex characters")]
    InvalidDigest(String),
    /// A file's bytes were pushed before the metadata file it pairs with.
    #[error(
        "{path}: hashed before its metadata file {meta}; run the prefix phase of the plan first"
    )]
    MissingPrefix {
        /// The metadata file.
        meta: String,
        /// The file being hashed.
        path: String,
    },
    /// A file changed size while it was read.
    #[error(
        "{path}: listed with {listed} bytes but {read} were read; the file changed while it was hashed, run the build again once it is complete"
    )]
    SizeChanged {
        /// The file.
        path: String,
        /// Size in the listing.
        listed: u64,
        /// Bytes pushed.
        read: u64,
    },
    /// A digest the catalog needs is missing: the hash plan was not run.
    #[error("{path}: no sha256 known; hash the files of the plan before building")]
    MissingDigest {
        /// The file.
        path: String,
    },
    /// A file was cut short by a stopped upload or copy (why, in words).
    #[error(
        "{0}; upload it again (into a hidden directory, renamed when complete, so that no client sees it half-way)"
    )]
    CutShort(String),
    /// A metadata tarball the daemons would refuse to import.
    #[error("{0}; LXD and Incus would refuse to import this image")]
    Unimportable(metadata::MetadataError),
    /// Input errors that block publishing (bad side files and the like).
    #[error("{} problem(s) block publishing: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Diagnostic>),
}
