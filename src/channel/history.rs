//! Numbering and history: each event's id (the channel's own number, one its source gave, or one
//! given from outside through `NumberedInput`), the events kept for `Last-Event-ID` replay, and
//! what a reconnecting client is sent from them: one replay (`start` → notice + frames) for a
//! stream of one channel (`replay_for_stream`) and for one channel of several (`join.rs`). The
//! events themselves are the newest slots of the channel's ring (`ring.rs`).

use bytes::Bytes;

use super::ring::{Ring, Slot};
use super::{Channel, EARLIEST, Sent, Start, State};
use crate::event::{self, Event};

/// An event's id as clients see it: the channel's number, or the one its source gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireId {
    Seq(u64),
    Given(String),
}

impl std::fmt::Display for WireId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireId::Seq(seq) => write!(f, "{seq}"),
            WireId::Given(id) => f.write_str(id),
        }
    }
}

impl Slot {
    pub(super) fn wire_id(&self) -> WireId {
        match &self.id {
            Some(id) => WireId::Given(id.to_string()),
            None => WireId::Seq(self.seq),
        }
    }
}

impl Channel {
    /// Takes the input for events numbered outside the channel (by the Redis engine): while
    /// held, nothing else publishes here, so ids arrive in order.
    pub async fn numbered_input(&self) -> NumberedInput<'_> {
        NumberedInput {
            channel: self,
            _input: self.input.lock().await,
        }
    }
}

/// The channel's input, held for events whose ids come from outside (see `numbered_input`).
#[derive(Debug)]
pub struct NumberedInput<'a> {
    channel: &'a Channel,
    _input: tokio::sync::MutexGuard<'a, ()>,
}

impl NumberedInput<'_> {
    /// The id of the newest event sent or skipped (0: none).
    pub fn newest(&self) -> u64 {
        self.channel.lock().next_seq - 1
    }

    /// Sends `event` as id `seq`, waiting for room as `publish` does; `seq` must be above
    /// `newest()`. `None` once the channel is closed.
    pub async fn deliver(&mut self, seq: u64, event: Event) -> Option<Sent> {
        self.channel.publish_one(Some(seq), |_| event).await
    }

    /// Numbering goes on after `seq` without events up to it: none was kept, or none existed.
    pub fn skip_through(&mut self, seq: u64) {
        let mut state = self.channel.lock();
        state.next_seq = state.next_seq.max(seq + 1);
    }

    /// Puts a comment in front of the next event (a gap nobody can fill): it waits for room
    /// with that event, and a client replaying across the gap reads it too.
    pub fn announce(&mut self, text: &str) {
        let mut state = self.channel.lock();
        let notice = event::comment(text);
        state.notice = Some(match state.notice.take() {
            Some(earlier) => [earlier, notice].concat().into(),
            None => notice,
        });
    }

    pub fn epoch(&self) -> Option<Box<str>> {
        self.channel.lock().epoch.clone()
    }

    pub fn set_epoch(&mut self, epoch: &str) {
        self.channel.lock().epoch = Some(epoch.into());
    }
}

/// Whose events a replay's notice speaks of: a stream of this one channel, or this channel as
/// one of several in a stream (the notice then names it).
#[derive(Debug, Clone, Copy)]
pub(super) enum Whose<'a> {
    Stream,
    Channel(&'a str),
}

/// What a new reader is sent before the live events: a notice when the replay is incomplete
/// or cannot be found, then the kept events after the first `skip`.
#[derive(Debug)]
pub(super) struct Replay {
    pub(super) notice: Option<Bytes>,
    pub(super) skip: usize,
    /// The sequence number the reader stands at before its replay: resuming from it loses
    /// nothing.
    pub(super) stands_at: u64,
}

impl Replay {
    /// The replayed events, each as `frame` makes it from its slot.
    pub(super) fn frames<T>(&self, ring: &Ring, frame: impl Fn(&Slot) -> T) -> Vec<T> {
        ring.kept().skip(self.skip).map(frame).collect()
    }
}

