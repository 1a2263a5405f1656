//! Automatic certificates for `ssgen serve --acme DOMAIN`: an ACME account
//! and a certificate from Let's Encrypt (or another ACME CA), proved with
//! the TLS-ALPN-01 challenge on the HTTPS listener or HTTP-01 on the plain
//! one, kept in `ROOT/.ssgen/acme/` (a 0700 directory of 0600 files, under
//! a hidden name the server never serves) and renewed when a third of its
//! lifetime is left, without a restart: new TLS handshakes get the new
//! certificate from the resolver as soon as it is in.
//!
//! instant-acme speaks the protocol; its HTTP requests go through the same
//! ureq agent as every other command, so `SSL_CERT_FILE` trusts a private
//! CA's server here too.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt as _, Full};
use hyper::Response;
use hyper::header::{self, HeaderValue};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use crate::exit::Invalid;
use crate::http::{Body, full};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The ALPN protocol of the TLS-ALPN-01 challenge.
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The path prefix of HTTP-01 answers.
const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The first wait after a failed attempt; it doubles up to [`MAX_RETRY`].
/// A minute keeps a misconfigured server well inside Let's Encrypt's limit
/// of five failed validations per host name and hour.
const FIRST_RETRY: Duration = Duration::from_secs(60);
const MAX_RETRY: Duration = Duration::from_secs(6 * 3600);

/// How the CA checks that this server answers for the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Challenge {
    /// On the HTTPS listener (the CA connects to port 443).
    #[value(name = "tls-alpn-01")]
    TlsAlpn01,
    /// On the --http listener (the CA connects to port 80).
    #[value(name = "http-01")]
    Http01,
}

/// The `--acme*` flags of `ssgen serve`.
#[derive(Debug, Clone, Args)]
pub struct AcmeArgs {
    /// Get the HTTPS certificate for DOMAIN from an ACME CA (Let's Encrypt
    /// by default) and renew it, with no restart (repeatable, or
    /// comma-separated; the names must point at this server). Account and
    /// certificate are kept in ROOT/.ssgen/acme/. Using it accepts the CA's
    /// terms of service.
    #[arg(
        long,
        value_name = "DOMAIN",
        value_delimiter = ',',
        conflicts_with_all = ["tls_cert", "self_signed", "plain"]
    )]
    pub acme: Vec<String>,

    /// A contact address for the CA's account (expiry and policy notices).
    #[arg(long, value_name = "EMAIL", requires = "acme")]
    pub acme_email: Option<String>,

    /// The CA's ACME directory URL (a private CA's server certificate is
    /// trusted through SSL_CERT_FILE).
    #[arg(long, value_name = "URL", default_value = LETS_ENCRYPT)]
    pub acme_directory: String,

    /// How the CA checks the domains: tls-alpn-01 on the HTTPS listener,
    /// or http-01 on the --http listener. The CA connects to port 443 or
    /// 80 of each domain.
    #[arg(long, value_name = "CHALLENGE", value_enum, default_value_t = Challenge::TlsAlpn01)]
    pub acme_challenge: Challenge,
}

impl AcmeArgs {
    /// Whether `--acme` was given.
    pub fn enabled(&self) -> bool {
        !self.acme.is_empty()
    }
}

/// The certificates the HTTPS listener presents: the current one, and the
/// TLS-ALPN-01 answers while an order waits for them.
#[derive(Debug, Default)]
struct Certs {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    challenges: RwLock<BTreeMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let challenge = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if challenge {
            let name = hello.server_name()?.to_ascii_lowercase();
            return read(&self.challenges).get(&name).cloned();
        }
        read(&self.current).clone()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

/// The HTTP-01 answers (token → key authorization) while an order waits.
#[derive(Debug, Default)]
pub struct Http01 {
    tokens: RwLock<BTreeMap<String, String>>,
}

impl Http01 {
    /// The answer to `GET /.well-known/acme-challenge/TOKEN`, if TOKEN is
    /// one the CA asked for; `None` for every other path.
    pub fn answer(&self, path: &str) -> Option<Response<Body>> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        let key_authorization = read(&self.tokens).get(token)?.clone();
        let mut response = Response::new(full(key_authorization));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        Some(response)
    }
}

