//! The Lua script calls: `publish.lua` stores and PUBLISHes a run of events, `sync.lua` tells
//! what a channel must catch up on. Each is one atomic round trip, so every instance numbers
//! alike.

use redis::Value;

use super::{BACKOFF, RedisBus, link_up, new_epoch};
use crate::bus::NotSent;
use crate::bus::engine::{Draft, Keys, Stored, checked_id};
use crate::channel::{Channel, Sent, WireId};
use crate::errors::describe;

impl RedisBus {
    /// `after_outage`: the channel may have missed events the stream no longer keeps; numbering
    /// moves past them (announced). Otherwise that happens only for a channel that has nothing
    /// yet: a live one would skip an event still on its way through Pub/Sub. False when Redis
    /// could not be asked.
    pub(super) async fn sync(&self, channel: &Channel, after_outage: bool) -> bool {
        let keys = Keys::new(&self.prefix, channel.name());
        let mut input = channel.numbered_input().await;
        let newest = input.newest();
        let reply: redis::RedisResult<(Option<String>, String, Value)> = self
            .sync_script
            .key(&keys.counter)
            .key(&keys.stream)
            .key(&keys.epoch)
            .arg(newest)
            .arg(new_epoch())
            .invoke_async(&mut self.commands())
            .await;
        let (epoch, counter, entries) = match reply {
            Ok(reply) => {
                self.succeeded();
                reply
            }
            Err(err) => {
                self.failed(&format!("catching up channel {}", channel.name()), &err);
                return false;
            }
        };
        if let Some(epoch) = &epoch {
            self.note_epoch(channel, &mut input, epoch);
        }
        self.take_entries(channel, &mut input, entries).await;
        let Some(counter) = checked_id(&counter) else {
            if counter != "0" {
                tracing::warn!(
                    channel = channel.name(),
                    counter,
                    "the channel's counter in Redis is not an id; left as it is"
                );
            }
            return true;
        };
        let newest = input.newest();
        if counter > newest && (newest == 0 || after_outage) {
            if newest > 0 {
                input.announce(&format!(
                    "{} events after id {newest} were lost (no longer kept in Redis)",
                    counter - newest
                ));
            }
            input.skip_through(counter);
        }
        true
    }

    /// Publishes `drafts` as one run of consecutive ids, then delivers them to the local
    /// channel (unless Pub/Sub was quicker). Redis down: `Unavailable`, at once.
    pub async fn publish(
        &self,
        channel: &Channel,
        drafts: Vec<Draft>,
    ) -> Result<Vec<Sent>, NotSent> {
        if !*self.up.borrow() {
            return Err(NotSent::Unavailable(
                "Redis is unreachable (--redis)".into(),
            ));
        }
        let keys = Keys::new(&self.prefix, channel.name());
        // Classic Pub/Sub on one topic for every channel; in a cluster, sharded Pub/Sub on the
        // channel's own shard channel.
        let (publish, topic) = match self.shards {
            None => ("PUBLISH", self.topic.as_str()),
            Some(_) => ("SPUBLISH", keys.events.as_str()),
        };
        let floor = channel.numbered_input().await.newest();
        let json: Vec<String> = drafts.iter().map(Draft::to_json).collect();
        let (epoch, first): (String, String) = self
            .publish_script
            .key(&keys.counter)
            .key(&keys.stream)
            .key(&keys.epoch)
            .key(&keys.bytes)
            .arg(self.history)
            .arg(topic)
            .arg(channel.name())
            .arg(floor)
            .arg(new_epoch())
            .arg(self.history_bytes)
            .arg(publish)
            .arg(json)
            .invoke_async(&mut self.commands())
            .await
            .map_err(|err| {
                self.failed(&format!("publishing to channel {}", channel.name()), &err);
                NotSent::Unavailable(format!(
                    "Redis failed to store the events (--redis): {}",
                    describe(&err)
                ))
            })?;
        self.succeeded();
        // Checked, as every id from Redis: the script gives ids up to `MAX_ID`, a run's last
        // included, so counting on from `first` cannot overflow.
        let first = checked_id(&first)
            .filter(|first| first.checked_add(drafts.len() as u64).is_some())
            .ok_or_else(|| {
                NotSent::Unavailable(format!("Redis gave {first:?} as an id (--redis)"))
            })?;
        let mut input = channel.numbered_input().await;
        self.note_epoch(channel, &mut input, &epoch);
        let mut sent = Vec::with_capacity(drafts.len());
        for (seq, draft) in (first..).zip(drafts) {
            let event = draft.into_event(seq);
            let id = match event.id() {
                Some(id) => WireId::Given(id.to_owned()),
                None => WireId::Seq(seq),
            };
            if seq <= input.newest() {
                sent.push(Sent {
                    id,
                    consumers: channel.consumers(),
                });
                continue;
            }
            self.apply(channel, &mut input, Stored { seq, event }, true)
                .await;
            if input.newest() < seq {
                return Err(NotSent::Closed);
            }
            sent.push(Sent {
                id,
                consumers: channel.consumers(),
            });
        }
        Ok(sent)
    }

    /// Publishes a run of events, waiting while Redis is down; returns what the last reached,
    /// `None` at shutdown. An attempt cut off mid-way is made again, so events may, rarely, go
    /// out twice; never lost.
    pub async fn publish_waiting(&self, channel: &Channel, drafts: Vec<Draft>) -> Option<Sent> {
        let control = self.channels.control().clone();
        let mut up = self.up.subscribe();
        // Doubling while Redis keeps refusing (OOM, WRONGTYPE, ...): a refusal that lasts is
        // retried for ever, but not ten times a second.
        let mut delay = BACKOFF.0;
        loop {
            tokio::select! {
                () = link_up(&mut up) => {}
                () = control.closed() => return None,
            }
            match self.publish(channel, drafts.clone()).await {
                Ok(mut sent) => return sent.pop(),
                Err(NotSent::Closed) => return None,
                Err(NotSent::Unavailable(why)) => {
                    tracing::debug!("publish waits: {why}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = control.closed() => return None,
                    }
                    delay = (delay * 2).min(BACKOFF.1);
                }
            }
        }
    }
}
