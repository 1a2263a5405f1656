//! Connections: accepting them within a limit, TLS with HTTP/2 or
//! HTTP/1.1 by ALPN, the timeouts that free a connection a client holds
//! without using it, the access log, and the graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::Request;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::access_log::{AccessLog, Entry};
use super::{Body, Server};

/// The limits and timeouts of connections, each a setting of `ssgen serve`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From accepting a connection to the end of its TLS handshake.
    pub tls_handshake: Duration,
    /// For the whole header block of a request: from a new connection to
    /// its first request's headers, and from the first byte of a later
    /// request to its last header.
    pub header_read: Duration,
    /// A kept-alive connection with no request in progress is closed.
    pub idle: Duration,
    /// A request in progress that moves no byte either way for this long
    /// (an upload or a download that stalled) is cut.
    pub stall: Duration,
    /// Connections open at once; more wait in the kernel's queue. While
    /// all are taken, connections without a request in progress get
    /// [`Limits::PRESSED`] at most for their handshake, headers or next
    /// request, so that held connections make room for new ones.
    pub max_connections: usize,
    /// After SIGTERM, how long answers in progress may take to finish.
    pub shutdown: Duration,
}

impl Limits {
    pub const PRESSED: Duration = Duration::from_secs(2);
    /// Open files kept for everything but connections: listeners, stdio,
    /// the watcher, the files a rebuild reads.
    const RESERVED_FILES: u64 = 32;
    const MAX_CONNECTIONS: u64 = 16_384;

    /// As many connections as the open-file limit allows, two files each
    /// (the socket and a file being sent). The soft limit is raised to the
    /// hard one first, as most servers do.
    pub fn default_max_connections() -> usize {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if let Some(hard) = limit.maximum {
            if limit.current.is_some_and(|soft| soft < hard) {
                limit.current = Some(hard.min(1 << 20));
                let _ = setrlimit(Resource::Nofile, limit);
                limit = getrlimit(Resource::Nofile);
            }
        }
        let files = limit.current.unwrap_or(Self::MAX_CONNECTIONS * 2);
        let connections =
            (files.saturating_sub(Self::RESERVED_FILES) / 2).clamp(1, Self::MAX_CONNECTIONS);
        usize::try_from(connections).unwrap_or(1)
    }
}

/// A bound socket and what is served on it.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub server: Arc<Server>,
}

/// How a run ended.
pub struct Stopped {
    /// Connections still open when the shutdown time ran out (cut).
    pub cut: usize,
}

/// Serves every listener until `stop` completes; then stops accepting
/// (the sockets close, so new connections are refused), lets answers in
/// progress finish for up to `limits.shutdown`, and returns.
pub async fn run(
    listeners: Vec<Listener>,
    limits: Limits,
    log: Option<Arc<AccessLog>>,
    stop: impl Future<Output = ()>,
) -> Stopped {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    let open = Arc::new(AtomicUsize::new(0));
    let (pressure, _) = tokio::sync::watch::channel(false);
    let pressure = Arc::new(pressure);
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept_loop(
                listener,
                Shared {
                    limits: limits.clone(),
                    log: log.clone(),
                    cancel: cancel.clone(),
                    tracker: tracker.clone(),
                    open: open.clone(),
                    pressure: pressure.clone(),
                },
                slots.clone(),
            ))
        })
        .collect();
    stop.await;
    cancel.cancel();
    for task in accepting {
        let _ = task.await;
    }
    tracker.close();
    let finishing = open.load(Ordering::SeqCst);
    if finishing > 0 {
        eprintln!(
            "waiting up to {}s for {finishing} connection(s) to finish",
            limits.shutdown.as_secs_f64()
        );
    }
    let cut = match tokio::time::timeout(limits.shutdown, tracker.wait()).await {
        Ok(()) => 0,
        Err(_) => open.load(Ordering::SeqCst),
    };
    Stopped { cut }
}

