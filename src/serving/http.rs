//! hyper's HTTP/1.1 and HTTP/2 serving of one connection, with settings chosen for streams that
//! never end: every HTTP/2 stream runs on a task of its own with a client record of its own, so
//! a stalled stream is reset alone; an HTTP/1 connection is dropped when its client is evicted;
//! shutdown finishes the responses in flight, then closes (HTTP/2: GOAWAY), as does an HTTP/2
//! connection that has had no stream open for the idle time-out.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::Serving;
use super::timeouts::Timeouts;
use crate::control::{Client, Control, Cut};

/// HTTP/2 streams one connection may hold open at once.
const H2_MAX_STREAMS: u32 = 128;
/// Bytes h2 may queue for one stream beyond what the client's window allows.
const H2_SEND_BUFFER: usize = 16 * 1024;
/// An HTTP/2 connection quiet this long is pinged, and closed if no answer comes in time.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest request head served (HTTP/2: header list); the lean path reads at most 16 KiB of
/// a first head itself and leaves a longer one to hyper, which applies this.
const MAX_HEAD: usize = 64 * 1024;
/// After its GOAWAY, an idle HTTP/2 connection gets this long to close itself, then is dropped.
const H2_IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Which HTTP versions a connection may speak.
#[derive(Debug, Clone, Copy)]
pub(super) enum Protocols {
    /// What TLS's ALPN agreed on; on a plain port, HTTP/2 when the client opened with its
    /// preface (h2c).
    Http1,
    Http2,
}

/// Serves HTTP on one connection until it ends, is dropped for stalling (HTTP/1: the stream is
/// the connection), or has finished its responses after shutdown began. `answered`: the lean
/// path's answer to the first request, when it already asked the routes; hyper sends it for that
/// request instead of asking them again (a subscription has effects).
pub(super) async fn serve_http<I>(
    io: I,
    protocols: Protocols,
    answered: Option<warp::reply::Response>,
    connection: Arc<Client>,
    serving: Arc<Serving>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let Serving {
        routes,
        control,
        tasks,
        timeouts,
        ..
    } = &*serving;
    let (control, tasks, timeouts) = (control.clone(), tasks.clone(), *timeouts);
    let peer = connection.peer;
    let (open_streams, streams) = watch::channel(0);
    let executor = StreamExecutor {
        peer,
        control: control.clone(),
        tasks,
        open_streams: Arc::new(open_streams),
    };
    let warp_service = warp::service(routes.clone());
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
                crate::panics::provoke("request", request.uri().path());
                request.extensions_mut().insert(client);
                warp_service.call(request).await
            })
        })
    };
    match protocols {
        Protocols::Http1 => {
            let serving = http1_builder(&timeouts).serve_connection(io, service);
            // HTTP/1.1 has hyper's `header_read_timeout` between requests.
            drive(serving, std::future::pending(), &connection, &control).await;
        }
        Protocols::Http2 => {
            let serving = http2_builder(executor).serve_connection(io, service);
            let idle = no_stream_for(streams, timeouts.h2_idle);
            drive(serving, idle, &connection, &control).await;
        }
    }
}

/// Runs `serving` until it ends, its client is evicted, or it has closed after shutdown began
/// or after `idle` (HTTP/2's time-out with no stream open).
async fn drive<C>(
    serving: C,
    idle: impl Future<Output = ()>,
    connection: &Arc<Client>,
    control: &Control,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let peer = connection.peer;
    tokio::pin!(serving);
    let evicted = connection.evicted(control, Cut::Connection);
    tokio::pin!(evicted);
    tokio::pin!(idle);
    let mut closing = false;
    let give_up = tokio::time::sleep(Duration::MAX);
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            result = serving.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, %err, "connection ended with an error");
                }
                return;
            }
            () = &mut evicted => return,
            () = control.closed(), if !closing => {
                // Finishes the responses in flight (the channels have ended the streams), then
                // closes; on HTTP/2 this is a GOAWAY.
                serving.as_mut().graceful_shutdown();
                closing = true;
            }
            () = &mut idle, if !closing => {
                tracing::debug!(%peer, "HTTP/2 connection with no stream open; closing it");
                serving.as_mut().graceful_shutdown();
                closing = true;
                // h2 closes once the client acknowledged the GOAWAY's ping; one that never
                // answers is not waited for.
                give_up.as_mut().reset(tokio::time::Instant::now() + H2_IDLE_CLOSE_GRACE);
            }
            () = &mut give_up => return,
        }
    }
}

