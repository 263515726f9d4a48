//! The accept loop and the serving of each connection under the warp filter chain: TLS when
//! asked, then HTTP/1.1 or HTTP/2 (ALPN over TLS; sniffed on a plain port, for h2c); on a plain
//! port, the lean path (`lean`) when the first request is an HTTP/1.1 event stream; with what
//! warp's own `serve` can't do: survive running out of file descriptors, drop one client whose
//! stream stalls (its HTTP/1 connection, or its HTTP/2 stream alone), and end every connection
//! at shutdown (HTTP/2: GOAWAY).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::filters::BoxedFilter;

use crate::hub::{Eviction, Hub, Orders};
use crate::lean;
use crate::throttle::Throttle;
use crate::tls::{self, Tls};

/// While no file descriptor is free, accepting is retried this often (never spun).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Bytes the kernel may hold for a client beyond what is in flight (see `tune`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const UNSENT_LIMIT: u32 = 16 * 1024;
/// At most one "out of file descriptors" warning per this period.
const FD_WARNING_PERIOD: Duration = Duration::from_secs(5);
/// How an HTTP/2 connection starts (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2 streams one connection may hold open at once.
const H2_MAX_STREAMS: u32 = 128;
/// Bytes h2 may queue for one stream beyond what the client's window allows.
const H2_SEND_BUFFER: usize = 16 * 1024;
/// An HTTP/2 connection quiet this long is pinged, and closed if no answer comes in time.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What the serving side shares with the stream it carries, reached by the route through the
/// request's extensions: who the client is, how far its stream got, and when it last took
/// bytes, for the hub's stall check. One per HTTP/1 connection (which carries one stream at a
/// time), one per HTTP/2 stream.
#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    /// The channel of the stream being served (its positions count per channel).
    channel: AtomicU64,
    /// Position of the last live frame the stream took; `u64::MAX` while no stream is open.
    position: AtomicU64,
    /// The hub's wait mark when the client last took bytes.
    progress: AtomicU64,
    /// HTTP/2 only: the stream marks its own progress each time h2 takes a chunk (the client's
    /// window had room); on HTTP/1 the socket's writes mark it (`ProgressIo`).
    marks_chunks: Option<Arc<Hub>>,
}

impl Connection {
    fn new(peer: SocketAddr, wait_epoch: u64) -> Self {
        Connection {
            peer,
            channel: AtomicU64::new(0),
            position: AtomicU64::new(u64::MAX),
            progress: AtomicU64::new(wait_epoch),
            marks_chunks: None,
        }
    }

    fn for_h2_stream(peer: SocketAddr, hub: Arc<Hub>) -> Self {
        Connection {
            marks_chunks: Some(hub.clone()),
            ..Connection::new(peer, hub.wait_epoch())
        }
    }

    /// A stream of `channel` starts at `position`.
    pub fn stream_started(&self, channel: u64, position: u64) {
        self.channel.store(channel, Ordering::Relaxed);
        self.position.store(position, Ordering::Relaxed);
    }

    /// The stream took live frames up to `position`.
    pub fn stream_at(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
    }

    /// The stream's body handed a chunk to the protocol.
    pub fn chunk_sent(&self) {
        if let Some(hub) = &self.marks_chunks {
            self.progress.store(hub.socket_wrote(), Ordering::Relaxed);
        }
    }

    pub fn stream_ended(&self) {
        self.position.store(u64::MAX, Ordering::Relaxed);
    }

    /// Whether `orders` evict this connection's stalled client; if so, it is logged and counted.
    pub(crate) fn is_evicted(&self, orders: &Orders, hub: &Hub) -> bool {
        if !orders
            .evict
            .is_some_and(|eviction| self.is_stalled(eviction))
        {
            return false;
        }
        tracing::warn!(
            peer = %self.peer,
            "client took no event for --stall-timeout while input waited for it; disconnecting it"
        );
        hub.count_stalled_drop();
        true
    }

    /// The socket took bytes: the client is reading.
    pub(crate) fn wrote(&self, hub: &Hub) {
        self.progress.store(hub.socket_wrote(), Ordering::Relaxed);
    }

    fn is_stalled(&self, eviction: Eviction) -> bool {
        self.channel.load(Ordering::Relaxed) == eviction.channel
            && self.position.load(Ordering::Relaxed) <= eviction.through
            && self.progress.load(Ordering::Relaxed) < eviction.wait
    }
}

