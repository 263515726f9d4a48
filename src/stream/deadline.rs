//! When a stream ends of itself, and the last words it sends then: a token's expiry, its age
//! (`--max-stream-age`), its place in a drain (`--drain`, once the drain began: `in_drain`);
//! `sooner` keeps the earliest. Both kinds of stream (`one.rs`, `several.rs`) ask `due`
//! where they take each batch, and wait on `reached` only when nothing is ready: a reader slower
//! than its channel always finds a batch ready, so a timer that is polled only while waiting
//! would never be seen to fire. A drain is joined in both: whichever runs first after the drain
//! began takes the stream's place, so neither kind of stream needs to know of drains.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::spread;
use crate::control::Drain;
use crate::event;

/// A stream's end, if it has one. Holds no timer (and costs one word, asserted below) when it
/// has none.
#[derive(Debug, Default)]
pub struct Deadline(Option<Box<Ending>>);

// Every stream holds one, and most have no end of their own.
const _: () = assert!(std::mem::size_of::<Deadline>() == std::mem::size_of::<usize>());

/// An instant and the words sent at it, and the drain it waits for (boxed: a timer is large,
/// and most streams have neither).
#[derive(Debug, Default)]
struct Ending {
    /// `None` while the stream only waits for a drain.
    end: Option<(Pin<Box<Sleep>>, Bytes)>,
    /// `--drain`, until the stream took its place in it (then its place is `end`, if sooner).
    drain: Option<Arc<Drain>>,
    /// The wait for that drain to begin, once the stream waited for it.
    begun: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Deadline {
    /// No end of its own: the stream runs until its client, its channel or the server ends it.
    pub fn none() -> Self {
        Deadline(None)
    }

    /// Ends at `at`, sending `words` last.
    pub fn at(at: Instant, words: Bytes) -> Self {
        let mut deadline = Deadline::none();
        deadline.sooner(at, words);
        deadline
    }

    /// Ends at `at` with `words` if that comes before the end it has.
    pub fn sooner(&mut self, at: Instant, words: Bytes) {
        let ending = self.0.get_or_insert_default();
        match &mut ending.end {
            Some((timer, _)) if timer.deadline() <= at => {}
            Some((timer, said)) => {
                timer.as_mut().reset(at);
                *said = words;
            }
            None => ending.end = Some((Box::pin(tokio::time::sleep_until(at)), words)),
        }
    }

    /// Also ends at the stream's place in `drain` once it begins (unless it ends sooner), told
    /// `retry:` so its client comes back.
    pub fn in_drain(&mut self, drain: Arc<Drain>) {
        self.0.get_or_insert_default().drain = Some(drain);
    }

    /// Takes the stream's place in the drain, if it began and the place is not taken yet.
    fn join_drain(&mut self) {
        let Some(drain) = self.0.as_ref().and_then(|ending| ending.drain.as_ref()) else {
            return;
        };
        let Some(at) = drain.place() else {
            return;
        };
        let words = [
            event::comment("this server is shutting down (--drain); reconnect"),
            event::retry(spread(drain.retry())),
        ]
        .concat();
        if let Some(ending) = self.0.as_mut() {
            ending.drain = None;
            ending.begun = None;
        }
        self.sooner(at, words.into());
    }

    /// The last words, once the end has passed; the deadline is then spent (it has no end
    /// ever after), so the stream says them once.
    pub fn due(&mut self) -> Option<Bytes> {
        self.join_drain();
        let (timer, _) = self.0.as_ref()?.end.as_ref()?;
        if timer.deadline() > Instant::now() {
            return None;
        }
        self.spend()
    }

    /// Ready with the last words (spent, as `due`) once the end has passed; the stream's waker
    /// is woken then. Never ready when the stream has no end. A poll, not a future, so that a
    /// stream keeps no room for one (`body.rs`): the timer and the drain's wait live in
    /// the box, which only streams with an end have.
    pub fn poll_reached(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        loop {
            self.join_drain();
            let Some(ending) = self.0.as_mut() else {
                return Poll::Pending;
            };
            if let Some((timer, _)) = ending.end.as_mut()
                && timer.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(self.spend().unwrap_or_default());
            }
            let Some(drain) = ending.drain.as_ref() else {
                return Poll::Pending;
            };
            let begun = ending
                .begun
                .get_or_insert_with(|| Box::pin(drain.begun_owned()));
            ready!(begun.as_mut().poll(cx));
            // Begun: the next turn takes the stream's place in it.
            ending.begun = None;
        }
    }

