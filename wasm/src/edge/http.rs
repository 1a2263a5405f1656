//! Pure HTTP rules of the handler: paths, byte ranges, conditional
//! requests, content types and the token check. No JavaScript here, so all
//! of it is unit-tested natively.

use ssgen_core::Sha256;

/// Why a path is refused.
pub type PathError = &'static str;

/// Characters that give the same URL in both clients (spec §11.3).
fn path_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-' | ':')
}

/// Side files that may sit above the version directories.
const HIDDEN_SIDE_FILES: [&str; 2] = [".requirements", ".lxd_requirements"];

/// The longest key of a file under `images/`, in bytes. R2 refuses keys
/// over 1024 bytes, and every file also has keys with a prefix of its own
/// (its tombstone under `deleted/`, its combined digests under
/// `combined/…/<metadata file>`), which must fit too.
pub const MAX_KEY_BYTES: usize = 960;

/// Checks a request path under `/images/` and returns the R2 key
/// (`images/...`). Every component must be non-empty, not `.`/`..`, made of
/// `[A-Za-z0-9._~:-]`, and not hidden except the requirements side files as
/// the last component. Percent escapes are refused outright, so `%2e%2e` or
/// `%2f` cannot smuggle a traversal past this check. Keys longer than
/// [`MAX_KEY_BYTES`] are refused.
pub fn image_key(path: &str) -> Result<String, PathError> {
    let rest = path.strip_prefix("/images/").ok_or("not under /images/")?;
    if "images/".len() + rest.len() > MAX_KEY_BYTES {
        return Err("path too long (at most 960 bytes from images/ on)");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || *p == "." || *p == ".." {
            return Err("empty, `.` or `..` path component");
        }
        if !p.chars().all(path_char_ok) {
            return Err("path has characters outside [A-Za-z0-9._~:-/]");
        }
        if p.starts_with('.') && !(i == last && HIDDEN_SIDE_FILES.contains(p)) {
            return Err("hidden path component");
        }
    }
    Ok(format!("images/{rest}"))
}

/// Checks that an uploaded key fits the tree layout: a file of a version
/// (`images/os/release/arch/variant/version/file`), a `metadata.json` of a
/// product, or a requirements file at any level down to the variant.
pub fn upload_layout_ok(key: &str) -> Result<(), PathError> {
    let parts: Vec<&str> = key.split('/').collect();
    let name = parts.last().copied().unwrap_or_default();
    let depth = parts.len();
    if HIDDEN_SIDE_FILES.contains(&name) {
        return if (2..=6).contains(&depth) {
            Ok(())
        } else {
            Err("requirements files belong in images/ down to the variant directory")
        };
    }
    match depth {
        7 => Ok(()),
        6 if name == "metadata.json" => Ok(()),
        _ => Err("uploads go to images/<os>/<release>/<arch>/<variant>/<version>/<file>"),
    }
}

/// The `Content-Type` for a served file.
pub fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".tar.xz") {
        "application/x-xz"
    } else if name.ends_with(".tar.gz") {
        "application/gzip"
    } else if name.ends_with(".requirements") || name.ends_with(".lxd_requirements") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// Constant-time token check: both sides are hashed first, so neither the
/// length nor the first differing byte shows in the time taken.
pub fn token_ok(given: &str, expected: &str) -> bool {
    let a = Sha256::of(given.as_bytes()).0;
    let b = Sha256::of(expected.as_bytes()).0;
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0 && !expected.is_empty()
}

/// The token of an `Authorization: Bearer <token>` header. HTTP auth
/// schemes are case-insensitive, so `bearer` and `BEARER` count too.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The architectures a daemon says it runs: `Incus-Server-Architectures`,
/// else `LXD-Server-Architectures`. A header that is empty or only commas
/// says nothing, so it does not hide the other one.
pub fn server_arches<'a>(incus: Option<&'a str>, lxd: Option<&'a str>) -> Option<&'a str> {
    let said = |h: &Option<&'a str>| h.filter(|v| v.split(',').any(|a| !a.trim().is_empty()));
    said(&incus).or_else(|| said(&lxd))
}

/// The latest `updated` a publish accepts: the last second of year 9999,
/// the last one RFC 2822 dates (what the catalog writes) can say.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Reads `?timestamp=`: whole Unix seconds from 1970 to year 9999.
pub fn timestamp(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|t| (0..=MAX_TIMESTAMP).contains(t))
        .ok_or_else(|| {
            format!(
                "timestamp {text:?} is not Unix seconds between 0 and {MAX_TIMESTAMP} (year 9999)"
            )
        })
}

/// A byte range resolved against the file size: `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes.
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

