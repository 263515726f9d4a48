//! What every event stream's body does, of one channel (`one.rs`) or several
//! (`several.rs`): its prelude first (the `retry:` frame, replay notices, replayed frames),
//! joined into chunks of up to `BATCH_BYTES`; the deadline's last words (token expiry, age,
//! drain), however far behind the stream is; the connection told of each chunk sent and of the
//! stream's end, after the receivers went, so input no longer waits for them. What is read live,
//! and how, is the `Feed`'s. Each stream's body is its own type (a generic, not an enum), so a
//! stream of one channel holds nothing of one of several.
//!
//! The body is a `Stream` written by hand, not `unfold` over an async block: every idle stream
//! keeps its body for its life (boxed by warp), and a future in it would keep room for each
//! thing it awaits (the channel's wait, the deadline's timer, the drain's) beside the state it
//! works on. Here a stream keeps its state, and its waits are where they belong: the channel's
//! in a box the feed keeps (`channel::Wait`), the deadline's in the deadline's box, which only a
//! stream with an end has.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use super::deadline::Deadline;
use crate::control::{Client, StreamSlot};

/// Frames are joined into one chunk up to this size; a larger frame still goes whole.
pub(super) const BATCH_BYTES: usize = 64 * 1024;

/// What a feed gives when asked for its next chunk.
pub(super) enum Fed {
    Chunk(Bytes),
    /// The deadline passed while waiting: the stream's last words.
    Words(Bytes),
    /// Nothing more: the channels closed and everything they held was read.
    End,
}

/// The live part of a stream: one channel's receiver, or several merged.
pub(super) trait Feed: Send + Sync + Unpin + Sized + 'static {
    /// The next chunk, or pending (with `cx`'s waker registered) until there is one or
    /// `core.deadline` is reached; `core.connection` is told how far the stream has read, for
    /// the stall check.
    fn poll_next(&mut self, cx: &mut Context<'_>, core: &mut Core) -> Poll<Fed>;

    /// Lets go of the channels' receivers, so input no longer waits for them.
    fn close(&mut self);
}

/// What every stream holds besides its feed.
pub(super) struct Core {
    prelude: VecDeque<Bytes>,
    pub(super) connection: Option<Arc<Client>>,
    /// Set at the last words or the end: the next poll ends the stream.
    finished: bool,
    /// When the stream ends of itself (token expiry, age, drain), checked before each chunk.
    pub(super) deadline: Deadline,
    /// Held for the stream's life: its place under `--max-clients`.
    _slot: StreamSlot,
}

/// One stream's state: the feed goes first when it drops (see `Drop`).
pub(super) struct Body<F: Feed> {
    feed: F,
    core: Core,
}

/// The body of a stream response: `prelude`, then what `feed` reads, until `deadline`.
pub(super) fn body<F: Feed>(
    feed: F,
    prelude: VecDeque<Bytes>,
    deadline: Deadline,
    connection: Option<Arc<Client>>,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + Sync + 'static {
    let core = Core {
        prelude,
        connection,
        finished: false,
        deadline,
        _slot: slot,
    };
    Body { feed, core }
}

impl<F: Feed> futures_util::Stream for Body<F> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let state = self.get_mut();
        let chunk = if let Some(words) = state.core.deadline.due() {
            state.last_words(words)
        } else if let Some(first) = state.core.prelude.pop_front() {
            join_prelude(&mut state.core.prelude, first)
        } else if state.core.finished {
            return Poll::Ready(None);
        } else {
            match ready!(state.feed.poll_next(cx, &mut state.core)) {
                Fed::Chunk(chunk) => chunk,
                Fed::Words(words) => state.last_words(words),
                Fed::End => {
                    state.core.finished = true;
                    state.feed.close();
                    return Poll::Ready(None);
                }
            }
        };
        if let Some(connection) = &state.core.connection {
            connection.chunk_sent();
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

impl<F: Feed> Body<F> {
    /// What the stream says at its deadline; nothing follows (the receivers go at once, so
    /// input no longer waits for them).
    fn last_words(&mut self, words: Bytes) -> Bytes {
        self.core.finished = true;
        self.core.prelude.clear();
        self.feed.close();
        words
    }
}

/// `first`, then what follows it in `prelude`, in one chunk of up to `BATCH_BYTES` (a replay
/// can hold many large events).
fn join_prelude(prelude: &mut VecDeque<Bytes>, first: Bytes) -> Bytes {
    let fits =
        |len: usize, next: Option<&Bytes>| next.is_some_and(|n| len + n.len() <= BATCH_BYTES);
    if !fits(first.len(), prelude.front()) {
        return first;
    }
    let mut batch = BytesMut::from(&first[..]);
    while fits(batch.len(), prelude.front()) {
        if let Some(next) = prelude.pop_front() {
            batch.extend_from_slice(&next);
        }
    }
    batch.freeze()
}

impl<F: Feed> Drop for Body<F> {
    fn drop(&mut self) {
        self.feed.close();
        if let Some(connection) = &self.core.connection {
            connection.stream_ended();
        }
    }
}