/// The one replay of a channel, for a stream of it (`subscribe`) and for a stream of several
/// (`join`): from `start`, what was lost is counted and told, never a silent gap.
pub(super) fn replay(state: &State, history: usize, start: Start, whose: Whose) -> Replay {
    let (of, it, its) = match whose {
        Whose::Stream => (String::new(), "this channel", ""),
        Whose::Channel(name) => (format!(" of channel {name}"), "it", "its "),
    };
    let kept = state.ring.kept().len();
    let newest = state.next_seq - 1;
    let oldest_kept = state.ring.kept().next().map(|slot| slot.seq);
    let (notice, skip, stands_at) = match start {
        Start::Live => (None, kept, newest),
        // What `--history-bytes` let go while `--history` would still have kept it is told (a
        // client asking for all kept knows the count bound; it cannot guess the bytes one).
        Start::Earliest => {
            let sent = usize::try_from(state.ring.next() - 1).unwrap_or(usize::MAX);
            let missed = sent.min(history) - kept;
            let notice = (missed > 0).then(|| {
                event::comment(&format!(
                    "{missed} older events{of} are no longer kept (--history-bytes); replaying the {kept} kept"
                ))
            });
            (notice, 0, oldest_kept.map_or(newest, |seq| seq - 1))
        }
        // Ahead of the numbering: the channel was reclaimed while idle (or the server
        // restarted) and numbers from 1 again; what followed `seq` then is gone.
        Start::After(seq) if seq > newest => {
            let notice = event::comment(&format!(
                "events{of} after id {seq} are no longer kept ({it} restarted its numbering at 1); sending {its}live events only"
            ));
            (Some(notice), kept, newest)
        }
        // The kept events after `seq`: after the one it names, or, when the numbering skipped
        // `seq` (Redis's lost an event this instance never took), after where it would be.
        Start::After(seq) => {
            let skip = state.ring.kept().take_while(|slot| slot.seq <= seq).count();
            let missed = oldest_kept
                .unwrap_or(state.next_seq)
                .saturating_sub(seq + 1);
            let notice = (missed > 0).then(|| {
                event::comment(&format!(
                    "{missed} events{of} after id {seq} are no longer kept; replaying the {} kept",
                    kept - skip
                ))
            });
            (notice, skip, seq)
        }
    };
    Replay {
        notice,
        skip,
        stands_at,
    }
}

/// The replay for a stream of this one channel that last saw `last_event_id` (`earliest`: all
/// kept): after the kept event with that id (the source's own, or the channel's number), or
/// after that number when it is no longer kept; an id that is neither gets a notice only.
pub(super) fn replay_for_stream(
    state: &State,
    history: usize,
    last_event_id: Option<&str>,
) -> (Option<Bytes>, Vec<Bytes>) {
    let start = match last_event_id {
        None => Start::Live,
        Some(EARLIEST) => Start::Earliest,
        Some(last) => {
            let last_seq = last.parse::<u64>().ok();
            let is_last = |kept: &&Slot| match &kept.id {
                Some(id) => **id == *last,
                None => Some(kept.seq) == last_seq,
            };
            match (state.ring.kept().rfind(is_last), last_seq) {
                (Some(kept), _) => Start::After(kept.seq),
                (None, Some(seq)) => Start::After(seq),
                (None, None) => {
                    let notice = event::comment(&format!(
                        "unknown Last-Event-ID {last:?}; sending live events only"
                    ));
                    return (Some(notice), Vec::new());
                }
            }
        }
    };
    let replay = replay(state, history, start, Whose::Stream);
    let frames = replay.frames(&state.ring, |slot| slot.bytes.clone());
    (replay.notice, frames)
}

#[cfg(test)]
mod tests {
    use super::super::EARLIEST;
    use super::super::tests::{bounded_channel, new_channel, publish_n, text};
    use crate::event::Event;

    #[tokio::test]
    async fn replays_the_kept_events_after_the_last_id() {
        let channel = new_channel(5, 64);
        publish_n(&channel, 10).await;
        let sub = channel.subscribe(Some("7")).unwrap();
        assert!(sub.notice.is_none());
        assert_eq!(
            text(&sub.replay),
            [
                "id: 8\ndata: e7\n\n",
                "id: 9\ndata: e8\n\n",
                "id: 10\ndata: e9\n\n"
            ]
        );
        assert!(channel.subscribe(Some("10")).unwrap().replay.is_empty());
        let earliest = channel.subscribe(Some(EARLIEST)).unwrap();
        assert!(earliest.notice.is_none());
        assert_eq!(text(&earliest.replay).len(), 5);
        assert_eq!(text(&earliest.replay)[0], "id: 6\ndata: e5\n\n");
    }

