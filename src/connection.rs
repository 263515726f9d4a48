//! The accept loop and the serving of each connection: the lean path (`lean`) when the first
//! request is a plain HTTP/1.1 event stream, else hyper's HTTP/1 server under the warp filter
//! chain, with what warp's own `serve` can't do: survive running out of file descriptors, drop
//! one connection whose client stalls, and end every connection at shutdown.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::filters::BoxedFilter;

use crate::hub::{Eviction, Hub, Orders};
use crate::lean;

/// While no file descriptor is free, accepting is retried this often (never spun).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Bytes the kernel may hold for a client beyond what is in flight (see `tune`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const UNSENT_LIMIT: u32 = 16 * 1024;
/// At most one "out of file descriptors" warning per this period.
const FD_WARNING_PERIOD: Duration = Duration::from_secs(5);

/// What a connection shares with the stream it serves, reached by the route through the
/// request's extensions: how far the stream got and when the socket last took bytes, for the
/// hub's stall check.
#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Position of the last live frame the stream took; `u64::MAX` while no stream is open.
    position: AtomicU64,
    /// The hub's wait mark at the socket's last write.
    progress: AtomicU64,
}

impl Connection {
    fn new(peer: SocketAddr, wait_epoch: u64) -> Self {
        Connection {
            peer,
            position: AtomicU64::new(u64::MAX),
            progress: AtomicU64::new(wait_epoch),
        }
    }

    /// The stream took live frames up to `position` (or starts there).
    pub fn stream_at(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
    }

    pub fn stream_ended(&self) {
        self.position.store(u64::MAX, Ordering::Relaxed);
    }

    fn is_stalled(&self, eviction: Eviction) -> bool {
        self.position.load(Ordering::Relaxed) <= eviction.through
            && self.progress.load(Ordering::Relaxed) < eviction.wait
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
}

/// The socket as hyper sees it, marking the connection's progress on every write that takes
/// bytes.
struct ProgressIo {
    io: TokioIo<lean::Rewind<TcpStream>>,
    connection: Arc<Connection>,
    hub: Arc<Hub>,
}

impl ProgressIo {
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(1..)) = written {
            self.connection.wrote(&self.hub);
        }
    }
}

impl hyper::rt::Read for ProgressIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProgressIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Accepts connections until the hub closes; each is served on its own task, tracked by
/// `tasks` so the caller can wait for them to end.
pub async fn accept_loop(
    listener: TcpListener,
    routes: BoxedFilter<(warp::reply::Response,)>,
    hub: Arc<Hub>,
    tasks: TaskTracker,
) {
    let mut fd_warning = FdWarning::default();
    let mut orders = hub.orders();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = orders.wait_for(|orders| orders.closing) => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                tune(&socket, peer);
                tasks.spawn(serve_connection(socket, peer, routes.clone(), hub.clone()));
            }
            Err(err) if is_out_of_descriptors(&err) => {
                // The pending connection stays in the backlog and the listener stays readable:
                // wait instead of spinning; it is taken once a descriptor is free.
                fd_warning.note(&err);
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

/// Rate-limits the warning for refused accepts, counting the ones it did not print.
#[derive(Default)]
struct FdWarning {
    last: Option<Instant>,
    unreported: u64,
}

impl FdWarning {
    fn note(&mut self, err: &std::io::Error) {
        self.unreported += 1;
        if self
            .last
            .is_none_or(|last| last.elapsed() >= FD_WARNING_PERIOD)
        {
            tracing::warn!(
                %err,
                waiting = self.unreported,
                "cannot accept a connection (raise `ulimit -n`); retrying as descriptors free up"
            );
            self.last = Some(Instant::now());
            self.unreported = 0;
        }
    }
}

async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    routes: BoxedFilter<(warp::reply::Response,)>,
    hub: Arc<Hub>,
) {
    let connection = Arc::new(Connection::new(peer, hub.wait_epoch()));
    let Some(handover) = lean::serve(socket, &routes, &connection, &hub).await else {
        return;
    };
    // Boxed: hyper's connection state is large, and a lean stream keeps this task for its life.
    Box::pin(serve_with_hyper(handover, routes, connection, hub)).await;
}

async fn serve_with_hyper(
    handover: lean::Handover,
    routes: BoxedFilter<(warp::reply::Response,)>,
    connection: Arc<Connection>,
    hub: Arc<Hub>,
) {
    let peer = connection.peer;
    let warp_service = warp::service(routes);
    // The lean path's answer to the first request, if the routes were already asked.
    let answered = std::sync::Mutex::new(handover.answered);
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let answered = answered.lock().expect("answer lock poisoned").take();
            request.extensions_mut().insert(connection.clone());
            let mut warp_service = warp_service.clone();
            // Boxed: hyper keeps the slot for this future for the connection's whole life, and
            // the unboxed future (the request inside warp's routing) is some 550 bytes.
            Box::pin(async move {
                match answered {
                    Some(response) => Ok(response),
                    None => warp_service.call(request).await,
                }
            })
        })
    };
    let serving = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(
            ProgressIo {
                io: TokioIo::new(handover.io),
                connection: connection.clone(),
                hub: hub.clone(),
            },
            service,
        );
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
                    // Finishes the response in flight (the hub has ended the streams), then closes.
                    serving.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
