//! An event stream on the lean path: the response head, then the body in chunked framing,
//! written straight to the connection with no buffer of its own beyond the chunk-size line. While
//! it runs it ends when the client hangs up, or when the control evicts it for stalling, as a
//! stream under hyper does.

use std::io::{self, IoSlice, Write as _};
use std::time::SystemTime;

use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warp::reply::Response;

use super::head;
use crate::control::{Client, Control, Cut};

/// The last chunk of a chunked body (no trailers).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

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
    pub async fn run(self, connection: &Client, control: &Control) {
        let Stream {
            mut io,
            head,
            mut body,
        } = self;
        let sending = async move {
            write_all(&mut io, &mut [IoSlice::new(&head)], connection, control).await?;
            drop(head);
            let mut scratch = [0; 16];
            loop {
                let frame = tokio::select! {
                    frame = body.frame() => frame,
                    // The client closed its side or the connection failed: the stream's end, as
                    // hyper ends a response whose client went away. Bytes the client sends
                    // meanwhile (a request pipelined behind an endless stream) are dropped: they
                    // would never be answered.
                    read = io.read(&mut scratch) => match read {
                        Ok(1..) => continue,
                        Ok(0) | Err(_) => return Ok(()),
                    },
                };
                let Some(frame) = frame else { break };
                let Ok(data) = frame.map_err(io::Error::other)?.into_data() else {
                    continue; // trailers: an event stream has none
                };
                // hyper skips empty chunks too: a zero-size chunk would end the body.
                if data.is_empty() {
                    continue;
                }
                let mut size = [0; 18];
                let size = chunk_size_line(data.len(), &mut size);
                let mut parts = [
                    IoSlice::new(size),
                    IoSlice::new(&data),
                    IoSlice::new(b"\r\n"),
                ];
                write_all(&mut io, &mut parts, connection, control).await?;
            }
            // The stream ended (shutdown, or a lagging client): end the body and close, as a
            // reconnecting EventSource opens a new connection anyway.
            write_all(
                &mut io,
                &mut [IoSlice::new(LAST_CHUNK)],
                connection,
                control,
            )
            .await?;
            io.shutdown().await
        };
        let evicted = connection.evicted(control, Cut::Connection);
        tokio::select! {
            sent = sending => {
                if let Err(err) = sent {
                    tracing::debug!(peer = %connection.peer, %err, "connection ended with an error");
                }
            }
            () = evicted => {}
        }
    }
}

/// `len` in hex as hyper writes it (upper case), then CRLF.
fn chunk_size_line(len: usize, buffer: &mut [u8; 18]) -> &[u8] {
    let mut cursor = &mut buffer[..];
    write!(cursor, "{len:X}\r\n").expect("a usize in hex fits 16 digits");
    let unused = cursor.len();
    &buffer[..buffer.len() - unused]
}

/// Writes every byte of `parts`, marking the connection's progress on each write that takes
/// some, as `ProgressIo` does for hyper's writes.
async fn write_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    mut parts: &mut [IoSlice<'_>],
    connection: &Client,
    control: &Control,
) -> io::Result<()> {
    while !parts.is_empty() {
        match io.write_vectored(parts).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            written => {
                connection.wrote(control);
                IoSlice::advance_slices(&mut parts, written);
            }
        }
    }
    Ok(())
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
