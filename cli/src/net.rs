//! HTTP(S) as LXD and Incus do it, in one place for every command that
//! talks to a server (`lint`, `list`, `verify`, `push`): the trust they
//! use, and how a catalog document is fetched.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;

use crate::exit::Invalid;

/// The largest catalog document read (a products file of 100,000 items is
/// a few tens of MB).
const CATALOG_LIMIT: u64 = 1 << 30;

/// The system's CA bundles, where Go looks for them on Linux
/// (crypto/x509/root_linux.go): what `lxc` and `incus` trust when
/// `SSL_CERT_FILE` is not set, kept by `update-ca-certificates`.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn pem_certs(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// An agent configuration with the clients' trust: the PEM bundle in
/// `SSL_CERT_FILE` when set (as Go, OpenSSL and Python honour it, so a
/// private CA works the same for ssgen and for `lxc`), otherwise the
/// system's bundle as Go reads it (so a CA added with
/// `update-ca-certificates` is trusted by ssgen as by the clients), or the
/// Mozilla roots when there is none. Statuses are answers, not errors; a
/// connection is given 30 s. Callers add the timeouts of their own
/// transfers.
pub fn agent_config() -> Result<ConfigBuilder<AgentScope>> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        let file = Path::new(&file);
        let pem = std::fs::read(file).with_context(|| {
            format!(
                "cannot read SSL_CERT_FILE={}; point it at a PEM file of CA certificates",
                file.display()
            )
        })?;
        let certs = pem_certs(&pem);
        if certs.is_empty() {
            bail!(Invalid(format!(
                "SSL_CERT_FILE={}: holds no PEM certificate; point it at a PEM file of CA certificates",
                file.display()
            )));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    } else if let Some(certs) = SYSTEM_BUNDLES
        .iter()
        .find_map(|f| std::fs::read(f).ok().map(|pem| pem_certs(&pem)))
        .filter(|certs| !certs.is_empty())
    {
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .user_agent(concat!("ssgen/", env!("CARGO_PKG_VERSION"))))
}

/// GETs a catalog document (an index or a products file). As for the
/// clients, only a 200 counts: another status, or an HTML page where JSON
/// belongs, is invalid input (exit 1); a server that cannot be reached is
/// an IO error (exit 2).
pub fn fetch_catalog(agent: &ureq::Agent, url: &str) -> Result<String> {
    let mut resp = agent.get(url).call().map_err(|e| unreachable(url, &e))?;
    let status = resp.status();
    if status != 200 {
        bail!(Invalid(format!(
            "{url}: HTTP status {status}; LXD and Incus accept only 200 (give the server root URL, the one given to `lxc remote add`)"
        )));
    }
    let html_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("html"));
    let text = resp
        .body_mut()
        .with_config()
        .limit(CATALOG_LIMIT)
        .read_to_string()
        .map_err(|e| anyhow!("{url}: cannot read the answer ({e})"))?;
    if html_type || text.trim_start().starts_with('<') {
        bail!(Invalid(format!(
            "{url}: the server answered an HTML page, not JSON; give the server root URL (the one given to `lxc remote add`), not a web page"
        )));
    }
    Ok(text)
}

/// Why a request to `url` got no answer, as one error: a certificate the
/// client does not trust is said to be so, with how to trust it (a server
/// that answers is not "down"); anything else asks to check the URL and
/// the server. Exit 2 either way: the network could not be read.
pub fn unreachable(url: &str, e: &ureq::Error) -> anyhow::Error {
    const TRUST: &str = "if the server is yours, trust the CA that signed its certificate: point SSL_CERT_FILE at the CA's PEM file (for `ssgen serve --self-signed`, the file it names), or add the CA to the system store (cp CA.pem /usr/local/share/ca-certificates/NAME.crt && update-ca-certificates), which lxc, incus and ssgen read";
    let why = match untrusted(e) {
        Some(rustls::CertificateError::UnknownIssuer) => {
            format!("it is signed by an unknown authority; {TRUST}")
        }
        Some(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        ) => "it is not valid for this host name; use the name it was made for (`ssgen serve --tls-name NAME` makes one for NAME)".to_owned(),
        Some(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
        ) => "it has expired; renew it".to_owned(),
        Some(other) => format!("{other:?}; {TRUST}"),
        None => {
            return match e {
                // Permanent: asking again gives the same answer.
                ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed | ureq::Error::BadUri(_) => {
                    anyhow!(Invalid(format!(
                        "{url}: the server redirects in a loop, or to a URL that is not http or https ({e}); give the URL the server really answers at"
                    )))
                }
                ureq::Error::Timeout(_) => anyhow!(
                    "{url}: the server went quiet ({e}); check that it is up (`ssgen mirror` waits --stall-timeout SECS for each read)"
                ),
                _ => anyhow!(
                    "{url}: the server does not answer ({e}); check the URL and that the server is up"
                ),
            };
        }
    };
    anyhow!("{url}: the server's TLS certificate is not trusted: {why}")
}

/// The certificate problem behind `e`, when a certificate was refused.
fn untrusted(e: &ureq::Error) -> Option<&rustls::CertificateError> {
    let tls = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    match tls {
        rustls::Error::InvalidCertificate(why) => Some(why),
        _ => None,
    }
}
