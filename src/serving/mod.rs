//! Serving: the accept loop and each connection under the warp filter chain. TLS when asked
//! (`tls/`), then HTTP/1.1 or HTTP/2 through hyper (`http.rs`: ALPN over TLS, the preface on
//! a plain port for h2c); on HTTP/1.1, plain or over TLS, the lean path (`lean/`) writes an
//! event stream without hyper's buffers. What warp's own `serve` can't do lives here too: survive running out
//! of file descriptors, drop one client whose stream stalls (its HTTP/1 connection, or its
//! HTTP/2 stream alone), and end every connection at shutdown (HTTP/2: GOAWAY).
//!
//! Every connection proves itself within bounds (`timeouts.rs`): its first bytes, its TLS
//! handshake (in line, `tls/`), its first request head or HTTP/2 start (`preface.rs`), and
//! over HTTP/2 some stream open; one that does not is closed.

pub mod activation;
mod http;
pub mod lean;
mod preface;
mod progress;
pub mod timeouts;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use warp::filters::BoxedFilter;

use crate::control::{Client, Control};
use crate::throttle::{Throttle, WARNING_PERIOD};
use http::{Protocols, serve_http};
use lean::Rewind;
use progress::ProgressIo;
use timeouts::Timeouts;
use tls::Tls;

/// While no file descriptor is free, accepting is retried this often (never spun).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Bytes the kernel may hold for a client beyond what is in flight (see `tune`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const UNSENT_LIMIT: u32 = 16 * 1024;
/// Descriptors `--max-connections`' default leaves for everything but connections (the
/// listener, stdin, logs, Redis, static files): an eighth of the limit, within these bounds.
const RESERVED_DESCRIPTORS: (usize, usize) = (16, 256);

/// What every connection is served with.
#[derive(Debug, Clone)]
pub struct Serving {
    pub routes: BoxedFilter<(warp::reply::Response,)>,
    pub control: Arc<Control>,
    /// `None`: plain HTTP/1.1 and h2c on this port.
    pub tls: Option<Arc<Tls>>,
    /// Connections and HTTP/2 streams, so shutdown can wait for all of them.
    pub tasks: TaskTracker,
    pub timeouts: Timeouts,
    /// `--max-connections`: past it a new connection is closed as soon as it is accepted.
    pub max_connections: usize,
}

/// `--max-connections` when not given: the descriptor limit less a reserve, so the server
/// closes the connections it cannot serve instead of running out of descriptors for them.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let Some(limit) = limit.and_then(|limit| usize::try_from(limit).ok()) else {
        return usize::MAX; // unlimited
    };
    let (least, most) = RESERVED_DESCRIPTORS;
    limit.saturating_sub((limit / 8).clamp(least, most)).max(1)
}

tokio::task_local! {
    /// The connection a task serves (HTTP/2 streams have a record of their own).
    static CONNECTION: Arc<Client>;
}

/// Whom the task running now serves: the peer of its connection or HTTP/2 stream, or `None`
/// for any other task (the accept loop, the input, the heartbeat, the bus). The panic hook
/// asks (`panics::install`).
pub fn panicking_peer() -> Option<SocketAddr> {
    CONNECTION
        .try_with(|connection| connection.peer)
        .ok()
        .or_else(http::h2_stream_peer)
}

/// Accepts connections on every listener until shutdown begins; each is served on its own
/// task, and all count against one `--max-connections`.
pub fn accept_all(listeners: Vec<TcpListener>, serving: Serving) {
    // One for all: each connection's task holds a pointer to it, not a copy.
    let serving = Arc::new(serving);
    let open = Arc::new(AtomicUsize::new(0));
    for listener in listeners {
        tokio::spawn(accept_loop(listener, serving.clone(), open.clone()));
    }
}

