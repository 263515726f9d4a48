//! Catching a channel up from its stream: an event is handed to the channel unless it has it
//! already, a gap before it is filled from the stream (XRANGE), what the stream no longer keeps
//! is announced to the clients, and a new epoch tells that Redis lost the channel's data.

use redis::Value;

use super::RedisBus;
use super::entries::{Entry, read_entries};
use crate::bus::engine::{Keys, Stored};
use crate::channel::{Channel, NumberedInput};

impl RedisBus {
    /// Brings `channel` up to what Redis holds (`sync.lua`), when the link is up.
    pub async fn catch_up(&self, channel: &Channel) {
        if *self.up.borrow() {
            self.sync(channel, false).await;
        }
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
