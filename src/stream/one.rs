//! One client's event stream: its prelude (reconnection delay, replay notice, replayed events),
//! then the channel's live frames. It forwards bytes the channel encoded and never formats an event.
//!
//! A client that is behind gets every frame that is ready in one chunk, taken under one lock of
//! its channel, so one socket write carries many events instead of one per wake-up. A stream
//! opened with a token ends when the token expires, after a comment saying so, however far
//! behind it is (`deadline.rs`). The prelude, the deadline and the connection's records are
//! every stream's (`body.rs`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::body::{BATCH_BYTES, Body, Core, Fed, Feed, body};
use super::deadline::Deadline;
use super::spread;
use crate::access::Grant;
use crate::channel::{Channel, Closed, Receiver, Subscription, Wait};
use crate::control::Client;
use crate::event;

/// The last words of a stream whose token expired; its EventSource reconnects with a fresh one.
const TOKEN_EXPIRED: &[u8] = b": token expired\n\n";

/// The end of a stream opened with `grant`: when the token stops being valid.
pub fn token_deadline(grant: Option<&Grant>) -> Deadline {
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
pub fn age_limit(deadline: &mut Deadline, age: Duration, retry: Option<Duration>) {
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

/// One channel's live frames.
struct OneFeed {
    /// `None` once the stream ended or the channel closed, so the receiver goes (input stops
    /// waiting for it) before the connection is told the stream ended.
    receiver: Option<Receiver>,
    /// The wait for the channel's next change.
    wait: Wait,
}

// Warp boxes the body of every stream, idle or not: the one of a single channel stays in
// jemalloc's 112-byte class (docs/performance.md).
const _: () = assert!(std::mem::size_of::<Body<OneFeed>>() <= 112);

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
    let feed = OneFeed {
        receiver: Some(subscription.receiver),
        wait: Wait::default(),
    };
    body(feed, queued, deadline, connection, subscription.slot)
}

impl Feed for OneFeed {
    fn poll_next(&mut self, cx: &mut Context<'_>, core: &mut Core) -> Poll<Fed> {
        let Some(receiver) = self.receiver.as_mut() else {
            return Poll::Ready(Fed::End);
        };
        // Every frame ready, up to `BATCH_BYTES`, in one chunk and under one lock of the
        // channel, so one socket write carries many events instead of one per wake-up.
        match receiver.poll_run(&mut self.wait, cx, BATCH_BYTES) {
            Poll::Ready(Ok(run)) => {
                if let Some(connection) = &core.connection {
                    connection.stream_at(run.position);
                }
                Poll::Ready(Fed::Chunk(run.bytes))
            }
            // A stream never lags out of its channel's ring (see `channel/ring.rs`): it is read
            // to the end or dropped, never skipped.
            Poll::Ready(Err(Closed)) => Poll::Ready(Fed::End),
            Poll::Pending => core.deadline.poll_reached(cx).map(Fed::Words),
        }
    }

    fn close(&mut self) {
        self.receiver = None;
        self.wait = Wait::default();
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
