//! `ssgen serve`: the tree over HTTP and HTTPS, with HEAD, Range,
//! ETag/304 and gzip for the catalogs, an optional upload API behind a
//! bearer token, and rebuilds on change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::exit::Invalid;
use crate::http::conn::{self, Limits, Listener};
use crate::http::{self, AccessLog, Catalog, SelfSigned, Server};
use crate::publish::{BuildOptions, Settings};
use crate::watch;

/// Serve ROOT over HTTP or HTTPS, as LXD and Incus need it.
///
/// Every file outside hidden directories is served with its content type,
/// HEAD, a single byte Range (206/416) and ETag / If-None-Match (304). The
/// catalogs are served from memory, read once per change, gzip-compressed
/// for clients that accept it, with a short Cache-Control; image files get
/// a long one (their paths never change). A link that leads outside ROOT
/// or into a hidden directory serves nothing. GET /healthz answers while
/// the server runs. HTTPS speaks HTTP/2 and HTTP/1.1.
///
/// LXD and Incus accept only https:// remotes: give --acme DOMAIN for a
/// certificate from Let's Encrypt (got and renewed by the server itself),
/// --tls-cert/--tls-key, or --self-signed for a certificate signed by a
/// local CA that ssgen makes once (ROOT/.ssgen/tls/ca.pem, for clients to
/// trust; it prints how), or put a TLS proxy in front. With --http the same
/// tree is also served over plain HTTP, which clients try first for image
/// files.
///
/// / (and /index.html) is a page for people: the images, and the lines
/// that add the server as a remote and launch an image. An index.html of
/// the root's own is served instead when there is one.
///
/// Unified images can be imported by URL: `lxc image import
/// https://HOST/aliases/ALIAS` (or `incus image import`) gets the newest
/// unified tarball of ALIAS for the daemon's architecture.
///
/// With --token it speaks the upload API of the edge Worker too, so
/// `ssgen push ROOT --to https://HOST` publishes a tree to it. With
/// --read-token the feed is private: reads are answered only under
/// https://HOST/TOKEN/, which is the URL clients add as the remote.
///
/// SIGTERM or Ctrl-C stops it: no new connection is accepted, and answers
/// in progress get --shutdown-timeout seconds to finish.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen serve --self-signed /var/www/html          HTTPS on 127.0.0.1:8443
  ssgen serve --tls-cert c.pem --tls-key k.pem --listen 0.0.0.0:443 --http 0.0.0.0:80 --watch .
  ssgen serve --self-signed --tls-name images.lan --access-log - /srv/images
  ssgen serve --acme images.example.org --acme-email you@example.org \\
              --listen 0.0.0.0:443 --http 0.0.0.0:80 /var/www/html

Uploads (with --token, or SSGEN_TOKEN): files are staged in a hidden file,
checked, renamed into place, and the catalog is rebuilt shortly after:
  curl -T rootfs.squashfs -H \"Authorization: Bearer $TOKEN\" \\
       -H \"X-Checksum-Sha256: $(sha256sum < rootfs.squashfs | cut -d' ' -f1)\" \\
       https://HOST/images/debian/12/amd64/default/20260801_0312/rootfs.squashfs
  curl -H \"Authorization: Bearer $TOKEN\" \\
       -F \"upload=@lxd.tar.xz;filename=debian/12/amd64/default/20260801_0312/lxd.tar.xz\" \\
       https://HOST/images/
A DELETE (with --allow-delete) withdraws a version or file (see ssgen prune).
Or from another machine's tree: SSGEN_TOKEN=$TOKEN ssgen push ROOT --to https://HOST