/// What every connection task shares.
#[derive(Clone)]
struct Shared {
    limits: Arc<Limits>,
    log: Option<Arc<AccessLog>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    open: Arc<AtomicUsize>,
    /// Whether every connection slot is taken.
    pressure: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Shared {
    fn opened(&self, change: isize) {
        let open = if change > 0 {
            self.open.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.open.fetch_sub(1, Ordering::SeqCst) - 1
        };
        let full = open >= self.limits.max_connections;
        self.pressure.send_if_modified(|pressed| {
            let changed = *pressed != full;
            *pressed = full;
            changed
        });
    }
}

async fn accept_loop(listener: Listener, shared: Shared, slots: Arc<Semaphore>) {
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            () = shared.cancel.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of files or memory: wait for connections to end.
                    eprintln!("warning: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shared.cancel.cancelled() => return,
        };
        // Answers are written in pieces (headers, then body): without
        // this, each waits for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let (tls, server, shared2) = (
            listener.tls.clone(),
            listener.server.clone(),
            shared.clone(),
        );
        shared.opened(1);
        shared.tracker.spawn(async move {
            connection(stream, peer, tls, server, &shared2).await;
            shared2.opened(-1);
            drop(slot);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    server: Arc<Server>,
    shared: &Shared,
) {
    let state = Arc::new(ConnState::new());
    let io = Timed {
        inner: stream,
        state: state.clone(),
    };
    let Some(acceptor) = tls else {
        return serve(TokioIo::new(io), false, peer, server, state, shared).await;
    };
    let started = Instant::now();
    let mut handshake = pin!(acceptor.accept(io));
    let mut pressure = shared.pressure.subscribe();
    let tls_stream = loop {
        let limit = if *pressure.borrow_and_update() {
            shared.limits.tls_handshake.min(Limits::PRESSED)
        } else {
            shared.limits.tls_handshake
        };
        tokio::select! {
            done = &mut handshake => match done {
                Ok(s) => break s,
                // A failed handshake concerns the client only.
                Err(_) => return,
            },
            () = tokio::time::sleep_until(started + limit) => return,
            _ = pressure.changed() => {}
            () = shared.cancel.cancelled() => return,
        }
    };
    if crate::acme::is_challenge(tls_stream.get_ref().1) {
        // The CA has seen the TLS-ALPN-01 answer; nothing is served on
        // this connection.
        let mut tls_stream = tls_stream;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls_stream).await;
        return;
    }
    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
    state.restart();
    serve(TokioIo::new(tls_stream), h2, peer, server, state, shared).await;
}

async fn serve<I>(
    io: I,
    h2: bool,
    peer: SocketAddr,
    server: Arc<Server>,
    state: Arc<ConnState>,
    shared: &Shared,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let log = shared.log.clone();
    let in_service = state.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let (server, log, state) = (server.clone(), log.clone(), in_service.clone());
        let req = req.map(|body| RequestBody { inner: Some(body) });
        async move {
            let entry = log.as_ref().map(|_| {
                let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let target = server.redact(target);
                Entry::new(peer.ip(), req.method().as_str(), &target, req.version())
            });
            let head = req.method() == hyper::Method::HEAD;
            let guard = InFlight::start(state);
            let response = server.handle(req).await;
            let status = response.status().as_u16();
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Tracked {
                    // Never a body for HEAD, whatever the handler made
                    // (HTTP/2 clients refuse one).
                    inner: if head { super::empty() } else { body },
                    sent: 0,
                    status,
                    log: log.zip(entry),
                    _guard: guard,
                }
                .boxed_body()
            }))
        }
    });
    let limits = &shared.limits;
    if h2 {
        let conn = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(128)
            // Room for two file reads per stream (the default is 400 KiB).
            .max_send_buf_size(1 << 20)
            .serve_connection(io, service);
        drive(
            pin!(conn),
            |c| c.graceful_shutdown(),
            &state,
            true,
            limits,
            shared,
        )
        .await;
    } else {
        let conn = http1::Builder::new().serve_connection(io, service);
        drive(
            pin!(conn),
            |c| c.graceful_shutdown(),
            &state,
            false,
            limits,
            shared,
        )
        .await;
    }
}

