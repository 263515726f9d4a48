//! The drain (`--drain`, DESIGN.md §16): once the first SIGTERM or SIGINT came, new streams are
//! refused and readiness turns 503 at once, and every stream open then ends at an instant of its
//! own, spread evenly over the window, so that its clients come back over the window (to another
//! instance, as readiness already sends them there) instead of all in the same second.
//!
//! The instants are handed out here, one per stream as each notices the drain began: stream k of
//! the n open at the start ends at (k+1)/n of the window, so the first ends one n-th in and the
//! last at the window's end; nothing ends at the start. A stream ends at its place through its
//! own deadline (`stream/deadline.rs`), which also says the last words (`retry:`); streams that
//! their clients ended meanwhile leave their places empty. `app.rs` begins the drain and waits
//! for the last stream to end.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The reconnection delay a drained stream is told when `--retry` gives none: short, as the
/// spread is the drain's own, and the client is told to come back, not to stay away.
pub const DRAIN_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Drain {
    window: Duration,
    /// The base of the `retry:` each drained stream is told (spread per stream by the routes).
    retry: Duration,
    /// Cancelled when the drain begins: every waiting stream wakes and takes its place.
    begun: CancellationToken,
    /// Set once, just before `begun` is cancelled.
    schedule: OnceLock<Schedule>,
    /// Places handed out so far.
    taken: AtomicUsize,
}

#[derive(Debug)]
struct Schedule {
    start: Instant,
    /// Streams open when the drain began (at least 1): the window is cut in this many shares.
    streams: usize,
}

impl Drain {
    /// A drain over `window` (not zero: `--drain 0` means no drain), telling each stream to
    /// reconnect after `retry` (spread per stream).
    pub fn new(window: Duration, retry: Option<Duration>) -> Self {
        Drain {
            window,
            retry: retry.unwrap_or(DRAIN_RETRY),
            begun: CancellationToken::new(),
            schedule: OnceLock::new(),
            taken: AtomicUsize::new(0),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn retry(&self) -> Duration {
        self.retry
    }

    /// Begins the drain over the `streams` open now; a second call changes nothing.
    pub(super) fn begin(&self, streams: usize) {
        let streams = streams.max(1);
        self.schedule.get_or_init(|| Schedule {
            start: Instant::now(),
            streams,
        });
        self.begun.cancel();
    }

    pub fn has_begun(&self) -> bool {
        self.begun.is_cancelled()
    }

    /// Resolves once the drain began. Owned: a stream keeps it, boxed, beside its drain.
    pub fn begun_owned(&self) -> WaitForCancellationFutureOwned {
        self.begun.clone().cancelled_owned()
    }

    /// The next free place: when the stream that asks ends. `None` before the drain began. A
    /// stream opened in the instant the drain began (past the n counted) ends at the window's end.
    pub fn place(&self) -> Option<Instant> {
        let schedule = self.schedule.get()?;
        let taken = self.taken.fetch_add(1, Ordering::Relaxed);
        let share = (taken + 1).min(schedule.streams) as f64 / schedule.streams as f64;
        Some(schedule.start + self.window.mul_f64(share))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_spread_evenly_over_the_window_and_none_at_the_start() {
        let drain = Drain::new(Duration::from_secs(10), None);
        assert_eq!(drain.place(), None);
        assert!(!drain.has_begun());
        drain.begin(4);
        drain.begun_owned().await;
        let start = drain.schedule.get().unwrap().start;
        let offsets: Vec<Duration> = (0..6).map(|_| drain.place().unwrap() - start).collect();
        let secs = |s: f64| Duration::from_secs_f64(s);
        assert_eq!(
            offsets,
            [
                secs(2.5),
                secs(5.0),
                secs(7.5),
                secs(10.0),
                secs(10.0),
                secs(10.0)
            ]
        );
        assert_eq!(drain.retry(), DRAIN_RETRY);
    }
}
