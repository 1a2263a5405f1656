//! The HTTP rules both servers follow: the content type and cache policy
//! of each path, one byte range per request, the conditional requests, and
//! HTTP dates. Everything takes header values as the client sent them and
//! never panics.

use crate::time;

/// Image files: a year, and `immutable`. A file of a version directory
/// never takes other bytes at its path: both servers refuse a different
/// body for a path that holds a file (409), and the edge keeps a purged
/// path's sha256 so that it refuses other bytes there for good. A client
/// checks every download against the catalog's sha256 anyway.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The catalog, the page for people and direct-URL answers: they change
/// with every publish (the clients themselves keep a catalog for an hour).
pub const CATALOG: &str = "public, max-age=60";

/// Everything else: side files (`metadata.json`, `.requirements`), which
/// may be replaced, and whatever else the root holds.
pub const SHORT: &str = "public, max-age=300";

/// The upload API's answers and the health check: about now only.
pub const NO_STORE: &str = "no-store";

/// How long clients and caches may keep the answer for `rel`.
#[must_use]
pub fn cache_control(rel: &str) -> &'static str {
    if rel.starts_with(super::SNAPSHOTS) || is_immutable(rel) {
        IMMUTABLE
    } else if rel.starts_with("streams/")
        || super::is_page(rel)
        || rel.starts_with(crate::direct::URL_PREFIX)
    {
        CATALOG
    } else {
        SHORT
    }
}

/// Whether the file at `rel` never changes: a file of a version directory
/// that a build publishes ([`crate::unpublishable`] finds nothing wrong
/// with its path). The upload API takes exactly these into version
/// directories, and never replaces one (see [`super::upload::replaceable`]).
#[must_use]
pub fn is_immutable(rel: &str) -> bool {
    crate::unpublishable(rel).is_none()
}

/// The content type of a file, by its name.
#[must_use]
pub fn content_type(rel: &str) -> &'static str {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if matches!(name, ".requirements" | ".lxd_requirements") {
        return "text/plain; charset=utf-8";
    }
    match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "json" => "application/json",
        "xz" => "application/x-xz",
        "gz" => "application/gzip",
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The headers of the page for people: HTML, and a policy that lets it
/// load and run nothing (it has no script), so that even a string the
/// escaping missed could do nothing.
pub const PAGE_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/html; charset=utf-8"),
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    ),
];

/// A byte range resolved against the size: `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes.
    #[must_use]
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    /// Never: a range holds at least one byte.
    #[must_use]
    pub fn is_empty(self) -> bool {
        false
    }

    /// The `Content-Range` value of a 206 of a representation of `size`.
    #[must_use]
    pub fn content_range(self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.end)
    }
}

/// What a `Range` header asks of a representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable range: the whole body (absent, malformed, another unit or
    /// several ranges, which a server may ignore).
    Whole,
    /// One satisfiable range: 206.
    Part(ByteRange),
    /// A valid range that holds no byte of the body: 416.
    Unsatisfiable,
}

/// The `Content-Range` value of a 416 for a body of `size` bytes.
#[must_use]
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

/// The text of a 416: the header as sent (cut short) and the size missed.
#[must_use]
pub fn unsatisfiable_message(header: &str, size: u64) -> String {
    let shown: String = header.chars().take(100).collect();
    format!("Range: {shown:?} asks for no byte of this file of {size} bytes")
}

/// One position of a range: digits only (a sign or `0x` is no number); a
/// number too large for u64 is still a position, past the end of any file.
fn position(text: &str) -> Option<Option<u64>> {
    if text.is_empty() {
        Some(None)
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        Some(Some(text.parse().unwrap_or(u64::MAX)))
    } else {
        None
    }
}

/// The first and last positions of a single `bytes=` range (the unit is
/// case-insensitive), or `None` when the header is to be ignored. The
/// grammar has no whitespace inside a range (RFC 9110 §14.1.2): `bytes=- 0`
/// is no range, and ignored like any other malformed value.
fn positions(header: &str) -> Option<(Option<u64>, Option<u64>)> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    let (first, last) = (position(first)?, position(last)?);
    match (first, last) {
        (None, None) => None,
        (Some(a), Some(b)) if b < a => None,
        pair => Some(pair),
    }
}

/// Resolves a `Range` header against a body of `size` bytes.
#[must_use]
pub fn parse_range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some((first, last)) = header.and_then(positions) else {
        return RangeAsk::Whole;
    };
    match (first, last) {
        (None, Some(suffix)) if suffix == 0 || size == 0 => RangeAsk::Unsatisfiable,
        (None, Some(suffix)) => RangeAsk::Part(ByteRange {
            start: size - suffix.min(size),
            end: size - 1,
        }),
        (Some(start), _) if start >= size => RangeAsk::Unsatisfiable,
        (Some(start), last) => RangeAsk::Part(ByteRange {
            start,
            end: last.unwrap_or(u64::MAX).min(size - 1),
        }),
        (None, None) => RangeAsk::Whole,
    }
}