/// Runs a connection to its end, cuts it when its deadline passes, and
/// asks it to finish gracefully when the server stops.
async fn drive<C>(
    mut conn: Pin<&mut C>,
    graceful: fn(Pin<&mut C>),
    state: &ConnState,
    h2: bool,
    limits: &Limits,
    shared: &Shared,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut stopping = false;
    let mut pressure = shared.pressure.subscribe();
    loop {
        let deadline = state.deadline(limits, h2, *pressure.borrow_and_update());
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep_until(deadline) => {
                if state.deadline(limits, h2, *pressure.borrow()) <= Instant::now() {
                    return;
                }
            }
            _ = pressure.changed() => {}
            () = shared.cancel.cancelled(), if !stopping => {
                stopping = true;
                graceful(conn.as_mut());
            }
        }
    }
}

/// When each of a connection's timeouts runs out, from its traffic.
/// Times are milliseconds since `base`; `head` is 0 while no request head
/// is arriving, else its start plus one.
struct ConnState {
    base: Instant,
    last_byte: AtomicU64,
    idle_since: AtomicU64,
    head: AtomicU64,
    in_flight: AtomicUsize,
    /// Requests started, so the first one gets the header deadline.
    requests: AtomicU64,
}

impl ConnState {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            last_byte: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// After the TLS handshake: the request deadlines count from here.
    fn restart(&self) {
        let now = self.now();
        self.idle_since.store(now, Ordering::Relaxed);
        self.last_byte.store(now, Ordering::Relaxed);
        self.head.store(0, Ordering::Relaxed);
    }

    fn moved(&self, read: bool) {
        let now = self.now();
        self.last_byte.store(now, Ordering::Relaxed);
        if read && self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self
                .head
                .compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// When the connection is to be cut; `pressed` when every slot is
    /// taken, which shortens every wait but that of a request in progress.
    fn deadline(&self, limits: &Limits, h2: bool, pressed: bool) -> Instant {
        let ms = |t: u64| self.base + Duration::from_millis(t);
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return ms(self.last_byte.load(Ordering::Relaxed)) + limits.stall;
        }
        let cap = |limit: Duration| {
            if pressed {
                limit.min(Limits::PRESSED)
            } else {
                limit
            }
        };
        let idle_since = ms(self.idle_since.load(Ordering::Relaxed));
        if self.requests.load(Ordering::Relaxed) == 0 {
            // The first request must come promptly, on either protocol.
            return idle_since + cap(limits.header_read);
        }
        match self.head.load(Ordering::Relaxed) {
            // HTTP/2 frames between requests (pings, settings) start no head.
            head if head > 0 && !h2 => ms(head - 1) + cap(limits.header_read),
            _ => idle_since + cap(limits.idle),
        }
    }
}

/// Counts a request as in progress until its answer is sent or dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        state.requests.fetch_add(1, Ordering::Relaxed);
        state.head.store(0, Ordering::Relaxed);
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now();
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since.store(now, Ordering::Relaxed);
            self.0.head.store(0, Ordering::Relaxed);
        }
    }
}

/// An answer's body, counted as it is sent; the access log line is
/// written and the request ends when it is dropped (sent, or the client
/// went away).
struct Tracked {
    inner: Body,
    sent: u64,
    status: u16,
    log: Option<(Arc<AccessLog>, Entry)>,
    _guard: InFlight,
}

impl Tracked {
    fn boxed_body(self) -> Body {
        http_body_util::BodyExt::boxed(self)
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.sent += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some((log, entry)) = &self.log {
            log.write(entry, self.status, self.sent);
        }
    }
}

/// A request body that, dropped before its end (an upload refused before
/// it was read), is read on in the background for a little while and
/// then dropped. A client still sending (curl) then sees the refusal as an
/// answer: HTTP/2 would otherwise reset the stream, and curl 7.88 reports
/// that reset instead of the answer that came before it.
pub struct RequestBody {
    inner: Option<Incoming>,
}

/// How much of a refused body is read before giving up on it.
const DRAIN_BYTES: u64 = 4 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take().filter(|b| !b.is_end_stream()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0;
                while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        });
    }
}

/// The TCP stream, noting each byte that moves for the deadlines.
struct Timed {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Timed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.moved(true);
        }
        polled
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.moved(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.moved(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