/// Whether a TLS connection was only the CA checking a TLS-ALPN-01 answer
/// (it must be closed, never served).
pub fn is_challenge(connection: &rustls::ServerConnection) -> bool {
    connection.alpn_protocol() == Some(ACME_TLS_ALPN)
}

/// `ssgen serve --acme`: what the listeners use, and the task that gets
/// and renews the certificate.
pub struct Acme {
    settings: Settings,
    store: Store,
    certs: Arc<Certs>,
    http01: Arc<Http01>,
    /// The served certificate's (notBefore, notAfter), Unix seconds.
    validity: Option<(i64, i64)>,
    /// The HTTP agent for the CA, made once: a bad SSL_CERT_FILE stops
    /// the server at start rather than at each attempt.
    agent: ureq::Agent,
}

struct Settings {
    domains: Vec<String>,
    contact: Vec<String>,
    directory: String,
    challenge: Challenge,
}

impl Acme {
    /// Checks the flags and loads a stored certificate that still fits
    /// them, so that HTTPS works at once after a restart.
    pub fn new(root: &Path, args: &AcmeArgs, http: Option<SocketAddr>) -> Result<Self> {
        let settings = settings(args, http)?;
        let agent = crate::net::agent_config()?
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let store = Store::open(root)?;
        let certs = Arc::new(Certs::default());
        let mut validity = None;
        if let Some(stored) = store.certificate()? {
            if stored.directory == settings.directory && stored.domains == settings.domains {
                match stored.certified_key() {
                    Ok((key, v)) if v.1 > unix_now() => {
                        write(&certs.current, Some(Arc::new(key)));
                        validity = Some(v);
                        eprintln!(
                            "acme: serving the certificate for {} from {} (valid until {})",
                            settings.domains.join(", "),
                            store.certificate_path().display(),
                            date(v.1)
                        );
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!(
                        "warning: acme: {}: {e:#}; a new certificate will be requested",
                        store.certificate_path().display()
                    ),
                }
            }
        }
        Ok(Self {
            settings,
            store,
            certs,
            http01: Arc::default(),
            validity,
            agent,
        })
    }

    /// The TLS acceptor of the HTTPS listener: the current certificate,
    /// and the challenge answers, offering `protocols` by ALPN.
    pub fn acceptor(&self, protocols: &[&[u8]]) -> Result<tokio_rustls::TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_no_client_auth()
        .with_cert_resolver(self.certs.clone());
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        // Never chosen by a client that does not ask for it alone.
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// The HTTP-01 answers, for the request handler.
    pub fn http01(&self) -> Arc<Http01> {
        self.http01.clone()
    }

    /// Gets and renews the certificate, forever, on the current runtime.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(mut self) {
        let names = self.settings.domains.join(", ");
        let mut retry = FIRST_RETRY;
        loop {
            if let Some((not_before, not_after)) = self.validity {
                let renew_at = not_after - (not_after - not_before) / 3;
                if renew_at > unix_now() {
                    sleep_until(renew_at).await;
                    continue;
                }
            }
            eprintln!(
                "acme: requesting a certificate for {names} from {}",
                self.settings.directory
            );
            let started = Instant::now();
            match self.issue().await {
                Ok(validity) => {
                    let (not_before, not_after) = validity;
                    eprintln!(
                        "acme: certificate for {names} issued in {:.2} s, valid until {}, renewal after {}",
                        started.elapsed().as_secs_f64(),
                        date(not_after),
                        date(not_after - (not_after - not_before) / 3)
                    );
                    self.validity = Some(validity);
                    retry = FIRST_RETRY;
                }
                Err(e) => {
                    let serving = match self.validity {
                        Some((_, until)) if until > unix_now() => {
                            "the current certificate is still served"
                        }
                        _ => "HTTPS has no certificate until then",
                    };
                    eprintln!(
                        "error: acme: {e:#}; {serving}; trying again in {} s",
                        retry.as_secs()
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// One order, from the account to the certificate in place.
    async fn issue(&self) -> Result<(i64, i64)> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = match account.new_order(&NewOrder::new(&ids)).await {
            Ok(order) => order,
            Err(instant_acme::Error::Api(p))
                if p.r#type.as_deref()
                    == Some("urn:ietf:params:acme:error:accountDoesNotExist") =>
            {
                // The CA forgot the account (a test CA restarted): make a
                // new one next time.
                self.store.forget_account()?;
                bail!("the CA no longer knows the stored account; a new one will be made");
            }
            Err(e) => return Err(e).context("the CA refused the order"),
        };
        let armed = Armed {
            certs: &self.certs,
            http01: &self.http01,
        };
        let kind = match self.settings.challenge {
            Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            Challenge::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.context("cannot read an authorization of the order")?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("the authorization for {} is {other:?}", authz.identifier()),
            }
            let domain = authz.identifier().to_string();
            let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
                anyhow!(
                    "the CA offers no {} challenge for {domain}; choose another --acme-challenge",
                    self.settings
                        .challenge
                        .to_possible_value()
                        .map_or_else(String::new, |v| v.get_name().to_owned())
                )
            })?;
            let key_authorization = challenge.key_authorization();
            match self.settings.challenge {
                Challenge::TlsAlpn01 => {
                    let cert = challenge_cert(&domain, key_authorization.digest().as_ref())?;
                    armed.answer_tls(&domain, cert);
                }
                Challenge::Http01 => {
                    armed.answer_http(&challenge.token, key_authorization.as_str());
                }
            }
            challenge
                .set_ready()
                .await
                .with_context(|| format!("the CA did not take the answer for {domain}"))?;
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(180));
        let status = order
            .poll_ready(&retries)
            .await
            .context("waiting for the CA to check the domains")?;
        if status != OrderStatus::Ready {
            bail!(
                "the CA could not check {}: {}",
                self.settings.domains.join(", "),
                failures(&mut order).await
            );
        }
        drop(armed);
        let key = rcgen::KeyPair::generate().context("cannot make a key")?;
        let mut params = rcgen::CertificateParams::new(self.settings.domains.clone())
            .context("the domain names do not fit a certificate")?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .context("cannot make the certificate request")?;
        order
            .finalize_csr(csr.der())
            .await
            .context("the CA refused the certificate request")?;
        let chain = order
            .poll_certificate(&retries)
            .await
            .context("waiting for the CA to issue the certificate")?;
        let stored = StoredCert {
            directory: self.settings.directory.clone(),
            domains: self.settings.domains.clone(),
            chain,
            key: key.serialize_pem(),
        };
        let (certified, validity) = stored
            .certified_key()
            .context("the CA's certificate cannot be used")?;
        // On disk first: a restart after the swap serves the same one.
        self.store.save_certificate(&stored)?;
        write(&self.certs.current, Some(Arc::new(certified)));
        Ok(validity)
    }

    async fn account(&self) -> Result<Account> {
        let s = &self.settings;
        if let Some(stored) = self.store.account()? {
            if stored.directory == s.directory {
                let account = Account::builder_with_http(Box::new(Ureq(self.agent.clone())))
                    .from_credentials(stored.credentials)
                    .await
                    .with_context(|| format!("cannot reach the ACME directory {}", s.directory))?;
                if stored.contact != s.contact {
                    let contact: Vec<&str> = s.contact.iter().map(String::as_str).collect();
                    account
                        .update_contacts(&contact)
                        .await
                        .context("the CA refused the new contact address")?;
                    self.store.save_account(&StoredAccount {
                        directory: s.directory.clone(),
                        contact: s.contact.clone(),
                        credentials: stored_credentials(&self.store)?,
                    })?;
                }
                return Ok(account);
            }
        }
        let contact: Vec<&str> = s.contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(Box::new(Ureq(self.agent.clone())))
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                s.directory.clone(),
                None,
            )
            .await
            .with_context(|| format!("cannot make an account at {}", s.directory))?;
        self.store.save_account(&StoredAccount {
            directory: s.directory.clone(),
            contact: s.contact.clone(),
            credentials,
        })?;
        eprintln!("acme: made an account at {}", s.directory);
        Ok(account)
    }
}