/// A single range before the size is known, as a store reads it (for one
/// ranged read, with no request for the size first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable range: the whole body.
    Whole,
    /// From `offset`, `length` bytes (clamped to the body by the store),
    /// or to the end.
    From {
        /// First byte.
        offset: u64,
        /// Bytes wanted; `None` to the end.
        length: Option<u64>,
    },
    /// The last `n` bytes.
    Suffix(u64),
}

/// Reads a `Range` header without the size; `None` when only the size
/// can tell the answer (`bytes=-0` is always unsatisfiable, a first byte
/// past u64 too).
#[must_use]
pub fn range_spec(header: Option<&str>) -> Option<RangeSpec> {
    let Some((first, last)) = header.and_then(positions) else {
        return Some(RangeSpec::Whole);
    };
    match (first, last) {
        (None, Some(0)) | (Some(u64::MAX), _) => None,
        (None, Some(n)) => Some(RangeSpec::Suffix(n)),
        (Some(offset), last) => Some(RangeSpec::From {
            offset,
            length: last.map(|l| l.saturating_sub(offset).saturating_add(1)),
        }),
        (None, None) => Some(RangeSpec::Whole),
    }
}

/// The request headers a conditional request is judged by, dates parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<String>,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`, Unix seconds (`None` also when not a date).
    pub if_modified_since: Option<i64>,
    /// `If-Unmodified-Since`, Unix seconds.
    pub if_unmodified_since: Option<i64>,
    /// `If-Range`.
    pub if_range: Option<IfRange>,
}

/// The names of the headers [`Conditions`] reads.
pub const CONDITIONAL: [&str; 5] = [
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
];

impl Conditions {
    /// The conditions of a request, `header` giving the value of a header
    /// by its lower-case name (several values joined with `, `).
    pub fn read(header: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            if_match: header("if-match"),
            if_none_match: header("if-none-match"),
            if_modified_since: header("if-modified-since").and_then(|d| parse_http_date(&d)),
            if_unmodified_since: header("if-unmodified-since").and_then(|d| parse_http_date(&d)),
            if_range: header("if-range").map(|v| IfRange::parse(&v)),
        }
    }

    /// Whether the request has any condition at all.
    #[must_use]
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// What an `If-Range` header holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfRange {
    /// An entity tag, quotes included.
    Etag(String),
    /// A date, Unix seconds.
    Date(i64),
    /// Neither: the `Range` is not applied (a condition that cannot be
    /// judged gets the whole body).
    Invalid,
}

impl IfRange {
    /// Classifies a header value.
    #[must_use]
    pub fn parse(value: &str) -> Self {
        let v = value.trim();
        if v.starts_with('"') || v.starts_with("W/\"") {
            if v.len() >= 2 && v.ends_with('"') {
                IfRange::Etag(v.to_owned())
            } else {
                IfRange::Invalid
            }
        } else {
            parse_http_date(v).map_or(IfRange::Invalid, IfRange::Date)
        }
    }
}

/// What the preconditions of a GET or HEAD decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve it; `honour_range` is false when `If-Range` did not match.
    Serve {
        /// Whether a `Range` header may be applied.
        honour_range: bool,
    },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Whether a list of entity tags (`"a", W/"b"` or `*`) holds `etag`; a weak
/// comparison ignores `W/` on both sides, a strong one never matches a weak
/// tag.
fn etag_list_matches(list: &str, etag: &str, weak: bool) -> bool {
    fn bare(t: &str, weak: bool) -> &str {
        let t = t.trim();
        if weak {
            t.strip_prefix("W/").unwrap_or(t)
        } else {
            t
        }
    }
    let target = bare(etag, weak);
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || ((weak || !t.starts_with("W/")) && bare(t, weak) == target)
    })
}

/// Whether an `If-None-Match` value matches `etag` (a weak comparison).
#[must_use]
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    etag_list_matches(if_none_match, etag, true)
}

/// Judges the preconditions in the order of RFC 9110 §13.2.2 for a GET or
/// HEAD of a representation with the strong tag `etag`, modified at
/// `modified` (Unix seconds, when known).
#[must_use]
pub fn evaluate(c: &Conditions, etag: &str, modified: Option<i64>) -> Precondition {
    if let Some(m) = &c.if_match {
        if !etag_list_matches(m, etag, false) {
            return Precondition::Failed;
        }
    } else if let (Some(d), Some(m)) = (c.if_unmodified_since, modified)
        && m > d
    {
        return Precondition::Failed;
    }
    if let Some(m) = &c.if_none_match {
        if none_match(m, etag) {
            return Precondition::NotModified;
        }
    } else if let (Some(d), Some(m)) = (c.if_modified_since, modified)
        && m <= d
    {
        return Precondition::NotModified;
    }
    let honour_range = match &c.if_range {
        Some(IfRange::Etag(t)) => !t.starts_with("W/") && t == etag,
        Some(IfRange::Date(d)) => modified == Some(*d),
        Some(IfRange::Invalid) => false,
        None => true,
    };
    Precondition::Serve { honour_range }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), for `Last-Modified`.
