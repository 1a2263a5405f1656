//! TLS for `ssgen serve`: PEM files, or a certificate it makes itself.

use super::*;

/// HTTPS from PEM files.
pub fn tls_from_files(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS set-up")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the certificate and key do not match")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A self-signed certificate kept in ROOT/.ssgen/tls/ (made once per set
/// of names), for tests and private networks.
pub fn tls_self_signed(root: &Path, names: &[String]) -> Result<tokio_rustls::TlsAcceptor> {
    let mut names = names.to_vec();
    if names.is_empty() {
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    names.sort();
    let dir = root.join(".ssgen").join("tls");
    let (cert, key, list) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("names"));
    let wanted = names.join("\n");
    if std::fs::read_to_string(&list).ok().as_deref() != Some(wanted.as_str()) || !cert.exists() {
        // IP addresses must be IP SANs: Go's TLS (lxc, lxd) ignores an
        // address written as a DNS name.
        let mut params = rcgen::CertificateParams::default();
        for name in &names {
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => rcgen::SanType::IpAddress(ip),
                    Err(_) => rcgen::SanType::DnsName(
                        name.clone()
                            .try_into()
                            .with_context(|| format!("{name:?} is not a valid DNS name"))?,
                    ),
                });
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ssgen self-signed");
        let signing_key = rcgen::KeyPair::generate().context("cannot make a key")?;
        let made = params
            .self_signed(&signing_key)
            .context("cannot make a self-signed certificate")?;
        crate::fsx::write_atomic(&key, signing_key.serialize_pem().as_bytes())?;
        crate::fsx::write_atomic(&cert, made.pem().as_bytes())?;
        crate::fsx::write_atomic(&list, wanted.as_bytes())?;
        eprintln!(
            "made a self-signed certificate for {} in {}",
            names.join(", "),
            cert.display()
        );
    }
    tls_from_files(&cert, &key)
}