/// The credentials stored now (read again: they cannot be cloned).
fn stored_credentials(store: &Store) -> Result<AccountCredentials> {
    store
        .account()?
        .map(|a| a.credentials)
        .ok_or_else(|| anyhow!("{}: vanished", store.account_path().display()))
}

/// Why an order is invalid: the errors the CA gives its challenges.
async fn failures(order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let Ok(state) = authz.refresh().await else {
            continue;
        };
        for c in &state.challenges {
            if let Some(e) = &c.error {
                out.push(format!(
                    "{}: {}",
                    state.identifier(),
                    e.detail.as_deref().unwrap_or("no detail")
                ));
            }
        }
    }
    if out.is_empty() {
        "the order became invalid".to_owned()
    } else {
        format!(
            "{} (each domain must resolve to this server, and the CA must reach its port 443 for tls-alpn-01 or 80 for http-01)",
            out.join("; ")
        )
    }
}

/// The challenge answers of one order, removed when it ends however it
/// ends.
struct Armed<'a> {
    certs: &'a Certs,
    http01: &'a Http01,
}

impl Armed<'_> {
    fn answer_tls(&self, domain: &str, cert: CertifiedKey) {
        let mut map = read(&self.certs.challenges);
        map.insert(domain.to_ascii_lowercase(), Arc::new(cert));
        write(&self.certs.challenges, map);
    }

    fn answer_http(&self, token: &str, key_authorization: &str) {
        let mut map = read(&self.http01.tokens);
        map.insert(token.to_owned(), key_authorization.to_owned());
        write(&self.http01.tokens, map);
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        write(&self.certs.challenges, BTreeMap::new());
        write(&self.http01.tokens, BTreeMap::new());
    }
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge: the
/// domain, and the digest of the key authorization in the critical
/// acmeIdentifier extension.
fn challenge_cert(domain: &str, digest: &[u8]) -> Result<CertifiedKey> {
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])
        .with_context(|| format!("{domain}: not a name for a certificate"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let key = rcgen::KeyPair::generate().context("cannot make a key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot make the challenge certificate")?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
        key.serialize_der().into(),
    ))
    .context("cannot use the challenge key")?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// The validated flags.
