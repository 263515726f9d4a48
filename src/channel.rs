//! One channel: gives each event its id, encodes it once to `Bytes`, keeps the history for
//! replay, fans frames out over `tokio::sync::broadcast`, holds its input back while its slowest
//! client is at the buffer limit, and logs each send with the consumer count.
//!
//! Streams (see `stream.rs`) own their receivers; a channel keeps no per-client state at all. It
//! learns how far a client got from the position each stream reports to its connection, and has
//! the control (`control/`) order the eviction of a stalled one. A channel knows nothing of HTTP.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tracing::field;

use crate::control::{Control, Eviction, Refusal, StreamSlot};
use crate::event::{self, Event};
use crate::template::Context;

/// The name of the channel at `<events-path>` itself.
pub const DEFAULT_NAME: &str = "default";

/// `Last-Event-ID` (or `?lastEventId=`) asking for everything kept.
pub const EARLIEST: &str = "earliest";

/// How each channel buffers, remembers and waits.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Events kept for `Last-Event-ID` replay (0 = none), per channel.
    pub history: usize,
    /// Frames a client may be behind before input waits for it.
    pub client_buffer: usize,
    /// How long input may wait on a client that makes no progress before that client is dropped.
    pub stall_timeout: Duration,
}

/// One frame as every stream receives it. `position` counts every frame the channel has sent
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

impl Kept {
    fn wire_id(&self) -> WireId {
        match &self.id {
            Some(id) => WireId::Given(id.to_string()),
            None => WireId::Seq(self.seq),
        }
    }
}

/// An event's id as clients see it: the channel's number, or the one its source gave. In a
/// POST's answer the number is a JSON number (`last_id - first_id + 1 == events` when no line
/// gave its own id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
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

#[derive(Debug)]
struct State {
    /// The fan-out, made for the first reader and dropped when the last one leaves: its ring of
    /// `client_buffer` slots is most of what a channel costs, and a channel nobody reads (one
    /// only published to, or one waiting to be reclaimed) need not pay for it.
    tx: Option<broadcast::Sender<Frame>>,
    /// Set at shutdown: streams drain what they have, then end; nothing new is taken.
    closed: bool,
    next_seq: u64,
    next_position: u64,
    history: VecDeque<Kept>,
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
    events_sent: AtomicU64,
}

