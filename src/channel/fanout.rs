//! Fan-out: each event is encoded once, its `Bytes` put in the channel's ring (`ring.rs`), and
//! every stream's `Receiver` reads it from there by position, woken by one `Notify` per channel.
//! A new stream gets its replay and its place under one lock; the heartbeat goes out the same way.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{self, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::futures::OwnedNotified;
use tokio::time::Instant;

use super::history::replay_for_stream;
use super::ring::Slot;
use super::{Channel, Frame, Sent, State, WireId};
use crate::control::{Refusal, StreamSlot};
use crate::event::{self, Event};
use crate::template::Context;

/// A new client's starting point: what to replay, then the live receiver.
#[derive(Debug)]
pub struct Subscription {
    pub receiver: Receiver,
    /// A comment to send first when the replay is incomplete or the id unknown.
    pub notice: Option<Bytes>,
    /// Kept events after the client's `Last-Event-ID`, oldest first.
    pub replay: Vec<Bytes>,
    /// The position of the last frame sent before this subscription: the client has "seen" it.
    pub position: u64,
    /// The stream's place under `--max-clients`.
    pub slot: StreamSlot,
}

/// One stream's place in its channel's ring. Dropping it lets input go on without it.
#[derive(Debug)]
pub struct Receiver {
    channel: Arc<Channel>,
    cursor: Cursor,
}

// Each stream holds one for its life, idle or not: four words.
const _: () = assert!(std::mem::size_of::<Receiver>() <= 32);

/// Where a receiver stands in its channel.
#[derive(Debug)]
struct Cursor {
    /// The position of the next event to read.
    next: u64,
    /// The channel's heartbeat count when this stream last got a frame.
    heartbeats: u64,
    /// The channel's change count when this stream last found nothing to read: until it moves,
    /// there is still nothing, and no lock need be taken to learn so.
    empty_at: u64,
}

/// Why `recv` gave no frame: the channel closed and this stream read all it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Why `try_recv` gave no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to read yet.
    Empty,
    /// The channel closed and this stream read all it had.
    Closed,
}

/// A stream's wait for its channel's next change, kept between polls (`Receiver::poll_run`).
/// Boxed, and kept for the stream's life once it waited: a stream takes a new wait after each
/// change, into the same box.
#[derive(Debug, Default)]
pub struct Wait(Option<Pin<Box<OwnedNotified>>>);

// The box every stream keeps once it waited: jemalloc's 64-byte class.
const _: () = assert!(std::mem::size_of::<OwnedNotified>() <= 64);

impl Receiver {
    /// The next frame, waiting for one; `Err` once the channel closed and all was read.
    pub async fn recv(&mut self) -> Result<Frame, Closed> {
        let mut wait = Wait::default();
        std::future::poll_fn(|cx| self.poll_run(&mut wait, cx, 0)).await
    }

    /// The frames ready, taken under one lock: the events while their bytes come to less than
    /// `budget` (the first whatever its size), joined into one frame that carries the last
    /// one's position and stamp (see `Ring::take`); else a heartbeat sent since the last frame.
    /// `Err` once the channel closed and all was read. Pending until there is one, with `cx`'s
    /// waker registered in `wait`.
    pub fn poll_run(
        &mut self,
        wait: &mut Wait,
        cx: &mut task::Context<'_>,
        budget: usize,
    ) -> Poll<Result<Frame, Closed>> {
        let sent = &self.channel.sent;
        let notified = wait
            .0
            .get_or_insert_with(|| Box::pin(sent.clone().notified_owned()));
        loop {
            // Registered before looking (a no-op when it already is): a change made after the
            // look then marks it, and the poll below sees that.
            notified.as_mut().enable();
            match self.cursor.take(&self.channel, budget) {
                Ok(frame) => return Poll::Ready(Ok(frame)),
                Err(TryRecvError::Closed) => return Poll::Ready(Err(Closed)),
                Err(TryRecvError::Empty) => {}
            }
            ready!(notified.as_mut().poll(cx));
            // Something changed since it was registered: a new wait, then another look.
            notified.set(sent.clone().notified_owned());
        }
    }

    /// The next frame if one is ready: an event, else a heartbeat sent since the last frame.
    pub fn try_recv(&mut self) -> Result<Frame, TryRecvError> {
        self.cursor.take(&self.channel, 0)
    }
}