/// What a `Range` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable range: serve the whole file (absent, malformed or several
    /// ranges, which RFC 9110 lets a server ignore).
    Whole,
    /// One satisfiable range.
    Part(ByteRange),
    /// A syntactically valid range outside the file: 416.
    Unsatisfiable,
}

/// A single `bytes=` range before the size is known, in R2's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable range: the whole file.
    Whole,
    /// `offset` and, unless open-ended, `length`.
    From {
        /// First byte.
        offset: u64,
        /// Bytes wanted (clamped to the file by R2).
        length: Option<u64>,
    },
    /// The last `n` bytes.
    Suffix(u64),
}

/// Reads a `Range` header without the file size, for one ranged R2 read;
/// `None` when only the size can tell the answer (`bytes=-0`).
pub fn range_spec(header: Option<&str>) -> Option<RangeSpec> {
    // Resolving against the largest size gives the same parse; whatever
    // differs for the real size is clamping, which R2 does the same way.
    match parse_range(header, u64::MAX) {
        RangeAsk::Whole => Some(RangeSpec::Whole),
        RangeAsk::Unsatisfiable => None,
        RangeAsk::Part(r) => {
            let spec = header?.trim().strip_prefix("bytes=")?.trim();
            if let Some(n) = spec.strip_prefix('-') {
                return Some(RangeSpec::Suffix(n.trim().parse().ok()?));
            }
            let open = spec.ends_with('-');
            Some(RangeSpec::From {
                offset: r.start,
                length: (!open).then(|| r.len()),
            })
        }
    }
}

/// Resolves a single `bytes=` range (RFC 9110 §14.1.2) against `size`.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(h) = header else {
        return RangeAsk::Whole;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    // A position too large for u64 is still a position: past the end of
    // any file, so a first byte that large is unsatisfiable (416) and a
    // last byte that large means the end.
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().unwrap_or(u64::MAX))
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeAsk::Whole,
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if size == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
        },
        (first, last) => {
            let Some(start) = num(first) else {
                return RangeAsk::Whole;
            };
            let end = if last.is_empty() {
                None
            } else {
                match num(last) {
                    Some(e) if e >= start => Some(e),
                    _ => return RangeAsk::Whole,
                }
            };
            if start >= size {
                return RangeAsk::Unsatisfiable;
            }
            let end = end.map_or(size - 1, |e| e.min(size - 1));
            RangeAsk::Part(ByteRange { start, end })
        }
    }
}

/// The request headers conditional evaluation looks at, with dates already
/// parsed to milliseconds since the epoch.
#[derive(Clone, Debug, Default)]
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a str>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<f64>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<f64>,
    /// `If-Range`.
    pub if_range: Option<IfRange<'a>>,
}

/// What an `If-Range` header holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IfRange<'a> {
    /// An entity tag.
    Etag(&'a str),
    /// A date, in milliseconds since the epoch.
    Date(f64),
    /// Neither: the `Range` must not be applied (HTTP says a condition
    /// that cannot be evaluated gets the whole file).
    Invalid,
}

impl<'a> IfRange<'a> {
    /// Classifies a header value; `parse_date` reads an HTTP date.
    pub fn parse(value: &'a str, parse_date: impl Fn(&str) -> Option<f64>) -> Self {
        let v = value.trim();
        if v.starts_with('"') || v.starts_with("W/\"") {
            if v.len() >= 2 && v.ends_with('"') {
                IfRange::Etag(v)
            } else {
                IfRange::Invalid
            }
        } else {
            parse_date(v).map_or(IfRange::Invalid, IfRange::Date)
        }
    }
}

/// The outcome of the preconditions for a GET or HEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve it; `honour_range` is false when `If-Range` did not match.
    Serve {
        /// Whether a `Range` header may be applied.
        honour_range: bool,
    },
    /// 304.
    NotModified,
    /// 412.
    Failed,
}

fn etag_list_matches(list: &str, etag: &str, weak: bool) -> bool {
    let bare = |t: &str| -> String {
        let t = t.trim();
        let t = if weak {
            t.strip_prefix("W/").unwrap_or(t)
        } else {
            t
        };
        t.to_owned()
    };
    let target = bare(etag);
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || ((weak || !t.starts_with("W/")) && bare(t) == target)
    })
}