fn settings(args: &AcmeArgs, http: Option<SocketAddr>) -> Result<Settings> {
    let mut domains = Vec::new();
    for d in &args.acme {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_domain(&d) {
            bail!(Invalid(format!(
                "--acme {d:?}: give a DNS name that points at this server (e.g. images.example.org); ACME cannot prove IP addresses or wildcards this way"
            )));
        }
        domains.push(d);
    }
    domains.sort();
    domains.dedup();
    let contact = match &args.acme_email {
        None => Vec::new(),
        Some(e) if e.contains('@') && !e.contains([' ', ',', ':', '/']) => {
            vec![format!("mailto:{e}")]
        }
        Some(e) => bail!(Invalid(format!(
            "--acme-email {e:?}: give one e-mail address (name@example.org)"
        ))),
    };
    if !args.acme_directory.starts_with("https://") {
        bail!(Invalid(format!(
            "--acme-directory {:?}: an ACME directory is an https:// URL (Let's Encrypt's is {LETS_ENCRYPT})",
            args.acme_directory
        )));
    }
    if args.acme_challenge == Challenge::Http01 && http.is_none() {
        bail!(Invalid(
            "--acme-challenge http-01 answers on the plain listener: add --http ADDR (the CA connects to port 80)".into()
        ));
    }
    Ok(Settings {
        domains,
        contact,
        directory: args.acme_directory.clone(),
        challenge: args.acme_challenge,
    })
}

/// A lower-case DNS name of two or more LDH labels, not an address.
fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        && !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
}

// ----- Storage ---------------------------------------------------------------

/// ROOT/.ssgen/acme/: account.json and certificate.json.
struct Store {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    contact: Vec<String>,
    credentials: AccountCredentials,
}

#[derive(Serialize, Deserialize)]
struct StoredCert {
    directory: String,
    domains: Vec<String>,
    /// The chain from the CA (PEM).
    chain: String,
    /// The certificate's private key (PKCS#8 PEM).
    key: String,
}

