//! Records into the connection's outgoing buffer: encoded or encrypted in place at its end, into
//! room sized for them.

use std::io::{self, IoSlice};

use rustls::unbuffered::{EncryptError, InsufficientSizeError};

/// Room for a record's header, tag and padding beyond its plaintext (TLS 1.2 with AES-GCM adds
/// 29 bytes, TLS 1.3 22): records are encrypted once, into their plaintext's length and this
/// for each.
pub(super) const RECORD_OVERHEAD: usize = 32;

/// Encodes into the end of `outgoing`: `write` gets `room` bytes and either fills part of them,
/// or names the room it needs, and then gets that.
pub(super) fn queue(
    outgoing: &mut Vec<u8>,
    room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<io::Result<usize>, InsufficientSizeError>,
) -> io::Result<()> {
    let start = outgoing.len();
    outgoing.resize(start + room, 0);
    let written = match write(&mut outgoing[start..]) {
        Ok(written) => written,
        Err(InsufficientSizeError { required_size }) => {
            outgoing.resize(start + required_size, 0);
            write(&mut outgoing[start..])
                .unwrap_or_else(|_| Err(io::Error::other("TLS record outgrew its room")))
        }
    };
    match written {
        Ok(written) => {
            outgoing.truncate(start + written);
            Ok(())
        }
        Err(err) => {
            outgoing.truncate(start);
            Err(err)
        }
    }
}

/// Plaintext in one TLS record at most: TLS's limit, and where rustls cuts a longer write.
const MAX_FRAGMENT: usize = 16 * 1024;

/// Room for `len` bytes of plaintext once encrypted: the plaintext and each of its records'
/// header, tag and padding.
fn sealed_room(len: usize) -> usize {
    len + len.div_ceil(MAX_FRAGMENT).max(1) * RECORD_OVERHEAD
}

/// Pieces shorter than this are copied together and sealed as one; longer ones are sealed from
/// where they are. A copy of a stream's run of events (up to 64 KiB) cost more than the
/// records of its own that the chunk's size line and CRLF now take (22 bytes each, and a seal).
const JOIN_BELOW: usize = 4 * 1024;

/// Encrypts the first `len` bytes of `parts` at the end of `outgoing`, each record in one
/// attempt into room sized for it, for the caller to send in one socket write. rustls takes a
/// slice and cuts it into records of 16 KiB: a piece of `JOIN_BELOW` or more is handed over as
/// it is, smaller neighbours (a chunk's size line; a chunk of one event with its framing; the
/// heads of HTTP/2 frames) are first joined on the stack. No buffer of their own, no copy of
/// the events.
pub(super) fn encrypt(
    outgoing: &mut Vec<u8>,
    parts: &[IoSlice<'_>],
    len: usize,
    mut seal: impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    let start = outgoing.len();
    let mut seal_one = |plaintext: &[u8]| {
        queue(outgoing, sealed_room(plaintext.len()), |room| {
            encrypted(seal(plaintext, room))
        })
    };
    let sealed = (|| {
        let mut joined = [0; JOIN_BELOW];
        let mut filled = 0;
        let mut left = len;
        for part in parts {
            let piece = &part[..part.len().min(left)];
            left -= piece.len();
            if filled > 0 && filled + piece.len() > JOIN_BELOW {
                seal_one(&joined[..filled])?;
                filled = 0;
            }
            if piece.len() >= JOIN_BELOW {
                seal_one(piece)?;
            } else {
                joined[filled..filled + piece.len()].copy_from_slice(piece);
                filled += piece.len();
            }
        }
        if filled > 0 {
            seal_one(&joined[..filled])?;
        }
        Ok(())
    })();
    if sealed.is_err() {
        outgoing.truncate(start);
    }
    sealed
}

pub(super) fn encrypted(
    result: Result<usize, EncryptError>,
) -> Result<io::Result<usize>, InsufficientSizeError> {
    match result {
        Err(EncryptError::InsufficientSize(size)) => Err(size),
        result => Ok(result.map_err(io::Error::other)),
    }
}
