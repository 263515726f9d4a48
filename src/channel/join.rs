//! A stream of several channels joining one of them: from a sequence number (the channel's part
//! of the stream's cursor), from everything kept, or live. It gets that channel's kept events
//! after its position, each with its stamp so the stream can merge channels in arrival order,
//! and its place in the ring under the same lock, so there is neither a gap nor a duplicate.
//! The replay and its notice are `history.rs`'s, the one a stream of one channel gets, naming
//! the channel. Its place under `--max-clients` is the stream's, taken once, not one per channel.

use std::sync::Arc;

use bytes::Bytes;

use super::history::{Whose, replay};
use super::{Channel, Receiver, Stamp};
use crate::control::Refusal;

/// Where a stream of several channels starts in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With what is sent from now on.
    Live,
    /// With everything kept.
    Earliest,
    /// After this sequence number.
    After(u64),
}

/// One channel of a stream of several: what to replay, then the live receiver.
#[derive(Debug)]
pub struct Joined {
    pub receiver: Receiver,
    /// A comment naming the channel, when its part of the replay is incomplete.
    pub notice: Option<Bytes>,
    /// Kept events after the start, oldest first.
    pub replay: Vec<(Stamp, Bytes)>,
    /// The sequence number the stream stands at in this channel before its replay: resuming
    /// from it loses nothing.
    pub stands_at: u64,
    /// The position of the last frame sent before joining (see `Subscription::position`).
    pub position: u64,
}

impl Channel {
    /// Joins this channel for a stream of several (see the module's docs).
    pub fn join(self: &Arc<Self>, start: Start) -> Result<Joined, Refusal> {
        let mut state = self.lock();
        state.refuse_if_closed()?;
        let replay = replay(
            &state,
            self.config.history,
            start,
            Whose::Channel(&self.name),
        );
        let frames = replay.frames(&state.ring, |slot| (slot.stamp(), slot.bytes.clone()));
        let (receiver, next) = self.place(&mut state);
        drop(state);
        self.joined.notify_waiters();
        Ok(Joined {
            receiver,
            notice: replay.notice,
            replay: frames,
            stands_at: replay.stands_at,
            position: next - 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{new_channel, publish_n};
    use super::*;

    fn seqs(joined: &Joined) -> Vec<u64> {
        joined.replay.iter().map(|(stamp, _)| stamp.seq).collect()
    }

    #[tokio::test]
    async fn replays_after_a_sequence_number_and_stands_where_the_replay_begins() {
        let channel = new_channel(5, 64);
        publish_n(&channel, 10).await;
        let after = channel.join(Start::After(7)).unwrap();
        assert_eq!((seqs(&after), after.stands_at), (vec![8, 9, 10], 7));
        assert!(after.notice.is_none());
        let live = channel.join(Start::Live).unwrap();
        assert_eq!((seqs(&live), live.stands_at), (vec![], 10));
        let earliest = channel.join(Start::Earliest).unwrap();
        assert_eq!(
            (seqs(&earliest), earliest.stands_at),
            (vec![6, 7, 8, 9, 10], 5)
        );
        let arrivals: Vec<u64> = earliest.replay.iter().map(|(s, _)| s.arrival).collect();
        assert!(
            arrivals.windows(2).all(|pair| pair[0] < pair[1]),
            "{arrivals:?}"
        );
        assert_eq!(channel.consumers(), 3, "each join is one consumer");
    }

    #[tokio::test]
    async fn names_the_channel_in_the_missed_events_notice() {
        let channel = new_channel(5, 64);
        publish_n(&channel, 10).await;
        let gap = channel.join(Start::After(2)).unwrap();
        assert_eq!(
            &gap.notice.unwrap()[..],
            b": 3 events of channel default after id 2 are no longer kept; replaying the 5 kept\n\n"
        );
        assert_eq!((gap.replay.len(), gap.stands_at), (5, 2));
        assert!(channel.join(Start::After(5)).unwrap().notice.is_none());
        let ahead = channel.join(Start::After(57)).unwrap();
        assert_eq!(
            &ahead.notice.unwrap()[..],
            b": events of channel default after id 57 are no longer kept (it restarted its numbering at 1); sending its live events only\n\n"
        );
        assert!(ahead.replay.is_empty());
        assert_eq!(ahead.stands_at, 10);
        let empty = new_channel(5, 64);
        assert_eq!(empty.join(Start::Earliest).unwrap().stands_at, 0);
    }
}
