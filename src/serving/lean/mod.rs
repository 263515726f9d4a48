//! The lean path for event streams on HTTP/1.1 connections, plain or over TLS (rustls's
//! unbuffered connection, which frees its buffers while idle). It reads the first request head
//! itself (httparse, as hyper does) and, when the routes answer it with an event stream, writes
//! that stream from the connection's own task: an idle stream then holds its socket (and TLS
//! state), its receiver and its position, not the two 8 KiB buffers hyper keeps for a
//! connection's life.
//!
//! Everything else goes to hyper, with the bytes already read replayed first (`Rewind`): other
//! methods and versions, request bodies, upgrades, pipelined requests, heads that are malformed
//! or too large (hyper answers them 400 or 431 as it always did), the HTTP/2 preface. When the
//! routes already answered the first request, hyper sends that answer instead of asking them
//! again: a subscription has effects, and the routes run once per request.

mod head;
mod rewind;
mod send;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

pub use rewind::Rewind;

use crate::control::{Client, Control};
use head::{Asked, Parsed};

/// A first head not complete within this many bytes goes to hyper (whose limit is larger).
const HEAD_LIMIT: usize = 16 * 1024;
/// Read size while the head comes in; the buffer goes once the head is parsed.
const READ_SIZE: usize = 1024;

/// A connection for hyper to serve.
#[derive(Debug)]
pub struct Handover<IO> {
    /// The connection, with what was read of it put back in front.
    pub io: Rewind<IO>,
    /// The routes' answer to the first request in `io`; hyper must send it instead of calling
    /// the routes for that request.
    pub answered: Option<Response>,
    /// When the first head had to be in (an HTTP/2 start after it has the same bound).
    pub head_by: Instant,
}

/// Serves the connection when its first request is an event stream this path can send, and
/// returns when that stream ends; otherwise returns the connection for hyper. `None` also when
/// there is nothing left to serve: the client left or sent no head in time, or shutdown began.
/// The connection has bytes to read (a plain socket) or has just finished its handshake; its
/// first head must be in by `head_by`.
///
/// Not an `async fn`: one moves its arguments into locals of its own and keeps room for both
/// for the stream's life; a block uses them in place.
#[allow(clippy::manual_async_fn)]
pub fn serve<'a, IO>(
    io: IO,
    routes: &'a BoxedFilter<(Response,)>,
    connection: &'a Arc<Client>,
    control: &'a Control,
    head_by: Instant,
) -> impl Future<Output = Option<Handover<IO>>> + 'a
where
    IO: AsyncRead + AsyncWrite + Unpin + 'a,
{
    async move {
        // Boxed: reading the head and routing it are brief and their state is large; a stream
        // lives as long as its client, and the task then keeps only the stream's own state.
        let first = Box::pin(first_request(io, routes, connection, control, head_by)).await?;
        let stream = match first {
            First::Stream(stream) => stream,
            First::Hyper(handover) => return Some(handover),
        };
        stream.run(connection, control).await;
        None
    }
}

/// What the first request turned out to be.
pub enum First<IO> {
    /// An event stream this path sends (`Stream::run`).
    Stream(send::Stream<IO>),
    /// Anything else: hyper's.
    Hyper(Handover<IO>),
}

/// Reads the first request head and asks the routes for it when it may be a lean stream. `None`
/// when there is nothing to serve (as `serve`). Its state is large and brief: box it, so that the
/// connection's task keeps no room for it once the stream runs.
pub async fn first_request<IO>(
    mut io: IO,
    routes: &BoxedFilter<(Response,)>,
    connection: &Arc<Client>,
    control: &Control,
    head_by: Instant,
) -> Option<First<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (read, asked) = read_first_head(&mut io, control, head_by).await?;
    let Some(Asked { mut request, close }) = asked else {
        return Some(First::Hyper(Handover {
            io: Rewind::new(read, io),
            answered: None,
            head_by,
        }));
    };
    request.extensions_mut().insert(connection.clone());
    crate::panics::provoke("request", request.uri().path());
    let Ok(response) = warp::service(routes.clone()).call(request).await;
    if !head::is_lean_stream(response.status(), response.headers()) {
        return Some(First::Hyper(Handover {
            io: Rewind::new(read, io),
            answered: Some(response),
            head_by,
        }));
    }
    Some(First::Stream(send::Stream::new(io, response, close)))
}

/// Reads until the bytes hold a complete first head, or show that hyper must have them. `None`:
/// the client closed before sending anything, sent no complete head by `head_by`, or shutdown
/// began (idle connections close then, as hyper closes them).
async fn read_first_head<IO>(
    io: &mut IO,
    control: &Control,
    head_by: Instant,
) -> Option<(Bytes, Option<Asked>)>
where
    IO: AsyncRead + Unpin,
{
    let mut read = BytesMut::new();
    let reading = async {
        loop {
            let before = read.len();
            read.reserve(READ_SIZE);
            match io.read_buf(&mut read).await {
                // The client closed mid-head: hyper answers what it sent as it would.
                Ok(0) if read.is_empty() => return None,
                Ok(0) => return Some((read.split().freeze(), None)),
                Ok(_) => {}
                Err(_) => return None,
            }
            // Parsed again only once the new bytes end a head, as hyper does: a head sent a
            // byte at a time would otherwise be parsed whole on every read, a cost that grows
            // with the square of its length.
            if before > 0 && read.len() < HEAD_LIMIT && !head::ends_head(&read, before) {
                continue;
            }
            match head::parse(&read) {
                Parsed::Partial if read.len() < HEAD_LIMIT => {}
                Parsed::Lean(asked) => return Some((read.split().freeze(), Some(asked))),
                Parsed::Partial | Parsed::Hyper => return Some((read.split().freeze(), None)),
            }
        }
    };
    tokio::select! {
        first = reading => first,
        () = tokio::time::sleep_until(head_by) => None,
        () = control.closed() => None,
    }
}