impl StoredCert {
    fn certified_key(&self) -> Result<(CertifiedKey, (i64, i64))> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.chain.as_bytes())
                .collect::<Result<_, _>>()
                .context("the chain is not PEM")?;
        let leaf = chain.first().context("the chain holds no certificate")?;
        let validity = validity(leaf).context("cannot read the certificate's validity")?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key.as_bytes()).context("the key is not PEM")?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .context("the key is not one rustls can use")?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .context("the key does not match the certificate")?;
        Ok((certified, validity))
    }
}

impl Store {
    fn open(root: &Path) -> Result<Self> {
        // ROOT/.ssgen keeps the modes other commands gave it (a publisher
        // may write its cache there); only acme/ is private.
        let parent = root.join(".ssgen");
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let dir = parent.join("acme");
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
        // An older or hand-made directory may be wider.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (chmod 700)", dir.display()))?;
        Ok(Self { dir })
    }

    fn account_path(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    fn certificate_path(&self) -> PathBuf {
        self.dir.join("certificate.json")
    }

    fn account(&self) -> Result<Option<StoredAccount>> {
        load(&self.account_path())
    }

    fn certificate(&self) -> Result<Option<StoredCert>> {
        load(&self.certificate_path())
    }

    fn save_account(&self, account: &StoredAccount) -> Result<()> {
        save(&self.account_path(), account)
    }

    fn save_certificate(&self, cert: &StoredCert) -> Result<()> {
        save(&self.certificate_path(), cert)
    }

    fn forget_account(&self) -> Result<()> {
        match std::fs::remove_file(self.account_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => {
                Err(e).with_context(|| format!("cannot remove {}", self.account_path().display()))
            }
        }
    }
}

fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match serde_json::from_str(&text) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            // A damaged file costs one new account or certificate, never
            // the server.
            eprintln!(
                "warning: acme: {}: {e}; it is ignored and will be replaced",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Writes `value` as JSON to `path` through a temporary file created 0600
/// (a key is never readable by others, not even for a moment), flushed and
/// renamed over the target.
fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).context("cannot encode the ACME state")?;
    let dir = path.parent().context("no directory")?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("no file name")?;
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

// ----- HTTP for instant-acme ------------------------------------------------

/// The CLI's ureq agent (the clients' trust: SSL_CERT_FILE, else the
/// Mozilla roots) as instant-acme's HTTP client; each request runs on a
/// blocking thread.
struct Ureq(ureq::Agent);

impl HttpClient for Ureq {
    fn request(
        &self,
        req: ureq::http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let agent = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let done = tokio::task::spawn_blocking(move || -> Result<_, ureq::Error> {
                let mut rsp = if body.is_empty() {
                    agent.run(ureq::http::Request::from_parts(parts, ()))?
                } else {
                    agent.run(ureq::http::Request::from_parts(parts, body.to_vec()))?
                };
                let bytes = rsp.body_mut().with_config().limit(1 << 20).read_to_vec()?;
                let (parts, _) = rsp.into_parts();
                Ok(ureq::http::Response::from_parts(
                    parts,
                    Full::new(Bytes::from(bytes)),
                ))
            })
            .await;
            match done {
                Ok(Ok(rsp)) => Ok(BytesResponse::from(rsp)),
                Ok(Err(e)) => Err(instant_acme::Error::Other(Box::new(e))),
                Err(e) => Err(instant_acme::Error::Other(Box::new(e))),
            }
        })
    }
}

// ----- Time and certificates -------------------------------------------------

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sleeps until the wall clock reads `at`, in steps of at most an hour, so
/// that a suspended machine or a clock set forward still renews in time.
async fn sleep_until(at: i64) {
    loop {
        let left = at - unix_now();
        if left <= 0 {
            return;
        }
        let step = u64::try_from(left.min(3600)).unwrap_or(3600);
        tokio::time::sleep(Duration::from_secs(step)).await;
    }
}

