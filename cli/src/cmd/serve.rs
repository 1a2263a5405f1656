//! `ssgen serve`: the tree over HTTP and HTTPS, with HEAD, Range,
//! ETag/304 and gzip for the catalogs, an optional upload API behind a
//! bearer token, and rebuilds on change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cmd::build::BuildOptions;
use crate::exit::Invalid;
use crate::http::{self, Server};
use crate::watch;

/// Serve ROOT over HTTP or HTTPS, as LXD and Incus need it.
///
/// Every file outside hidden directories is served with its content type,
/// HEAD, a single byte Range (206/416) and ETag / If-None-Match (304); the
/// catalogs are gzip-compressed for clients that accept it and get a short
/// Cache-Control, image files a long one (their paths never change).
///
/// LXD and Incus accept only https:// remotes: give --acme DOMAIN for a
/// certificate from Let's Encrypt (got and renewed by the server itself),
/// --tls-cert/--tls-key, or --self-signed to make a certificate (written
/// to ROOT/.ssgen/tls/cert.pem for clients to trust, e.g. with
/// SSL_CERT_FILE), or put a TLS proxy in front. With --http the same tree
/// is also served over plain HTTP, which clients try first for image files.
///
/// / (and /index.html) is a page for people: the images, and the lines
/// that add the server as a remote and launch an image.
///
/// Unified images can be imported by URL: `lxc image import
/// https://HOST/aliases/ALIAS` (or `incus image import`) gets the newest
/// unified tarball of ALIAS for the daemon's architecture.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  ssgen serve --self-signed /var/www/html          HTTPS on 127.0.0.1:8443
  ssgen serve --tls-cert c.pem --tls-key k.pem --listen 0.0.0.0:443 --http 0.0.0.0:80 --watch .
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
A DELETE (with --allow-delete) withdraws a version or file (see ssgen prune).")]
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

    /// Make a self-signed certificate (for the --tls-name names) and serve
    /// HTTPS with it.
    #[arg(long, conflicts_with = "tls_cert")]
    pub self_signed: bool,

    /// A host name or IP address for the self-signed certificate
    /// (repeatable; default: localhost and 127.0.0.1).
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

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    if !args.root.is_dir() {
        bail!(Invalid(format!(
            "{}: not a directory; give the server root",
            args.root.display()
        )));
    }
    if args.token.as_deref().is_some_and(|t| t.len() < 16) {
        bail!(Invalid(
            "the upload token is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 32`)".into()
        ));
    }
    let acme = if args.acme.enabled() {
        Some(crate::acme::Acme::new(&args.root, &args.acme, args.http)?)
    } else {
        None
    };
    let tls = if let Some(acme) = &acme {
        Some(acme.acceptor(&[b"http/1.1"])?)
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Some(http::tls_from_files(cert, key)?)
    } else if args.self_signed {
        Some(http::tls_self_signed(&args.root, &args.tls_name)?)
    } else if args.plain {
        None
    } else {
        bail!(Invalid(
            "choose --acme DOMAIN, --tls-cert/--tls-key, --self-signed or --plain (LXD and Incus need HTTPS)"
                .into()
        ));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, tls, acme))
}

async fn serve(
    args: &ServeArgs,
    tls: Option<tokio_rustls::TlsAcceptor>,
    acme: Option<crate::acme::Acme>,
) -> Result<ExitCode> {
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("cannot resolve {}", args.root.display()))?;
    let (rebuild_tx, rebuild_rx) = mpsc::unbounded_channel::<()>();
    let page = Arc::new(crate::page::Served::new(args.url.clone()));
    let server = Arc::new(Server {
        root: root.clone(),
        token: args.token.clone(),
        allow_delete: args.allow_delete,
        rebuild: rebuild_tx.clone(),
        scheme: if tls.is_some() { "https" } else { "http" },
        aliases: std::sync::Mutex::default(),
        page: page.clone(),
        acme: acme.as_ref().map(crate::acme::Acme::http01),
    });
    watch::spawn_rebuilder(
        root.clone(),
        args.options.clone(),
        rebuild_rx,
        watch::SERVE_SETTLE,
    );
    let _watcher = if args.watch {
        Some(watch::watch_images(&root, rebuild_tx.clone())?)
    } else {
        None
    };

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The first line on stdout says where to connect (port 0 picks one).
    println!(
        "serving {} at {scheme}://{}",
        root.display(),
        listener.local_addr()?
    );
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
        let read_only = Arc::new(Server {
            root: root.clone(),
            token: None,
            allow_delete: false,
            rebuild: rebuild_tx.clone(),
            scheme: "http",
            aliases: std::sync::Mutex::default(),
            page: page.clone(),
            acme: acme.as_ref().map(crate::acme::Acme::http01),
        });
        tokio::spawn(accept_loop(
            plain,
            None,
            if tls.is_some() {
                read_only
            } else {
                server.clone()
            },
        ));
    }
    // Once the listeners are up: the CA's checks connect to them.
    if let Some(acme) = acme {
        acme.spawn();
    }
    tokio::select! {
        () = accept_loop(listener, tls, server) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    server: Arc<Server>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("warning: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let server = server.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
            });
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(mut s) if crate::acme::is_challenge(s.get_ref().1) => {
                        // The CA has seen the TLS-ALPN-01 answer; nothing
                        // is served on this connection.
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut s).await;
                        return;
                    }
                    Ok(s) => {
                        http1::Builder::new()
                            .serve_connection(TokioIo::new(s), service)
                            .await
                    }
                    Err(_) => return, // a failed handshake concerns the client only
                },
                None => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            drop(result);
        });
    }
}
