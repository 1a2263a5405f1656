//! Request header parsers and response header values. Each parser takes
//! the header as the client sent it and never panics; what it refuses, it
//! refuses with a message that names the header.

use super::*;

/// Whether the request accepts a gzip-encoded response (RFC 9110 §12.5.3):
/// coding names are case-insensitive, `q=0` refuses, `*` stands for any
/// coding not named, and a member whose weight does not parse is ignored.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    let members = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for member in members {
        let mut parts = member.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let mut weight = Some(1000);
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    weight = qvalue(value.trim());
                }
            }
        }
        let Some(weight) = weight else { continue };
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        *slot = Some(slot.map_or(weight, |w: u16| w.max(weight)));
    }
    gzip.or(any).is_some_and(|w| w > 0)
}

/// A weight in thousandths: `0`, `0.5`, `0.125`, `1`, `1.000`; no other form.
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive, RFC 9110 §11.1), or why there is none. The message
/// never repeats what was sent after the scheme: it may be a secret.
pub(super) fn bearer_token(headers: &HeaderMap) -> Result<&str, String> {
    const HOW: &str = "send `Authorization: Bearer <token>`";
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(format!("no Authorization header; {HOW}"));
    };
    if values.next().is_some() {
        return Err(format!("more than one Authorization header; {HOW}"));
    }
    let Ok(text) = value.to_str() else {
        return Err(format!(
            "the Authorization header is not printable ASCII; {HOW}"
        ));
    };
    let text = text.trim_matches([' ', '\t']);
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // A scheme is a short word (Basic, Digest); anything else may be
        // a token sent without one, and is not repeated.
        let word = scheme.len() < 16 && scheme.bytes().all(|b| b.is_ascii_alphabetic());
        return Err(if word {
            format!("the Authorization header uses the scheme {scheme:?}, not Bearer; {HOW}")
        } else {
            format!("the Authorization header does not start with a scheme; {HOW}")
        });
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(format!(
            "the Authorization header says Bearer but holds no token; {HOW}"
        ));
    }
    Ok(token)
}

pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

/// What a `Range` header asks of a representation (RFC 9110 §14.1.2): one
/// byte range, or nothing servable; anything else (several ranges, another
/// unit, a malformed value) is ignored and the whole body is served.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Range {
    Ignore,
    Unsatisfiable,
    Bytes(u64, u64),
}

pub(super) fn parse_range(value: &HeaderValue, size: u64) -> Range {
    let Some((unit, set)) = value.to_str().ok().and_then(|v| v.trim().split_once('=')) else {
        return Range::Ignore;
    };
    if !unit.eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Range::Ignore;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Range::Ignore;
    };
    // Only digits: `u64::from_str` would also take a sign (`+1`).
    let position = |s: &str| -> Option<Option<u64>> {
        if s.is_empty() {
            Some(None)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            // More digits than a u64 holds: beyond any file.
            Some(Some(s.parse().unwrap_or(u64::MAX)))
        } else {
            None
        }
    };
    let (Some(first), Some(last)) = (position(first), position(last)) else {
        return Range::Ignore;
    };
    match (first, last) {
        (None, None) => Range::Ignore,
        (None, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                Range::Bytes(size - suffix.min(size), size - 1)
            }
        }
        (Some(a), last) => match last {
            Some(b) if b < a => Range::Ignore,
            _ if a >= size => Range::Unsatisfiable,
            b => Range::Bytes(a, b.unwrap_or(u64::MAX).min(size - 1)),
        },
    }
}

/// The body of a 416 answer: the header as sent, and the size it missed.
pub(super) fn unsatisfiable(value: &HeaderValue, size: u64) -> String {
    let shown = String::from_utf8_lossy(value.as_bytes());
    let shown: String = shown.chars().take(100).collect();
    format!("Range: {shown:?} asks for no byte of this file of {size} bytes")
}

