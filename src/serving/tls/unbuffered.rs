//! A TLS connection on rustls's unbuffered API, as a tokio `AsyncRead` + `AsyncWrite`. It owns
//! every buffer and frees each one as soon as it is empty (the write buffer once a flush finds it
//! sent: while a stream writes it is kept), so an idle connection holds rustls's state (its keys
//! and secrets) and nothing else. (rustls's buffered `ServerConnection` keeps a
//! 4 KiB read buffer, zero-filled, for the connection's life: `READ_SIZE` in rustls 0.23,
//! `src/msgs/deframer/buffers.rs`.) It also fills the reader's buffer only with what it has,
//! where tokio-rustls zero-fills all of it on every read (h2's 8 KiB read buffer, all touched).
//! Every TLS connection runs on it: an HTTP/1.1 event stream that idles on the lean path costs
//! little more than a plain one.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at a time, into a buffer on the stack.
const SOCKET_READ: usize = 4096;
/// Plaintext taken per write: five full records, sent in one socket write. A stream's run of
/// events (`stream::body`'s 64 KiB, and the event that crosses it) goes out with its chunk
/// framing in one write, as on a plain connection; one record per write cost four to six
/// socket writes per run. A reader that does not keep up holds at most this, encrypted,
/// beside the run itself.
const MAX_WRITE: usize = 80 * 1024;
/// Room first offered to a handshake message, whose length rustls knows and we do not: one that
/// needs more is encoded again into the room it names (a few times per connection).
const HANDSHAKE_ROOM: usize = 1024;
/// Bytes kept while a record or a handshake message is incomplete: rustls refuses a handshake
/// message over 64 KiB and a record over 16 KiB + 2 KiB, so a peer never legitimately needs more.
const MAX_INCOMING: usize = 80 * 1024;

mod records;

use records::{Outgoing, RECORD_OVERHEAD, encrypted};

/// What rustls asks for next.
enum Step {
    /// More bytes from the peer (during the handshake).
    Input,
    /// The connection is established: it may send, and reads on when more bytes come.
    Established,
    /// Both sides have closed.
    Closed,
}

pub struct UnbufferedTls<S> {
    socket: S,
    connection: UnbufferedServerConnection,
    /// Bytes from the socket rustls has not consumed yet (an incomplete record).
    incoming: Vec<u8>,
    /// Decrypted bytes not yet read, from `read_from` on.
    plaintext: Vec<u8>,
    read_from: usize,
    /// TLS bytes to send.
    outgoing: Outgoing,
    /// The peer sent close_notify or closed its side: reads return the end.
    peer_closed: bool,
    close_queued: bool,
}

impl<S> std::fmt::Debug for UnbufferedTls<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnbufferedTls").finish_non_exhaustive()
    }
}

impl<S> UnbufferedTls<S> {
    /// The protocol ALPN agreed on.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.connection.alpn_protocol()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> UnbufferedTls<S> {
    /// A server connection whose first bytes from the peer, `hello`, hold a whole ClientHello.
    pub fn new(socket: S, config: Arc<ServerConfig>, hello: Vec<u8>) -> io::Result<Self> {
        Ok(UnbufferedTls {
            socket,
            connection: UnbufferedServerConnection::new(config).map_err(invalid)?,
            incoming: hello,
            plaintext: Vec::new(),
            read_from: 0,
            outgoing: Outgoing::default(),
            peer_closed: false,
            close_queued: false,
        })
    }

    /// Answers the ClientHello: the key exchange and the signature, the CPU-heavy part of the
    /// handshake, in one go; the answer is sent by `finish`.
    pub fn respond(&mut self) -> io::Result<()> {
        self.advance(None, false).map(drop)
    }

