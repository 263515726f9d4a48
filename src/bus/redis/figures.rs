//! The link's figures: what `/stats` shows under `redis` and what `/metrics` reads at every
//! scrape.

use prometheus_client::registry::Registry;
use serde::Serialize;

use super::RedisBus;
use super::cluster::{self, Node};

/// The link's figures for `/stats`.
#[derive(Debug, Serialize)]
pub struct RedisStats {
    pub up: bool,
    /// `host:port` of the server in use: the master, through Sentinel; the seed nodes of a
    /// cluster.
    pub master: String,
    /// A cluster's live nodes, each with its role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<Node>>,
    pub reconnects: u64,
    /// Times the link came back on another master than before (Sentinel failovers followed),
    /// or a cluster's master was replaced by its replica.
    pub failovers: u64,
    /// Subscriptions a cluster moved to another node (a slot moved), followed.
    pub redirections: u64,
    /// In a cluster: commands answered `MOVED` or `ASK` (their slot moved), followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_redirections: Option<u64>,
    pub events_received: u64,
    /// Times a channel's epoch changed: Redis had lost its data.
    pub resets: u64,
    /// Commands Redis refused (WRONGTYPE, OOM, READONLY, ...), counted since start.
    pub errors: u64,
    /// The last refusal, until a command succeeds again.
    pub error: Option<String>,
}

impl RedisBus {
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            up: self.unready().is_none(),
            master: self.master(),
            nodes: self.shards.as_ref().map(|shards| {
                shards
                    .nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            }),
            reconnects: self.reconnects.get(),
            failovers: self.failovers.get(),
            redirections: self.redirections.get(),
            command_redirections: self
                .shards
                .as_ref()
                .map(|_| cluster::COMMAND_REDIRECTIONS.get()),
            events_received: self.received.get(),
            resets: self.resets.get(),
            errors: self.errors.get(),
            error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
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
            "redis_master",
            "The Redis server in use (host:port; the master, through Sentinel; each live master of a cluster): always 1",
            self.master.clone(),
        );
        registry.register(
            "redis_reconnects",
            "Times the link to Redis came back after it was lost",
            self.reconnects.clone(),
        );
        registry.register(
            "redis_failovers",
            "Times the link came back on another master (Sentinel failovers followed), or a cluster's master was replaced by its replica",
            self.failovers.clone(),
        );
        registry.register(
            "redis_redirections",
            "Subscriptions a Redis Cluster moved to another node (a slot moved), followed",
            self.redirections.clone(),
        );
        if self.shards.is_some() {
            registry.register(
                "redis_command_redirections",
                "Commands a Redis Cluster answered MOVED or ASK (their slot moved), followed",
                cluster::COMMAND_REDIRECTIONS.clone(),
            );
        }
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
        registry.register(
            "redis_errors",
            "Commands Redis refused (WRONGTYPE, OOM, READONLY, ...)",
            self.errors.clone(),
        );
    }
}
