//! An event stream on the lean path: the response head, then the body in chunked framing,
//! written straight to the socket with no buffer of its own beyond the chunk-size line. While
//! it runs it ends when the client hangs up, or when the control evicts it for stalling, as a
//! stream under hyper does.

use std::io::{self, IoSlice, Write as _};
use std::time::SystemTime;

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
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

/// A stream ready to go: its socket, its head as bytes, its body. Only this, the connection and
/// the control stay in memory while it waits for events (the request and the response's header map
/// are gone).
#[derive(Debug)]
pub struct Stream {
    socket: TcpStream,
    head: Vec<u8>,
    body: ResponseBody,
}

impl Stream {
    /// `response` must be a 200 event stream (see `head::is_lean_stream`).
    pub fn new(socket: TcpStream, response: Response, close: bool) -> Self {
        let (parts, body) = response.into_parts();
        Stream {
            socket,
            head: head::encode_stream_head(&parts.headers, close, SystemTime::now()),
            body,
        }
    }

    /// Sends the head, then the body until it ends, the client hangs up or the control evicts it;
    /// then the socket closes.
    pub async fn run(self, connection: &Client, control: &Control) {
        let Stream {
            mut socket,
            head,
            mut body,
        } = self;
        let (reader, mut writer) = socket.split();
        let sending = async move {
            let socket = &mut writer;
            write_all(socket, &mut [IoSlice::new(&head)], connection, control).await?;
            drop(head);
            while let Some(frame) = body.frame().await {
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
                write_all(socket, &mut parts, connection, control).await?;
            }
            // The stream ended (shutdown, or a lagging client): end the body and close, as a
            // reconnecting EventSource opens a new connection anyway.
            write_all(socket, &mut [IoSlice::new(LAST_CHUNK)], connection, control).await
        };
        let evicted = connection.evicted(control, Cut::Connection);
        tokio::select! {
            sent = sending => {
                if let Err(err) = sent {
                    tracing::debug!(peer = %connection.peer, %err, "connection ended with an error");
                }
            }
            () = hung_up(reader) => {}
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
async fn write_all(
    socket: &mut WriteHalf<'_>,
    mut parts: &mut [IoSlice<'_>],
    connection: &Client,
    control: &Control,
) -> io::Result<()> {
    while !parts.is_empty() {
        match socket.write_vectored(parts).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            written => {
                connection.wrote(control);
                IoSlice::advance_slices(&mut parts, written);
            }
        }
    }
    Ok(())
}

/// Resolves when the client closes its side or the socket fails: the stream's end, as hyper
/// ends a response whose client went away. Bytes the client sends meanwhile (a request
/// pipelined behind an endless stream) are read and dropped: they would never be answered.
async fn hung_up(mut socket: ReadHalf<'_>) {
    let mut scratch = [0; 16];
    while let Ok(1..) = socket.read(&mut scratch).await {}
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
