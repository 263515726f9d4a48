//! The Redis engine (`--redis`). Publishing runs one Lua script per run of events
//! (`publish.lua`, called from `script.rs`): it increments the channel's counter, stores each
//! event in the channel's stream under the explicit id `N-0` (trimmed to `--history` and `--history-bytes`) and
//! PUBLISHes it, so every instance numbers alike. One task per instance (`follower.rs`) takes
//! the live events from Pub/Sub on a connection of its own (commands go over the multiplexed
//! `ConnectionManager`, which never carries a blocking one) and hands them, in order, to the
//! local channel; a gap in the ids is filled from the stream (XRANGE, `catch_up.rs`). After the
//! link is lost it reconnects with backoff and catches every local channel up (`sync.lua`); an
//! epoch kept beside the counter tells when Redis lost its data, and numbering then resumes
//! above the highest id seen.
//!
//! In a Redis Cluster (`cluster.rs`, `shards.rs`) the script `SPUBLISH`es to the channel's
//! shard channel instead, and each instance `SSUBSCRIBE`s only to the channels its readers
//! follow; the crate's cluster connection follows the cluster's own failovers and slot moves.
//!
//! This file holds the bus itself: its configuration, the connection and the link's state;
//! `figures.rs` what /stats and /metrics show of it, and in a cluster `health.rs` whether it
//! serves (for /readyz).

mod catch_up;
mod cluster;
mod entries;
mod feed;
mod figures;
mod follower;
mod health;
mod link;
mod occupancy;
mod old_keys;
mod presence;
mod script;
mod shards;
mod url;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use redis::{RedisError, Script};
use tokio::sync::{Notify, watch};

use self::catch_up::CatchUps;
use self::link::{Commands, Finder, Link};
use self::shards::Shards;
use crate::channels::Channels;
use crate::errors::describe;

pub use self::figures::RedisStats;
pub use self::occupancy::{Decision, LEASE};
pub use self::presence::{Counts, field as presence_field};
pub use self::url::redacted;

/// Reconnection backoff, doubling from the first to the last. Through Sentinel the last is
/// shorter: asking again costs the Sentinels little, and a failover is then followed within a
/// second of its end.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
const SENTINEL_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A connection attempt that takes longer has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A command's answer (scripts and XRANGE are quick; none blocks): past this, Redis is lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// `--redis` and `--redis-prefix`.
#[derive(Clone)]
pub struct RedisConfig {
    pub url: String,
    pub prefix: String,
    /// `--history`: events each channel's stream keeps.
    pub history: usize,
    /// `--history-bytes`: bytes each channel's stream keeps at most (its entries' values).
    pub history_bytes: usize,
    /// `--presence`: the instances tell each other who joins and leaves.
    pub presence: bool,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A password in the URL stays out of every log and panic message.
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("history", &self.history)
            .field("history_bytes", &self.history_bytes)
            .field("presence", &self.presence)
            .finish()
    }
}

/// The Pub/Sub channels an instance subscribes to: the events, and presence when it is on.
fn topics<'a>(events: &'a str, presence: &'a Option<String>) -> Vec<&'a str> {
    std::iter::once(events).chain(presence.as_deref()).collect()
}

/// Checks a `--redis` value as the connection will read it; the error does not repeat it.
pub fn check_url(url: &str) -> Result<(), String> {
    url::Target::parse(url).map(drop)
}

