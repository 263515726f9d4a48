//! Catching a channel up from its stream: an event is handed to the channel unless it has it
//! already, a gap before it is filled from the stream (XRANGE), what the stream no longer keeps
//! is announced to the clients, and a new epoch tells that Redis lost the channel's data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redis::Value;

use super::RedisBus;
use super::entries::{Entry, read_entries};
use crate::bus::engine::{Keys, Stored};
use crate::channel::{Channel, NumberedInput};

impl RedisBus {
    /// Brings `channel` up to what Redis holds (`sync.lua`) before a stream with
    /// `last_event_id` subscribes, when the link is up and the channel may lack it: a channel
    /// this instance follows has every event up to its newest (and keeps what Redis keeps), so
    /// only a channel not caught up yet, an id past its newest (given by another instance, on
    /// its way here) or an id of the source's own needs Redis. Concurrent requests share the
    /// round trips: a request waits for the catch-up in flight, and one that started after it
    /// arrived (which has read what it needs) serves it; otherwise it runs the next one, for
    /// everyone waiting by then. A reconnect storm on one channel costs Redis little.
    /// In a cluster, a channel this instance does not follow yet is subscribed (on the node
    /// of its slot) and then caught up.
    pub async fn catch_up(&self, channel: &Channel, last_event_id: Option<&str>) {
        if !*self.up.borrow() || self.follow_shard(channel).await {
            return;
        }
        let newest = channel.numbered_input().await.newest();
        let needed = newest == 0
            || last_event_id.is_some_and(|id| match id.parse::<u64>() {
                Ok(seq) => seq > newest,
                Err(_) => id != "earliest",
            });
        if !needed {
            return;
        }
        let gate = self.catch_ups.gate(channel.id());
        let arrived = gate.started.load(Ordering::SeqCst);
        {
            let mut done = gate.done.lock().await;
            if *done <= arrived {
                let round = gate.started.fetch_add(1, Ordering::SeqCst) + 1;
                self.sync(channel, false).await;
                *done = round;
            }
        }
        self.catch_ups.release(channel.id(), gate);
    }

    /// Hands `stored` to the channel unless it has it; a gap before it is filled from the
    /// stream (`fill`), and what the stream no longer holds is announced with the next event.
    pub(super) async fn apply(
        &self,
        channel: &Channel,
        input: &mut NumberedInput<'_>,
        stored: Stored,
        fill: bool,
    ) {
        let newest = input.newest();
        if stored.seq <= newest {
            return; // already here (taken from the stream, or delivered by its publisher)
        }
        if stored.seq > newest + 1 && fill {
            self.fill(channel, input, stored.seq - 1).await;
        }
        let newest = input.newest();
        if stored.seq > newest + 1 && newest > 0 {
            let lost = stored.seq - newest - 1;
            tracing::warn!(
                channel = channel.name(),
                lost,
                after = newest,
                "events lost in Redis"
            );
            input.announce(&format!(
                "{lost} events after id {newest} were lost (no longer kept in Redis)"
            ));
        }
        // `None`: shutting down; nothing left to deliver to.
        let _ = input.deliver(stored.seq, stored.event).await;
    }

    /// Takes the kept events after the channel's newest up to `through` from the stream.
    pub(super) async fn fill(
        &self,
        channel: &Channel,
        input: &mut NumberedInput<'_>,
        through: u64,
    ) {
        let keys = Keys::new(&self.prefix, channel.name());
        let start = format!("({}-0", input.newest());
        let reply: redis::RedisResult<Value> = redis::cmd("XRANGE")
            .arg(&keys.stream)
            .arg(start)
            .arg(format!("{through}-0"))
            .query_async(&mut self.commands())
            .await;
        match reply {
            Ok(reply) => Box::pin(self.take_entries(channel, input, reply)).await,
            Err(err) => self.failed(
                &format!("reading the missed events of channel {}", channel.name()),
                &err,
            ),
        }
    }

    /// Hands the events of a stream reply to the channel, in order. An entry that cannot be
    /// read is skipped with a warning, and the clients are told with the next event (as for
    /// events Redis no longer keeps), never a silent gap.
    pub(super) async fn take_entries(
        &self,
        channel: &Channel,
        input: &mut NumberedInput<'_>,
        reply: Value,
    ) {
        let entries = match read_entries(reply) {
            Ok(entries) => entries,
            Err(why) => {
                tracing::warn!(
                    channel = channel.name(),
                    "cannot read a stream reply: {why}"
                );
                return;
            }
        };
        for entry in entries {
            match entry {
                Entry::Event(stored) => {
                    self.received.inc();
                    self.apply(channel, input, stored, false).await;
                }
                Entry::Unreadable { seq, why } => {
                    tracing::warn!(
                        channel = channel.name(),
                        id = seq,
                        "skipped an event in Redis that cannot be read: {why}"
                    );
                    let newest = input.newest();
                    if let Some(seq) = seq.filter(|&seq| seq > newest) {
                        input.announce(&format!(
                            "{} events after id {newest} were lost (unreadable in Redis)",
                            seq - newest
                        ));
                        input.skip_through(seq);
                    }
                }
            }
        }
    }

    /// Keeps the channel's epoch; a new one means Redis lost the channel's data.
    pub(super) fn note_epoch(&self, channel: &Channel, input: &mut NumberedInput<'_>, epoch: &str) {
        match input.epoch() {
            Some(known) if *known == *epoch => {}
            Some(_) => {
                self.resets.inc();
                tracing::warn!(
                    channel = channel.name(),
                    newest = input.newest(),
                    "Redis lost this channel's history (restarted empty?); numbering goes on above the newest id"
                );
                input.set_epoch(epoch);
            }
            None => input.set_epoch(epoch),
        }
    }
}

/// The catch-ups of the channels that have requests waiting, by channel id.
#[derive(Debug, Default)]
pub struct CatchUps {
    gates: Mutex<HashMap<u64, Arc<Gate>>>,
}

/// One channel's catch-ups: rounds are numbered as they start; `done` is the last finished,
/// and its lock is held while one runs.
#[derive(Debug, Default)]
struct Gate {
    started: AtomicU64,
    done: tokio::sync::Mutex<u64>,
}

impl CatchUps {
    fn gate(&self, channel: u64) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.entry(channel).or_default().clone()
    }

    /// Forgets the gate once no request holds it (clones are made under the same lock).
    fn release(&self, channel: u64, gate: Arc<Gate>) {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&gate) == 2 {
            gates.remove(&channel);
        }
    }
}
