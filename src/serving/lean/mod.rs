//! The lean path for event streams on plain HTTP/1.1 connections. It reads the first request
//! head itself (httparse, as hyper does) and, when the routes answer it with an event stream,
//! writes that stream from the connection's own task: an idle stream then holds its socket, its
//! receiver and its position, not the two 8 KiB buffers hyper keeps for a connection's life.
//!
//! Everything else goes to hyper, with the bytes already read replayed first (`Rewind`): other
//! methods and versions, request bodies, upgrades, pipelined requests, heads that are malformed
//! or too large (hyper answers them 400 or 431 as it always did), the HTTP/2 preface. When the
//! routes already answered the first request, hyper sends that answer instead of asking them
//! again: a subscription has effects, and the routes run once per request.

mod head;
mod rewind;
mod send;

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

pub use rewind::Rewind;

use super::timeouts::Timeouts;
use crate::control::{Client, Control};
use head::{Asked, Parsed};

/// A first head not complete within this many bytes goes to hyper (whose limit is larger).
const HEAD_LIMIT: usize = 16 * 1024;
/// Read size while the head comes in; the buffer goes once the head is parsed.
const READ_SIZE: usize = 1024;

/// A connection for hyper to serve.
#[derive(Debug)]
pub struct Handover {
    /// The socket, with what was read of it put back in front.
    pub io: Rewind<TcpStream>,
    /// The routes' answer to the first request in `io`; hyper must send it instead of calling
    /// the routes for that request.
    pub answered: Option<Response>,
}

/// Serves the connection when its first request is an event stream this path can send, and
/// returns when that stream ends; otherwise returns the connection for hyper. `None` also when
/// there is nothing left to serve: the client left or sent no head in time, or shutdown began.
pub async fn serve(
    socket: TcpStream,
    routes: &BoxedFilter<(Response,)>,
    connection: &Arc<Client>,
    control: &Control,
    timeouts: &Timeouts,
) -> Option<Handover> {
    // Boxed: reading the head and routing it are brief and their state is large; a stream lives
    // as long as its client, and the task then keeps only the stream's own state.
    let stream =
        match Box::pin(first_request(socket, routes, connection, control, timeouts)).await? {
            First::Stream(stream) => stream,
            First::Hyper(handover) => return Some(handover),
        };
    stream.run(connection, control).await;
    None
}

/// What the first request turned out to be.
enum First {
    Stream(send::Stream),
    Hyper(Handover),
}

async fn first_request(
    socket: TcpStream,
    routes: &BoxedFilter<(Response,)>,
    connection: &Arc<Client>,
    control: &Control,
    timeouts: &Timeouts,
) -> Option<First> {
    let (read, asked) = read_first_head(&socket, control, timeouts).await?;
    let Some(Asked { mut request, close }) = asked else {
        return Some(First::Hyper(Handover {
            io: Rewind::new(read, socket),
            answered: None,
        }));
    };
    request.extensions_mut().insert(connection.clone());
    let Ok(response) = warp::service(routes.clone()).call(request).await;
    if !head::is_lean_stream(response.status(), response.headers()) {
        return Some(First::Hyper(Handover {
            io: Rewind::new(read, socket),
            answered: Some(response),
        }));
    }
    Some(First::Stream(send::Stream::new(socket, response, close)))
}

/// Reads until the bytes hold a complete first head, or show that hyper must have them. `None`:
/// the client closed before sending anything, sent nothing within `first_bytes` or no complete
/// head within `head`, or shutdown began (idle connections close then, as hyper closes them).
async fn read_first_head(
    socket: &TcpStream,
    control: &Control,
    timeouts: &Timeouts,
) -> Option<(Bytes, Option<Asked>)> {
    let mut read = BytesMut::new();
    let reading = async {
        // A socket that sends nothing is closed sooner than one that is sending its head.
        let first_bytes_by = tokio::time::Instant::now() + timeouts.first_bytes;
        loop {
            if read.is_empty() {
                tokio::time::timeout_at(first_bytes_by, socket.readable())
                    .await
                    .ok()?
                    .ok()?;
            } else {
                socket.readable().await.ok()?;
            }
            read.reserve(READ_SIZE);
            match socket.try_read_buf(&mut read) {
                // The client closed mid-head: hyper answers what it sent as it would.
                Ok(0) if read.is_empty() => return None,
                Ok(0) => return Some((read.split().freeze(), None)),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
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
        () = tokio::time::sleep(timeouts.head) => None,
        () = control.closed() => None,
    }
}
