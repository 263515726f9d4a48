//! The Redis engine (`--redis`). Publishing runs one Lua script per run of events
//! (`publish.lua`): it increments the channel's counter, stores each event in the channel's
//! stream under the explicit id `N-0` (trimmed to `--history`) and PUBLISHes it, so every
//! instance numbers alike. One task per instance takes the live events from Pub/Sub on a
//! connection of its own (commands go over the multiplexed `ConnectionManager`, which never
//! carries a blocking one) and hands them, in order, to the local channel; a gap in the ids is
//! filled from the stream (XRANGE). After the link is lost it reconnects with backoff and
//! catches every local channel up (`sync.lua`); an epoch kept beside the counter tells when
//! Redis lost its data, and numbering then resumes above the highest id seen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Client, Script};
use serde::Serialize;
use tokio::sync::watch;

use super::NotSent;
use super::engine::{Draft, Keys, Message, Stored};
use crate::channel::{Channel, NumberedInput, Sent, WireId};
use crate::channels::Channels;

/// A stream entry as XRANGE gives it: its id and its fields.
type Entry = (String, HashMap<String, String>);

/// A connection attempt that takes longer has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A command's answer (scripts and XRANGE are quick; none blocks): past this, Redis is lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff, doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// `--redis` and `--redis-prefix`.
#[derive(Clone)]
pub struct RedisConfig {
    pub url: String,
    pub prefix: String,
    /// `--history`: events each channel's stream keeps.
    pub history: usize,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A password in the URL stays out of every log and panic message.
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("history", &self.history)
            .finish()
    }
}

/// The link's figures for `/stats`.
#[derive(Debug, Serialize)]
pub struct RedisStats {
    pub up: bool,
    pub reconnects: u64,
    pub events_received: u64,
    /// Times a channel's epoch changed: Redis had lost its data.
    pub resets: u64,
}

#[derive(Debug)]
pub struct RedisBus {
    client: Client,
    commands: ConnectionManager,
    prefix: String,
    /// The Pub/Sub channel every instance of this prefix listens on.
    topic: String,
    history: usize,
    channels: Arc<Channels>,
    publish_script: Script,
    sync_script: Script,
    /// Whether the Pub/Sub link is up and every local channel caught up.
    up: watch::Sender<bool>,
    link_up: Gauge,
    reconnects: Counter,
    received: Counter,
    resets: Counter,
}

impl RedisBus {
    /// Connects (the commands connection, then Pub/Sub) and starts taking live events. An
    /// unreachable Redis is an error naming `--redis`.
    pub async fn connect(
        config: RedisConfig,
        channels: Arc<Channels>,
    ) -> anyhow::Result<Arc<Self>> {
        let url = redacted(&config.url);
        let client = Client::open(config.url.as_str())
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(|| format!("invalid Redis URL {url} (--redis)"))?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(BACKOFF.1);
        let unreachable = || format!("cannot reach Redis at {url} (--redis)");
        let commands = client
            .get_connection_manager_with_config(settings)
            .await
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(unreachable)?;
        let topic = format!("{}:events", config.prefix);
        let bus = Arc::new(RedisBus {
            commands,
            prefix: config.prefix,
            history: config.history,
            channels,
            publish_script: Script::new(include_str!("publish.lua")),
            sync_script: Script::new(include_str!("sync.lua")),
            up: watch::Sender::new(false),
            link_up: Gauge::default(),
            reconnects: Counter::default(),
            received: Counter::default(),
            resets: Counter::default(),
            client,
            topic,
        });
        let pubsub = bus
            .subscribe()
            .await
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(unreachable)?;
        for channel in bus.channels.all() {
            bus.sync(&channel, false).await;
        }
        bus.set_up(true);
        tokio::spawn(bus.clone().follow(pubsub));
        Ok(bus)
    }

    async fn subscribe(&self) -> redis::RedisResult<PubSub> {
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        pubsub.subscribe(&self.topic).await?;
        Ok(pubsub)
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
        self.link_up.set(i64::from(up));
    }

