//! One channel: gives each event its id, encodes it once to `Bytes`, keeps the history for
//! replay, fans frames out to its streams, holds its input back while its slowest client is at
//! the buffer limit, and logs each send with the consumer count.
//!
//! Streams (see `stream/one.rs`) own their receivers; a channel keeps no per-client state
//! beyond a count per ring slot. It learns how far a client got from the position each stream reports to its connection,
//! and has the control (`control/`) order the eviction of a stalled one. A channel knows nothing
//! of HTTP. By seam:
//!
//! - `ring.rs`: the one queue of sent events that serves both replay and fan-out, grown on
//!   demand and shrunk when drained;
//! - `history.rs`: numbering (its own, or ids given from outside) and the one replay from the
//!   ring, for a stream of this channel and for one of several;
//! - `fanout.rs`: encoding once, subscribing (replay and place in the ring under one lock), each
//!   stream's `Receiver`, the heartbeat;
//! - `backpressure.rs`: input waiting for room, eviction orders for stalled streams;
//! - `announce.rs`: frames every stream reads live and none replays (`--presence`);
//! - `join.rs`: a stream of several channels joining one of them at a sequence number (with
//!   the same replay).
//!
//! This file holds the channel's state and what reads it whole (stats, reclaiming, closing).

mod announce;
mod backpressure;
mod fanout;
mod history;
mod join;
mod ring;

pub use announce::live_frame;
pub use fanout::{Closed, Receiver, Subscription, TryRecvError, Wait};
pub use history::{NumberedInput, WireId};
pub use join::{Joined, Start};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::control::{Control, Refusal};
use announce::Announcements;
use ring::Ring;

/// The name of the channel at `<events-path>` itself.
pub const DEFAULT_NAME: &str = "default";

/// `Last-Event-ID` (or `?lastEventId=`) asking for everything kept.
pub const EARLIEST: &str = "earliest";

/// How each channel buffers, remembers and waits.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Events kept for `Last-Event-ID` replay (0 = none), per channel.
    pub history: usize,
    /// Bytes those events may take at most, per channel: the oldest go first.
    pub history_bytes: usize,
    /// Frames a client may be behind before input waits for it.
    pub client_buffer: usize,
    /// How long input may wait on a client that makes no progress before that client is dropped.
    pub stall_timeout: Duration,
}

/// One frame as every stream receives it. `position` counts the events the channel has sent
/// (a heartbeat carries the position of the event before it), so a stream's last position says
/// how far behind it is.
#[derive(Debug, Clone)]
pub struct Frame {
    pub position: u64,
    pub bytes: Bytes,
    /// Which event this is; `None` for a heartbeat.
    pub stamp: Option<Stamp>,
}

// Every slot of every channel's history holds one: a frame stays within one cache line.
const _: () = assert!(std::mem::size_of::<Frame>() <= 64);

/// What tells one sent event from another: its sequence number in its channel (the id unless
/// its source gave one), and its place in the order this process received events on all
/// channels (a stream of several channels merges them by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub arrival: u64,
}

#[derive(Debug)]
struct State {
    /// The events kept for replay and those some stream has still to read.
    ring: Ring,
    /// Heartbeats and announcements sent: a stream that read everything sends a heartbeat
    /// when this moves past the announcements it read.
    heartbeats: u64,
    /// Live-only frames (`--presence`) some stream has still to read (`announce.rs`).
    announced: Announcements,
    /// Set at shutdown: streams drain what they have, then end; nothing new is taken.
    closed: bool,
    next_seq: u64,
    /// The last frame of any kind (for the heartbeat).
    last_send: Instant,
    /// The last event (for reclaiming an idle channel).
    last_event: Instant,
    /// Names the numbering when ids come from outside (`NumberedInput`): a new one means the
    /// numbering's keeper lost what it held.
    epoch: Option<Box<str>>,
    /// A notice that travels in front of the next event (`NumberedInput::announce`).
    notice: Option<Bytes>,
}

impl State {
    /// No new stream may open once the channel is closed (the server is shutting down).
    fn refuse_if_closed(&self) -> Result<(), Refusal> {
        if self.closed {
            return Err(Refusal::Closed);
        }
        Ok(())
    }
}

/// What one publish reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub id: WireId,
    /// Streams the event was queued for.
    pub consumers: usize,
}

/// One channel's figures for `/stats` and `/metrics`. Ids are strings here, as on the wire.
#[derive(Debug, Serialize)]
pub struct ChannelStats {
    pub consumers: usize,
    pub events_sent: u64,
    pub history_size: usize,
    pub oldest_id: Option<String>,
    pub newest_id: Option<String>,
}

