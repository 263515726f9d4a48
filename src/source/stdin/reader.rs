//! The thread that reads stdin: it blocks for a line, then takes what is already buffered, and
//! hands the pieces over in bounded batches (a full hand-over stops it, so memory stays flat).
//! No piece is longer than `--max-line-bytes`; `--tee` copies each to stdout as it is read.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::thread;

use tokio::sync::mpsc;

use crate::lines::Piece;

/// Pieces handed over per batch at most: one channel send carries many short lines.
const BATCH_LINES: usize = 512;
const READ_BUFFER: usize = 256 * 1024;

/// The reading thread. Each batch ends early at a read error, which it carries.
pub(super) fn spawn_reader(
    max_line_bytes: usize,
    tee: bool,
) -> io::Result<mpsc::Receiver<(Vec<Piece>, Option<io::Error>)>> {
    // Bounded: while a channel waits for a slow client, the reader waits here; memory stays flat.
    let (tx, rx) = mpsc::channel(4);
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut input = BufReader::with_capacity(READ_BUFFER, io::stdin().lock());
        let mut tee = tee.then(|| io::stdout().lock());
        loop {
            let mut batch = Vec::new();
            let mut error = None;
            let mut ended = false;
            // Block for the first piece, then take what is already buffered.
            loop {
                let mut piece = Vec::new();
                match (&mut input)
                    .take(max_line_bytes as u64)
                    .read_until(b'\n', &mut piece)
                {
                    Ok(0) => ended = true,
                    Ok(_) => {
                        if piece.len() == max_line_bytes && piece.last() != Some(&b'\n') {
                            take_line_end(&mut input, &mut piece);
                        }
                        copy_to(&mut tee, &piece);
                        batch.push(piece);
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => error = Some(err),
                }
                if ended
                    || error.is_some()
                    || batch.len() >= BATCH_LINES
                    || !input.buffer().contains(&b'\n')
                {
                    break;
                }
            }
            if let Some(out) = &mut tee
                && out.flush().is_err()
            {
                tee = None;
            }
            let stop = ended || error.is_some();
            if (!batch.is_empty() || error.is_some()) && tx.blocking_send((batch, error)).is_err() {
                return;
            }
            if stop {
                return;
            }
        }
    })?;
    Ok(rx)
}

/// A piece cut at exactly `max_line_bytes` may be a whole line whose line end comes next: take it,
/// so that such a line is not mistaken for the first piece of a longer one.
fn take_line_end(input: &mut impl BufRead, piece: &mut Piece) {
    let Ok(next) = input.fill_buf() else { return };
    for line_end in [&b"\n"[..], b"\r\n"] {
        if next.starts_with(line_end) {
            piece.extend_from_slice(line_end);
            input.consume(line_end.len());
            return;
        }
    }
}

/// `--tee`: a closed stdout ends the copy quietly; the stream goes on.
fn copy_to(tee: &mut Option<io::StdoutLock<'static>>, piece: &[u8]) {
    if let Some(out) = tee
        && let Err(err) = out.write_all(piece)
    {
        tracing::debug!(%err, "stdout closed; --tee stops");
        *tee = None;
    }
}