/// The TCP socket under TLS and HTTP, marking the connection's progress on every write that
/// takes bytes (for HTTP/1; an HTTP/2 stream marks its own, see `Connection::chunk_sent`).
struct ProgressIo<S> {
    /// The TCP socket; on a plain port with what the lean path read of it put back in front.
    socket: S,
    connection: Arc<Connection>,
    hub: Arc<Hub>,
}

impl<S> ProgressIo<S> {
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(1..)) = written {
            self.connection.wrote(&self.hub);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProgressIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProgressIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.socket).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.socket).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

/// What every connection is served with.
#[derive(Debug, Clone)]
pub struct Serving {
    pub routes: BoxedFilter<(warp::reply::Response,)>,
    pub hub: Arc<Hub>,
    /// `None`: plain HTTP/1.1 and h2c on this port.
    pub tls: Option<Arc<Tls>>,
    /// Connections and HTTP/2 streams, so shutdown can wait for all of them.
    pub tasks: TaskTracker,
}

/// Accepts connections until the hub closes; each is served on its own task.
pub async fn accept_loop(listener: TcpListener, serving: Serving) {
    let hub = &serving.hub;
    let mut fd_warning = Throttle::new(FD_WARNING_PERIOD);
    let mut orders = hub.orders();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = orders.wait_for(|orders| orders.closing) => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                tune(&socket, peer);
                match &serving.tls {
                    None => serving
                        .tasks
                        .spawn(serve_plain(socket, peer, serving.clone())),
                    Some(tls) => {
                        let tls = tls.clone();
                        serving
                            .tasks
                            .spawn(serve_tls(socket, peer, serving.clone(), tls))
                    }
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
    // EMFILE (24), ENFILE (23), ENOBUFS (105), ENOMEM (12): resource limits, not client errors.
    matches!(err.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// A plain connection: the lean path first, then hyper with what the lean path read put back.
/// (Apart from `serve_tls`: a task's future is as large as its largest state, and a lean stream
/// must not carry room for a TLS handshake.)
async fn serve_plain(socket: TcpStream, peer: SocketAddr, serving: Serving) {
    let hub = serving.hub.clone();
    let connection = Arc::new(Connection::new(peer, hub.wait_epoch()));
    let Some(handover) = lean::serve(socket, &serving.routes, &connection, &hub).await else {
        return; // served as a lean stream, or nothing left to serve
    };
    // What was read shows the protocol: only the HTTP/2 preface (h2c) needs hyper-util's sniff,
    // which would otherwise cost an HTTP/1 connection a doubled read buffer.
    let read = handover.io.replay();
    let protocols = if H2_PREFACE.starts_with(&read[..read.len().min(H2_PREFACE.len())]) {
        Protocols::Sniff
    } else {
        Protocols::Http1
    };
    let socket = ProgressIo {
        socket: handover.io,
        connection: connection.clone(),
        hub,
    };
    let io = TokioIo::new(socket);
    let answered = handover.answered;
    // Boxed: hyper's connection state is large, and a lean stream keeps this task for its life.
    Box::pin(serve_http(io, protocols, answered, connection, serving)).await;
}

/// A TLS connection: the handshake, then hyper with the protocol ALPN agreed on.
async fn serve_tls(socket: TcpStream, peer: SocketAddr, serving: Serving, tls: Arc<Tls>) {
    let hub = serving.hub.clone();
    let connection = Arc::new(Connection::new(peer, hub.wait_epoch()));
    let socket = ProgressIo {
        socket,
        connection: connection.clone(),
        hub: hub.clone(),
    };
    let mut orders = hub.orders();
    let handshake = tokio::select! {
        handshake = tls.accept(socket) => handshake,
        _ = orders.wait_for(|orders| orders.closing) => return,
    };
    match handshake {
        Ok(stream) => {
            let protocols = if tls::negotiated_h2(&stream) {
                Protocols::Http2
            } else {
                Protocols::Http1
            };
            let io = TokioIo::new(stream);
            Box::pin(serve_http(io, protocols, None, connection, serving)).await;
        }
        Err(err) => tracing::debug!(%peer, %err, "TLS handshake failed"),
    }
}

/// Which HTTP versions a connection may speak.
#[derive(Debug, Clone, Copy)]
enum Protocols {
    /// A plain port: HTTP/1.1, or HTTP/2 when the client opens with its preface (h2c).
    Sniff,
    /// What TLS's ALPN agreed on.
    Http1,
    Http2,
}

/// Serves HTTP on one connection until it ends, is dropped for stalling (HTTP/1: the stream is
/// the connection), or has finished its responses after shutdown began. `answered`: the lean
/// path's answer to the first request, when it already asked the routes; hyper sends it for that
/// request instead of asking them again (a subscription has effects).
async fn serve_http<I>(
    io: I,
    protocols: Protocols,
    answered: Option<warp::reply::Response>,
    connection: Arc<Connection>,
    serving: Serving,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let Serving {
        routes, hub, tasks, ..
    } = serving;
    let peer = connection.peer;
    let executor = StreamExecutor {
        peer,
        hub: hub.clone(),
        tasks,
    };
    let builder = http_builder(executor, protocols);
    let warp_service = warp::service(routes);
    let answered = std::sync::Mutex::new(answered);
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let answered = answered.lock().unwrap_or_else(|p| p.into_inner()).take();
            let connection = connection.clone();
            let mut warp_service = warp_service.clone();
            // Boxed: hyper keeps the slot for this future for the connection's whole life, and
            // the unboxed future (the request inside warp's routing) is some 550 bytes.
            Box::pin(async move {
                if let Some(response) = answered {
                    return Ok(response);
                }
                // On HTTP/2 this runs in the stream's own task, which has a record of its own.
                let client = H2_STREAM.try_with(Arc::clone).unwrap_or(connection);
                request.extensions_mut().insert(client);
                warp_service.call(request).await
            })
        })
    };
    let serving = builder.serve_connection(io, service);
    tokio::pin!(serving);
    let mut orders = hub.orders();
    let mut closing = false;
    loop {
        tokio::select! {
            result = serving.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, %err, "connection ended with an error");
                }
                return;
            }
            Ok(()) = orders.changed() => {
                let orders = *orders.borrow_and_update();
                if connection.is_evicted(&orders, &hub) {
                    return;
                }
                if orders.closing && !closing {
                    // Finishes the responses in flight (the hub has ended the streams), then
                    // closes; on HTTP/2 this is a GOAWAY.
                    serving.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// HTTP/1 and HTTP/2 settings, chosen for streams that never end.
fn http_builder(executor: StreamExecutor, protocols: Protocols) -> auto::Builder<StreamExecutor> {
    let mut builder = auto::Builder::new(executor);
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        // Every tab of a browser shares one connection per origin; nginx allows 128 streams.
        // Each stream still counts against --max-clients.
        .max_concurrent_streams(H2_MAX_STREAMS)
        // hyper's default lets h2 buffer 400 KiB per stream beyond the client's window; a stream
        // that stops reading would hold that much. Backpressure is the hub's job, not h2's.
        .max_send_buf_size(H2_SEND_BUFFER)
        // A peer that vanished without a FIN is found by a ping, not only by a heartbeat write
        // that TCP retries for minutes.
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    match protocols {
        Protocols::Sniff => builder,
        Protocols::Http1 => builder.http1_only(),
        Protocols::Http2 => builder.http2_only(),
    }
}

tokio::task_local! {
    /// The record of the HTTP/2 stream whose task is running (see `StreamExecutor`).
    static H2_STREAM: Arc<Connection>;
}

/// Runs each HTTP/2 stream on a task of its own with a record of its own, so a stalled stream
/// is reset alone: the connection and the other tabs it carries go on.
#[derive(Debug, Clone)]
struct StreamExecutor {
    peer: SocketAddr,
    hub: Arc<Hub>,
    tasks: TaskTracker,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let record = Arc::new(Connection::for_h2_stream(self.peer, self.hub.clone()));
        let served = serve_h2_stream(stream, record.clone(), self.hub.clone());
        self.tasks.spawn(H2_STREAM.scope(record, served));
    }
}

/// Drives one HTTP/2 stream; dropping it (when evicted) makes h2 reset that stream.
async fn serve_h2_stream(stream: impl Future<Output = ()>, record: Arc<Connection>, hub: Arc<Hub>) {
    tokio::pin!(stream);
    let mut orders = hub.orders();
    loop {
        tokio::select! {
            () = stream.as_mut() => return,
            Ok(()) = orders.changed() => {
                let evict = orders.borrow_and_update().evict;
                if evict.is_some_and(|eviction| record.is_stalled(eviction)) {
                    tracing::warn!(
                        peer = %record.peer,
                        "client took no event for --stall-timeout while input waited for it; resetting its HTTP/2 stream"
                    );
                    hub.count_stalled_drop();
                    return;
                }
            }
        }
    }
}