#[derive(Debug)]
pub struct Channel {
    name: Arc<str>,
    /// Unique for the process's life (a reclaimed name comes back with a new one): eviction
    /// orders carry it.
    id: u64,
    config: ChannelConfig,
    control: Arc<Control>,
    state: Mutex<State>,
    /// One publisher at a time, so the events of one POST get consecutive ids.
    input: tokio::sync::Mutex<()>,
    /// Woken when a stream takes frames while input waits, and when a stream ends.
    room: Notify,
    input_waiting: AtomicBool,
    /// Woken on every new subscription (for `--wait-clients`).
    joined: Notify,
    /// Woken when streams have something new to read: an event, a heartbeat, the end. Shared,
    /// so that a stream can keep its wait on it between polls (`fanout::Wait`).
    sent: Arc<Notify>,
    /// Counts those changes, so that a stream can tell it has nothing new without the lock.
    changes: AtomicU64,
    events_sent: AtomicU64,
    /// A publisher (stdin, a POST, the ticker) asked for this channel: it holds a slot.
    publishers_asked: AtomicBool,
}

impl Channel {
    pub fn new(name: Arc<str>, id: u64, config: ChannelConfig, control: Arc<Control>) -> Self {
        let now = Instant::now();
        Channel {
            name,
            id,
            state: Mutex::new(State {
                ring: Ring::new(),
                heartbeats: 0,
                announced: Announcements::default(),
                closed: false,
                next_seq: 1,
                last_send: now,
                last_event: now,
                epoch: None,
                notice: None,
            }),
            config,
            control,
            input: tokio::sync::Mutex::new(()),
            room: Notify::new(),
            input_waiting: AtomicBool::new(false),
            joined: Notify::new(),
            sent: Arc::new(Notify::new()),
            changes: AtomicU64::new(0),
            events_sent: AtomicU64::new(0),
            publishers_asked: AtomicBool::new(false),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id eviction orders name this channel by.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn is_default(&self) -> bool {
        &*self.name == DEFAULT_NAME
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No code panics while holding the lock; recover the data rather than cascade a panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Streams currently open on this channel.
    pub fn consumers(&self) -> usize {
        self.lock().ring.readers()
    }

    /// Returns once `count` streams are open on this channel at the same time.
    pub async fn wait_for_clients(&self, count: usize) {
        loop {
            let joined = self.joined.notified();
            tokio::pin!(joined);
            joined.as_mut().enable();
            if self.consumers() >= count {
                return;
            }
            joined.await;
        }
    }

    /// Whether the registry may drop this channel: nobody reads it, and it sent nothing for
    /// `idle` (a channel that never sent anything holds nothing a client could miss). The
    /// caller checks that nobody else holds it (no publisher mid-way, no stream).
    pub fn is_reclaimable(&self, idle: Duration, now: Instant) -> bool {
        let state = self.lock();
        state.ring.readers() == 0 && (state.next_seq == 1 || state.last_event + idle <= now)
    }

    /// A publisher asked for this channel: from now on it holds a slot (see `holds_slot`).
    pub fn publisher_asked(&self) {
        self.publishers_asked.store(true, Ordering::Relaxed);
    }

    /// Whether this channel counts against `--max-channels`: a publisher asked for it, or it
    /// received an event (also from another instance through Redis), so it holds or is about
    /// to hold history. A channel only readers asked for costs little more than their
    /// streams, which the stream limits bound.
    pub fn holds_slot(&self) -> bool {
        self.publishers_asked.load(Ordering::Relaxed)
            || self.events_sent.load(Ordering::Relaxed) > 0
    }

    /// Ends the broadcast: each stream delivers what it holds, then ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.changed();
        drop(state);
        self.sent.notify_waiters();
    }

    pub fn stats(&self) -> ChannelStats {
        let state = self.lock();
        ChannelStats {
            consumers: state.ring.readers(),
            events_sent: self.events_sent.load(Ordering::Relaxed),
            history_size: state.ring.kept().len(),
            oldest_id: state
                .ring
                .kept()
                .next()
                .map(|kept| kept.wire_id().to_string()),
            newest_id: state
                .ring
                .kept()
                .next_back()
                .map(|kept| kept.wire_id().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    pub(super) fn new_channel(history: usize, client_buffer: usize) -> Arc<Channel> {
        bounded_channel(history, 1 << 20, client_buffer)
    }

    pub(super) fn bounded_channel(
        history: usize,
        history_bytes: usize,
        client_buffer: usize,
    ) -> Arc<Channel> {
        let config = ChannelConfig {
            history,
            history_bytes,
            client_buffer,
            stall_timeout: Duration::from_millis(100),
        };
        let control = Arc::new(Control::new(None));
        Arc::new(Channel::new(DEFAULT_NAME.into(), 0, config, control))
    }

    pub(super) async fn publish_n(channel: &Channel, n: usize) {
        for i in 0..n {
            channel
                .publish(|_| Event::new(format!("e{i}")))
                .await
                .unwrap();
        }
    }

    pub(super) fn text(bytes: &[Bytes]) -> Vec<String> {
        bytes
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }
}
