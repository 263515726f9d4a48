//! Numbering and history: each event's id (the channel's own number, one its source gave, or one
//! given from outside through `NumberedInput`), the events kept for `Last-Event-ID` replay, and
//! what a reconnecting client is sent from them. The events themselves are the newest slots of
//! the channel's ring (`ring.rs`).

use bytes::Bytes;

use super::ring::{Ring, Slot};
use super::{Channel, Sent, State};
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

pub(super) fn all_kept(ring: &Ring, skip: usize) -> Vec<Bytes> {
    ring.kept().skip(skip).map(|k| k.bytes.clone()).collect()
}

/// The replay for `earliest`: everything kept, after a comment counting the events
/// `--history-bytes` let go while `--history` would still have kept them (a client asking for
/// all kept knows the count bound; it cannot guess the bytes one).
pub(super) fn replay_earliest(ring: &Ring, history: usize) -> (Option<Bytes>, Vec<Bytes>) {
    let sent = usize::try_from(ring.next() - 1).unwrap_or(usize::MAX);
    let kept = ring.kept().len();
    let missed = sent.min(history) - kept;
    let notice = (missed > 0).then(|| {
        event::comment(&format!(
            "{missed} older events are no longer kept (--history-bytes); replaying the {kept} kept"
        ))
    });
    (notice, all_kept(ring, 0))
}

/// The replay for a client that last saw `last`: the kept events after it, or, when it is older
/// than the history, all of them after a comment counting the missed ones.
pub(super) fn replay_after(state: &State, last: &str) -> (Option<Bytes>, Vec<Bytes>) {
    let last_seq = last.parse::<u64>().ok();
    let is_last = |kept: &Slot| match &kept.id {
        Some(id) => **id == *last,
        None => Some(kept.seq) == last_seq,
    };
    if let Some(index) = state.ring.kept().rposition(is_last) {
        return (None, all_kept(&state.ring, index + 1));
    }
    let newest_seq = state.next_seq - 1;
    match last_seq {
        // Caught up: the newest event was not kept (history off), but the client has it.
        Some(seq) if seq == newest_seq => (None, Vec::new()),
        Some(seq) if seq < newest_seq => {
            let oldest_kept = state.ring.kept().next().map_or(state.next_seq, |k| k.seq);
            let missed = oldest_kept.saturating_sub(seq + 1);
            if missed == 0 {
                // The client saw everything before the oldest kept event: nothing was lost.
                return (None, all_kept(&state.ring, 0));
            }
            let notice = event::comment(&format!(
                "{missed} events after id {seq} are no longer kept; replaying the {} kept",
                state.ring.kept().len()
            ));
            (Some(notice), all_kept(&state.ring, 0))
        }
        // Ahead of this channel's numbering: it was reclaimed while idle (or the server
        // restarted) and numbers from 1 again; what followed `seq` before that is gone.
        Some(seq) => {
            let notice = event::comment(&format!(
                "events after id {seq} are no longer kept (this channel restarted its numbering at 1); sending live events only"
            ));
            (Some(notice), Vec::new())
        }
        None => {
            let notice = event::comment(&format!(
                "unknown Last-Event-ID {last:?}; sending live events only"
            ));
            (Some(notice), Vec::new())
        }
    }
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