    /// Takes live events until the link drops, then reconnects (backoff), catches every local
    /// channel up and goes on; ends at shutdown.
    async fn follow(self: Arc<Self>, mut pubsub: PubSub) {
        let control = self.channels.control().clone();
        loop {
            {
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => self.receive(message.get_payload_bytes()).await,
                            None => break,
                        },
                        () = control.closed() => return,
                    }
                }
            }
            self.set_up(false);
            tracing::warn!(
                "lost the link to Redis; streams stay open, input waits, POST gets 503; reconnecting"
            );
            let mut delay = BACKOFF.0;
            pubsub = loop {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = control.closed() => return,
                }
                match self.subscribe().await {
                    Ok(pubsub) => break pubsub,
                    Err(err) => {
                        tracing::debug!("Redis still unreachable: {err}");
                        delay = (delay * 2).min(BACKOFF.1);
                    }
                }
            };
            self.reconnects.inc();
            self.refresh_commands().await;
            // Subscribed first, then caught up: an event published in between arrives both
            // ways and is taken once (by its id).
            for channel in self.channels.all() {
                self.sync(&channel, true).await;
            }
            self.set_up(true);
            tracing::info!("Redis is back; caught up with what was published meanwhile");
        }
    }

    /// The commands connection notices a lost link only when a command fails on it, then
    /// reconnects: a few PINGs make sure it has before catching up.
    async fn refresh_commands(&self) {
        for _ in 0..10 {
            let pong: redis::RedisResult<String> = redis::cmd("PING")
                .query_async(&mut self.commands.clone())
                .await;
            if pong.is_ok() {
                return;
            }
            tokio::time::sleep(BACKOFF.0).await;
        }
    }

    /// One Pub/Sub message: an event for a channel this instance has (others are left to the
    /// instances that have them; a channel created later catches up from the stream).
    async fn receive(&self, payload: &[u8]) {
        let message = match serde_json::from_slice::<Message>(payload) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(
                    "skipped a message on {} that is not an event: {err}",
                    self.topic
                );
                return;
            }
        };
        let Some(channel) = self.channels.get(&message.c) else {
            return;
        };
        let epoch = message.p.clone();
        let Some(stored) = message.into_stored() else {
            tracing::warn!(
                channel = channel.name(),
                "skipped an event without a numeric id"
            );
            return;
        };
        self.received.inc();
        let mut input = channel.numbered_input().await;
        self.note_epoch(&channel, &mut input, &epoch);
        self.apply(&channel, &mut input, stored, true).await;
    }

    /// Hands `stored` to the channel unless it has it; a gap before it is filled from the
    /// stream (`fill`), and what the stream no longer holds is announced with the next event.
    async fn apply(
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
    fn note_epoch(&self, channel: &Channel, input: &mut NumberedInput<'_>, epoch: &str) {
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

    /// Brings `channel` up to what Redis holds (`sync.lua`), when the link is up.
    pub async fn catch_up(&self, channel: &Channel) {
        if *self.up.borrow() {
            self.sync(channel, false).await;
        }
    }

    /// `after_outage`: the channel may have missed events the stream no longer keeps; numbering
    /// moves past them (announced). Otherwise that happens only for a channel that has nothing
    /// yet: a live one would skip an event still on its way through Pub/Sub.
    async fn sync(&self, channel: &Channel, after_outage: bool) {
        let keys = Keys::new(&self.prefix, channel.name());
        let mut input = channel.numbered_input().await;
        let newest = input.newest();
        let reply: redis::RedisResult<(Option<String>, String, Vec<Entry>)> = self
            .sync_script
            .key(&keys.counter)
            .key(&keys.stream)
            .key(&keys.epoch)
            .arg(newest)
            .arg(new_epoch())
            .invoke_async(&mut self.commands.clone())
            .await;
        let (epoch, counter, entries) = match reply {
            Ok(reply) => reply,
            Err(err) => {
                tracing::warn!(
                    channel = channel.name(),
                    "cannot catch up with Redis: {err}"
                );
                return;
            }
        };
        if let Some(epoch) = &epoch {
            self.note_epoch(channel, &mut input, epoch);
        }
        for (id, fields) in entries {
            if let Some(stored) = Stored::from_entry(&id, fields) {
                self.received.inc();
                self.apply(channel, &mut input, stored, false).await;
            }
        }
        let counter = counter.parse::<u64>().unwrap_or(0);
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
        let floor = channel.numbered_input().await.newest();
        let json: Vec<String> = drafts.iter().map(Draft::to_json).collect();
        let (epoch, first): (String, u64) = self
            .publish_script
            .key(&keys.counter)
            .key(&keys.stream)
            .key(&keys.epoch)
            .arg(self.history)
            .arg(&self.topic)
            .arg(channel.name())
            .arg(floor)
            .arg(new_epoch())
            .arg(json)
            .invoke_async(&mut self.commands.clone())
            .await
            .map_err(|err| {
                NotSent::Unavailable(format!("Redis failed to store the events (--redis): {err}"))
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
                        () = tokio::time::sleep(BACKOFF.0) => {}
                        () = control.closed() => return None,
                    }
                }
            }
        }
    }

    pub fn stats(&self) -> RedisStats {
        RedisStats {
            up: *self.up.borrow(),
            reconnects: self.reconnects.get(),
            events_received: self.received.get(),
            resets: self.resets.get(),
        }
    }

    /// The link's metrics, read at every scrape.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "redis_up",
            "Whether the link to Redis is up (1) or down (0)",
            self.link_up.clone(),
        );
        registry.register(
            "redis_reconnects",
            "Times the link to Redis came back after it was lost",
            self.reconnects.clone(),
        );
        registry.register(
            "redis_events_received",
            "Events taken from Redis (Pub/Sub and catching up)",
            self.received.clone(),
        );
        registry.register(
            "redis_resets",
            "Times Redis was found to have lost a channel's data",
            self.resets.clone(),
        );
    }
}

/// Returns once the link is up.
async fn link_up(up: &mut watch::Receiver<bool>) {
    let _ = up.wait_for(|up| *up).await;
}

/// The URL as logs and errors show it: a password in it is left out.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

/// An error as a person reads it: "Connection refused", without "(os error 111)".
fn describe(err: &redis::RedisError) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

/// A fresh epoch, used when Redis holds none for a channel.
fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_stays_out_of_messages() {
        assert_eq!(
            redacted("rediss://user:secret@cache.internal:6380/2"),
            "rediss://…@cache.internal:6380/2"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
