//! SHA-256 digests and the push-based hashing state machine.
//!
//! A fingerprint is `sha256(metadata bytes ‖ root bytes)` (`docs/protocol.md#combined-digests`). The
//! adapter reads each file once and pushes its chunks into a [`FileHasher`];
//! the hasher feeds every chunk to the file's own digest and to a fork of
//! each metadata file's finished state, so a root file read once yields its
//! own digest and every combined digest it takes part in.

use std::collections::BTreeMap;
use std::fmt;

use sha2::Digest as _;

use crate::Error;

/// A SHA-256 digest, shown as 64 lower-case hex characters (`docs/protocol.md#combined-digests`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The digest of `bytes`, in one call.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// Parses 64 hex characters. Upper case is refused: the clients compare
    /// against Go's lower-case output, so a catalog must never carry it.
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] when the text is not 64 lower-case hex digits.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let bytes = text.as_bytes();
        let invalid = || Error::InvalidDigest(text.to_owned());
        if bytes.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(invalid)?;
            let lo = hex_value(pair[1]).ok_or_else(invalid)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Self(out))
    }

    /// The 64 lower-case hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        s
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl std::str::FromStr for Sha256 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_hex(s)
    }
}

/// Every digest known so far: each file's own, and each (metadata, root)
/// pair's combined one. Adapters fill it from their cache, then from the
/// results of the hash plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// The SHA-256 of each file, by path relative to the root.
    pub files: BTreeMap<String, Sha256>,
    /// `sha256(meta ‖ root)` by (metadata path, root path).
    pub combined: BTreeMap<(String, String), Sha256>,
}

impl Digests {
    /// Records what one hashed file yielded.
    pub fn record(&mut self, result: &FileResult) {
        self.files.insert(result.path.clone(), result.sha256);
        for (meta, digest) in &result.combined {
            self.combined
                .insert((meta.clone(), result.path.clone()), *digest);
        }
    }
}

/// One file the adapter must read, and which digests its bytes feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashJob {
    /// Path relative to the root.
    pub path: String,
    /// Size from the listing; a different number of bytes means the file
    /// changed while it was read.
    pub size: u64,
    /// This is a metadata file whose finished state later jobs fork.
    pub is_prefix: bool,
    /// Metadata paths whose finished state is forked into this file's bytes.
    pub prefixes: Vec<String>,
}

/// What to read, in two phases: every job in `prefixes` must finish before
/// any job in `bodies` starts, since bodies fork the prefixes' states. Jobs
/// within a phase are independent and may run in parallel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashPlan {
    /// Metadata files (small); read first.
    pub prefixes: Vec<HashJob>,
    /// Everything else (roots, unified tarballs, deltas).
    pub bodies: Vec<HashJob>,
}

impl HashPlan {
    /// True when nothing has to be read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.bodies.is_empty()
    }

    /// Total bytes the plan reads.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.prefixes
            .iter()
            .chain(&self.bodies)
            .map(|j| j.size)
            .sum()
    }

    /// All jobs, prefixes first.
    pub fn jobs(&self) -> impl Iterator<Item = &HashJob> {
        self.prefixes.iter().chain(&self.bodies)
    }
}

/// The running SHA-256 state after a metadata file's last byte.
#[derive(Clone, Debug, Default)]
pub struct Prefixes(BTreeMap<String, sha2::Sha256>);

impl Prefixes {
    /// Keeps the finished state of a prefix job.
    pub fn insert(&mut self, result: &FileResult) {
        if let Some(state) = &result.prefix_state {
            self.0.insert(result.path.clone(), state.clone());
        }
    }
}

/// Hashes one file from pushed chunks.
#[derive(Clone, Debug)]
pub struct FileHasher {
    path: String,
    expected: u64,
    seen: u64,
    own: sha2::Sha256,
    keep_state: bool,
    forks: Vec<(String, sha2::Sha256)>,
}

