//! Fan-out: each event is encoded once and its `Bytes` handed to every stream's receiver
//! (`tokio::sync::broadcast`); a new stream gets its replay and its receiver under one lock,
//! and the heartbeat goes out the same way.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::history::{Kept, all_kept, replay_after};
use super::{Channel, EARLIEST, Frame, Sent, State, WireId};
use crate::control::{Refusal, StreamSlot};
use crate::event::{self, Event};
use crate::template::Context;

/// A new client's starting point: what to replay, then the live receiver.
#[derive(Debug)]
pub struct Subscription {
    pub receiver: broadcast::Receiver<Frame>,
    /// A comment to send first when the replay is incomplete or the id unknown.
    pub notice: Option<Bytes>,
    /// Kept events after the client's `Last-Event-ID`, oldest first.
    pub replay: Vec<Bytes>,
    /// The position of the last frame sent before this subscription: the client has "seen" it.
    pub position: u64,
    /// The stream's place under `--max-clients`.
    pub slot: StreamSlot,
}

impl Channel {
    /// Numbers, encodes, keeps and sends one event.
    pub(super) fn send_event(
        &self,
        state: &mut State,
        build: impl FnOnce(Context) -> Event,
    ) -> Sent {
        let consumers = state
            .tx
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count);
        let seq = state.next_seq;
        state.next_seq += 1;
        let event = build(Context {
            seq,
            consumers,
            now: SystemTime::now(),
        });
        let mut bytes = event.encode(seq);
        if let Some(notice) = state.notice.take() {
            bytes = [notice, bytes].concat().into();
        }
        let id = match event.id() {
            Some(given) => WireId::Given(given.to_owned()),
            None => WireId::Seq(seq),
        };
        let kept = Kept {
            seq,
            id: event.id().map(Box::from),
            bytes: bytes.clone(),
        };
        self.keep(state, kept);
        let position = state.next_position;
        state.next_position += 1;
        let now = Instant::now();
        state.last_send = now;
        state.last_event = now;
        if let Some(tx) = &state.tx {
            // Err only means nobody is listening: the event is still kept for replay.
            let _ = tx.send(Frame { position, bytes });
        }
        self.events_sent.fetch_add(1, Ordering::Relaxed);
        Sent { id, consumers }
    }

    /// A new stream: the kept events after `last_event_id` (all of them for `earliest`), then
    /// the live receiver, taken under the publishing lock so there is neither a gap nor a
    /// duplicate between the two.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Result<Subscription, Refusal> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refusal::Closed);
        }
        let slot = self.control.open_stream()?;
        // The ring holds at least `client_buffer` frames (tokio rounds up to a power of two);
        // input waits at `client_buffer`, so a frame is never overwritten before all have seen it.
        let capacity = self.config.client_buffer.max(1);
        let receiver = state
            .tx
            .get_or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe();
        let (notice, replay) = match last_event_id {
            None => (None, Vec::new()),
            Some(EARLIEST) => (None, all_kept(&state.history, 0)),
            Some(last) => replay_after(&state, last),
        };
        let subscription = Subscription {
            receiver,
            notice,
            replay,
            position: state.next_position - 1,
            slot,
        };
        drop(state);
        self.joined.notify_waiters();
        Ok(subscription)
    }

    /// Sends a heartbeat comment when nothing was sent for `every`; returns when the next one
    /// is due. One task calls this for every channel (`Channels::run_heartbeat`).
    pub fn heartbeat(&self, every: Duration, now: Instant) -> Instant {
        let mut state = self.lock();
        let due = state.last_send + every;
        if due > now {
            return due;
        }
        state.last_send = now;
        let Some(tx) = state.tx.clone() else {
            return now + every; // nobody listening: nothing to keep alive
        };
        // A full buffer means a client is behind anyway: a heartbeat would only wait in line.
        if tx.receiver_count() > 0 && tx.len() < self.config.client_buffer {
            let position = state.next_position;
            state.next_position += 1;
            let _ = tx.send(Frame {
                position,
                bytes: Bytes::from_static(event::HEARTBEAT),
            });
        }
        now + every
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{new_channel, publish_n};

    #[tokio::test]
    async fn live_frames_follow_the_replay_without_gap() {
        let channel = new_channel(5, 64);
        publish_n(&channel, 3).await;
        let mut sub = channel.subscribe(Some("1")).unwrap();
        publish_n(&channel, 1).await;
        assert_eq!(sub.replay.len(), 2);
        let live = sub.receiver.recv().await.unwrap();
        assert_eq!(&live.bytes[..], b"id: 4\ndata: e0\n\n");
        assert_eq!(live.position, sub.position + 1);
    }
}
