//! Request header parsers and response header values.

use super::*;

pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.trim().split(';');
            parts.next() == Some("gzip") && !parts.any(|p| p.trim() == "q=0")
        })
}

pub(super) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
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

/// A single byte range (RFC 9110 §14.1.2); several ranges are served whole.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Range {
    Ignore,
    Unsatisfiable,
    Bytes(u64, u64),
}

pub(super) fn parse_range(value: &HeaderValue, size: u64) -> Range {
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, false) => match parse(last) {
            Some(0) => Range::Unsatisfiable,
            Some(n) if size > 0 => Range::Bytes(size.saturating_sub(n), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Ignore,
        },
        (false, _) => {
            let Some(a) = parse(first) else {
                return Range::Ignore;
            };
            let b = if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            };
            match b {
                None => Range::Ignore,
                Some(b) if b < a => Range::Ignore,
                Some(_) if a >= size => Range::Unsatisfiable,
                Some(b) => Range::Bytes(a, b.min(size - 1)),
            }
        }
        (true, true) => Range::Ignore,
    }
}

pub(super) fn content_type(path: &Path) -> &'static str {
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
        assert_eq!(r("bytes=50-500"), Range::Bytes(50, 99));
        assert_eq!(r("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Range::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Range::Ignore);
        assert_eq!(r("items=0-1"), Range::Ignore);
        assert_eq!(r("bytes=9-2"), Range::Ignore);
    }
}
