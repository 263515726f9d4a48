//! An event stream on the lean path: the response head, then the body in chunked framing,
//! written straight to the connection with no buffer of its own beyond the chunk-size line. While
//! it runs it ends when the client hangs up, or when the control evicts it for stalling, as a
//! stream under hyper does.
//!
//! Written as one future by hand, not as `select!` over async blocks: a connection's task keeps
//! its stream's future for the stream's whole life, and async blocks keep room for every state
//! and copy of their locals (the socket, the body, a frame, the write in flight) side by side.
//! Here an idle stream holds its socket, its body, its eviction wait and one small state.

use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use bytes::{Buf, Bytes};
use hyper::body::Body as _;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use warp::reply::Response;

use super::head;
use crate::control::{Client, Control, Cut};

/// The last chunk of a chunked body (no trailers).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
/// Ends every chunk.
const CRLF: &[u8] = b"\r\n";

/// The body type of a warp response, which warp does not name.
type ResponseBody = <Response as HasBody>::Body;

trait HasBody {
    type Body;
}

impl<B> HasBody for warp::http::Response<B> {
    type Body = B;
}

/// A stream ready to go: its connection, its head as bytes, its body. Only this, the connection
/// record and the control stay in memory while it waits for events (the request and the
/// response's header map are gone).
#[derive(Debug)]
pub struct Stream<IO> {
    io: IO,
    head: Vec<u8>,
    body: ResponseBody,
}

// What an idle plain stream keeps beside its connection record: ten words.
const _: () = assert!(std::mem::size_of::<Stream<tokio::net::TcpStream>>() <= 80);

impl<IO: AsyncRead + AsyncWrite + Unpin> Stream<IO> {
    /// `response` must be a 200 event stream (see `head::is_lean_stream`).
    pub fn new(io: IO, response: Response, close: bool) -> Self {
        let (parts, body) = response.into_parts();
        Stream {
            io,
            head: head::encode_stream_head(&parts.headers, close, SystemTime::now()),
            body,
        }
    }

    /// Sends the head, then the body until it ends, the client hangs up or the control evicts it;
    /// then the connection closes (over TLS with close_notify).
    pub fn run<'a>(self, connection: &'a Client, control: &'a Control) -> impl Future<Output = ()> {
        Running {
            io: self.io,
            body: self.body,
            sending: Sending::Head(self.head.into()),
            connection,
            control,
            evicted: connection.evicted(control, Cut::Connection),
        }
    }
}

pin_project! {
    /// A stream being sent; ends when `evicted` resolves, or when sending ends (the body's end,
    /// the client's hang-up, an error).
    struct Running<'a, IO, E> {
        io: IO,
        body: ResponseBody,
        sending: Sending,
        connection: &'a Client,
        control: &'a Control,
        #[pin]
        evicted: E,
    }
}

/// What the stream is writing.
enum Sending {
    /// The response head, what is left of it.
    Head(Bytes),
    /// Nothing: waiting for the body's next chunk (or the client's hang-up).
    Waiting,
    /// A chunk: its size line (`size[..size_len]`), its data, the CRLF after it; `written`
    /// bytes of the three already went out.
    Chunk {
        size: [u8; 18],
        size_len: u8,
        data: Bytes,
        written: usize,
    },
    /// The last chunk, from `LAST_CHUNK[written..]`.
    Last { written: usize },
    /// Closing the connection (over TLS: close_notify first).
    Closing,
}

impl<IO: AsyncRead + AsyncWrite + Unpin, E: Future<Output = ()>> Future for Running<'_, IO, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.evicted.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let mut io = Progress {
            io: this.io,
            connection: this.connection,
            control: this.control,
        };
        let sent = ready!(poll_send(&mut io, this.body, this.sending, cx));
        if let Err(err) = sent {
            tracing::debug!(peer = %this.connection.peer, %err, "connection ended with an error");
        }
        Poll::Ready(())
    }
}

