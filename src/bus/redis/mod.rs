//! The Redis engine (`--redis`). Publishing runs one Lua script per run of events
//! (`publish.lua`, called from `script.rs`): it increments the channel's counter, stores each
//! event in the channel's stream under the explicit id `N-0` (trimmed to `--history`) and
//! PUBLISHes it, so every instance numbers alike. One task per instance (`follower.rs`) takes
//! the live events from Pub/Sub on a connection of its own (commands go over the multiplexed
//! `ConnectionManager`, which never carries a blocking one) and hands them, in order, to the
//! local channel; a gap in the ids is filled from the stream (XRANGE, `catch_up.rs`). After the
//! link is lost it reconnects with backoff and catches every local channel up (`sync.lua`); an
//! epoch kept beside the counter tells when Redis lost its data, and numbering then resumes
//! above the highest id seen.
//!
//! This file holds the bus itself: its configuration, the connection, the link's state and
//! figures.

mod catch_up;
mod entries;
mod feed;
mod follower;
mod old_keys;
mod script;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use serde::Serialize;
use tokio::sync::watch;

use crate::channels::Channels;
use crate::errors::describe;

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
            publish_script: Script::new(concat!(
                include_str!("../ids.lua"),
                include_str!("../publish.lua")
            )),
            sync_script: Script::new(concat!(
                include_str!("../ids.lua"),
                include_str!("../sync.lua")
            )),
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
        tokio::spawn(bus.clone().warn_of_old_keys());
        Ok(bus)
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
        self.link_up.set(i64::from(up));
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