A private feed (a token in the remote's URL; reads elsewhere are 404):
  ssgen serve --self-signed --read-token-file /etc/ssgen/readers /srv/images
  lxc remote add images https://HOST/TOKEN --protocol=simplestreams")]
pub struct ServeArgs {
    /// The server root (holding images/ and streams/).
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Address to listen on (HTTPS when a certificate is given).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Also serve plain HTTP on this address.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// PEM certificate chain for HTTPS.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate signed by the root's local CA (made
    /// the first time, kept in ROOT/.ssgen/tls/, never served).
    #[arg(long, conflicts_with = "tls_cert")]
    pub self_signed: bool,

    /// Another host name or IP address for the --self-signed certificate
    /// (repeatable), besides 127.0.0.1, ::1, localhost and this host's name.
    #[arg(long, requires = "self_signed", value_name = "NAME")]
    pub tls_name: Vec<String>,

    /// Serve plain HTTP on --listen (behind a TLS proxy).
    #[arg(long, conflicts_with_all = ["tls_cert", "self_signed"])]
    pub plain: bool,

    /// Rebuild the catalog when files under images/ change.
    #[arg(long)]
    pub watch: bool,

    /// Accept uploads with this bearer token (or set SSGEN_TOKEN).
    #[arg(
        long,
        env = "SSGEN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Allow DELETE (withdraws the file or version; see `ssgen prune`).
    #[arg(long, requires = "token")]
    pub allow_delete: bool,

    /// Make the feed private: answer reads only under /TOKEN/ (repeatable),
    /// so clients add https://HOST/TOKEN as the remote; everything else is
    /// 404. The upload API keeps its own --token.
    #[arg(long, value_name = "TOKEN", help_heading = "Private feed")]
    pub read_token: Vec<String>,

    /// Read tokens from FILE, one per line (# comments), read again within
    /// a second of a change: add or revoke a reader without a restart.
    #[arg(long, value_name = "FILE", help_heading = "Private feed")]
    pub read_token_file: Option<PathBuf>,

    /// Log every request in the common log format to FILE (appended), or
    /// to stderr with `-`.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,

    /// Seconds a new connection may take for its TLS handshake.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds, help_heading = "Connections")]
    pub tls_handshake_timeout: Duration,

    /// Seconds for a request's headers: from a new connection to its first
    /// request's end of headers, and from the first byte of a later one.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds, help_heading = "Connections")]
    pub header_timeout: Duration,

    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds, help_heading = "Connections")]
    pub idle_timeout: Duration,

    /// Seconds a request in progress may move no byte (a stalled upload or
    /// download) before it is cut.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds, help_heading = "Connections")]
    pub stall_timeout: Duration,

    /// Connections served at once; more wait in the kernel's queue. While
    /// all are taken, connections without a request in progress are given
    /// 2 s at most [default: from the open-file limit, two files each].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Connections")]
    pub max_connections: Option<u32>,

    /// Seconds answers in progress get to finish after SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds, help_heading = "Connections")]
    pub shutdown_timeout: Duration,

    /// The server's public https:// URL, for the `remote add` lines of the
    /// page at / (default: https:// and the host name the browser used).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub url: Option<String>,

    #[command(flatten)]
    pub options: BuildOptions,

    // Last: a help heading applies to every option after it.
    #[command(flatten, next_help_heading = "Automatic certificates (ACME)")]
    pub acme: crate::acme::AcmeArgs,
}

fn parse_url(url: &str) -> Result<String, String> {
    crate::page::check_url(url).map_err(|e| e.to_string())
}

/// A number of seconds from 0.001 to a day.
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| *d >= Duration::from_millis(1) && *d <= Duration::from_secs(86_400))
        .ok_or_else(|| format!("{text:?}: give a number of seconds from 0.001 to 86400"))
}

/// The TLS of the main listener.
enum Tls {
    Files(tokio_rustls::TlsAcceptor),
    SelfSigned(SelfSigned),
    Plain,
}

