//! Records into the connection's outgoing buffer: each encoded or encrypted in place at its end,
//! into room sized for it.

use std::io::{self, IoSlice};

use rustls::unbuffered::{EncryptError, InsufficientSizeError};

/// Room for a record's header, tag and padding beyond its plaintext (TLS 1.2 with AES-GCM adds
/// 29 bytes, TLS 1.3 22): a record is encrypted once, into its plaintext's length and this.
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

/// Encrypts `parts` as one record at the end of `outgoing`, in one attempt: the room is the
/// plaintext's length and `RECORD_OVERHEAD`. rustls takes the plaintext as one slice, so several
/// parts (a chunk's size line, its event, its CRLF) are first joined right after that room, in
/// the same buffer, and cut off again once encrypted: no buffer of their own.
pub(super) fn encrypt(
    outgoing: &mut Vec<u8>,
    parts: &[IoSlice<'_>],
    mut seal: impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    let room = parts.iter().map(|part| part.len()).sum::<usize>() + RECORD_OVERHEAD;
    if let [data] = parts {
        return queue(outgoing, room, |room| encrypted(seal(data, room)));
    }
    let start = outgoing.len();
    outgoing.resize(start + room, 0);
    for part in parts {
        outgoing.extend_from_slice(part);
    }
    let (record, joined) = outgoing[start..].split_at_mut(room);
    let sealed = seal(joined, record);
    match sealed {
        Ok(written) => {
            outgoing.truncate(start + written);
            Ok(())
        }
        Err(err) => {
            outgoing.truncate(start);
            Err(io::Error::other(err))
        }
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