/// How long clients and caches may keep a file: catalogs briefly (they
/// change with every publish), image files for a year (a published path
/// never changes bytes), anything else a few minutes. `ssgen push` gives
/// objects in a bucket the same policy.
pub fn cache_control(rel: &str) -> &'static str {
    if rel.starts_with("images/") {
        "public, max-age=31536000, immutable"
    } else if rel.starts_with("streams/") || rel == ssgen_core::html::FILE_NAME {
        "public, max-age=60"
    } else {
        "public, max-age=300"
    }
}

/// The content type of a served file, by its name (also given to objects
/// `ssgen push` puts in a bucket).
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ext = name.rsplit('.').next().unwrap_or_default();
    match ext {
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

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(super) fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    ssgen_core::time::rfc2822(secs).replace("+0000", "GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(&HeaderValue::from_str(s).expect("ascii"), 100);
        assert_eq!(r("bytes=0-9"), Range::Bytes(0, 9));
        assert_eq!(r("bytes=90-"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=-10"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=-1000"), Range::Bytes(0, 99));
        assert_eq!(r("bytes=50-500"), Range::Bytes(50, 99));
        assert_eq!(r("Bytes=0-0"), Range::Bytes(0, 0));
        assert_eq!(r("bytes=0-99999999999999999999999"), Range::Bytes(0, 99));
        assert_eq!(r("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-"), Range::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Range::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Range::Ignore);
        assert_eq!(r("items=0-1"), Range::Ignore);
        assert_eq!(r("bytes=9-2"), Range::Ignore);
        assert_eq!(r("bytes=+1-2"), Range::Ignore);
        assert_eq!(r("bytes=1-+2"), Range::Ignore);
        assert_eq!(r("bytes=-+2"), Range::Ignore);
        assert_eq!(r("bytes=0x1-2"), Range::Ignore);
        assert_eq!(r("bytes=-"), Range::Ignore);
    }

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name.clone(), HeaderValue::from_str(v).expect("ascii"));
        }
        map
    }

    #[test]
    fn gzip_is_negotiated_by_name_case_and_weight() {
        let gz = |v: &[&str]| accepts_gzip(&headers(header::ACCEPT_ENCODING, v));
        assert!(gz(&["gzip"]) && gz(&["GZIP"]) && gz(&["br, Gzip;q=0.5"]) && gz(&["x-gzip"]));
        assert!(gz(&["deflate", "gzip ; Q=1.000"]) && gz(&["*"]) && gz(&["*;q=0.001"]));
        assert!(!gz(&["gzip;q=0"]) && !gz(&["gzip;q=0.000"]) && !gz(&["GZIP; q=0"]));
        assert!(!gz(&[]) && !gz(&["br"]) && !gz(&["*;q=0"]) && !gz(&["gzip;q=0, *"]));
        assert!(!gz(&["gzip;q=2"]) && !gz(&["gzip;q=0.0001"]) && !gz(&["gzip;q=-1"]));
        assert!(!gz(&["identity"]) && !gz(&["gzipx"]));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_refusals_say_why() {
        let auth = |v: &[&str]| bearer_token(&headers(header::AUTHORIZATION, v)).map(str::to_owned);
        assert_eq!(auth(&["Bearer abc"]).as_deref(), Ok("abc"));
        assert_eq!(auth(&["bearer abc"]).as_deref(), Ok("abc"));
        assert_eq!(auth(&["BEARER   abc "]).as_deref(), Ok("abc"));
        let refused = auth(&["Basic dXNlcjpzZWNyZXQ="]).expect_err("basic");
        assert!(
            refused.contains("\"Basic\"") && !refused.contains("dXNlcj"),
            "{refused}"
        );
        assert!(
            auth(&[])
                .expect_err("none")
                .contains("no Authorization header")
        );
        assert!(auth(&["Bearer"]).expect_err("empty").contains("no token"));
        assert!(auth(&["Bearer a", "Bearer b"]).is_err());
        let bare = auth(&["secret-token-0123456789"]).expect_err("no scheme");
        assert!(
            bare.contains("does not start with a scheme") && !bare.contains("secret"),
            "{bare}"
        );
    }
}
