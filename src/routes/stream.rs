//! One client's event stream: its prelude (reconnection delay, replay notice, replayed events),
//! then the channel's live frames. It forwards bytes the channel encoded and never formats an event.
//!
//! A client that is behind gets every frame that is ready in one chunk, so one socket write
//! carries many events instead of one per wake-up. A stream opened with a token ends when the
//! token expires, after a comment saying so, however far behind it is (`deadline.rs`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::Instant;

use super::deadline::Deadline;
use super::sse_reply::spread;
use crate::access::Grant;
use crate::channel::{Channel, Frame, Receiver, Subscription, TryRecvError};
use crate::control::{Client, StreamSlot};
use crate::event;

/// Frames are joined into one chunk up to this size; a larger frame still goes whole.
pub(super) const BATCH_BYTES: usize = 64 * 1024;
/// The last words of a stream whose token expired; its EventSource reconnects with a fresh one.
const TOKEN_EXPIRED: &[u8] = b": token expired\n\n";

/// The end of a stream opened with `grant`: when the token stops being valid.
pub(super) fn token_deadline(grant: Option<&Grant>) -> Deadline {
    match grant {
        Some(grant) => Deadline::at(
            Instant::now() + grant.remaining(),
            Bytes::from_static(TOKEN_EXPIRED),
        ),
        None => Deadline::none(),
    }
}

/// A stream's reconnection delay after `--max-stream-age` when `--retry` gives none: soon,
/// as the client is not refused, only moved (the ages' spread already spreads the reconnects).
const AGE_RETRY: Duration = Duration::from_secs(1);

/// Ends the stream after `age` (`--max-stream-age`), drawn per stream within ±10 % so that the
/// streams opened in one burst do not all end in one, with `retry:` (`--retry`'s spread, or
/// `AGE_RETRY`'s) so its client comes back, to this instance or another, and resumes with its
/// `Last-Event-ID`; a token that expires first ends it first.
pub(super) fn age_limit(deadline: &mut Deadline, age: Duration, retry: Option<Duration>) {
    let words = [
        event::comment("this stream reached its age (--max-stream-age); reconnect"),
        event::retry(spread(retry.unwrap_or(AGE_RETRY))),
    ]
    .concat();
    deadline.sooner(Instant::now() + lifetime(age), words.into());
}

/// `age` within ±10 %, drawn anew for each stream.
fn lifetime(age: Duration) -> Duration {
    age.mul_f64(0.9 + 0.2 * fastrand::f64())
}

/// Everything one stream holds: the receiver, what is still to be sent before live frames,
/// and the handle it reports progress to.
struct ClientStream {
    /// `None` once the stream ended and while dropping, so the receiver goes (input stops
    /// waiting for it) before the connection is told the stream ended.
    receiver: Option<Receiver>,
    prelude: VecDeque<Bytes>,
    connection: Option<Arc<Client>>,
    /// Set when the channel closed or the deadline passed: the next poll ends the stream.
    finished: bool,
    /// When the stream ends of itself (its token's expiry), checked before each batch.
    deadline: Deadline,
    /// Held for the stream's life: its place under `--max-clients`.
    _slot: StreamSlot,
}

/// The body of one `/events` response. `prelude` goes first (the `retry:` frame, if any); the
/// stream ends at `deadline`.
pub fn client_stream(
    channel: Arc<Channel>,
    subscription: Subscription,
    prelude: Option<Bytes>,
    deadline: Deadline,
    connection: Option<Arc<Client>>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + Sync + 'static {
    if let Some(connection) = &connection {
        connection.stream_started(channel.id(), subscription.position);
    }
    let mut queued: VecDeque<Bytes> = prelude.into_iter().collect();
    queued.extend(subscription.notice);
    queued.extend(subscription.replay);
    let state = ClientStream {
        receiver: Some(subscription.receiver),
        prelude: queued,
        connection,
        finished: false,
        deadline,
        _slot: subscription.slot,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let chunk = state.next_chunk().await?;
        if let Some(connection) = &state.connection {
            connection.chunk_sent();
        }
        Some((Ok(chunk), state))
    })
}

impl ClientStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(words) = self.deadline.due() {
            return Some(self.last_words(words));
        }
        if let Some(first) = self.prelude.pop_front() {
            return Some(join_prelude(&mut self.prelude, first));
        }
        if self.finished {
            return self.end();
        }
        let receiver = self.receiver.as_mut()?;
        let woke = tokio::select! {
            received = receiver.recv() => Ok(received),
            words = self.deadline.reached() => Err(words),
        };
        let received = match woke {
            Ok(received) => received,
            Err(words) => return Some(self.last_words(words)),
        };
        // A stream never lags out of its channel's ring (see `channel/ring.rs`): it is read
        // to the end or dropped, never skipped.
        let Ok(first) = received else {
            return self.end();
        };
        let Some(second) = self.try_next() else {
            self.took(first.position);
            return Some(first.bytes);
        };
        let mut size = first.bytes.len() + second.bytes.len();
        let mut frames = vec![first, second];
        while size < BATCH_BYTES
            && let Some(frame) = self.try_next()
        {
            size += frame.bytes.len();
            frames.push(frame);
        }
        self.took(frames[frames.len() - 1].position);
        let mut batch = BytesMut::with_capacity(size);
        for frame in &frames {
            batch.extend_from_slice(&frame.bytes);
        }
        Some(batch.freeze())
    }

    /// What the stream says at its deadline; nothing follows (the receiver goes at once, so
    /// input no longer waits for it).
    fn last_words(&mut self, words: Bytes) -> Bytes {
        self.finished = true;
        self.prelude.clear();
        self.receiver = None;
        words
    }

    /// The stream's end: the receiver goes first (input stops waiting for it).
    fn end(&mut self) -> Option<Bytes> {
        self.finished = true;
        self.receiver = None;
        None
    }

    /// Records that live frames up to `position` were taken.
    fn took(&self, position: u64) {
        if let Some(connection) = &self.connection {
            connection.stream_at(position);
        }
    }

    /// A frame that is already waiting, if any. A closed channel ends the stream once the chunk
    /// being gathered is sent.
    fn try_next(&mut self) -> Option<Frame> {
        let receiver = self.receiver.as_mut()?;
        match receiver.try_recv() {
            Ok(frame) => Some(frame),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Closed) => {
                self.finished = true;
                None
            }
        }
    }
}

/// `first`, then what follows it in `prelude`, in one chunk of up to `BATCH_BYTES` (a replay
/// can hold many large events).
pub(super) fn join_prelude(prelude: &mut VecDeque<Bytes>, first: Bytes) -> Bytes {
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

impl Drop for ClientStream {
    fn drop(&mut self) {
        self.receiver = None;
        if let Some(connection) = &self.connection {
            connection.stream_ended();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_spread_within_ten_percent() {
        let age = Duration::from_secs(100);
        let drawn: Vec<Duration> = (0..1000).map(|_| lifetime(age)).collect();
        let (least, most) = (drawn.iter().min().unwrap(), drawn.iter().max().unwrap());
        assert!(*least >= Duration::from_secs(90) && *most <= Duration::from_secs(110));
        // Spread over the range, not bunched: a thousand draws reach both outer fifths.
        assert!(*least < Duration::from_secs(94) && *most > Duration::from_secs(106));
    }
}