impl Channel {
    pub fn new(name: Arc<str>, id: u64, config: ChannelConfig, control: Arc<Control>) -> Self {
        let now = Instant::now();
        Channel {
            name,
            id,
            state: Mutex::new(State {
                tx: None,
                closed: false,
                next_seq: 1,
                next_position: 1,
                history: VecDeque::with_capacity(config.history.min(64)),
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
            events_sent: AtomicU64::new(0),
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

    /// Publishes one event built from its context (so a template can show its own id and the
    /// consumer count it reaches). Waits while the slowest client is `client_buffer` frames
    /// behind; a client stalled for `stall_timeout` meanwhile is dropped. Returns the number of
    /// streams the event was queued for, or `None` once the channel is closed.
    pub async fn publish(&self, build: impl FnOnce(Context) -> Event) -> Option<usize> {
        let _input = self.input.lock().await;
        self.publish_one(None, build)
            .await
            .map(|sent| sent.consumers)
    }

    /// Publishes `events` in order with consecutive ids (no other input comes between them),
    /// each waiting for room as `publish` does. Returns what the first and the last reached, or
    /// `None` when the channel closed before all were sent.
    pub async fn publish_all(&self, events: Vec<Event>) -> Option<(Sent, Sent)> {
        let _input = self.input.lock().await;
        let mut first = None;
        let mut last = None;
        for event in events {
            let sent = self.publish_one(None, |_| event).await?;
            first.get_or_insert_with(|| sent.clone());
            last = Some(sent);
        }
        Some((first?, last?))
    }

    /// `seq`: the id given from outside (`NumberedInput`); `None`: the channel numbers.
    async fn publish_one(
        &self,
        seq: Option<u64>,
        build: impl FnOnce(Context) -> Event,
    ) -> Option<Sent> {
        let mut build = Some(build);
        let mut waiting: Option<(Instant, u64)> = None;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                let behind = state.tx.as_ref().map_or(0, broadcast::Sender::len);
                if behind < self.config.client_buffer {
                    self.input_waiting.store(false, Ordering::Relaxed);
                    let build = build.take().expect("built once, then returns");
                    if let Some(seq) = seq {
                        state.next_seq = seq;
                    }
                    let sent = self.send_event(&mut state, build);
                    drop(state);
                    // Logged outside the lock: streams and the heartbeat never wait on the log.
                    // The default channel's lines stay as they were: `sent id=N consumers=M`.
                    let channel = (!self.is_default()).then(|| field::display(&self.name));
                    let consumers = sent.consumers;
                    match &sent.id {
                        WireId::Seq(id) => tracing::info!(channel, id, consumers, "sent"),
                        WireId::Given(id) => tracing::info!(channel, id, consumers, "sent"),
                    }
                    return Some(sent);
                }
                self.input_waiting.store(true, Ordering::Release);
            }
            let (since, wait) =
                *waiting.get_or_insert_with(|| (Instant::now(), self.control.begin_wait()));
            tokio::select! {
                () = &mut room => {}
                () = tokio::time::sleep_until(since + self.config.stall_timeout) => {
                    self.evict_stalled(wait);
                    waiting = None;
                }
            }
        }
    }

    /// Numbers, encodes, keeps and sends one event.
    fn send_event(&self, state: &mut State, build: impl FnOnce(Context) -> Event) -> Sent {
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

    /// Asks connections to drop every stream of this channel still at the buffer limit that took
    /// nothing since input began to wait (`wait`), `stall_timeout` ago.
    fn evict_stalled(&self, wait: u64) {
        let state = self.lock();
        let newest = state.next_position - 1;
        let through = newest.saturating_sub(self.config.client_buffer as u64);
        drop(state);
        tracing::debug!(
            channel = &*self.name,
            through,
            "input held back; dropping stalled clients"
        );
        self.control.order_eviction(Eviction {
            channel: self.id,
            through,
            wait,
        });
    }

    /// Called by a stream after it takes live frames: wakes input that waits for room.
    pub fn frames_taken(&self) {
        if self.input_waiting.load(Ordering::Acquire) {
            self.room.notify_one();
        }
    }

    /// Called when a stream ends, after its receiver is dropped: that receiver no longer holds
    /// input back, and with the last one gone the fan-out ring is freed.
    pub fn stream_ended(&self) {
        {
            let mut state = self.lock();
            if state.tx.as_ref().is_some_and(|tx| tx.receiver_count() == 0) {
                state.tx = None;
            }
        }
        self.frames_taken();
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

    /// Streams currently open on this channel.
    pub fn consumers(&self) -> usize {
        self.lock().tx.as_ref().map_or(0, |tx| tx.receiver_count())
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

    /// Takes the input for events numbered outside the channel (by the Redis engine): while
    /// held, nothing else publishes here, so ids arrive in order.
    pub async fn numbered_input(&self) -> NumberedInput<'_> {
        NumberedInput {
            channel: self,
            _input: self.input.lock().await,
        }
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

    /// Whether the registry may drop this channel: nobody reads it, and it sent nothing for
    /// `idle` (a channel that never sent anything holds nothing a client could miss). The
    /// caller checks that nobody else holds it (no publisher mid-way, no stream).
    pub fn is_reclaimable(&self, idle: Duration, now: Instant) -> bool {
        let state = self.lock();
        let readers = state.tx.as_ref().map_or(0, |tx| tx.receiver_count());
        readers == 0 && (state.next_seq == 1 || state.last_event + idle <= now)
    }

    /// Ends the broadcast: each stream delivers what it holds, then ends.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.tx = None;
    }

    pub fn stats(&self) -> ChannelStats {
        let state = self.lock();
        ChannelStats {
            consumers: state.tx.as_ref().map_or(0, |tx| tx.receiver_count()),
            events_sent: self.events_sent.load(Ordering::Relaxed),
            history_size: state.history.len(),
            oldest_id: state.history.front().map(|kept| kept.wire_id().to_string()),
            newest_id: state.history.back().map(|kept| kept.wire_id().to_string()),
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

fn all_kept(history: &VecDeque<Kept>, skip: usize) -> Vec<Bytes> {
    history.iter().skip(skip).map(|k| k.bytes.clone()).collect()
}

/// The replay for a client that last saw `last`: the kept events after it, or, when it is older
/// than the history, all of them after a comment counting the missed ones.
fn replay_after(state: &State, last: &str) -> (Option<Bytes>, Vec<Bytes>) {
    let last_seq = last.parse::<u64>().ok();
    let is_last = |kept: &Kept| match &kept.id {
        Some(id) => **id == *last,
        None => Some(kept.seq) == last_seq,
    };
    if let Some(index) = state.history.iter().rposition(is_last) {
        return (None, all_kept(&state.history, index + 1));
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
                return (None, all_kept(&state.history, 0));
            }
            let notice = event::comment(&format!(
                "{missed} events after id {seq} are no longer kept; replaying the {} kept",
                state.history.len()
            ));
            (Some(notice), all_kept(&state.history, 0))
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
    use super::*;

    fn new_channel(history: usize, client_buffer: usize) -> Channel {
        let config = ChannelConfig {
            history,
            client_buffer,
            stall_timeout: Duration::from_millis(100),
        };
        Channel::new(DEFAULT_NAME.into(), 0, config, Arc::new(Control::new(None)))
    }

    async fn publish_n(channel: &Channel, n: usize) {
        for i in 0..n {
            channel
                .publish(|_| Event::new(format!("e{i}")))
                .await
                .unwrap();
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

    #[tokio::test(start_paused = true)]
    async fn input_waits_for_a_full_client_then_orders_its_eviction() {
        let channel = Arc::new(new_channel(0, 2));
        let sub = channel.subscribe(None).unwrap();
        let mut evictions = channel.control.evictions();
        publish_n(&channel, 2).await;
        // The third event waits: the client is two frames behind and takes none.
        let publisher = tokio::spawn({
            let channel = channel.clone();
            async move { publish_n(&channel, 1).await }
        });
        evictions.changed().await.unwrap();
        assert_eq!(
            evictions.borrow().unwrap().through,
            sub.position,
            "the client at the limit goes"
        );
        assert!(!publisher.is_finished());
        drop(sub);
        channel.stream_ended();
        publisher.await.unwrap();
        assert_eq!(channel.stats().events_sent, 3);
    }
}
