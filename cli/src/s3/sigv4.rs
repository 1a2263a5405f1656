//! AWS Signature Version 4 in the `Authorization` header, for S3.
//!
//! The payload is signed by its sha256 (`x-amz-content-sha256`), never as
//! `UNSIGNED-PAYLOAD` or with trailing checksums: every S3-compatible store
//! (AWS, R2, Garage, MinIO, Ceph) then refuses a body whose bytes differ
//! from the digest ssgen computed, and none of them is sent a checksum
//! header it may not know.

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

/// The digest of an empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret (or the token) in a debug dump.
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// One request to sign.
pub struct Request<'a> {
    pub method: &'a str,
    /// `host[:port]` exactly as the `Host` header is sent.
    pub host: &'a str,
    /// The path as sent, already URI-encoded (see [`encode_path`]).
    pub path: &'a str,
    /// Decoded query pairs; encoded and sorted here.
    pub query: &'a [(String, String)],
    /// Headers besides `host`, `x-amz-date` and `x-amz-content-sha256`
    /// (lower-case names); all are signed.
    pub headers: &'a [(String, String)],
    /// Hex sha256 of the body.
    pub payload_sha256: &'a str,
}

/// The headers to add to the request: `x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` (if any) and
/// `authorization`.
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    region: &str,
    unix_time: i64,
) -> Vec<(String, String)> {
    let (date, stamp) = amz_date(unix_time);
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("host".into(), req.host.to_owned()));
    headers.push(("x-amz-date".into(), stamp.clone()));
    headers.push(("x-amz-content-sha256".into(), req.payload_sha256.to_owned()));
    if let Some(token) = &creds.session_token {
        headers.push(("x-amz-security-token".into(), token.clone()));
    }
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        req.payload_sha256
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = [date.as_str(), region, "s3", "aws4_request"].iter().fold(
        format!("AWS4{}", creds.secret_key).into_bytes(),
        |k, part| hmac(&k, part.as_bytes()),
    );
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    let mut out = vec![
        ("x-amz-date".to_owned(), stamp),
        (
            "x-amz-content-sha256".to_owned(),
            req.payload_sha256.to_owned(),
        ),
    ];
    if let Some(token) = &creds.session_token {
        out.push(("x-amz-security-token".into(), token.clone()));
    }
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            creds.access_key
        ),
    ));
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)`.
fn amz_date(unix: i64) -> (String, String) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = ssgen_core::time::civil_from_days(days);
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    (date, stamp)
}

/// Percent-encodes as SigV4 wants: everything but `A-Za-z0-9-._~`, and
/// `/` too unless `keep_slash`.
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An object key's path (`/key` or `/bucket/key`), encoded once: S3 signs
/// the path as sent, without the double encoding other services use.
pub fn encode_path(path: &str) -> String {
    uri_encode(path, true)
}

/// The query in canonical (and sendable) form.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials {
        // The example key of the AWS documentation.
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .expect("an authorization header")
    }

    /// The GET Object example of the S3 SigV4 documentation (header-based
    /// auth, 24 May 2013, a Range header).
    #[test]
    fn aws_documentation_get_object() {
        let t = ssgen_core::time::days_from_civil(2013, 5, 24) * 86_400;
        let headers = sign(
            &Request {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: &encode_path("/test.txt"),
                query: &[],
                headers: &[("range".into(), "bytes=0-9".into())],
                payload_sha256: EMPTY_SHA256,
            },
            &example_creds(),
            "us-east-1",
            t,
        );
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(headers.contains(&("x-amz-date".into(), "20130524T000000Z".into())));
    }

    #[test]
    fn keys_are_encoded_once_and_queries_sorted() {
        assert_eq!(
            encode_path("/b/images/x/20260801_03:12/a b+c.json"),
            "/b/images/x/20260801_03%3A12/a%20b%2Bc.json"
        );
        let q = [
            ("uploadId".to_owned(), "a/b=".to_owned()),
            ("partNumber".to_owned(), "2".to_owned()),
            ("uploads".to_owned(), String::new()),
        ];
        assert_eq!(
            canonical_query(&q),
            "partNumber=2&uploadId=a%2Fb%3D&uploads="
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let text = format!("{:?}", example_creds());
        assert!(!text.contains("EXAMPLEKEY"), "{text}");
    }
}
