//! The read tokens of a private feed: `--read-token` (fixed for the
//! server's life) and `--read-token-file` (one per line), read again when
//! the file changes, so a token is added or revoked without a restart.
//!
//! A feed given tokens stays private whatever the file holds later: a file
//! that is emptied, removed or unreadable leaves only the `--read-token`
//! ones (perhaps none, and then every read is 404); it never opens the
//! feed. The rules themselves (which path a token opens, how a log hides
//! it) are the core's, [`ssgen_core::serve::auth::ReadTokens`].

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ssgen_core::serve::auth::ReadTokens;

use crate::exit::Invalid;

/// How often the token file is looked at (one `stat`) at most: a token
/// revoked in the file stops working within this time.
const RECHECK: Duration = Duration::from_secs(1);

/// What a token file was when read: inode, size, modification time.
type Seen = Option<(u64, u64, i64, i64)>;

fn seen(path: &Path) -> Seen {
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The most a token file may hold (tens of thousands of tokens).
const MAX_FILE: u64 = 1 << 20;

/// Reads a token file without blocking the server on it: opened
/// non-blocking (a FIFO put in its place gives no writer to wait for),
/// then it must be a regular file of at most [`MAX_FILE`] bytes.
fn read_token_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {MAX_FILE} a token file may hold",
            meta.len()
        )));
    }
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text)?;
    Ok(text)
}

struct FromFile {
    path: PathBuf,
    checked: Instant,
    seen: Seen,
    tokens: ReadTokens,
}

/// A feed's read tokens; none for a public feed.
pub struct Private {
    fixed: ReadTokens,
    file: Option<RwLock<FromFile>>,
}

impl Private {
    /// The tokens of the command line and of `file`, checked now: a bad
    /// token or an unreadable file stops the server before it starts.
    pub fn new(tokens: &[String], file: Option<&Path>) -> Result<Self> {
        let fixed = ReadTokens::new(tokens.iter().cloned())
            .map_err(|why| Invalid(format!("--read-token: {why}")))?;
        let file = match file {
            None => None,
            Some(path) => {
                let text = read_token_file(path).with_context(|| {
                    format!(
                        "cannot read the read-token file {}; give a readable file with one token per line",
                        path.display()
                    )
                })?;
                let tokens = ReadTokens::parse(&text)
                    .map_err(|why| Invalid(format!("{}: {why}", path.display())))?;
                Some(RwLock::new(FromFile {
                    path: path.to_path_buf(),
                    checked: Instant::now(),
                    seen: seen(path),
                    tokens,
                }))
            }
        };
        Ok(Self { fixed, file })
    }

    /// Whether reads need a token.
    pub fn is_private(&self) -> bool {
        !self.fixed.is_empty() || self.file.is_some()
    }

    /// How many tokens open the feed now.
    pub fn count(&self) -> usize {
        self.current().len()
    }

    /// The tokens now: the fixed ones and the file's, the file looked at
    /// again when [`RECHECK`] has passed.
    fn current(&self) -> ReadTokens {
        let Some(file) = &self.file else {
            return self.fixed.clone();
        };
        let fresh = file
            .read()
            .map(|f| (f.checked.elapsed() < RECHECK).then(|| f.tokens.clone()))
            .unwrap_or(None);
        if let Some(tokens) = fresh {
            return self.fixed.clone().with(&tokens);
        }
        let Ok(mut f) = file.write() else {
            return self.fixed.clone();
        };
        f.checked = Instant::now();
        let now = seen(&f.path);
        if now != f.seen {
            f.seen = now;
            f.tokens = match read_token_file(&f.path).map(|t| ReadTokens::parse(&t)) {
                Ok(Ok(tokens)) => {
                    eprintln!(
                        "{}: read again, {} read token(s)",
                        f.path.display(),
                        tokens.len()
                    );
                    tokens
                }
                Ok(Err(why)) => {
                    eprintln!(
                        "warning: {}: {why}; none of its tokens opens the feed until it is fixed",
                        f.path.display()
                    );
                    ReadTokens::default()
                }
                Err(e) => {
                    eprintln!(
                        "warning: cannot read {} ({e}); none of its tokens opens the feed until it is back",
                        f.path.display()
                    );
                    ReadTokens::default()
                }
            };
        }
        self.fixed.clone().with(&f.tokens)
    }

    /// The token of `rel` and the path below it; `None` when `rel` starts
    /// with no token.
    pub fn strip<'a>(&self, rel: &'a str) -> Option<(&'a str, &'a str)> {
        self.current().strip(rel)
    }

    /// A request target with a token that may be in it hidden, for logs.
    pub fn redact(&self, target: &str) -> String {
        if self.is_private() {
            ssgen_core::serve::auth::redact(target)
        } else {
            target.to_owned()
        }
    }
}