#[must_use]
pub fn http_date(unix: i64) -> String {
    time::rfc2822(unix).replace("+0000", "GMT")
}

/// Reads an HTTP date in any of the three forms HTTP allows (RFC 9110
/// §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37
/// GMT` and `Sun Nov  6 08:49:37 1994`. The weekday is not checked.
#[must_use]
pub fn parse_http_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let (day, month, year, clock) = if let Some((_, rest)) = text.split_once(", ") {
        let rest = rest.strip_suffix(" GMT")?;
        let (date, clock) = rest.rsplit_once(' ')?;
        let parts: Vec<&str> = date.split([' ', '-']).collect();
        let [day, month, year] = parts[..] else {
            return None;
        };
        let year: i64 = number(year)?;
        // RFC 850's two-digit year, read in the window 1970-2069 (the core
        // has no clock to judge "within 50 years").
        let year = match year {
            y if date.contains('-') && y < 70 => 2000 + y,
            y if date.contains('-') && y < 100 => 1900 + y,
            y => y,
        };
        (number(day)?, month, year, clock)
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994`.
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [_, month, day, clock, year] = parts[..] else {
            return None;
        };
        (number(day)?, month, number(year)?, clock)
    };
    let month = u32::try_from(MONTHS.iter().position(|m| *m == month)? + 1).ok()?;
    let parts: Vec<i64> = clock.split(':').map(number).collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else {
        return None;
    };
    let day = u32::try_from(day).ok()?;
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || !(0..=9999).contains(&year) {
        return None;
    }
    Some(time::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

fn number(text: &str) -> Option<i64> {
    (!text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "images/debian/12/amd64/default/20260801_0312";

    #[test]
    fn cache_policy_follows_what_may_change() {
        for f in [
            "rootfs.squashfs",
            "incus.tar.xz",
            "disk.qcow2",
            "x_combined.tar.gz",
        ] {
            assert_eq!(cache_control(&format!("{V}/{f}")), IMMUTABLE, "{f}");
        }
        assert_eq!(
            cache_control(&format!("{V}/delta-20260701_0312.vcdiff")),
            IMMUTABLE
        );
        assert_eq!(cache_control(&format!("{V}/SHA256SUMS")), IMMUTABLE);
        // Side files may be replaced; other files are the operator's.
        assert_eq!(
            cache_control("images/debian/12/amd64/default/metadata.json"),
            SHORT
        );
        assert_eq!(cache_control("images/debian/.requirements"), SHORT);
        assert_eq!(cache_control(&format!("{V}/notes.txt")), SHORT);
        assert_eq!(
            cache_control("images/debian/12/amd64/default/latest/rootfs.squashfs"),
            SHORT
        );
        assert_eq!(cache_control("streams/v1/index.json"), CATALOG);
        assert_eq!(cache_control(""), CATALOG);
        assert_eq!(cache_control("index.html"), CATALOG);
        assert_eq!(cache_control("aliases/debian/12"), CATALOG);
        assert_eq!(
            cache_control(&format!("streams/v1/snapshots/{}.json", "a".repeat(64))),
            IMMUTABLE
        );
        assert_eq!(cache_control("app.js"), SHORT);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("images/a/incus.tar.xz"), "application/x-xz");
        assert_eq!(
            content_type("images/a/x_combined.tar.gz"),
            "application/gzip"
        );
        assert_eq!(
            content_type("images/a/rootfs.squashfs"),
            "application/octet-stream"
        );
        assert_eq!(
            content_type("images/a/.requirements"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type("streams/v1/index.json"), "application/json");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("pkg/x.wasm"), "application/wasm");
        assert_eq!(content_type("README"), "application/octet-stream");
    }

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(Some(s), 100);
        let p = |start, end| RangeAsk::Part(ByteRange { start, end });
        assert_eq!(parse_range(None, 100), RangeAsk::Whole);
        assert_eq!(r("bytes=0-9"), p(0, 9));
        assert_eq!(r("bytes=90-"), p(90, 99));
        assert_eq!(r("bytes=-10"), p(90, 99));
        assert_eq!(r("bytes=-1000"), p(0, 99));
        assert_eq!(r("bytes=50-500"), p(50, 99));
        assert_eq!(r("Bytes=0-0"), p(0, 0));
        assert_eq!(r(" bytes= 1-2 "), p(1, 2));
        assert_eq!(r("bytes=0-99999999999999999999999"), p(0, 99));
        assert_eq!(r("bytes=-99999999999999999999999"), p(0, 99));
        assert_eq!(r("bytes=100-"), RangeAsk::Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-"), RangeAsk::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), RangeAsk::Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=9-2",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=-+2",
            "bytes=0x1-2",
            "bytes=-",
            "bytes",
            "",
            "bytes=- 0",
            "bytes=1 -2",
            "bytes =1-2",
        ] {
            assert_eq!(r(ignored), RangeAsk::Whole, "{ignored}");
        }
        assert_eq!(
            ByteRange { start: 10, end: 19 }.content_range(100),
            "bytes 10-19/100"
        );
        assert_eq!(unsatisfied_range(100), "bytes */100");
    }

    #[test]
    fn range_specs_need_no_size() {
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
            range_spec(Some("BYTES=10-")),
            Some(RangeSpec::From {
                offset: 10,
                length: None
            })
        );
        assert_eq!(range_spec(Some("bytes=-5")), Some(RangeSpec::Suffix(5)));
        assert_eq!(range_spec(Some("bytes=-0")), None);
        assert_eq!(range_spec(Some("bytes=18446744073709551616-")), None);
    }

    #[test]
    fn preconditions() {
        let etag = "\"abc\"";
        let t = 1_000_000;
        let serve = Precondition::Serve { honour_range: true };
        let whole = Precondition::Serve {
            honour_range: false,
        };
        let c = |f: &dyn Fn(&mut Conditions)| {
            let mut c = Conditions::default();
            f(&mut c);
            evaluate(&c, etag, Some(t))
        };
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(c(&|_| {}), serve);
        assert_eq!(
            c(&|c| c.if_none_match = s("\"abc\"")),
            Precondition::NotModified
        );
        assert_eq!(
            c(&|c| c.if_none_match = s("W/\"abc\"")),
            Precondition::NotModified
        );
        assert_eq!(
            c(&|c| c.if_none_match = s("\"x\", *")),
            Precondition::NotModified
        );
        assert_eq!(c(&|c| c.if_none_match = s("\"x\"")), serve);
        assert_eq!(c(&|c| c.if_match = s("\"x\"")), Precondition::Failed);
        assert_eq!(c(&|c| c.if_match = s("W/\"abc\"")), Precondition::Failed);
        assert_eq!(c(&|c| c.if_match = s("\"abc\"")), serve);
        assert_eq!(
            c(&|c| c.if_modified_since = Some(t)),
            Precondition::NotModified
        );
        assert_eq!(c(&|c| c.if_modified_since = Some(t - 5)), serve);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            c(&|c| {
                c.if_modified_since = Some(t);
                c.if_none_match = s("\"x\"");
            }),
            serve
        );
        assert_eq!(
            c(&|c| c.if_unmodified_since = Some(t - 5)),
            Precondition::Failed
        );
        assert_eq!(
            c(&|c| c.if_range = Some(IfRange::Etag("\"old\"".into()))),
            whole
        );
        assert_eq!(
            c(&|c| c.if_range = Some(IfRange::Etag("\"abc\"".into()))),
            serve
        );
        assert_eq!(
            c(&|c| c.if_range = Some(IfRange::Etag("W/\"abc\"".into()))),
            whole
        );
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Invalid)), whole);
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Date(t))), serve);
        assert_eq!(c(&|c| c.if_range = Some(IfRange::Date(t - 5))), whole);
        // No known time: date conditions say nothing, a dated If-Range fails.
        let mut dated = Conditions {
            if_modified_since: Some(t),
            ..Default::default()
        };
        assert_eq!(evaluate(&dated, etag, None), serve);
        dated.if_range = Some(IfRange::Date(t));
        assert_eq!(evaluate(&dated, etag, None), whole);
        assert_eq!(IfRange::parse(" \"x\" "), IfRange::Etag("\"x\"".into()));
        assert_eq!(IfRange::parse("\"x"), IfRange::Invalid);
        assert_eq!(IfRange::parse("garbage"), IfRange::Invalid);
        assert_eq!(
            IfRange::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            IfRange::Date(784_111_777)
        );
        let read = Conditions::read(|h| {
            (h == "if-modified-since").then(|| "Sun, 06 Nov 1994 08:49:37 GMT".into())
        });
        assert_eq!(read.if_modified_since, Some(784_111_777));
        assert!(read.any() && !Conditions::default().any());
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let t = 784_111_777;
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(
            parse_http_date(&http_date(1_785_556_800)),
            Some(1_785_556_800)
        );
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
