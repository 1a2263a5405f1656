//! The S3 calls a push makes, signed with SigV4 and sent with the `ureq`
//! agent the other commands use. Every answer that is not what S3 sends
//! (an HTML page, a redirect, a store's error code) is turned into one
//! message saying what went wrong and what to do.

use std::fs::File;
use std::io::{Read, Seek as _, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use indicatif::ProgressBar;

use super::sigv4::{self, Credentials, EMPTY_SHA256};
use crate::exit::Invalid;
use crate::net;

/// Where the bucket is and how to address it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]` of the bucket's requests (with the bucket's name in
    /// front for virtual-hosted addressing).
    pub host: String,
    /// `/BUCKET` for path-style addressing, else empty.
    pub base_path: String,
    pub bucket: String,
    pub region: String,
    /// The endpoint as the user gave it (or as derived), for messages.
    pub shown: String,
}

/// A store's answer.
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ETag, as sent (quotes included).
    pub fn etag(&self) -> Option<String> {
        self.header("etag").map(str::to_owned)
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn is_html(&self) -> bool {
        let start: Vec<u8> = self
            .body
            .iter()
            .copied()
            .skip_while(u8::is_ascii_whitespace)
            .take(15)
            .collect();
        let start = String::from_utf8_lossy(&start).to_ascii_lowercase();
        self.header("content-type")
            .is_some_and(|t| t.contains("html"))
            || start.starts_with("<!doctype html")
            || start.starts_with("<html")
    }

    /// The `<Error><Code>` of an S3 error body.
    pub fn code(&self) -> Option<String> {
        xml_text(&self.body, "Code")
    }
}

/// The first text of element `tag` anywhere in an XML document.
pub fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    doc.descendants()
        .find(|n| n.has_tag_name(tag))
        .and_then(|n| n.text())
        .map(str::to_owned)
}

/// What a request sends.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`, counted on `bars`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        bars: &'a [&'a ProgressBar],
    },
}

/// One request: the object key (none for the bucket itself), the query,
/// the headers to sign and send, the body and its sha256 (hex).
pub struct Call<'a> {
    pub method: &'a str,
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body<'a>,
    pub payload_sha256: &'a str,
}

impl<'a> Call<'a> {
    /// A request without a body.
    pub fn new(method: &'a str, key: Option<&'a str>) -> Self {
        Self {
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            payload_sha256: EMPTY_SHA256,
        }
    }

    pub fn query(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    /// A body and its sha256.
    pub fn body(mut self, body: Body<'a>, sha256: &'a str) -> Self {
        self.body = body;
        self.payload_sha256 = sha256;
        self
    }
}

/// Attempts for a request that failed on the way or with a 5xx (or
/// SlowDown): S3 asks clients to retry those.
const ATTEMPTS: u32 = 4;

pub struct Store {
    agent: ureq::Agent,
    pub endpoint: Endpoint,
    creds: Credentials,
    /// Where the credentials came from, for messages.
    pub creds_source: String,
}

impl Store {
    pub fn new(endpoint: Endpoint, creds: Credentials, creds_source: String) -> Result<Self> {
        // Redirects are not followed: S3 redirects only to say the bucket
        // is in another region, and that is reported instead. Uploads take
        // as long as they take; an answer must start within five minutes.
        let config = net::agent_config()?
            .max_redirects(0)
            .timeout_recv_response(Some(Duration::from_secs(300)));
        Ok(Self {
            agent: config.build().into(),
            endpoint,
            creds,
            creds_source,
        })
    }

    /// `s3://bucket/` for messages.
    pub fn bucket_url(&self) -> String {
        format!("s3://{}", self.endpoint.bucket)
    }

    /// Sends one request, retrying what S3 says to retry. Statuses are
    /// answers; only a store that cannot be reached is an error here.
    pub fn send(&self, call: &Call<'_>) -> Result<Answer> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let mut sent = 0;
            let result = self.send_once(call, &mut sent);
            let retry = match &result {
                Err(_) => true,
                Ok(a) => {
                    matches!(a.status, 500 | 502 | 503 | 504)
                        || (a.status == 429)
                        || a.code().as_deref() == Some("SlowDown")
                }
            };
            if !retry || attempt >= ATTEMPTS {
                return result;
            }
            // The bytes will be sent again.
            if let Body::File { bars, .. } = &call.body {
                for b in *bars {
                    b.dec(sent);
                }
            }
            std::thread::sleep(delay);
            delay *= 2;
            attempt += 1;
        }
    }

