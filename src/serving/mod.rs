//! Serving: the accept loop and each connection under the warp filter chain. TLS when asked
//! (`tls.rs`), then HTTP/1.1 or HTTP/2 through hyper (`http.rs`: ALPN over TLS, a sniff on a
//! plain port for h2c); on a plain port the lean path (`lean/`) writes an HTTP/1.1 event stream
//! without hyper's buffers. What warp's own `serve` can't do lives here too: survive running out
//! of file descriptors, drop one client whose stream stalls (its HTTP/1 connection, or its
//! HTTP/2 stream alone), and end every connection at shutdown (HTTP/2: GOAWAY).

mod http;
pub mod lean;
mod progress;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use warp::filters::BoxedFilter;

use crate::control::{Client, Control};
use crate::throttle::Throttle;
use http::{Protocols, serve_http};
use progress::ProgressIo;
use tls::Tls;

/// While no file descriptor is free, accepting is retried this often (never spun).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Bytes the kernel may hold for a client beyond what is in flight (see `tune`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const UNSENT_LIMIT: u32 = 16 * 1024;
/// At most one "out of file descriptors" warning per this period.
const FD_WARNING_PERIOD: Duration = Duration::from_secs(5);
/// How an HTTP/2 connection starts (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What every connection is served with.
#[derive(Debug, Clone)]
pub struct Serving {
    pub routes: BoxedFilter<(warp::reply::Response,)>,
    pub control: Arc<Control>,
    /// `None`: plain HTTP/1.1 and h2c on this port.
    pub tls: Option<Arc<Tls>>,
    /// Connections and HTTP/2 streams, so shutdown can wait for all of them.
    pub tasks: TaskTracker,
}

/// Accepts connections until shutdown begins; each is served on its own task.
pub async fn accept_loop(listener: TcpListener, serving: Serving) {
    let control = &serving.control;
    let mut fd_warning = Throttle::new(FD_WARNING_PERIOD);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = control.closed() => return,
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
    // Resource limits, not client errors; libc's constants, as the numbers differ by system.
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A plain connection: the lean path first, then hyper with what the lean path read put back.
/// (Apart from `serve_tls`: a task's future is as large as its largest state, and a lean stream
/// must not carry room for a TLS handshake.)
async fn serve_plain(socket: TcpStream, peer: SocketAddr, serving: Serving) {
    let control = serving.control.clone();
    let connection = Arc::new(Client::new(peer, &control));
    let Some(handover) = lean::serve(socket, &serving.routes, &connection, &control).await else {
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
    let socket = ProgressIo::new(handover.io, connection.clone(), control);
    let io = TokioIo::new(socket);
    let answered = handover.answered;
    // Boxed: hyper's connection state is large, and a lean stream keeps this task for its life.
    Box::pin(serve_http(io, protocols, answered, connection, serving)).await;
}

/// A TLS connection: the handshake, then hyper with the protocol ALPN agreed on.
async fn serve_tls(socket: TcpStream, peer: SocketAddr, serving: Serving, tls: Arc<Tls>) {
    let control = serving.control.clone();
    let connection = Arc::new(Client::new(peer, &control));
    let socket = ProgressIo::new(socket, connection.clone(), control.clone());
    let handshake = tokio::select! {
        handshake = tls.accept(socket) => handshake,
        () = control.closed() => return,
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