/// Sends until nothing can go on now (pending) or the stream is over (ready).
fn poll_send<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Progress<'_, IO>,
    body: &mut ResponseBody,
    sending: &mut Sending,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    loop {
        match sending {
            Sending::Head(head) => {
                let written = ready!(io.poll_write(cx, &[IoSlice::new(&head[..])]))?;
                head.advance(written);
                if head.is_empty() {
                    *sending = Sending::Waiting;
                }
            }
            Sending::Waiting => {
                if io.poll_hang_up(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                let Poll::Ready(frame) = Pin::new(&mut *body).poll_frame(cx) else {
                    // Nothing more to send for now: the connection may give back what it
                    // keeps for writing (over TLS, its buffer of records).
                    ready!(io.poll_flush(cx))?;
                    return Poll::Pending;
                };
                *sending = match frame {
                    // The stream ended (shutdown, or a lagging client): end the body and close,
                    // as a reconnecting EventSource opens a new connection anyway.
                    None => Sending::Last { written: 0 },
                    Some(frame) => match frame.map_err(io::Error::other)?.into_data() {
                        // hyper skips empty chunks too: a zero-size chunk would end the body.
                        Ok(data) if !data.is_empty() => chunk(data),
                        // trailers (an event stream has none), an empty chunk
                        _ => Sending::Waiting,
                    },
                };
            }
            Sending::Chunk {
                size,
                size_len,
                data,
                written,
            } => {
                let size = &size[..usize::from(*size_len)];
                let mut parts = [
                    IoSlice::new(size),
                    IoSlice::new(&data[..]),
                    IoSlice::new(CRLF),
                ];
                let mut left = &mut parts[..];
                IoSlice::advance_slices(&mut left, *written);
                *written += ready!(io.poll_write(cx, left))?;
                if *written == size.len() + data.len() + CRLF.len() {
                    *sending = Sending::Waiting;
                }
            }
            Sending::Last { written } => {
                let left = &LAST_CHUNK[*written..];
                *written += ready!(io.poll_write(cx, &[IoSlice::new(left)]))?;
                if *written == LAST_CHUNK.len() {
                    *sending = Sending::Closing;
                }
            }
            Sending::Closing => return Pin::new(&mut *io.io).poll_shutdown(cx),
        }
    }
}

/// The connection for one poll, marking its progress on each write that takes bytes, as
/// `ProgressIo` does for hyper's writes.
struct Progress<'s, IO> {
    io: &'s mut IO,
    connection: &'s Client,
    control: &'s Control,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Progress<'_, IO> {
    /// One write of `parts`; ready with the count once it took some.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        parts: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match ready!(Pin::new(&mut *self.io).poll_write_vectored(cx, parts))? {
            0 => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            written => {
                self.connection.wrote(self.control);
                Poll::Ready(Ok(written))
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    /// Ready once the client closed its side or the connection failed: the stream's end, as
    /// hyper ends a response whose client went away. Bytes the client sends meanwhile (a request
    /// pipelined behind an endless stream) are dropped: they would never be answered.
    fn poll_hang_up(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0; 16];
        loop {
            let mut read = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut *self.io).poll_read(cx, &mut read)) {
                Ok(()) if !read.filled().is_empty() => {}
                Ok(()) | Err(_) => return Poll::Ready(()),
            }
        }
    }
}

/// The chunk that carries `data`.
fn chunk(data: Bytes) -> Sending {
    let mut size = [0; 18];
    let size_len = chunk_size_line(data.len(), &mut size).len() as u8;
    Sending::Chunk {
        size,
        size_len,
        data,
        written: 0,
    }
}

/// `len` in hex as hyper writes it (upper case), then CRLF.
fn chunk_size_line(len: usize, buffer: &mut [u8; 18]) -> &[u8] {
    let mut cursor = &mut buffer[..];
    write!(cursor, "{len:X}\r\n").expect("a usize in hex fits 16 digits");
    let unused = cursor.len();
    &buffer[..buffer.len() - unused]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_upper_hex() {
        let mut buffer = [0; 18];
        assert_eq!(chunk_size_line(1, &mut buffer), b"1\r\n");
        assert_eq!(chunk_size_line(0xABC, &mut buffer), b"ABC\r\n");
        assert_eq!(
            chunk_size_line(usize::MAX, &mut buffer),
            b"FFFFFFFFFFFFFFFF\r\n"
        );
    }
}
