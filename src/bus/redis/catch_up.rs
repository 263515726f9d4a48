//! Catching a channel up from its stream: an event is handed to the channel unless it has it
//! already, a gap before it is filled from the stream (XRANGE), what the stream no longer keeps
//! is announced to the clients, and a new epoch tells that Redis lost the channel's data.

use super::{Entry, RedisBus};
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
    async fn fill(&self, channel: &Channel, input: &mut NumberedInput<'_>, through: u64) {
        let keys = Keys::new(&self.prefix, channel.name());
        let start = format!("({}-0", input.newest());
        let entries: redis::RedisResult<Vec<Entry>> = redis::cmd("XRANGE")
            .arg(&keys.stream)
            .arg(start)
            .arg(format!("{through}-0"))
            .query_async(&mut self.commands.clone())
            .await;
        match entries {
            Ok(entries) => {
                for (id, fields) in entries {
                    if let Some(stored) = Stored::from_entry(&id, fields) {
                        self.received.inc();
                        Box::pin(self.apply(channel, input, stored, false)).await;
                    }
                }
            }
            Err(err) => tracing::warn!(
                channel = channel.name(),
                "cannot read the missed events from Redis: {err}"
            ),
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
