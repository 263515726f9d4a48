//! The hub: gives each event its id, encodes it once to `Bytes`, keeps the history for replay,
//! fans frames out over `tokio::sync::broadcast`, holds input back while the slowest client is at
//! its buffer limit, and logs each send with the consumer count.
//!
//! Streams (see `stream.rs`) own their receivers; the hub keeps no per-client state at all. It
//! learns how far a client got from the position each stream reports to its connection, and
//! gives connections their orders (drop a stalled client, close at shutdown) through one `watch`
//! channel that every connection reads.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, broadcast, watch};

use crate::event::{self, Event};
use crate::template::Context;

/// How the hub buffers, remembers and waits.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Events kept for `Last-Event-ID` replay (0 = none).
    pub history: usize,
    /// Frames a client may be behind before input waits for it.
    pub client_buffer: usize,
    /// How long input may wait on a client that makes no progress before that client is dropped.
    pub stall_timeout: Duration,
    /// Streams allowed at once; further requests are refused.
    pub max_clients: Option<usize>,
}

/// One frame as every stream receives it. `position` counts every frame the hub has sent
/// (events and heartbeats), so a stream's last position says how far behind it is.
#[derive(Debug, Clone)]
pub struct Frame {
    pub position: u64,
    pub bytes: Bytes,
}

/// An event kept for replay.
#[derive(Debug)]
struct Kept {
    seq: u64,
    /// The source's own id, when it gave one; otherwise the wire id is `seq`.
    id: Option<Box<str>>,
    bytes: Bytes,
}

#[derive(Debug)]
struct State {
    /// `None` once the hub is closed: streams drain what they have, then end.
    tx: Option<broadcast::Sender<Frame>>,
    next_seq: u64,
    next_position: u64,
    history: VecDeque<Kept>,
    last_send: Instant,
}

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
}

/// Why a stream request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-clients` streams are open.
    Full,
    /// The hub is shutting down.
    Closed,
}

/// What every connection is told; one value, so each connection waits on a single channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orders {
    /// Drop the streams this eviction names.
    pub evict: Option<Eviction>,
    /// Shutting down: accept nothing new and close each connection once its response is done.
    pub closing: bool,
}

/// The streams input has waited on for `--stall-timeout`: those still at the buffer limit (last
/// live position at or below `through`) whose socket took no byte since the wait began (their
/// progress mark is older than `wait`). Progress is counted at the socket, not at the stream: a
/// client that drains a few MiB of kernel buffer slowly is reading, not stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    pub through: u64,
    pub wait: u64,
}

/// Counters and gauges served at `/stats`.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub consumers: usize,
    pub events_sent: u64,
    pub clients_dropped_stalled: u64,
    pub requests_refused: u64,
    pub history_size: usize,
    pub oldest_id: Option<String>,
    pub newest_id: Option<String>,
    pub uptime_secs: u64,
    pub version: &'static str,
}