/// Evaluates preconditions in the order of RFC 9110 §13.2.2 for a GET or
/// HEAD of a representation with strong `etag` and `last_modified` (ms,
/// whole seconds are compared since HTTP dates have no fraction).
pub fn evaluate(c: &Conditions<'_>, etag: &str, last_modified: f64) -> Precondition {
    let secs = |ms: f64| (ms / 1000.0).floor();
    if let Some(m) = c.if_match {
        if !etag_list_matches(m, etag, false) {
            return Precondition::Failed;
        }
    } else if let Some(d) = c.if_unmodified_since
        && secs(last_modified) > secs(d)
    {
        return Precondition::Failed;
    }
    if let Some(m) = c.if_none_match {
        if etag_list_matches(m, etag, true) {
            return Precondition::NotModified;
        }
    } else if let Some(d) = c.if_modified_since
        && secs(last_modified) <= secs(d)
    {
        return Precondition::NotModified;
    }
    let honour_range = match c.if_range {
        Some(IfRange::Etag(t)) => !t.starts_with("W/") && t == etag,
        Some(IfRange::Date(d)) => secs(last_modified) == secs(d),
        Some(IfRange::Invalid) => false,
        None => true,
    };
    Precondition::Serve { honour_range }
}

/// Parses `meta-name=hex, meta-name=hex` (the combined digests a publisher
/// sends with a root file). Names must be plain file names.
pub fn parse_combined(header: &str) -> Result<Vec<(String, Sha256)>, String> {
    let mut out: Vec<(String, Sha256)> = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, hex) = part
            .split_once('=')
            .ok_or_else(|| format!("combined digest {part:?} is not NAME=SHA256"))?;
        let (name, hex) = (name.trim(), hex.trim());
        if name.is_empty() || name.starts_with('.') || !name.chars().all(path_char_ok) {
            return Err(format!("combined digest names a bad file {name:?}"));
        }
        let digest = Sha256::from_hex(hex).map_err(|e| e.to_string())?;
        if out.iter().any(|(n, d)| n == name && *d != digest) {
            return Err(format!("two different combined digests for {name}"));
        }
        out.push((name.to_owned(), digest));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_confined_to_images() {
        assert_eq!(
            image_key("/images/debian/12/amd64/default/20260801_0312/incus.tar.xz"),
            Ok("images/debian/12/amd64/default/20260801_0312/incus.tar.xz".into())
        );
        for bad in [
            "/images/../catalog/current.json",
            "/images/a/./b",
            "/images/a//b",
            "/images/%2e%2e/x",
            "/images/a%2fb",
            "/images/.staging/x",
            "/images/a/.hidden",
            "/images/",
            "/catalog/current.json",
            "/images/a b",
        ] {
            assert!(image_key(bad).is_err(), "{bad}");
        }
        assert!(image_key("/images/debian/.requirements").is_ok());
        assert!(image_key("/images/.lxd_requirements").is_ok());
    }

    #[test]
    fn upload_layout() {
        assert!(upload_layout_ok("images/d/12/amd64/default/v/f").is_ok());
        assert!(upload_layout_ok("images/d/12/amd64/default/metadata.json").is_ok());
        assert!(upload_layout_ok("images/.requirements").is_ok());
        assert!(upload_layout_ok("images/d/12/amd64/default/.requirements").is_ok());
        assert!(upload_layout_ok("images/d/12/amd64/default/v/.requirements").is_err());
        assert!(upload_layout_ok("images/d/12/amd64/x").is_err());
        assert!(upload_layout_ok("images/d/12/amd64/default/v/f/g").is_err());
    }

    #[test]
    fn ranges() {
        let p = |s, e| RangeAsk::Part(ByteRange { start: s, end: e });
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), p(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), p(5, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), p(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), p(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), p(0, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeAsk::Unsatisfiable);
        // Positions past u64: a first byte beyond any file, a last byte at
        // its end, a suffix longer than it.
        let huge = "18446744073709551616";
        assert_eq!(
            parse_range(Some(&format!("bytes={huge}-")), 10),
            RangeAsk::Unsatisfiable
        );
        assert_eq!(parse_range(Some(&format!("bytes=2-{huge}")), 10), p(2, 9));
        assert_eq!(parse_range(Some(&format!("bytes=-{huge}")), 10), p(0, 9));
        assert_eq!(range_spec(Some(&format!("bytes={huge}-"))), None);
    }

    #[test]
    fn range_specs() {
        assert_eq!(range_spec(None), Some(RangeSpec::Whole));
        assert_eq!(range_spec(Some("bytes=0-1,4-5")), Some(RangeSpec::Whole));
        assert_eq!(
            range_spec(Some("bytes=10-19")),
            Some(RangeSpec::From {
                offset: 10,
                length: Some(10)
            })
        );
        assert_eq!(
            range_spec(Some("bytes=10-")),
            Some(RangeSpec::From {
                offset: 10,
                length: None
            })
        );
        assert_eq!(range_spec(Some("bytes=-5")), Some(RangeSpec::Suffix(5)));
        assert_eq!(range_spec(Some("bytes=-0")), None);
    }

    #[test]
    fn preconditions() {
        let etag = "\"abc\"";
        let t = 1_000_000.0;
        let serve = Precondition::Serve { honour_range: true };
        let c = |f: &dyn Fn(&mut Conditions<'static>)| {
            let mut c = Conditions::default();
            f(&mut c);
            evaluate(&c, etag, t)
        };
        assert_eq!(c(&|_| {}), serve);
        assert_eq!(
            c(&|c| c.if_none_match = Some("\"abc\"")),
            Precondition::NotModified
        );
        assert_eq!(
            c(&|c| c.if_none_match = Some("W/\"abc\"")),
            Precondition::NotModified
        );
        assert_eq!(
            c(&|c| c.if_none_match = Some("\"x\", *")),
            Precondition::NotModified
        );
        assert_eq!(c(&|c| c.if_none_match = Some("\"x\"")), serve);
        assert_eq!(c(&|c| c.if_match = Some("\"x\"")), Precondition::Failed);
        assert_eq!(c(&|c| c.if_match = Some("W/\"abc\"")), Precondition::Failed);
        assert_eq!(c(&|c| c.if_match = Some("\"abc\"")), serve);
        assert_eq!(
            c(&|c| c.if_modified_since = Some(t)),
            Precondition::NotModified
        );
        assert_eq!(c(&|c| c.if_modified_since = Some(t - 5000.0)), serve);
        assert_eq!(
            c(&|c| c.if_unmodified_since = Some(t - 5000.0)),
            Precondition::Failed
        );
        let whole = Precondition::Serve {
            honour_range: false,
        };
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Etag("\"old\""))), whole);
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Etag("\"abc\""))), serve);
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Invalid)), whole);
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Date(t))), serve);
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Date(t - 5000.0))), whole);
        let date = |v: &str| (v == "Sun, 06 Nov 1994 08:49:37 GMT").then_some(1.0);
        assert_eq!(IfRange::parse(" \"x\" ", date), IfRange::Etag("\"x\""));
        assert_eq!(IfRange::parse("W/\"x\"", date), IfRange::Etag("W/\"x\""));
        assert_eq!(IfRange::parse("\"x", date), IfRange::Invalid);
        assert_eq!(IfRange::parse("garbage", date), IfRange::Invalid);
        assert_eq!(
            IfRange::parse("Sun, 06 Nov 1994 08:49:37 GMT", date),
            IfRange::Date(1.0)
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("bEaReR   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn empty_architecture_headers_say_nothing() {
        assert_eq!(
            server_arches(Some("x86_64"), Some("aarch64")),
            Some("x86_64")
        );
        assert_eq!(server_arches(Some(""), Some("aarch64")), Some("aarch64"));
        assert_eq!(server_arches(Some(" , "), Some("aarch64")), Some("aarch64"));
        assert_eq!(server_arches(None, Some("aarch64")), Some("aarch64"));
        assert_eq!(server_arches(Some(""), None), None);
    }

    #[test]
    fn timestamps_are_bounded() {
        assert_eq!(timestamp("1785556800"), Ok(1_785_556_800));
        assert_eq!(timestamp("0"), Ok(0));
        assert!(timestamp("9223372036854775807").is_err());
        assert!(timestamp("253402300800").is_err());
        assert!(timestamp("-1").is_err());
        assert!(timestamp("1e9").is_err());
    }

    #[test]
    fn long_keys_are_refused() {
        let dir = "/images/d/12/amd64/default/20260801_0312/";
        let fits = format!("{dir}{}", "a".repeat(MAX_KEY_BYTES - dir.len() + 1));
        assert!(image_key(&fits).is_ok());
        let over = format!("{fits}a");
        assert!(image_key(&over).is_err());
    }

    #[test]
    fn tokens_and_types() {
        assert!(token_ok("s3cret", "s3cret"));
        assert!(!token_ok("s3cret ", "s3cret"));
        assert!(!token_ok("", ""));
        assert_eq!(content_type("images/a/incus.tar.xz"), "application/x-xz");
        assert_eq!(
            content_type("images/a/rootfs.squashfs"),
            "application/octet-stream"
        );
    }

    #[test]
    fn combined_header() {
        let h = "a".repeat(64);
        let ok = parse_combined(&format!("incus.tar.xz={h}, lxd.tar.xz={h}")).expect("valid");
        assert_eq!(ok.len(), 2);
        assert!(parse_combined("incus.tar.xz=ABC").is_err());
        assert!(parse_combined(&format!("../x={h}")).is_err());
        assert!(parse_combined(&format!("x={h},x={}", "b".repeat(64))).is_err());
    }
}
