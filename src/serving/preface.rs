//! The start of an HTTP/2 connection, read before hyper gets it: the client preface and the
//! client's first frame, which must be its SETTINGS (RFC 9113, 3.4). A connection that does not
//! send both within the head time-out is closed; hyper and h2 would otherwise wait for them
//! forever. What was read is put back in front of the socket, so hyper sees every byte.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::lean::Rewind;
use crate::control::Control;

/// How an HTTP/2 connection starts.
pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame header: 24-bit length, type, flags, stream id.
const FRAME_HEADER: usize = 9;
const SETTINGS: u8 = 0x4;
/// The largest frame a client may send before it has our SETTINGS (RFC 9113, 4.2).
const INITIAL_MAX_FRAME: usize = 16_384;
const READ_SIZE: usize = 512;

/// Whether bytes read so far may be the start of an HTTP/2 connection.
pub(super) fn may_be_h2(read: &[u8]) -> bool {
    H2_PREFACE.starts_with(&read[..read.len().min(H2_PREFACE.len())])
}

/// Reads until `io` holds the preface and a whole first frame (or shows it never will: then h2
/// answers the bytes with its own error). `None`: the client closed or failed first, did not
/// send them by `by`, or shutdown began.
pub(super) async fn read_h2_start<S>(
    io: Rewind<S>,
    by: Instant,
    control: &Control,
) -> Option<Rewind<S>>
where
    S: AsyncRead + Unpin,
{
    let (replay, mut socket) = io.into_parts();
    let mut read = BytesMut::from(replay);
    let reading = async {
        while !is_complete(&read) {
            read.reserve(READ_SIZE);
            match socket.read_buf(&mut read).await {
                Ok(1..) => {}
                Ok(0) | Err(_) => return false,
            }
        }
        true
    };
    let complete = tokio::select! {
        complete = reading => complete,
        () = tokio::time::sleep_until(by) => false,
        () = control.closed() => false,
    };
    complete.then(|| Rewind::new(Bytes::from(read), socket))
}

/// The preface and the client's whole SETTINGS frame are in, or something else that is not.
fn is_complete(read: &[u8]) -> bool {
    if !may_be_h2(read) {
        return true;
    }
    let Some(header) = read.get(H2_PREFACE.len()..H2_PREFACE.len() + FRAME_HEADER) else {
        return false;
    };
    let length =
        usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    if header[3] != SETTINGS || length > INITIAL_MAX_FRAME {
        return true;
    }
    read.len() >= H2_PREFACE.len() + FRAME_HEADER + length
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(settings: &[u8]) -> Vec<u8> {
        let mut bytes = H2_PREFACE.to_vec();
        bytes.extend_from_slice(&[0, 0, settings.len() as u8, SETTINGS, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(settings);
        bytes
    }

    #[test]
    fn waits_for_the_preface_and_the_whole_settings_frame() {
        let whole = start(&[0, 3, 0, 0, 0, 100]);
        for end in 0..whole.len() {
            assert!(!is_complete(&whole[..end]), "{end}");
        }
        assert!(is_complete(&whole));
        assert!(is_complete(&start(&[])));
    }

    #[test]
    fn anything_else_goes_on_at_once() {
        assert!(is_complete(b"GET / HTTP/1.1\r\n"));
        assert!(is_complete(b"PRI * HTTP/2.0\r\n\r\nXX"));
        let mut ping = H2_PREFACE.to_vec();
        ping.extend_from_slice(&[0, 0, 8, 0x6, 0, 0, 0, 0, 0]);
        assert!(is_complete(&ping));
        assert!(may_be_h2(b"PRI * HTTP/2.0\r\n"));
        assert!(!may_be_h2(b"GET"));
    }
}
