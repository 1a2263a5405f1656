//! TLS for `ssgen serve`: PEM files, or a certificate signed by a small
//! local CA that it makes once per root. HTTP/2 and HTTP/1.1 are offered
//! by ALPN.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// HTTPS from PEM files.
pub fn tls_from_files(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS set-up")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// What `--self-signed` set up.
pub struct SelfSigned {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The CA certificate clients are to trust.
    pub ca_cert: PathBuf,
    /// Whether the CA was made now (clients trust no earlier one).
    pub new_ca: bool,
    /// The names the server certificate holds.
    pub names: Vec<String>,
}

/// Days a server certificate is valid, and how many before its end it is
/// made again (at a start of the server).
const CERT_DAYS: i64 = 825;
const RENEW_DAYS: i64 = 30;
const CA_DAYS: i64 = 20 * 365;

/// A server certificate for 127.0.0.1, ::1, localhost, the host name and
/// `extra` names, signed by the local CA of `root` (made the first time),
/// all kept in ROOT/.ssgen/tls/ (mode 0700; keys 0600; never served, as
/// nothing hidden is). `cert.pem` holds the server certificate followed by
/// the CA's, so a client given it as its trust file trusts the CA too.
pub fn tls_self_signed(root: &Path, extra: &[String]) -> Result<SelfSigned> {
    let dir = root.join(".ssgen").join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (chmod 700)", dir.display()))?;
    let file = |name: &str| dir.join(name);
    let (ca_cert, ca_key) = (file("ca.pem"), file("ca-key.pem"));
    let (cert, key, list) = (file("cert.pem"), file("key.pem"), file("names"));

    let today = today();
    let new_ca = !ca_cert.exists() || !ca_key.exists();
    if new_ca {
        make_ca(&ca_cert, &ca_key, today)?;
    }
    for private in [&ca_key, &key] {
        keep_private(private)?;
    }
    let ca_pem = std::fs::read_to_string(&ca_cert)
        .with_context(|| format!("cannot read {}", ca_cert.display()))?;
    let issuer = load_issuer(&ca_pem, &ca_key)?;

    let mut names: Vec<String> = ["127.0.0.1", "::1", "localhost"]
        .into_iter()
        .map(str::to_owned)
        .chain(host_name())
        .chain(extra.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    let wanted = names.join("\n");
    // The list file: the expiry day, then the names. A certificate made
    // by an older ssgen (no CA, no expiry line) is made again.
    let recorded = std::fs::read_to_string(&list).unwrap_or_default();
    let (expires, recorded_names) = recorded
        .split_once('\n')
        .and_then(|(first, rest)| {
            Some((first.strip_prefix("expires ")?.parse::<i64>().ok()?, rest))
        })
        .unwrap_or((0, ""));
    if new_ca
        || recorded_names != wanted
        || expires - today < RENEW_DAYS
        || !cert.exists()
        || !key.exists()
    {
        let leaf_key = rcgen::KeyPair::generate().context("cannot make a key")?;
        let mut params = rcgen::CertificateParams::default();
        for name in &names {
            // IP addresses must be IP SANs: Go's TLS (lxc, lxd) ignores an
            // address written as a DNS name.
            params
                .subject_alt_names
                .push(match name.parse::<std::net::IpAddr>() {
                    Ok(ip) => rcgen::SanType::IpAddress(ip),
                    Err(_) => {
                        rcgen::SanType::DnsName(name.clone().try_into().with_context(|| {
                            format!("--tls-name {name:?}: not a valid DNS name or IP address")
                        })?)
                    }
                });
        }
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ssgen serve");
        validity(&mut params, today, today + CERT_DAYS);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let made = params
            .signed_by(&leaf_key, &issuer)
            .context("cannot sign the server certificate with the local CA")?;
        write_file(&key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&cert, format!("{}{ca_pem}", made.pem()).as_bytes(), 0o644)?;
        write_file(
            &list,
            format!("expires {}\n{wanted}", today + CERT_DAYS).as_bytes(),
            0o644,
        )?;
    }
    Ok(SelfSigned {
        acceptor: tls_from_files(&cert, &key)?,
        ca_cert,
        new_ca,
        names,
    })
}

fn make_ca(cert: &Path, key: &Path, today: i64) -> Result<()> {
    let ca_key = rcgen::KeyPair::generate().context("cannot make a key")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let host = host_name().unwrap_or_else(|| "this host".into());
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!(
            "ssgen local CA ({host}, {})",
            ssgen_core::time::version_name(today * 86_400)
        ),
    );
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, today, today + CA_DAYS);
    let made = params
        .self_signed(&ca_key)
        .context("cannot make the local CA")?;
    // The key first: a CA certificate without its key would be kept.
    write_file(key, ca_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert, made.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn load_issuer(ca_pem: &str, ca_key: &Path) -> Result<rcgen::Issuer<'static, rcgen::KeyPair>> {
    let fix = "delete the directory to make a new CA (clients must then trust the new one)";
    let key_pem = std::fs::read_to_string(ca_key)
        .with_context(|| format!("cannot read {}", ca_key.display()))?;
    let key = rcgen::KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{}: not a PEM private key; {fix}", ca_key.display()))?;
    rcgen::Issuer::from_ca_cert_pem(ca_pem, key).with_context(|| {
        format!(
            "{}: not a CA certificate of this key; {fix}",
            ca_key.with_file_name("ca.pem").display()
        )
    })
}

/// A key written by an older ssgen (0644) is made private; one that cannot
/// be is an error, not a warning.
fn keep_private(key: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(key) else {
        return Ok(());
    };
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("{}: readable by others; chmod 600 it", key.display()))?;
        eprintln!(
            "note: {} was readable by others; it is now mode 0600",
            key.display()
        );
    }
    Ok(())
}

/// Writes through a temporary file created with `mode` (a key is never
/// readable by others, not even for a moment) and renamed into place.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

/// This machine's name, when it is one a certificate can hold.
fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name != "localhost"
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    valid.then_some(name)
}

/// Days since 1970-01-01, today (UTC).
fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0))
}

/// Valid from the day before `from` (clocks differ) to the day `to`
/// (days since 1970-01-01).
fn validity(params: &mut rcgen::CertificateParams, from: i64, to: i64) {
    let date = |days: i64| {
        let (y, m, d) = ssgen_core::time::civil_from_days(days);
        rcgen::date_time_ymd(
            i32::try_from(y).unwrap_or(9999),
            u8::try_from(m).unwrap_or(1),
            u8::try_from(d).unwrap_or(1),
        )
    };
    params.not_before = date(from - 1);
    params.not_after = date(to);
}