/// Accepts connections on one listener; `open` counts the connections of every listener.
async fn accept_loop(listener: TcpListener, serving: Arc<Serving>, open: Arc<AtomicUsize>) {
    let control = &serving.control;
    let mut fd_warning = Throttle::new(WARNING_PERIOD);
    let mut full_warning = Throttle::new(WARNING_PERIOD);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = control.closed() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                let Some(counted) = OpenConnection::take(&open, serving.max_connections) else {
                    // Closed at once (dropped): it would hold a descriptor the server needs.
                    control.count_connection_refused();
                    if let Some(refused) = full_warning.note() {
                        tracing::warn!(
                            refused,
                            max = serving.max_connections,
                            "--max-connections connections are open; closing new ones"
                        );
                    }
                    continue;
                };
                tune(&socket, peer);
                let connection = Arc::new(Client::new(peer, control));
                // Each connection's future is made here and moved in whole: a block that made it
                // would keep room for its arguments beside it for the connection's life.
                // Scoped with its record: a panic in it ends this connection alone (`panics`).
                let scope = connection.clone();
                let tasks = &serving.tasks;
                match serving.tls.clone() {
                    None => tasks.spawn(CONNECTION.scope(
                        scope,
                        serve_plain(socket, connection, serving.clone(), counted),
                    )),
                    Some(tls) => tasks.spawn(CONNECTION.scope(
                        scope,
                        serve_tls(socket, connection, serving.clone(), tls, counted),
                    )),
                };
            }
            Err(err) if is_out_of_descriptors(&err) => {
                // The pending connection stays in the backlog and the listener stays readable:
                // wait instead of spinning; it is taken once a descriptor is free.
                if let Some(waiting) = fd_warning.note() {
                    tracing::warn!(
                        %err,
                        waiting,
                        "cannot accept a connection (raise `ulimit -n`); retrying as descriptors free up"
                    );
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
            // Per-connection failures (a client that reset before accept): nothing to do.
            Err(err) => tracing::debug!(%err, "accept failed"),
        }
    }
}

/// One connection counted against `--max-connections` until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<OpenConnection> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            (now < max).then_some(now + 1)
        })
        .ok()?;
        Some(OpenConnection(open.clone()))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Events are small and latency matters: Nagle must not hold one back. And the kernel may keep