/// `2026-08-01 03:12:00 UTC`.
fn date(unix: i64) -> String {
    let (y, m, d) = ssgen_core::time::civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A certificate's (notBefore, notAfter) as Unix seconds, read from its
/// DER: Certificate → TBSCertificate → version (optional), serial, signature,
/// issuer, validity (RFC 5280, section 4.1).
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (cert, _) = tlv(der, 0x30)?;
    let (tbs, _) = tlv(cert, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = skip(rest)?;
    }
    for _ in 0..3 {
        rest = skip(rest)?;
    }
    let (validity, _) = tlv(rest, 0x30)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

/// The contents of the DER element at the start of `input` if its tag is
/// `tag`, and what follows it.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    element(input)
}

fn skip(input: &[u8]) -> Option<&[u8]> {
    element(input).map(|(_, rest)| rest)
}

fn element(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((input.get(header..end)?, input.get(end..)?))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let tag = *input.first()?;
    let (text, rest) = element(input)?;
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest_text) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 14) => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    let num = |i: usize| -> Option<u32> { rest_text.get(i..i + 2)?.parse().ok() };
    let (month, day, h, m, s) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = ssgen_core::time::days_from_civil(year, month, day);
    Some((
        days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s),
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_validity_of_a_certificate() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2026, 8, 1);
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        let cert = params.self_signed(&key).expect("cert");
        let (from, until) = validity(cert.der()).expect("validity");
        assert_eq!(date(from), "2026-08-01 00:00:00 UTC");
        // 2051 is past 2049: a GeneralizedTime.
        assert_eq!(date(until), "2051-01-02 00:00:00 UTC");
        assert_eq!(validity(&cert.der()[..40]), None);
        assert_eq!(validity(b"\x30\x84\xff\xff\xff\xff"), None);
    }

    #[test]
    fn domains_and_flags() {
        assert!(is_domain("images.example.org"));
        assert!(is_domain("xn--bcher-kva.example"));
        for bad in [
            "localhost",
            "*.example.org",
            "1.2.3.4",
            "a..b",
            "-a.b",
            "a b.c",
            "A.b",
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
        let args = |challenge, email: Option<&str>| AcmeArgs {
            acme: vec![
                "B.example.org.".into(),
                "a.example.org".into(),
                "b.example.org".into(),
            ],
            acme_email: email.map(str::to_owned),
            acme_directory: LETS_ENCRYPT.into(),
            acme_challenge: challenge,
        };
        let s = settings(&args(Challenge::TlsAlpn01, Some("me@example.org")), None).expect("ok");
        assert_eq!(s.domains, ["a.example.org", "b.example.org"]);
        assert_eq!(s.contact, ["mailto:me@example.org"]);
        assert!(settings(&args(Challenge::Http01, None), None).is_err());
        assert!(settings(&args(Challenge::Http01, None), "127.0.0.1:80".parse().ok()).is_ok());
        assert!(settings(&args(Challenge::TlsAlpn01, Some("nobody")), None).is_err());
    }

    #[test]
    fn state_files_are_private_and_replaced_whole() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(tmp.path().join(".ssgen/acme")).expect("dir");
        std::fs::set_permissions(
            tmp.path().join(".ssgen/acme"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        let store = Store::open(tmp.path()).expect("store");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&store.dir), 0o700, "a wider directory is narrowed");
        // A new ROOT/.ssgen keeps the usual modes; only acme/ is private.
        let fresh = tempfile::tempdir().expect("tmp");
        std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let other = Store::open(fresh.path()).expect("store");
        assert_eq!(mode(&other.dir), 0o700);
        assert_ne!(mode(&fresh.path().join(".ssgen")), 0o700);
        let cert = StoredCert {
            directory: "d".into(),
            domains: vec!["a.example".into()],
            chain: "c".into(),
            key: "k".into(),
        };
        store.save_certificate(&cert).expect("save");
        store.save_certificate(&cert).expect("save again");
        assert_eq!(mode(&store.certificate_path()), 0o600);
        let names: Vec<_> = std::fs::read_dir(&store.dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["certificate.json"], "no temporary file is left");
        // A damaged file is ignored, not fatal.
        std::fs::write(store.certificate_path(), "{").expect("write");
        assert!(store.certificate().expect("read").is_none());
    }
}