impl FileHasher {
    /// Starts hashing the file of `job`.
    ///
    /// # Errors
    /// [`Error::MissingPrefix`] when a metadata file this job pairs with has
    /// not been hashed yet (the prefix phase was skipped).
    pub fn new(job: &HashJob, prefixes: &Prefixes) -> Result<Self, Error> {
        let forks = job
            .prefixes
            .iter()
            .map(|meta| {
                prefixes
                    .0
                    .get(meta)
                    .map(|state| (meta.clone(), state.clone()))
                    .ok_or_else(|| Error::MissingPrefix {
                        meta: meta.clone(),
                        path: job.path.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            path: job.path.clone(),
            expected: job.size,
            seen: 0,
            own: sha2::Sha256::new(),
            keep_state: job.is_prefix,
            forks,
        })
    }

    /// Feeds the next chunk to every digest of this file.
    pub fn update(&mut self, chunk: &[u8]) {
        self.seen += chunk.len() as u64;
        self.own.update(chunk);
        for (_, state) in &mut self.forks {
            state.update(chunk);
        }
    }

    /// Bytes pushed so far.
    #[must_use]
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// Finishes the file.
    ///
    /// # Errors
    /// [`Error::SizeChanged`] when the bytes pushed differ from the listed
    /// size: the file changed while it was read, and its digests are void.
    pub fn finish(self) -> Result<FileResult, Error> {
        if self.seen != self.expected {
            return Err(Error::SizeChanged {
                path: self.path,
                listed: self.expected,
                read: self.seen,
            });
        }
        let prefix_state = self.keep_state.then(|| self.own.clone());
        Ok(FileResult {
            sha256: Sha256(self.own.finalize().into()),
            combined: self
                .forks
                .into_iter()
                .map(|(meta, state)| (meta, Sha256(state.finalize().into())))
                .collect(),
            prefix_state,
            size: self.seen,
            path: self.path,
        })
    }
}

/// The digests one file yielded.
#[derive(Clone, Debug)]
pub struct FileResult {
    /// Path relative to the root.
    pub path: String,
    /// Bytes hashed.
    pub size: u64,
    /// The file's own SHA-256.
    pub sha256: Sha256,
    /// `sha256(meta ‖ this file)` for each metadata path of the job.
    pub combined: Vec<(String, Sha256)>,
    prefix_state: Option<sha2::Sha256>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejections() {
        let d = Sha256::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256::from_hex(&d.to_hex()).ok(), Some(d));
        assert!(Sha256::from_hex(&d.to_hex().to_uppercase()).is_err());
        assert!(Sha256::from_hex("abc").is_err());
        assert!(Sha256::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn forked_prefix_gives_concatenated_digest() {
        let meta = b"metadata bytes".as_slice();
        let root = vec![7u8; 100_000];
        let meta_job = HashJob {
            path: "m".into(),
            size: meta.len() as u64,
            is_prefix: true,
            prefixes: vec![],
        };
        let mut prefixes = Prefixes::default();
        let mut h = FileHasher::new(&meta_job, &prefixes).expect("no prefixes needed");
        h.update(&meta[..4]);
        h.update(&meta[4..]);
        let m = h.finish().expect("sizes match");
        assert_eq!(m.sha256, Sha256::of(meta));
        prefixes.insert(&m);

        let root_job = HashJob {
            path: "r".into(),
            size: root.len() as u64,
            is_prefix: false,
            prefixes: vec!["m".into()],
        };
        let mut h = FileHasher::new(&root_job, &prefixes).expect("prefix is known");
        for chunk in root.chunks(4096) {
            h.update(chunk);
        }
        let r = h.finish().expect("sizes match");
        assert_eq!(r.sha256, Sha256::of(&root));
        let mut both = meta.to_vec();
        both.extend_from_slice(&root);
        assert_eq!(r.combined, vec![("m".to_owned(), Sha256::of(&both))]);
    }

    #[test]
    fn size_change_is_an_error_and_missing_prefix_is_refused() {
        let job = HashJob {
            path: "x".into(),
            size: 10,
            is_prefix: false,
            prefixes: vec![],
        };
        let mut h = FileHasher::new(&job, &Prefixes::default()).expect("no prefixes");
        h.update(b"short");
        assert!(matches!(
            h.finish(),
            Err(Error::SizeChanged { read: 5, .. })
        ));
        let job = HashJob {
            prefixes: vec!["meta".into()],
            ..job
        };
        assert!(matches!(
            FileHasher::new(&job, &Prefixes::default()),
            Err(Error::MissingPrefix { .. })
        ));
    }
}