#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    state: Mutex<State>,
    /// Woken when a stream takes frames while input waits, and when a stream ends.
    room: Notify,
    input_waiting: AtomicBool,
    /// Counts the waits for room: a connection marks each write with the current value.
    wait_epoch: AtomicU64,
    /// Woken on every new subscription (for `--wait-clients`).
    joined: Notify,
    orders: watch::Sender<Orders>,
    /// Socket writes by all connections: lets shutdown tell a draining client from a stuck one.
    writes: AtomicU64,
    events_sent: AtomicU64,
    dropped_stalled: AtomicU64,
    refused: AtomicU64,
    started: Instant,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        // The channel holds at least `client_buffer` frames (tokio rounds up to a power of two);
        // input waits at `client_buffer`, so a frame is never overwritten before all have seen it.
        let (tx, _) = broadcast::channel(config.client_buffer.max(1));
        Hub {
            state: Mutex::new(State {
                tx: Some(tx),
                next_seq: 1,
                next_position: 1,
                history: VecDeque::with_capacity(config.history.min(4096)),
                last_send: Instant::now(),
            }),
            config,
            room: Notify::new(),
            input_waiting: AtomicBool::new(false),
            wait_epoch: AtomicU64::new(0),
            joined: Notify::new(),
            orders: watch::Sender::new(Orders::default()),
            writes: AtomicU64::new(0),
            events_sent: AtomicU64::new(0),
            dropped_stalled: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No code panics while holding the lock; recover the data rather than cascade a panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes one event built from its context (so a template can show its own id and the
    /// consumer count it reaches). Waits while the slowest client is `client_buffer` frames
    /// behind; a client stalled for `stall_timeout` meanwhile is dropped. Returns the number of
    /// streams the event was queued for, or `None` once the hub is closed.
    pub async fn publish(&self, build: impl FnOnce(Context) -> Event) -> Option<usize> {
        let mut build = Some(build);
        let mut waiting: Option<(Instant, u64)> = None;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.lock();
                let tx = state.tx.clone()?;
                if tx.len() < self.config.client_buffer {
                    self.input_waiting.store(false, Ordering::Relaxed);
                    let build = build.take().expect("built once, then returns");
                    let (seq, given_id, consumers) = self.send_event(&mut state, &tx, build);
                    drop(state);
                    // Logged outside the lock: streams and the heartbeat never wait on the log.
                    match given_id {
                        Some(id) => tracing::info!(id, consumers, "sent"),
                        None => tracing::info!(id = seq, consumers, "sent"),
                    }
                    return Some(consumers);
                }
                self.input_waiting.store(true, Ordering::Release);
            }
            let (since, wait) = *waiting.get_or_insert_with(|| {
                (
                    Instant::now(),
                    self.wait_epoch.fetch_add(1, Ordering::AcqRel) + 1,
                )
            });
            tokio::select! {
                () = &mut room => {}
                () = tokio::time::sleep_until((since + self.config.stall_timeout).into()) => {
                    self.evict_stalled(wait);
                    waiting = None;
                }
            }
        }
    }

    /// Numbers, encodes, keeps and sends one event; returns its sequence number, the id its
    /// source gave it (if any) and the streams it was queued for.
    fn send_event(
        &self,
        state: &mut State,
        tx: &broadcast::Sender<Frame>,
        build: impl FnOnce(Context) -> Event,
    ) -> (u64, Option<String>, usize) {
        let consumers = tx.receiver_count();
        let seq = state.next_seq;
        state.next_seq += 1;
        let event = build(Context {
            seq,
            consumers,
            now: SystemTime::now(),
        });
        let bytes = event.encode(seq);
        if self.config.history > 0 {
            if state.history.len() == self.config.history {
                state.history.pop_front();
            }
            state.history.push_back(Kept {
                seq,
                id: event.id().map(Box::from),
                bytes: bytes.clone(),
            });
        }
        let position = state.next_position;
        state.next_position += 1;
        state.last_send = Instant::now();
        // Err only means nobody is listening: the event is still kept for replay.
        let _ = tx.send(Frame { position, bytes });
        self.events_sent.fetch_add(1, Ordering::Relaxed);
        (seq, event.id().map(str::to_owned), consumers)
    }

    /// Asks connections to drop every stream still at the buffer limit that took nothing since
    /// input began to wait (`wait`), `stall_timeout` ago.
    fn evict_stalled(&self, wait: u64) {
        let state = self.lock();
        let newest = state.next_position - 1;
        let through = newest.saturating_sub(self.config.client_buffer as u64);
        drop(state);
        tracing::debug!(through, "input held back; dropping stalled clients");
        self.orders
            .send_modify(|orders| orders.evict = Some(Eviction { through, wait }));
    }

    /// The mark a new connection starts with (see `Eviction`).
    pub fn wait_epoch(&self) -> u64 {
        self.wait_epoch.load(Ordering::Acquire)
    }

    /// The orders for connections: one receiver per connection, and one for the accept loop.
    pub fn orders(&self) -> watch::Receiver<Orders> {
        self.orders.subscribe()
    }

    /// Counts a client dropped for stalling (the connection does the dropping).
    pub fn count_stalled_drop(&self) {
        self.dropped_stalled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused request (its route answers it).
    fn count_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Called by a stream after it takes live frames: wakes input that waits for room.
    pub fn frames_taken(&self) {
        if self.input_waiting.load(Ordering::Acquire) {
            self.room.notify_one();
        }
    }

    /// Called when a stream ends: its receiver no longer holds input back.
    pub fn stream_ended(&self) {
        self.frames_taken();
    }

    /// Called by a connection after its socket took bytes; returns the mark to record (see
    /// `Eviction`).
    pub fn socket_wrote(&self) -> u64 {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.wait_epoch.load(Ordering::Acquire)
    }

    /// A number that grows while any socket takes bytes.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// A new stream: the kept events after `last_event_id`, then the live receiver, taken under
    /// the publishing lock so there is neither a gap nor a duplicate between the two.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Result<Subscription, Refusal> {
        let state = self.lock();
        let Some(tx) = &state.tx else {
            return Err(Refusal::Closed);
        };
        if self
            .config
            .max_clients
            .is_some_and(|max| tx.receiver_count() >= max)
        {
            self.count_refusal();
            return Err(Refusal::Full);
        }
        let (notice, replay) = match last_event_id {
            None => (None, Vec::new()),
            Some(last) => replay_after(&state, last),
        };
        let subscription = Subscription {
            receiver: tx.subscribe(),
            notice,
            replay,
            position: state.next_position - 1,
        };
        drop(state);
        self.joined.notify_waiters();
        Ok(subscription)
    }

    /// Streams currently open.
    pub fn consumers(&self) -> usize {
        self.lock().tx.as_ref().map_or(0, |tx| tx.receiver_count())
    }

    /// Returns once `count` streams are open at the same time.
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

    /// Sends a heartbeat comment whenever nothing was sent for `every`. One task serves all.
    pub async fn run_heartbeat(&self, every: Duration) {
        loop {
            let due = self.lock().last_send + every;
            tokio::time::sleep_until(due.into()).await;
            let mut state = self.lock();
            let Some(tx) = state.tx.clone() else { return };
            let now = Instant::now();
            if state.last_send + every > now {
                continue; // something was sent meanwhile
            }
            state.last_send = now;
            // A full buffer means a client is behind anyway: a heartbeat would only wait in line.
            if tx.len() < self.config.client_buffer {
                let position = state.next_position;
                state.next_position += 1;
                let _ = tx.send(Frame {
                    position,
                    bytes: Bytes::from_static(event::HEARTBEAT),
                });
            }
        }
    }

    /// Ends the broadcast: each stream delivers what it holds, then ends; connections close once
    /// their response is done, and no new one is accepted.
    pub fn close(&self) {
        self.lock().tx = None;
        self.orders.send_modify(|orders| orders.closing = true);
    }

    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let wire_id = |kept: &Kept| {
            kept.id
                .as_deref()
                .map_or_else(|| kept.seq.to_string(), str::to_owned)
        };
        Stats {
            consumers: state.tx.as_ref().map_or(0, |tx| tx.receiver_count()),
            events_sent: self.events_sent.load(Ordering::Relaxed),
            clients_dropped_stalled: self.dropped_stalled.load(Ordering::Relaxed),
            requests_refused: self.refused.load(Ordering::Relaxed),
            history_size: state.history.len(),
            oldest_id: state.history.front().map(wire_id),
            newest_id: state.history.back().map(wire_id),
            uptime_secs: self.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The replay for a client that last saw `last`: the kept events after it, or, when it is older
/// than the history, all of them after a comment counting the missed ones.
fn replay_after(state: &State, last: &str) -> (Option<Bytes>, Vec<Bytes>) {
    let last_seq = last.parse::<u64>().ok();
    let is_last = |kept: &Kept| match &kept.id {
        Some(id) => **id == *last,
        None => Some(kept.seq) == last_seq,
    };
    let all = |history: &VecDeque<Kept>, skip: usize| -> Vec<Bytes> {
        history.iter().skip(skip).map(|k| k.bytes.clone()).collect()
    };
    if let Some(index) = state.history.iter().rposition(is_last) {
        return (None, all(&state.history, index + 1));
    }
    let newest_seq = state.next_seq - 1;
    match last_seq {
        // Caught up: the newest event was not kept (history off), but the client has it.
        Some(seq) if seq == newest_seq => (None, Vec::new()),
        Some(seq) if seq < newest_seq => {
            let oldest_kept = state.history.front().map_or(state.next_seq, |k| k.seq);
            let missed = oldest_kept.saturating_sub(seq + 1);
            if missed == 0 {
                // The client saw everything before the oldest kept event: nothing was lost.
                return (None, all(&state.history, 0));
            }
            let notice = event::comment(&format!(
                "{missed} events after id {seq} are no longer kept; replaying the {} kept",
                state.history.len()
            ));
            (Some(notice), all(&state.history, 0))
        }
        _ => {
            let notice = event::comment(&format!(
                "unknown Last-Event-ID {last:?}; sending live events only"
            ));
            (Some(notice), Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(history: usize, client_buffer: usize) -> Hub {
        Hub::new(HubConfig {
            history,
            client_buffer,
            stall_timeout: Duration::from_millis(100),
            max_clients: None,
        })
    }

    async fn publish_n(hub: &Hub, n: usize) {
        for i in 0..n {
            hub.publish(|_| Event::new(format!("e{i}"))).await.unwrap();
        }
    }

    fn text(bytes: &[Bytes]) -> Vec<String> {
        bytes
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn replays_the_kept_events_after_the_last_id() {
        let hub = hub(5, 64);
        publish_n(&hub, 10).await;
        let sub = hub.subscribe(Some("7")).unwrap();
        assert!(sub.notice.is_none());
        assert_eq!(
            text(&sub.replay),
            [
                "id: 8\ndata: e7\n\n",
                "id: 9\ndata: e8\n\n",
                "id: 10\ndata: e9\n\n"
            ]
        );
        assert!(hub.subscribe(Some("10")).unwrap().replay.is_empty());
    }

    #[tokio::test]
    async fn marks_a_gap_and_an_unknown_id() {
        let hub = hub(5, 64);
        publish_n(&hub, 10).await;
        let gap = hub.subscribe(Some("2")).unwrap();
        assert_eq!(
            text(&[gap.notice.unwrap()]),
            [": 3 events after id 2 are no longer kept; replaying the 5 kept\n\n"]
        );
        assert_eq!(gap.replay.len(), 5);
        let from_start = hub.subscribe(Some("5")).unwrap();
        assert!(from_start.notice.is_none() && from_start.replay.len() == 5);
        let unknown = hub.subscribe(Some("zzz")).unwrap();
        assert!(unknown.notice.is_some() && unknown.replay.is_empty());
    }

    #[tokio::test]
    async fn finds_source_supplied_ids() {
        let hub = hub(5, 64);
        for id in ["a", "b", "c"] {
            hub.publish(|_| Event::new("x").with_id(id).unwrap())
                .await
                .unwrap();
        }
        let sub = hub.subscribe(Some("a")).unwrap();
        assert_eq!(
            text(&sub.replay),
            ["id: b\ndata: x\n\n", "id: c\ndata: x\n\n"]
        );
    }

    #[tokio::test]
    async fn live_frames_follow_the_replay_without_gap() {
        let hub = hub(5, 64);
        publish_n(&hub, 3).await;
        let mut sub = hub.subscribe(Some("1")).unwrap();
        publish_n(&hub, 1).await;
        assert_eq!(sub.replay.len(), 2);
        let live = sub.receiver.recv().await.unwrap();
        assert_eq!(&live.bytes[..], b"id: 4\ndata: e0\n\n");
        assert_eq!(live.position, sub.position + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn input_waits_for_a_full_client_then_orders_its_eviction() {
        let hub = std::sync::Arc::new(hub(0, 2));
        let sub = hub.subscribe(None).unwrap();
        let mut orders = hub.orders();
        publish_n(&hub, 2).await;
        // The third event waits: the client is two frames behind and takes none.
        let publisher = tokio::spawn({
            let hub = hub.clone();
            async move { publish_n(&hub, 1).await }
        });
        orders.changed().await.unwrap();
        assert_eq!(
            orders.borrow().evict.unwrap().through,
            sub.position,
            "the client at the limit goes"
        );
        assert!(!publisher.is_finished());
        drop(sub);
        hub.stream_ended();
        publisher.await.unwrap();
        assert_eq!(hub.stats().events_sent, 3);
    }

    #[tokio::test]
    async fn refuses_past_max_clients() {
        let hub = Hub::new(HubConfig {
            history: 0,
            client_buffer: 4,
            stall_timeout: Duration::from_secs(1),
            max_clients: Some(1),
        });
        let _first = hub.subscribe(None).unwrap();
        assert_eq!(hub.subscribe(None).unwrap_err(), Refusal::Full);
        assert_eq!(hub.stats().requests_refused, 1);
    }
}
