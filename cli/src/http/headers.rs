//! What `ssgen serve` reads of request headers beyond the core's contract:
//! gzip negotiation for the catalogs it compresses. Each parser takes the
//! header as the client sent it and never panics.

use hyper::header::{self, HeaderMap};

/// Whether the request accepts a gzip-encoded response (RFC 9110, section 12.5.3):
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

/// Whether an `If-None-Match` of the request matches `etag` (the core's
/// weak comparison).
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| ssgen_core::serve::http::none_match(v, etag))
}

/// Every value of a request header, joined as one (`a, b`), as the core's
/// header readers take them; `None` when it is absent or not text.
pub(crate) fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    use hyper::header::HeaderValue;

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
}