    fn send_once(&self, call: &Call<'_>, sent: &mut u64) -> Result<Answer> {
        let Call {
            method,
            key,
            query,
            headers,
            body,
            payload_sha256,
        } = call;
        let (method, payload_sha256) = (*method, *payload_sha256);
        let ep = &self.endpoint;
        let path = match key {
            Some(k) => sigv4::encode_path(&format!("{}/{k}", ep.base_path)),
            None if ep.base_path.is_empty() => "/".to_owned(),
            None => sigv4::encode_path(&ep.base_path),
        };
        let query_text = sigv4::canonical_query(query);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let mut all_headers = headers.clone();
        let len = match body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        };
        if method == "PUT" || method == "POST" {
            all_headers.push(("content-length".into(), len.to_string()));
        }
        let signed = sigv4::sign(
            &sigv4::Request {
                method,
                host: &ep.host,
                path: &path,
                query,
                headers: &all_headers,
                payload_sha256,
            },
            &self.creds,
            &ep.region,
            now,
        );
        let url = if query_text.is_empty() {
            format!("{}://{}{path}", ep.scheme, ep.host)
        } else {
            format!("{}://{}{path}?{query_text}", ep.scheme, ep.host)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in all_headers.iter().chain(&signed) {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let what = || format!("{method} {url}");
        let response = match body {
            Body::Empty => self.agent.run(builder.body(()).context("request")?),
            Body::Bytes(b) => self.agent.run(builder.body(*b).context("request")?),
            Body::File {
                path,
                offset,
                len,
                bars,
            } => {
                let mut file =
                    File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
                file.seek(SeekFrom::Start(*offset))
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let mut reader = Counted {
                    inner: file.take(*len),
                    bars,
                    sent,
                };
                self.agent.run(
                    builder
                        .body(ureq::SendBody::from_reader(&mut reader))
                        .context("request")?,
                )
            }
        };
        let mut response = response.map_err(|e| {
            anyhow!(
                "{}: cannot reach the store at {} ({e}); check --endpoint and the network",
                what(),
                ep.shown
            )
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| anyhow!("{}: the answer broke off ({e})", what()))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The error for an answer that is not a success: what the store said,
    /// and what the user can do about it. Wrong credentials, a missing
    /// bucket or a web page where the S3 API belongs are invalid input
    /// (exit 1); the rest is an IO failure (exit 2).
    pub fn error(&self, what: &str, a: &Answer) -> anyhow::Error {
        let ep = &self.endpoint;
        if a.is_html() {
            return Invalid(format!(
                "{what}: {} answered an HTML page (status {}), not the S3 API; give --endpoint the bucket store's S3 API URL \
                 (e.g. https://ACCOUNT.r2.cloudflarestorage.com or https://s3.REGION.amazonaws.com), not a website",
                ep.shown, a.status
            ))
            .into();
        }
        let code = a.code().unwrap_or_default();
        let message = xml_text(&a.body, "Message").unwrap_or_else(|| {
            String::from_utf8_lossy(&a.body)
                .chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_owned()
        });
        let said = if code.is_empty() {
            format!("status {}", a.status)
        } else {
            format!("{code}: {message}")
        };
        let bucket = &ep.bucket;
        match code.as_str() {
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"
            | "TokenRefreshRequired" | "InvalidSecurity" => Invalid(format!(
                "{what}: the store refused the credentials ({said}); they came from {}: check the access key and secret \
                 (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and ~/.aws/credentials)",
                self.creds_source
            ))
            .into(),
            "AccessDenied" | "AllAccessDisabled" => Invalid(format!(
                "{what}: access denied ({said}); the key from {} may not use bucket {bucket}: \
                 grant it s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject",
                self.creds_source
            ))
            .into(),
            "NoSuchBucket" => Invalid(format!(
                "{what}: bucket {bucket} does not exist at {} ({said}); create it first \
                 (aws s3 mb s3://{bucket}, wrangler r2 bucket create {bucket}, garage bucket create {bucket}) \
                 or check the bucket name, --endpoint and --region",
                ep.shown
            ))
            .into(),
            "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
                let region = xml_text(&a.body, "Region")
                    .or_else(|| a.header("x-amz-bucket-region").map(str::to_owned));
                Invalid(format!(
                    "{what}: bucket {bucket} is not in region {} ({said}){}",
                    ep.region,
                    region.map_or_else(
                        || "; give --region the bucket's region".to_owned(),
                        |r| format!("; use --region {r}")
                    )
                ))
                .into()
            }
            // Ceph RGW and B2 say QuotaExceeded, MinIO its own code.
            "QuotaExceeded" | "XMinioAdminBucketQuotaExceeded" | "XMinioStorageFull" | "StorageFull"
            | "EntityTooLarge" => anyhow!(
                "{what}: the store refused the upload: the bucket's quota or storage is full ({said}); \
                 free space or raise the quota, then push again (what arrived is kept, the catalog is unchanged)"
            ),
            _ if (300..400).contains(&a.status) => Invalid(format!(
                "{what}: {} redirected (status {}{}); check --endpoint, --region and --path-style",
                ep.shown,
                a.status,
                a.header("location")
                    .map(|l| format!(" to {l}"))
                    .unwrap_or_default()
            ))
            .into(),
            _ if a.status == 404 && code.is_empty() => Invalid(format!(
                "{what}: {} answered 404 without an S3 error; check --endpoint (and --path-style for stores that want it)",
                ep.shown
            ))
            .into(),
            _ => anyhow!("{what}: the store answered {said} (status {})", a.status),
        }
    }
}

/// A reader that advances progress bars.
struct Counted<'a, 'b, R> {
    inner: R,
    bars: &'a [&'a ProgressBar],
    sent: &'b mut u64,
}

impl<R: Read> Read for Counted<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.sent += n as u64;
        for b in self.bars {
            b.inc(n as u64);
        }
        Ok(n)
    }
}