impl Cursor {
    /// Events from the cursor on, up to `budget` bytes (see `Ring::take`); a heartbeat only
    /// when there is no event: an event read since the heartbeat tells the client as much.
    fn take(&mut self, channel: &Channel, budget: usize) -> Result<Frame, TryRecvError> {
        if self.empty_at == channel.changes.load(Ordering::Acquire) {
            return Err(TryRecvError::Empty);
        }
        let mut state = channel.lock();
        if let Some(frame) = state.announced.take(&mut self.heartbeats, self.next) {
            return Ok(frame);
        }
        // A run stops before the next announcement this stream has to read: it goes after the
        // events sent before it, and before the rest.
        let until = state.announced.next_at(self.heartbeats);
        let taken = state.ring.take(self.next, budget, until);
        if let Some((frame, moved)) = taken {
            self.next = frame.position + 1;
            self.heartbeats = state
                .announced
                .seen_through(self.heartbeats, state.heartbeats);
            drop(state);
            if moved {
                channel.room_made();
            }
            return Ok(frame);
        }
        if self.heartbeats != state.heartbeats {
            self.heartbeats = state.heartbeats;
            return Ok(Frame {
                position: self.next - 1,
                bytes: Bytes::from_static(event::HEARTBEAT),
                stamp: None,
            });
        }
        if state.closed {
            return Err(TryRecvError::Closed);
        }
        self.empty_at = channel.changes.load(Ordering::Acquire);
        Err(TryRecvError::Empty)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.channel.lock();
        let moved = state.ring.leave(self.cursor.next);
        state.announced.leave(self.cursor.heartbeats);
        if state.ring.readers() == 0 {
            // Under the lock: a channel's changes are reported in the order they happened.
            self.channel
                .control
                .occupancy
                .report(&self.channel.name, false);
        }
        drop(state);
        if moved {
            self.channel.room_made();
        }
    }
}

impl Channel {
    /// Numbers, encodes, keeps and sends one event.
    pub(super) fn send_event(
        &self,
        state: &mut State,
        build: impl FnOnce(Context) -> Event,
    ) -> Sent {
        let consumers = state.ring.readers();
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
        let slot = Slot::new(seq, event.id().map(Box::from), bytes);
        state
            .ring
            .push(slot, self.config.history, self.config.history_bytes);
        let now = Instant::now();
        state.last_send = now;
        state.last_event = now;
        self.changed();
        self.events_sent.fetch_add(1, Ordering::Relaxed);
        Sent { id, consumers }
    }

    /// Marks that readers have something new (an event, a heartbeat, the end). Called under
    /// the state lock; the caller wakes them with `sent.notify_waiters()` once it is released.
    pub(super) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// A new stream: the kept events after `last_event_id` (all of them for `earliest`), then
    /// its place in the ring, taken under the publishing lock so there is neither a gap nor a
    /// duplicate between the two.
    pub fn subscribe(
        self: &Arc<Self>,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, Refusal> {
        let mut state = self.lock();
        state.refuse_if_closed()?;
        let slot = self.control.open_stream()?;
        let (notice, replay) = replay_for_stream(&state, self.config.history, last_event_id);
        let (receiver, next) = self.place(&mut state);
        drop(state);
        self.joined.notify_waiters();
        Ok(Subscription {
            receiver,
            notice,
            replay,
            position: next - 1,
            slot,
        })
    }

    /// A new reader's place in the ring, after everything sent so far; returns it with its
    /// position. The caller holds the lock from its replay to here, and wakes `joined` after.
    pub(super) fn place(self: &Arc<Self>, state: &mut State) -> (Receiver, u64) {
        let next = state.ring.join();
        if state.ring.readers() == 1 {
            self.control.occupancy.report(&self.name, true);
        }
        let receiver = Receiver {
            channel: self.clone(),
            cursor: Cursor {
                next,
                heartbeats: state.heartbeats,
                empty_at: self.changes.load(Ordering::Acquire),
            },
        };
        (receiver, next)
    }

    /// Sends a heartbeat comment when nothing was sent for `every`; returns when the next one
    /// is due. One task calls this for every channel (`Channels::run_heartbeat`). Only streams
    /// that have read everything get it: one still reading has bytes to write anyway.
    pub fn heartbeat(&self, every: Duration, now: Instant) -> Instant {
        let mut state = self.lock();
        let due = state.last_send + every;
        if due > now {
            return due;
        }
        state.last_send = now;
        if state.ring.readers() > 0 {
            state.heartbeats += 1;
            self.changed();
            drop(state);
            self.sent.notify_waiters();
        }
        now + every
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{new_channel, publish_n};
    use super::*;

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

    #[tokio::test]
    async fn a_heartbeat_reaches_streams_that_read_everything_then_the_end_comes() {
        let channel = new_channel(0, 64);
        let mut sub = channel.subscribe(None).unwrap();
        let every = Duration::from_secs(1);
        channel.heartbeat(every, Instant::now() + every);
        let beat = sub.receiver.recv().await.unwrap();
        assert_eq!((&beat.bytes[..], beat.position), (event::HEARTBEAT, 0));
        assert_eq!(sub.receiver.try_recv().unwrap_err(), TryRecvError::Empty);
        publish_n(&channel, 1).await;
        channel.close();
        // What was sent before the close is still read, then the stream ends.
        assert_eq!(sub.receiver.recv().await.unwrap().position, 1);
        assert_eq!(sub.receiver.recv().await.unwrap_err(), Closed);
    }
}
