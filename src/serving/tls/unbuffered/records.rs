//! The connection's outgoing TLS bytes: records encoded or encrypted in place at their end, into
//! room sized for them, in a buffer that is zeroed once as it grows rather than on every write,
//! and freed whenever the writer has nothing more for now.

use std::io::{self, IoSlice};

use rustls::unbuffered::{EncryptError, InsufficientSizeError};

/// Room for a record's header, tag and padding beyond its plaintext (TLS 1.2 with AES-GCM adds
/// 29 bytes, TLS 1.3 22): records are encrypted once, into their plaintext's length and this
/// for each.
pub(super) const RECORD_OVERHEAD: usize = 32;

/// Plaintext in one TLS record at most: TLS's limit, and where rustls cuts a longer write.
const MAX_FRAGMENT: usize = 16 * 1024;

/// Pieces shorter than this are copied together and sealed as one; longer ones are sealed from
/// where they are. A copy of a stream's run of events (up to 64 KiB) cost more than the
/// records of its own that the chunk's size line and CRLF now take (22 bytes each, and a seal).
const JOIN_BELOW: usize = 4 * 1024;

/// TLS bytes waiting for the socket: `buffer[sent..queued]`.
///
/// rustls seals into a `&mut [u8]`, which must be initialized memory: a fresh buffer per write
/// had its whole room zeroed before every write (2.6 % of a TLS fan-out profile, and an
/// allocation). This one stays allocated and initialized (`buffer.len()` is how far it ever
/// grew) while the connection writes, so only growth is zeroed; `free` gives it back once the
/// writer flushes with nothing left to send, so an idle connection holds none.
#[derive(Default)]
pub(super) struct Outgoing {
    buffer: Vec<u8>,
    queued: usize,
    sent: usize,
}

impl Outgoing {
    /// What is queued and not yet sent.
    pub(super) fn unsent(&self) -> &[u8] {
        &self.buffer[self.sent..self.queued]
    }

    /// `written` bytes of `unsent` went to the socket.
    pub(super) fn advance(&mut self, written: usize) {
        self.sent += written;
        if self.sent == self.queued {
            self.sent = 0;
            self.queued = 0;
        }
    }

    /// Frees the buffer once all of it was sent.
    pub(super) fn free(&mut self) {
        if self.queued == 0 {
            self.buffer = Vec::new();
        }
    }

    /// The bytes the buffer holds, sent or not.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.buffer.capacity()
    }

    /// Initialized room for `len` bytes after what is queued.
    fn room(&mut self, len: usize) -> &mut [u8] {
        let end = self.queued + len;
        if self.buffer.len() < end {
            self.buffer.resize(end, 0);
        }
        &mut self.buffer[self.queued..end]
    }

    /// Encodes after what is queued: `write` gets `room` bytes and either fills part of them,
    /// or names the room it needs, and then gets that.
    pub(super) fn queue(
        &mut self,
        room: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<io::Result<usize>, InsufficientSizeError>,
    ) -> io::Result<()> {
        let written = match write(self.room(room)) {
            Ok(written) => written,
            Err(InsufficientSizeError { required_size }) => write(self.room(required_size))
                .unwrap_or_else(|_| Err(io::Error::other("TLS record outgrew its room"))),
        };
        self.queued += written?;
        Ok(())
    }

    /// Encrypts the first `len` bytes of `parts` after what is queued, each record in one
    /// attempt into room sized for it, for the caller to send in one socket write. rustls takes
    /// a slice and cuts it into records of 16 KiB: a piece of `JOIN_BELOW` or more is handed
    /// over as it is, smaller neighbours (a chunk's size line; a chunk of one event with its
    /// framing; the heads of HTTP/2 frames) are first joined on the stack. No copy of the
    /// events of our own.
    pub(super) fn encrypt(
        &mut self,
        parts: &[IoSlice<'_>],
        len: usize,
        mut seal: impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
    ) -> io::Result<()> {
        let start = self.queued;
        // Room for every record at once: growing the buffer record by record would move the
        // ones already sealed.
        let records = len.div_ceil(MAX_FRAGMENT) + parts.len();
        let needed = start + len + records * RECORD_OVERHEAD;
        self.buffer
            .reserve(needed.saturating_sub(self.buffer.len()));
        let sealed = self.seal_pieces(parts, len, &mut seal);
        if sealed.is_err() {
            self.queued = start;
        }
        sealed
    }

    /// Seals the first `len` bytes of `parts`: each piece of `JOIN_BELOW` or more from where it
    /// is, the smaller ones between them joined first.
    fn seal_pieces(
        &mut self,
        parts: &[IoSlice<'_>],
        len: usize,
        seal: &mut impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
    ) -> io::Result<()> {
        let mut joined = [0; JOIN_BELOW];
        let mut filled = 0;
        let mut left = len;
        for part in parts {
            let piece = &part[..part.len().min(left)];
            left -= piece.len();
            if filled > 0 && filled + piece.len() > JOIN_BELOW {
                self.seal(&joined[..filled], seal)?;
                filled = 0;
            }
            if piece.len() >= JOIN_BELOW {
                self.seal(piece, seal)?;
            } else {
                joined[filled..filled + piece.len()].copy_from_slice(piece);
                filled += piece.len();
            }
        }
        if filled > 0 {
            self.seal(&joined[..filled], seal)?;
        }
        Ok(())
    }

    /// Seals `plaintext` (rustls cuts it into records of 16 KiB) into room sized for it.
    fn seal(
        &mut self,
        plaintext: &[u8],
        seal: &mut impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
    ) -> io::Result<()> {
        let room = plaintext.len() + plaintext.len().div_ceil(MAX_FRAGMENT) * RECORD_OVERHEAD;
        self.queue(room, |room| encrypted(seal(plaintext, room)))
    }
}

pub(super) fn encrypted(
    result: Result<usize, EncryptError>,
) -> Result<io::Result<usize>, InsufficientSizeError> {
    match result {
        Err(EncryptError::InsufficientSize(size)) => Err(size),
        result => Ok(result.map_err(io::Error::other)),
    }
}