    /// Sends what `respond` queued and completes the handshake.
    pub async fn finish(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_handshake(cx)).await
    }

    /// Sends what is queued, such as the alert that says why a handshake failed.
    pub async fn send_queued(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_send(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            if !self.connection.is_handshaking() {
                self.outgoing.free();
                return Poll::Ready(Ok(()));
            }
            if self.peer_closed || ready!(self.poll_receive(cx))? == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            self.advance(None, false)?;
        }
    }

    /// Runs rustls over what came in until it needs more input or is established: decrypted
    /// bytes go to `plaintext`, TLS bytes to send to `outgoing`. Once established, `send` is
    /// encrypted and, with `close`, a close_notify queued. On an error the alert saying why is
    /// queued (`send_queued` sends it).
    fn advance(&mut self, send: Option<(&[IoSlice<'_>], usize)>, close: bool) -> io::Result<Step> {
        let advanced = self.advance_until_blocked(send, close);
        if advanced.is_err() {
            self.queue_alert();
        }
        advanced
    }

    fn advance_until_blocked(
        &mut self,
        mut send: Option<(&[IoSlice<'_>], usize)>,
        close: bool,
    ) -> io::Result<Step> {
        let UnbufferedTls {
            connection,
            incoming,
            plaintext,
            outgoing,
            peer_closed,
            close_queued,
            ..
        } = self;
        loop {
            let status = connection.process_tls_records(incoming);
            let discard = status.discard;
            let step = match status.state.map_err(invalid)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        plaintext.extend_from_slice(record.map_err(invalid)?.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    outgoing.queue(HANDSHAKE_ROOM, |room| match encode.encode(room) {
                        Err(EncodeError::InsufficientSize(size)) => Err(size),
                        encoded => Ok(encoded.map_err(invalid)),
                    })?;
                    None
                }
                // Queued in `outgoing`, which goes out in order before anything else.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Step::Input),
                ConnectionState::PeerClosed => {
                    *peer_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    *peer_closed = true;
                    Some(Step::Closed)
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    if let Some((parts, len)) = send.take() {
                        outgoing.encrypt(parts, len, |data, room| traffic.encrypt(data, room))?;
                    }
                    if close && !*close_queued {
                        let alert = RECORD_OVERHEAD;
                        outgoing
                            .queue(alert, |room| encrypted(traffic.queue_close_notify(room)))?;
                        *close_queued = true;
                    }
                    Some(Step::Established)
                }
                // Early data is never accepted (`max_early_data_size` is 0).
                _ => return Err(io::Error::other("unexpected TLS state")),
            };
            incoming.drain(..discard);
            if incoming.is_empty() {
                *incoming = Vec::new();
            }
            if let Some(step) = step {
                return Ok(step);
            }
        }
    }

    /// After an error rustls holds an alert for the peer: queue it for `send_queued`.
    fn queue_alert(&mut self) {
        loop {
            let status = self.connection.process_tls_records(&mut []);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    let room = HANDSHAKE_ROOM;
                    let queued = self.outgoing.queue(room, |room| match encode.encode(room) {
                        Err(EncodeError::InsufficientSize(size)) => Err(size),
                        encoded => Ok(encoded.map_err(invalid)),
                    });
                    if queued.is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                _ => return,
            }
        }
    }

    /// Writes `outgoing` to the socket (keeping its buffer for the next write: `poll_flush`
    /// frees it).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let unsent = self.outgoing.unsent();
            if unsent.is_empty() {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.socket).poll_write(cx, unsent))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                written => self.outgoing.advance(written),
            }
        }
    }

    /// Encrypts the first `len` bytes of `parts` (at most `MAX_WRITE`) once the records of the
    /// write before have gone to the socket (backpressure: at most one write's records wait
    /// beyond what the socket took); ready with `len`.
    fn poll_write_records(
        &mut self,
        cx: &mut Context<'_>,
        parts: &[IoSlice<'_>],
        len: usize,
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_send(cx))?;
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        match self.advance(Some((parts, len)), false)? {
            Step::Established => {}
            Step::Input | Step::Closed => {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            }
        }
        // Taken: a socket that is full now sends it before the next write.
        if let Poll::Ready(Err(err)) = self.poll_send(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(len))
    }

    /// Reads what the socket has into `incoming`; 0 at its end.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.incoming.len() >= MAX_INCOMING {
            return Poll::Ready(Err(invalid("a TLS record or handshake message too large")));
        }
        // On the stack: between reads the connection keeps no read buffer.
        let mut chunk = [MaybeUninit::<u8>::uninit(); SOCKET_READ];
        let mut read = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.socket).poll_read(cx, &mut read))?;
        self.incoming.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    }
}

fn invalid(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for UnbufferedTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.read_from < this.plaintext.len() {
                let rest = &this.plaintext[this.read_from..];
                let taken = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..taken]);
                this.read_from += taken;
                if this.read_from == this.plaintext.len() {
                    this.plaintext = Vec::new();
                    this.read_from = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let step = this.advance(None, false)?;
            // What rustls answered while reading (a key update) goes out now; a full socket
            // does not hold the reader up: the next write or flush sends it.
            if let Poll::Ready(Err(err)) = this.poll_send(cx) {
                return Poll::Ready(Err(err));
            }
            if this.read_from < this.plaintext.len() || this.peer_closed {
                continue;
            }
            if matches!(step, Step::Closed) || ready!(this.poll_receive(cx))? == 0 {
                this.peer_closed = true;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for UnbufferedTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len().min(MAX_WRITE);
        self.get_mut()
            .poll_write_records(cx, &[IoSlice::new(buf)], len)
    }

    /// The pieces (a chunk's size line, its events, its CRLF; an HTTP/2 frame's head and data)
    /// go out together, up to `MAX_WRITE` bytes in all.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Leading empty pieces would make a lone first piece look like several to join.
        let empty = bufs.iter().take_while(|buf| buf.is_empty()).count();
        let bufs = &bufs[empty..];
        let len = bufs
            .iter()
            .map(|buf| buf.len())
            .sum::<usize>()
            .min(MAX_WRITE);
        self.get_mut().poll_write_records(cx, bufs, len)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Sends what is queued and gives back the write buffer: a flush says the writer has
    /// nothing more for now (the lean path flushes whenever its stream waits for events).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        this.outgoing.free();
        Pin::new(&mut this.socket).poll_flush(cx)
    }

    /// Sends close_notify, then closes the socket's sending side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            // Not established (a failed handshake): there is nothing to close cleanly.
            let _ = this.advance_until_blocked(None, true);
            this.close_queued = true;
        }
        ready!(this.poll_send(cx))?;
        this.outgoing.free();
        Pin::new(&mut this.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
