//! A socket with bytes already read from it put back in front: what the lean path read of a
//! request it does not serve itself is replayed to hyper, which then sees the connection's
//! bytes exactly as the client sent them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug)]
pub struct Rewind<T> {
    /// Read before `inner` is read again.
    replay: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub fn new(replay: Bytes, inner: T) -> Self {
        Rewind { replay, inner }
    }

    /// What is still to be replayed.
    pub fn replay(&self) -> &[u8] {
        &self.replay
    }

    /// What is still to be replayed, and the socket.
    pub fn into_parts(self) -> (Bytes, T) {
        (self.replay, self.inner)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.replay.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let take = self.replay.len().min(buf.remaining());
        buf.put_slice(&self.replay[..take]);
        self.replay.advance(take);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn replays_then_reads_on() {
        let mut rewound = Rewind::new(Bytes::from_static(b"GET / HT"), &b"TP/1.1\r\n\r\n"[..]);
        let mut small = [0; 5];
        rewound.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"GET /");
        let mut rest = Vec::new();
        rewound.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b" HTTP/1.1\r\n\r\n");
    }
}