#[derive(Debug)]
pub struct RedisBus {
    finder: Finder,
    /// Replaced as a whole when the link is reopened (on another master after a failover).
    link: RwLock<Arc<Link>>,
    prefix: String,
    /// The Pub/Sub channel every instance of this prefix listens on (not in a cluster).
    topic: String,
    /// With `--presence`: the Pub/Sub channel of presence announcements, listened on beside
    /// `topic`. Without it the instance subscribes to nothing more than before.
    presence_topic: Option<String>,
    /// In a cluster: the sharded subscriptions.
    shards: Option<Shards>,
    history: usize,
    history_bytes: usize,
    channels: Arc<Channels>,
    publish_script: Script,
    sync_script: Script,
    occupancy_script: Script,
    presence_script: Script,
    /// This instance among those of the prefix (its leases are kept under it).
    instance: String,
    /// Whether the Pub/Sub link is up and every local channel caught up.
    up: watch::Sender<bool>,
    /// In a cluster: why it does not serve now, as the last probe found (`health.rs`).
    cluster_down: Mutex<Option<&'static str>>,
    /// Told when a command found the server no longer the master (READONLY): the follower
    /// then reopens the link, asking the Sentinels again.
    relink: Notify,
    last_error: Mutex<Option<String>>,
    catch_ups: CatchUps,
    link_up: Gauge,
    master: Family<[(&'static str, String); 1], Gauge>,
    reconnects: Counter,
    failovers: Counter,
    redirections: Counter,
    received: Counter,
    resets: Counter,
    errors: Counter,
}

impl RedisBus {
    /// Connects (the commands connection, then Pub/Sub) and starts taking live events. An
    /// unreachable Redis (or no Sentinel that answers) is an error naming `--redis`.
    pub async fn connect(
        config: RedisConfig,
        channels: Arc<Channels>,
    ) -> anyhow::Result<Arc<Self>> {
        let url = redacted(&config.url);
        let finder = url::Target::parse(&config.url)
            .map_err(anyhow::Error::msg)
            .and_then(|target| Finder::new(target).map_err(|err| anyhow::anyhow!(describe(&err))))
            .with_context(|| format!("invalid Redis URL {url} (--redis)"))?;
        let unreachable = || format!("cannot reach Redis at {url} (--redis)");
        let link = finder
            .open()
            .await
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(unreachable)?;
        let topic = format!("{}:events", config.prefix);
        let presence_topic = config
            .presence
            .then(|| Self::presence_topic(&config.prefix));
        let (pubsub, shards) = match finder.cluster() {
            None => (
                Some(link.subscribe(&topics(&topic, &presence_topic)).await),
                None,
            ),
            Some(nodes) => (None, Some(cluster::subscriptions(nodes).await)),
        };
        let pubsub = pubsub
            .transpose()
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(unreachable)?;
        let (shards, pushes) = match shards
            .transpose()
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(unreachable)?
        {
            Some((connection, pushes)) => (Some(Shards::new(connection)), Some(pushes)),
            None => (None, None),
        };
        let bus = Arc::new(RedisBus {
            finder,
            link: RwLock::new(Arc::new(link)),
            prefix: config.prefix,
            presence_topic,
            history: config.history,
            history_bytes: config.history_bytes,
            channels,
            publish_script: Script::new(concat!(
                include_str!("../ids.lua"),
                include_str!("../publish.lua")
            )),
            sync_script: Script::new(concat!(
                include_str!("../ids.lua"),
                include_str!("../sync.lua")
            )),
            occupancy_script: Script::new(include_str!("../occupancy.lua")),
            presence_script: Script::new(include_str!("../presence.lua")),
            instance: new_epoch(),
            up: watch::Sender::new(false),
            cluster_down: Mutex::new(None),
            relink: Notify::new(),
            last_error: Mutex::new(None),
            catch_ups: CatchUps::default(),
            link_up: Gauge::default(),
            master: Family::default(),
            reconnects: Counter::default(),
            failovers: Counter::default(),
            redirections: Counter::default(),
            received: Counter::default(),
            resets: Counter::default(),
            errors: Counter::default(),
            topic,
            shards,
        });
        tracing::info!(master = bus.master(), "linked to Redis");
        for channel in bus.channels.all() {
            bus.sync(&channel, false).await;
        }
        bus.set_up(true);
        match (pubsub, pushes) {
            (Some(pubsub), _) => {
                bus.master
                    .get_or_create(&[("address", bus.master())])
                    .set(1);
                tokio::spawn(bus.clone().follow(pubsub));
                tokio::spawn(bus.clone().warn_of_old_keys());
            }
            // The masters are named once `CLUSTER NODES` is read. No old keys to look for:
            // earlier versions did not run on a cluster.
            (None, Some(pushes)) => {
                tokio::spawn(bus.clone().follow_shards(pushes));
                tokio::spawn(bus.clone().watch_cluster());
            }
            (None, None) => {}
        }
        Ok(bus)
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
        self.link_up.set(i64::from(up));
    }

    fn link(&self) -> Arc<Link> {
        self.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The commands connection of the link in use (a clone shares the connection).
    fn commands(&self) -> Commands {
        self.link().commands.clone()
    }

    fn master(&self) -> String {
        self.link().master.clone()
    }

    /// Opens the link again (through Sentinel: on the master the Sentinels name now) and
    /// subscribes; a new master is a failover followed.
    async fn reopen(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let link = self.finder.open().await?;
        let pubsub = link
            .subscribe(&topics(&self.topic, &self.presence_topic))
            .await?;
        let before = std::mem::replace(
            &mut *self.link.write().unwrap_or_else(|e| e.into_inner()),
            Arc::new(link),
        );
        let now = self.master();
        if before.master != now {
            self.failovers.inc();
            self.master.remove(&[("address", before.master.clone())]);
            self.master
                .get_or_create(&[("address", now.clone())])
                .set(1);
            tracing::warn!(
                from = before.master,
                to = now,
                "following the new Redis master"
            );
        }
        Ok(pubsub)
    }

    /// A command Redis answered with an error. Lost links are the follower's to mend; a
    /// refusal (WRONGTYPE, OOM, READONLY, an error raised by a script) will not pass by
    /// itself: it is logged at error (once per reason until a command succeeds again), counted
    /// and shown in /stats. READONLY means the server is no longer the master: reopen.
    fn failed(&self, what: &str, err: &RedisError) {
        if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
            tracing::debug!("{what}: {}", describe(err));
            return;
        }
        self.errors.inc();
        let reason = describe(err);
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(reason.as_str()) {
            tracing::error!(master = self.master(), "{what}: Redis refused: {reason}");
            *last = Some(reason);
        }
        if err.code() == Some("READONLY") {
            self.relink.notify_one();
        }
    }

    /// A command went through: a refusal reported before is over.
    fn succeeded(&self) {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = last.take() {
            tracing::info!("Redis accepts commands again (after: {reason})");
        }
    }

    /// Whether the link is up now (the follower sets it down as soon as it is lost).
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Why this instance should take no new streams because of Redis; `None` when it serves.
    pub fn unready(&self) -> Option<&'static str> {
        if !self.is_up() {
            return Some("Redis is unreachable (--redis); reconnecting");
        }
        *self.cluster_down.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Returns once the link is up.
async fn link_up(up: &mut watch::Receiver<bool>) {
    let _ = up.wait_for(|up| *up).await;
}

/// A fresh random name: an epoch, used when Redis holds none for a channel, or an instance's id.
fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}