/// Resolves once no stream has been open on the connection for `period`.
async fn no_stream_for(mut streams: watch::Receiver<usize>, period: Duration) {
    loop {
        if streams.wait_for(|open| *open == 0).await.is_err() {
            return std::future::pending().await;
        }
        tokio::select! {
            () = tokio::time::sleep(period) => return,
            changed = streams.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// HTTP/1.1 settings, chosen for streams that never end.
fn http1_builder(timeouts: &Timeouts) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.head)
        // A head longer than this is answered 431, however it arrives: whole in one read, or in
        // pieces (hyper counts the head itself, not its read buffer, which one read can overfill).
        .max_header_size(MAX_HEAD)
        // A head must fit hyper's read buffer, ~400 KiB by default: that much per connection,
        // before any auth. (The buffer bounds queued writes too, which only means a flush sooner.)
        .max_buf_size(MAX_HEAD);
    builder
}

/// HTTP/2 settings, chosen for streams that never end.
fn http2_builder(executor: StreamExecutor) -> http2::Builder<StreamExecutor> {
    let mut builder = http2::Builder::new(executor);
    builder
        .timer(TokioTimer::new())
        // As HTTP/1.1's heads, counted as HTTP/2 counts a header list: each field's name and
        // value and 32 bytes. A longer list is answered 431 (hyper's default is 16 KiB). h2
        // refuses a list that reaches its setting, so one byte more serves 64 KiB itself.
        .max_header_list_size(MAX_HEAD as u32 + 1)
        // Every tab of a browser shares one connection per origin; nginx allows 128 streams.
        // Each stream still counts against --max-clients.
        .max_concurrent_streams(H2_MAX_STREAMS)
        // hyper's default lets h2 buffer 400 KiB per stream beyond the client's window; a stream
        // that stops reading would hold that much. Backpressure is the channels' job, not h2's.
        .max_send_buf_size(H2_SEND_BUFFER)
        // A peer that vanished without a FIN is found by a ping, not only by a heartbeat write
        // that TCP retries for minutes.
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

tokio::task_local! {
    /// The record of the HTTP/2 stream whose task is running (see `StreamExecutor`).
    static H2_STREAM: Arc<Client>;
}

/// The peer of the HTTP/2 stream the running task serves, if it serves one.
pub(super) fn h2_stream_peer() -> Option<SocketAddr> {
    H2_STREAM.try_with(|stream| stream.peer).ok()
}

/// Runs each HTTP/2 stream on a task of its own with a record of its own, so a stalled stream
/// is reset alone: the connection and the other tabs it carries go on.
#[derive(Debug, Clone)]
struct StreamExecutor {
    peer: SocketAddr,
    control: Arc<Control>,
    tasks: TaskTracker,
    /// The connection's streams being served, for its idle time-out.
    open_streams: Arc<watch::Sender<usize>>,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let record = Arc::new(Client::for_h2_stream(self.peer, self.control.clone()));
        self.open_streams.send_modify(|open| *open += 1);
        let open = OpenStream(self.open_streams.clone());
        let served = serve_h2_stream(stream, record.clone(), self.control.clone(), open);
        self.tasks.spawn(H2_STREAM.scope(record, served));
    }
}

/// One stream counted open on its connection until dropped.
struct OpenStream(Arc<watch::Sender<usize>>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open -= 1);
    }
}

pin_project_lite::pin_project! {
    /// Drives one HTTP/2 stream until it ends or its client is evicted; dropping it (when
    /// evicted) makes h2 reset that stream. A struct, not an async block: a block keeps what it
    /// captured beside what it awaits, so hyper's stream future (176 bytes) twice, per stream.
    struct H2StreamTask<S, E> {
        #[pin]
        stream: S,
        #[pin]
        evicted: E,
        _open: OpenStream,
    }
}

fn serve_h2_stream(
    stream: impl Future<Output = ()>,
    record: Arc<Client>,
    control: Arc<Control>,
    open: OpenStream,
) -> impl Future<Output = ()> {
    H2StreamTask {
        stream,
        evicted: async move { record.evicted(&control, Cut::H2Stream).await },
        _open: open,
    }
}

impl<S, E> Future for H2StreamTask<S, E>
where
    S: Future<Output = ()>,
    E: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.stream.poll(cx).is_ready() || this.evicted.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