    /// Waits for the end and returns the last words (see `poll_reached`).
    #[cfg(test)]
    pub async fn reached(&mut self) -> Bytes {
        std::future::poll_fn(|cx| self.poll_reached(cx)).await
    }

    /// The last words; nothing is left after them.
    fn spend(&mut self) -> Option<Bytes> {
        let (_, words) = self.0.take()?.end?;
        Some(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Control, Refusal};
    use std::time::Duration;

    #[tokio::test]
    async fn says_its_words_once_and_keeps_the_sooner_end() {
        let now = Instant::now();
        let mut none = Deadline::none();
        assert_eq!(none.due(), None);
        let mut later = Deadline::at(now + Duration::from_secs(60), Bytes::from_static(b"late"));
        assert_eq!(later.due(), None);
        later.sooner(now + Duration::from_secs(120), Bytes::from_static(b"later"));
        later.sooner(now, Bytes::from_static(b"now"));
        assert_eq!(later.due().as_deref(), Some(&b"now"[..]));
        assert_eq!(later.due(), None);
        let mut passed = Deadline::at(now, Bytes::from_static(b"bye"));
        assert_eq!(&passed.reached().await[..], b"bye");
        assert_eq!(passed.due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_ends_each_stream_at_its_place_with_retry_unless_it_ends_sooner() {
        let drain = Drain::new(Duration::from_secs(10), Some(Duration::from_millis(200)));
        let control = Arc::new(Control::new(None).with_drain(drain));
        let _slots: Vec<_> = (0..3).map(|_| control.open_stream().unwrap()).collect();
        let in_drain = |mut deadline: Deadline| {
            deadline.in_drain(control.drain().unwrap().clone());
            deadline
        };
        let start = Instant::now();
        let mut first = in_drain(Deadline::none());
        let mut second = in_drain(Deadline::at(
            start + Duration::from_secs(60),
            Bytes::from_static(b"late"),
        ));
        let mut third = in_drain(Deadline::at(
            start + Duration::from_secs(1),
            Bytes::from_static(b"token"),
        ));
        assert_eq!(first.due(), None);
        assert!(control.begin_drain().is_some());
        assert!(control.is_draining());
        assert_eq!(control.open_stream().unwrap_err(), Refusal::Closed);
        // Places are taken in the order the streams notice: 1/3, 2/3 and 3/3 of the window.
        assert_eq!(first.due(), None);
        let words = first.reached().await;
        // The timer wheel counts whole milliseconds.
        let at = |secs: f64| {
            start
                .elapsed()
                .abs_diff(Duration::from_secs_f64(secs))
                .as_millis()
                <= 1
        };
        assert!(at(10.0 / 3.0), "{:?}", start.elapsed());
        let text = String::from_utf8(words.to_vec()).unwrap();
        let retry: u64 = text
            .strip_prefix(": this server is shutting down (--drain); reconnect\n\nretry: ")
            .and_then(|tail| tail.strip_suffix("\n\n"))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("{text:?}"));
        assert!((200..=300).contains(&retry), "{text:?}");
        assert!(second.reached().await.starts_with(b": this server"));
        assert!(at(20.0 / 3.0), "{:?}", start.elapsed());
        // Its token expired before its place came.
        assert_eq!(&third.reached().await[..], b"token");
    }
}
