//! When a stream ends of itself, and the last words it sends then: a token's expiry today (and
//! any other lifetime put on a stream: `sooner` keeps the earliest). Both kinds of stream
//! (`stream.rs`, `multi_stream.rs`) ask `due` where they take each batch, and wait on `reached`
//! only when nothing is ready: a reader slower than its channel always finds a batch ready, so a
//! timer that is polled only while waiting would never be seen to fire.

use std::pin::Pin;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

/// A stream's end, if it has one. Holds no timer (and costs one word) when it has none.
#[derive(Debug, Default)]
pub struct Deadline(Option<Box<Ending>>);

/// An instant and the words sent at it (boxed: a timer is large, and most streams have none).
#[derive(Debug)]
struct Ending {
    timer: Pin<Box<Sleep>>,
    words: Bytes,
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
        match &mut self.0 {
            Some(ending) if ending.timer.deadline() <= at => {}
            Some(ending) => {
                ending.timer.as_mut().reset(at);
                ending.words = words;
            }
            None => {
                self.0 = Some(Box::new(Ending {
                    timer: Box::pin(tokio::time::sleep_until(at)),
                    words,
                }));
            }
        }
    }

    /// The last words, once the end has passed; the deadline is then spent (it has no end
    /// ever after), so the stream says them once.
    pub fn due(&mut self) -> Option<Bytes> {
        let ending = self
            .0
            .take_if(|ending| ending.timer.deadline() <= Instant::now())?;
        Some(ending.words)
    }

    /// Waits for the end and returns the last words (spent, as `due`); never returns when the
    /// stream has no end.
    pub async fn reached(&mut self) -> Bytes {
        let Some(ending) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        ending.timer.as_mut().await;
        self.0.take().map(|ending| ending.words).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