    #[tokio::test]
    async fn marks_a_gap_and_an_unknown_id() {
        let channel = new_channel(5, 64);
        publish_n(&channel, 10).await;
        let gap = channel.subscribe(Some("2")).unwrap();
        assert_eq!(
            text(&[gap.notice.unwrap()]),
            [": 3 events after id 2 are no longer kept; replaying the 5 kept\n\n"]
        );
        assert_eq!(gap.replay.len(), 5);
        let from_start = channel.subscribe(Some("5")).unwrap();
        assert!(from_start.notice.is_none() && from_start.replay.len() == 5);
        let unknown = channel.subscribe(Some("zzz")).unwrap();
        assert!(unknown.notice.is_some() && unknown.replay.is_empty());
        // Ahead of the numbering: the channel restarted; the client is told, never a silent gap.
        let ahead = channel.subscribe(Some("57")).unwrap();
        assert_eq!(
            text(&[ahead.notice.unwrap()]),
            [
                ": events after id 57 are no longer kept (this channel restarted its numbering at 1); sending live events only\n\n"
            ]
        );
    }

    #[tokio::test]
    async fn a_replay_past_the_byte_bound_is_told_what_it_missed() {
        // Each frame is 16 bytes ("id: 1\ndata: e0\n\n"): 40 bytes keep the newest two.
        let channel = bounded_channel(100, 40, 64);
        publish_n(&channel, 5).await;
        let earliest = channel.subscribe(Some(EARLIEST)).unwrap();
        assert_eq!(
            text(&[earliest.notice.unwrap()]),
            [": 3 older events are no longer kept (--history-bytes); replaying the 2 kept\n\n"]
        );
        assert_eq!(
            text(&earliest.replay),
            ["id: 4\ndata: e3\n\n", "id: 5\ndata: e4\n\n"]
        );
        let gap = channel.subscribe(Some("1")).unwrap();
        assert_eq!(
            text(&[gap.notice.unwrap()]),
            [": 2 events after id 1 are no longer kept; replaying the 2 kept\n\n"]
        );
        // The count bound alone: `earliest` asked for what --history keeps, and got it.
        let counted = bounded_channel(2, 1 << 20, 64);
        publish_n(&counted, 5).await;
        let earliest = counted.subscribe(Some(EARLIEST)).unwrap();
        assert!(earliest.notice.is_none() && earliest.replay.len() == 2);
    }

    #[tokio::test]
    async fn a_number_between_kept_events_replays_only_what_follows_it() {
        // Redis's numbering may skip (an event lost before this instance took it): a client that
        // got 5 elsewhere is sent 7, not 4 again.
        let channel = new_channel(5, 64);
        let mut input = channel.numbered_input().await;
        input.deliver(4, Event::new("a")).await.unwrap();
        input.deliver(7, Event::new("b")).await.unwrap();
        drop(input);
        let sub = channel.subscribe(Some("5")).unwrap();
        assert!(sub.notice.is_none());
        assert_eq!(text(&sub.replay), ["id: 7\ndata: b\n\n"]);
    }

    #[tokio::test]
    async fn finds_source_supplied_ids() {
        let channel = new_channel(5, 64);
        for id in ["a", "b", "c"] {
            channel
                .publish(|_| Event::new("x").with_id(id).unwrap())
                .await
                .unwrap();
        }
        let sub = channel.subscribe(Some("a")).unwrap();
        assert_eq!(
            text(&sub.replay),
            ["id: b\ndata: x\n\n", "id: c\ndata: x\n\n"]
        );
    }

    #[tokio::test]
    async fn numbered_input_takes_outside_ids_and_carries_a_notice_with_the_next_event() {
        let channel = new_channel(5, 64);
        let mut sub = channel.subscribe(None).unwrap();
        let mut input = channel.numbered_input().await;
        input.deliver(4, Event::new("a")).await.unwrap();
        input.announce("2 events after id 4 were lost");
        input.deliver(7, Event::new("b")).await.unwrap();
        input.skip_through(9);
        assert_eq!(input.newest(), 9);
        drop(input);
        assert_eq!(
            &sub.receiver.recv().await.unwrap().bytes[..],
            b"id: 4\ndata: a\n\n"
        );
        let expected = ": 2 events after id 4 were lost\n\nid: 7\ndata: b\n\n";
        assert_eq!(
            &sub.receiver.recv().await.unwrap().bytes[..],
            expected.as_bytes()
        );
        // Replayed across the gap, the notice comes along; the channel numbers on above 9.
        assert_eq!(
            text(&channel.subscribe(Some("4")).unwrap().replay),
            [expected]
        );
        publish_n(&channel, 1).await;
        assert_eq!(channel.stats().newest_id.as_deref(), Some("10"));
    }
}