impl Tls {
    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        match self {
            Tls::Files(a) => Some(a.clone()),
            Tls::SelfSigned(s) => Some(s.acceptor.clone()),
            Tls::Plain => None,
        }
    }
}

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    if !args.root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root",
            args.root.display()
        )));
    }
    if let Some(why) = args
        .token
        .as_deref()
        .and_then(|t| ssgen_core::serve::auth::token_problem(t, false))
    {
        bail!(Invalid(format!("the upload token: {why}")));
    }
    let private = Arc::new(http::Private::new(
        &args.read_token,
        args.read_token_file.as_deref(),
    )?);
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("cannot resolve {}", args.root.display()))?;
    let acme = if args.acme.enabled() {
        Some(crate::acme::Acme::new(&root, &args.acme, args.http)?)
    } else {
        None
    };
    let tls = if let Some(acme) = &acme {
        Tls::Files(acme.acceptor(&[b"h2", b"http/1.1"])?)
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Tls::Files(http::tls_from_files(cert, key)?)
    } else if args.self_signed {
        Tls::SelfSigned(http::tls_self_signed(&root, &args.tls_name)?)
    } else if args.plain {
        Tls::Plain
    } else {
        bail!(Invalid(
            "choose --acme DOMAIN, --tls-cert/--tls-key, --self-signed or --plain (LXD and Incus need HTTPS)"
                .into()
        ));
    };
    let log = args
        .access_log
        .as_deref()
        .map(AccessLog::open)
        .transpose()?
        .map(Arc::new);
    let limits = Limits {
        tls_handshake: args.tls_handshake_timeout,
        header_read: args.header_timeout,
        idle: args.idle_timeout,
        stall: args.stall_timeout,
        max_connections: args
            .max_connections
            .map_or_else(Limits::default_max_connections, |n| n as usize),
        shutdown: args.shutdown_timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(serve(args, root, tls, limits, log, acme, private));
    // A rebuild still running is left to end with the process: its
    // writes are atomic.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(
    args: &ServeArgs,
    root: PathBuf,
    tls: Tls,
    limits: Limits,
    log: Option<Arc<AccessLog>>,
    acme: Option<crate::acme::Acme>,
    private: Arc<http::Private>,
) -> Result<ExitCode> {
    let settings = Settings::new(&args.options)?;
    let (rebuild_tx, rebuild_rx) = mpsc::unbounded_channel::<()>();
    let catalog = Arc::new(Catalog::new(root.clone()));
    let page = Arc::new(crate::page::Served::new(args.url.clone()));
    let acceptor = tls.acceptor();
    let server = Arc::new(Server {
        root: root.clone(),
        token: args.token.clone(),
        allow_delete: args.allow_delete,
        rebuild: rebuild_tx.clone(),
        settings: settings.clone(),
        scheme: if acceptor.is_some() { "https" } else { "http" },
        catalog: catalog.clone(),
        page: page.clone(),
        acme: acme.as_ref().map(crate::acme::Acme::http01),
        private: private.clone(),
    });
    watch::spawn_rebuilder(
        root.clone(),
        settings.clone(),
        rebuild_rx,
        watch::SERVE_SETTLE,
    );
    let _watcher = if args.watch {
        Some(watch::watch_images(&root, rebuild_tx.clone())?)
    } else {
        None
    };
    // Read the catalog before the first request asks for it.
    catalog.snapshot().await;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let scheme = server.scheme;
    let url = format!("{scheme}://{}", listener.local_addr()?);
    // The first line on stdout says where to connect (port 0 picks one).
    println!("serving {} at {url}", root.display());
    let mut listeners = vec![Listener {
        tcp: listener,
        tls: acceptor.clone(),
        server: server.clone(),
    }];
    if let Some(addr) = args.http {
        let plain = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!(
            "serving {} at http://{}",
            root.display(),
            plain.local_addr()?
        );
        // No uploads over plain HTTP when HTTPS is there: the bearer token
        // would cross the network in clear text.
        let served = if acceptor.is_some() {
            Arc::new(Server {
                root: root.clone(),
                token: None,
                allow_delete: false,
                rebuild: rebuild_tx.clone(),
                settings: settings.clone(),
                scheme: "http",
                catalog: catalog.clone(),
                page: page.clone(),
                acme: acme.as_ref().map(crate::acme::Acme::http01),
                private: private.clone(),
            })
        } else {
            server.clone()
        };
        listeners.push(Listener {
            tcp: plain,
            tls: None,
            server: served,
        });
    }
    if let Tls::SelfSigned(made) = &tls {
        eprintln!("{}", trust_help(made, &url));
    }
    if private.is_private() {
        eprintln!(
            "a private feed: reads only under {url}/<token>/ ({} read token(s) now); clients add {url}/<token> as the remote",
            private.count()
        );
    }
    // Once the listeners are up: the CA's checks connect to them.
    if let Some(acme) = acme {
        acme.spawn();
    }
    let stopped = conn::run(listeners, limits, log, stop_signal()).await;
    if stopped.cut > 0 {
        eprintln!(
            "stopped; {} connection(s) were still busy and were cut",
            stopped.cut
        );
    } else {
        eprintln!("stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (what systemd and `docker stop` send).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    let name = tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        () = term => "SIGTERM",
    };
    eprintln!("stopping ({name}): no new connections");
}

/// How to make clients trust the local CA, with this server's URL.
fn trust_help(made: &SelfSigned, url: &str) -> String {
    let ca = made.ca_cert.display();
    let system_name = system_ca_name(&made.ca_cert);
    let fresh = if made.new_ca { " (made now)" } else { "" };
    format!(
        "HTTPS with a certificate for {names}, signed by the local CA {ca}{fresh}.
Clients trust it once it is in the system store of their host (LXD and Incus
read that store when they start, so restart the daemon after):
    sudo cp {ca} /usr/local/share/ca-certificates/{system_name}
    sudo update-ca-certificates
    sudo systemctl restart lxd    # or incus
or per process, with SSL_CERT_FILE (for it, this CA replaces the system store):
    SSL_CERT_FILE={ca} lxc remote add NAME {url} --protocol=simplestreams
    SSL_CERT_FILE={ca} lxc image list NAME:
    SSL_CERT_FILE={ca} incus remote add NAME {url} --protocol=simplestreams
(the daemons download the images, so they need it too: the system store,
or SSL_CERT_FILE in their service environment)",
        names = made.names.join(", "),
    )
}

/// The file name for update-ca-certificates: unique per CA, ending `.crt`.
fn system_ca_name(ca: &Path) -> String {
    use sha2::Digest as _;
    let digest = std::fs::read(ca)
        .map(|pem| ssgen_core::Sha256(sha2::Sha256::digest(pem).into()).to_hex())
        .unwrap_or_default();
    format!("ssgen-local-ca-{}.crt", digest.get(..12).unwrap_or("x"))
}