/// only `UNSENT_LIMIT` bytes that it has not sent yet: the send buffer otherwise grows to
/// megabytes per slow client, and the connection is woken to write each time the client frees
/// a little, so a client reading slowly shows progress long before `--stall-timeout`.
fn tune(socket: &TcpStream, peer: SocketAddr) {
    if let Err(err) = socket.set_nodelay(true) {
        tracing::debug!(%peer, %err, "TCP_NODELAY not set");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(err) = socket2::SockRef::from(socket).set_tcp_notsent_lowat(UNSENT_LIMIT) {
        tracing::debug!(%peer, %err, "TCP_NOTSENT_LOWAT not set");
    }
}

fn is_out_of_descriptors(err: &std::io::Error) -> bool {
    // Resource limits, not client errors; libc's constants, as the numbers differ by system.
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A plain connection: the lean path first, then hyper with what the lean path read put back.
/// (Apart from `serve_tls`: a task's future is as large as its largest state, and a lean stream
/// must not carry room for a TLS handshake.)
///
/// `counted` is held until the connection ends.
///
/// The connection's task keeps this future for the connection's life, and a lean stream is
/// most of them: so the task holds what a running stream needs (its own state, its connection
/// record, `serving`) and pointers to the rest. Opening (the first bytes, the head, the routes)
/// is boxed and gone once the stream runs; hyper, after a handover, is boxed. Not an `async fn`:
/// one moves its arguments into locals of its own and keeps room for both; a block uses them in
/// place, and what the box took is not captured at all.
fn serve_plain(
    socket: TcpStream,
    connection: Arc<Client>,
    serving: Arc<Serving>,
    counted: OpenConnection,
) -> impl Future<Output = ()> + Send {
    // The deadlines run from accept.
    let head_by = Instant::now() + serving.timeouts.head;
    let opening = Box::pin(open_plain(
        socket,
        connection.clone(),
        serving.clone(),
        head_by,
    ));
    async move {
        match opening.await {
            None => {} // nothing left to serve
            Some(lean::First::Stream(stream)) => stream.run(&connection, &serving.control).await,
            Some(lean::First::Hyper(handover)) => {
                Box::pin(serve_plain_handover(handover, connection, serving)).await;
            }
        }
        drop(counted);
    }
}

/// A plain connection's start: its first bytes, then its first request on the lean path. `None`
/// when there is nothing to serve: no byte in time, shutdown, the client left or sent no head
/// in time.
async fn open_plain(
    socket: TcpStream,
    connection: Arc<Client>,
    serving: Arc<Serving>,
    head_by: Instant,
) -> Option<lean::First<TcpStream>> {
    let control = &serving.control;
    // A socket that sends nothing is closed sooner than one that is sending its head, and
    // holds no buffer meanwhile.
    let mut first = [0; 1];
    let first_bytes = tokio::time::timeout(serving.timeouts.first_bytes, socket.peek(&mut first));
    tokio::select! {
        peeked = first_bytes => if !matches!(peeked, Ok(Ok(1..))) {
            return None;
        },
        () = control.closed() => return None,
    }
    lean::first_request(socket, &serving.routes, &connection, control, head_by).await
}

/// A plain connection the lean path handed over, served by hyper.
async fn serve_plain_handover(
    handover: lean::Handover<TcpStream>,
    connection: Arc<Client>,
    serving: Arc<Serving>,
) {
    let control = &serving.control;
    let head_by = handover.head_by;
    // What was read shows the protocol: HTTP/2 with prior knowledge (h2c) starts with its
    // preface, which must be followed by SETTINGS in time. (Knowing it, no sniff is needed:
    // hyper-util's would cost an HTTP/1 connection a doubled read buffer.)
    let mut io = handover.io;
    if preface::may_be_h2(io.replay()) {
        let Some(started) = preface::read_h2_start(io, head_by, control).await else {
            return;
        };
        io = started;
    }
    let protocols = if io.replay().starts_with(preface::H2_PREFACE) {
        Protocols::Http2
    } else {
        Protocols::Http1
    };
    let socket = ProgressIo::new(io, connection.clone(), control.clone());
    let io = TokioIo::new(socket);
    serve_http(io, protocols, handover.answered, connection, serving).await;
}

/// A TLS connection: the handshake, then hyper over HTTP/2 once the client's preface and
/// SETTINGS are in; over HTTP/1.1 the lean path first, then hyper. `counted` is held until the
/// connection ends.
fn serve_tls(
    socket: TcpStream,
    connection: Arc<Client>,
    serving: Arc<Serving>,
    tls: Arc<Tls>,
    counted: OpenConnection,
) -> impl Future<Output = ()> + Send {
    let hello_by = Instant::now() + serving.timeouts.first_bytes;
    async move {
        let _counted = counted;
        let control = &serving.control;
        let socket = ProgressIo::new(socket, connection.clone(), control.clone());
        // Boxed: the handshake's state is large and brief; the task keeps only its result.
        let handshake = Box::pin(tls.accept(socket, hello_by, serving.timeouts.handshake));
        let handshake = tokio::select! {
            handshake = handshake => handshake,
            () = control.closed() => return,
        };
        let stream = match handshake {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(peer = %connection.peer, %err, "TLS handshake failed");
                return;
            }
        };
        let head_by = Instant::now() + serving.timeouts.head;
        if tls::negotiated_h2(&stream) {
            // Boxed, as what follows a handover: an HTTP/1.1 stream's task keeps no room for it.
            Box::pin(serve_tls_h2(stream, connection, serving, head_by)).await;
            return;
        }
        let handover = lean::serve(stream, &serving.routes, &connection, control, head_by);
        let Some(handover) = handover.await else {
            return; // served as a lean stream, or nothing left to serve
        };
        let io = TokioIo::new(handover.io);
        let answered = handover.answered;
        Box::pin(serve_http(
            io,
            Protocols::Http1,
            answered,
            connection,
            serving,
        ))
        .await;
    }
}

/// A TLS connection that chose HTTP/2: its start, then hyper.
async fn serve_tls_h2(
    stream: Box<tls::UnbufferedTls<ProgressIo<TcpStream>>>,
    connection: Arc<Client>,
    serving: Arc<Serving>,
    head_by: Instant,
) {
    let started =
        preface::read_h2_start(Rewind::new(Bytes::new(), stream), head_by, &serving.control);
    let Some(io) = started.await else {
        return;
    };
    let io = TokioIo::new(io);
    serve_http(io, Protocols::Http2, None, connection, serving).await;
}
