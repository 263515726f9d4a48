//! Announcements: frames every stream of a channel reads live and no stream ever replays
//! (`--presence`'s `join` and `leave`). They carry no id, are not history, take no position
//! in the ring and hold no input back.
//!
//! Why a side path beside the ring and not a flag on ring slots: the ring's positions, its
//! kept suffix and its byte bound would all have to skip flagged slots, on every channel and
//! in the fan-out's hot path, and a channel that only ever saw joins would keep them in its
//! history range. Here an announcement is read like a heartbeat: it takes a number in the
//! channel's heartbeat count, which every stream's cursor already holds, so a stream costs not
//! one byte more, and a channel without `--presence` pays one `is_empty` check under the lock
//! it already takes when something changed; its wire bytes are untouched.
//!
//! Each announcement records where the ring stood when it was made, so a stream that is still
//! reading older events gets it after them, in order. It counts the streams that have still to
//! read it and goes once they did (or left). A stream that falls more than `--client-buffer`
//! announcements behind loses the oldest: announcements are made by streams coming and going,
//! which backpressure cannot hold back, so memory stays bounded.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{Channel, Frame, State};

/// One announcement.
#[derive(Debug)]
pub(super) struct Announcement {
    /// Its number in the channel's heartbeat count.
    number: u64,
    /// The ring's next position when it was made: streams read the events before it first.
    at: u64,
    bytes: Bytes,
    /// Streams that have still to read it.
    unread: u32,
}

/// The announcements some stream has still to read, oldest first.
#[derive(Debug, Default)]
pub(super) struct Announcements(VecDeque<Announcement>);

impl Announcements {
    /// The next announcement for a stream whose cursor stands at `heartbeats`, `next`, if it
    /// has read every event before it; the stream has then read it (its `heartbeats` moves to
    /// the announcement's number).
    pub(super) fn take(&mut self, heartbeats: &mut u64, next: u64) -> Option<Frame> {
        if self.0.is_empty() {
            return None;
        }
        let index = self.0.iter().position(|a| a.number > *heartbeats)?;
        let announcement = &mut self.0[index];
        if announcement.at > next {
            return None;
        }
        announcement.unread -= 1;
        *heartbeats = announcement.number;
        let frame = Frame {
            position: next - 1,
            bytes: announcement.bytes.clone(),
            stamp: None,
        };
        self.trim();
        Some(frame)
    }

    /// The number a stream's cursor may move to when it reads an event: past the heartbeats,
    /// never past an announcement it has still to read.
    pub(super) fn seen_through(&self, heartbeats: u64, now: u64) -> u64 {
        if self.0.is_empty() {
            return now;
        }
        self.0
            .iter()
            .find(|a| a.number > heartbeats)
            .map_or(now, |a| a.number - 1)
    }

    /// Where the ring stood when the next announcement a stream at `heartbeats` has to read
    /// was made (`u64::MAX` when there is none): a run of events it takes stops before it.
    pub(super) fn next_at(&self, heartbeats: u64) -> u64 {
        self.0
            .iter()
            .find(|a| a.number > heartbeats)
            .map_or(u64::MAX, |a| a.at)
    }

    /// A stream whose cursor stood at `heartbeats` left: it reads none of the rest.
    pub(super) fn leave(&mut self, heartbeats: u64) {
        for announcement in self.0.iter_mut().filter(|a| a.number > heartbeats) {
            announcement.unread -= 1;
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.0.front().is_some_and(|a| a.unread == 0) {
            self.0.pop_front();
        }
    }
}

impl Channel {
    /// Sends `bytes` to every stream open on this channel now, live only: after what each has
    /// still to read, never replayed, never kept. Does nothing without streams.
    pub fn announce(&self, bytes: Bytes) {
        let mut state = self.lock();
        let readers = state.ring.readers();
        if readers == 0 || state.closed {
            return;
        }
        let State {
            ring,
            heartbeats,
            announced,
            ..
        } = &mut *state;
        *heartbeats += 1;
        announced.0.push_back(Announcement {
            number: *heartbeats,
            at: ring.next(),
            bytes,
            unread: u32::try_from(readers).unwrap_or(u32::MAX),
        });
        if announced.0.len() > self.config.client_buffer.max(16) {
            announced.0.pop_front();
        }
        self.changed();
        drop(state);
        self.sent.notify_waiters();
    }
}

/// An announcement's wire bytes: `event: NAME`, one `data:` line, no `id:` (so a client's last
/// event id stays the last event's, and a reconnect resumes after it).
pub fn live_frame(name: &str, data: &str) -> Bytes {
    let mut frame = String::with_capacity(name.len() + data.len() + 16);
    frame.push_str("event: ");
    frame.push_str(name);
    frame.push_str("\ndata: ");
    frame.push_str(data);
    frame.push_str("\n\n");
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{new_channel, publish_n};
    use super::*;
    use crate::channel::TryRecvError;

    #[tokio::test]
    async fn announcements_reach_every_stream_in_order_and_are_never_replayed() {
        let channel = new_channel(10, 64);
        let mut behind = channel.subscribe(None).unwrap();
        publish_n(&channel, 2).await;
        channel.announce(live_frame("join", "1"));
        let mut fresh = channel.subscribe(None).unwrap();
        channel.announce(live_frame("join", "2"));
        publish_n(&channel, 1).await;
        let text = |frame: Frame| String::from_utf8(frame.bytes.to_vec()).unwrap();
        let read: Vec<String> = (0..5)
            .map(|_| text(behind.receiver.try_recv().unwrap()))
            .collect();
        assert_eq!(
            read,
            [
                "id: 1\ndata: e0\n\n",
                "id: 2\ndata: e1\n\n",
                "event: join\ndata: 1\n\n",
                "event: join\ndata: 2\n\n",
                "id: 3\ndata: e0\n\n"
            ]
        );
        assert_eq!(behind.receiver.try_recv().unwrap_err(), TryRecvError::Empty);
        assert_eq!(
            text(fresh.receiver.try_recv().unwrap()),
            "event: join\ndata: 2\n\n"
        );
        drop(fresh);
        assert!(channel.lock().announced.0.is_empty(), "all read or left");
        let replayed = channel.subscribe(Some("earliest")).unwrap().replay;
        assert_eq!(replayed.len(), 3, "events only");
    }

    #[tokio::test]
    async fn a_run_of_events_stops_at_an_announcement_made_between_them() {
        let channel = new_channel(10, 64);
        let mut behind = channel.subscribe(None).unwrap();
        publish_n(&channel, 2).await;
        channel.announce(live_frame("join", "1"));
        publish_n(&channel, 1).await;
        let mut wait = crate::channel::Wait::default();
        let mut runs = Vec::new();
        for _ in 0..3 {
            let run = std::future::poll_fn(|cx| behind.receiver.poll_run(&mut wait, cx, 1 << 20));
            runs.push(String::from_utf8(run.await.unwrap().bytes.to_vec()).unwrap());
        }
        assert_eq!(
            runs,
            [
                "id: 1\ndata: e0\n\nid: 2\ndata: e1\n\n",
                "event: join\ndata: 1\n\n",
                "id: 3\ndata: e0\n\n"
            ]
        );
    }
}
