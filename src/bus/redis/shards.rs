//! Sharded Pub/Sub in a Redis Cluster (§18): the publish script `SPUBLISH`es each event to its
//! channel's shard channel (`PREFIX:{NAME}:events`, in the slot of the channel's keys), and an
//! instance `SSUBSCRIBE`s only to the channels its readers follow, the first time a reader
//! arrives; a channel gone from the registry is unsubscribed by a sweep. The crate's cluster
//! connection sends each subscription to the node that owns its slot, one connection per node.
//!
//! What the cluster does to subscriptions comes as pushes: a slot moved away from a node ends
//! its subscriptions there with a `SUNSUBSCRIBE` (the channel is subscribed again, on the
//! slot's new owner), and a node's connection lost (a master killed) is a `Disconnection`
//! (every channel is subscribed again: the pushes do not say which node was lost). Each channel
//! subscribed again is then caught up from its stream, as after an outage: a gap is filled, and
//! what asynchronous replication lost is told by the missed-events comment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::cluster::{self, Node};
use super::feed::Feeds;
use super::link::Commands;
use super::{BACKOFF, RedisBus, SENTINEL_BACKOFF_MAX};
use crate::bus::engine::Keys;
use crate::channel::Channel;

/// How often channels gone from the registry are unsubscribed, and the nodes looked at again
/// (for `/stats`, and to count failovers).
const TEND: Duration = Duration::from_secs(5);

/// The subscriptions of an instance on a cluster.
pub struct Shards {
    /// The subscriptions' cluster connection (RESP3: its pushes carry the messages).
    connection: ClusterConnection,
    /// The channels followed, by name.
    followed: Mutex<HashMap<Arc<str>, Arc<Followed>>>,
    /// The live nodes, as last seen.
    pub nodes: Mutex<Vec<Node>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shards({} channels)", self.lock().len())
    }
}

/// One followed channel. `stale` until its subscription is confirmed and the channel caught
/// up; set again when the cluster ends the subscription. `gate` lets one caller at a time
/// subscribe it.
#[derive(Debug)]
struct Followed {
    stale: AtomicBool,
    gate: tokio::sync::Mutex<()>,
}

impl Shards {
    pub fn new(connection: ClusterConnection) -> Self {
        Shards {
            connection,
            followed: Mutex::default(),
            nodes: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Followed>>> {
        self.followed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks every followed channel stale; returns their names.
    fn all_stale(&self) -> Vec<Arc<str>> {
        let followed = self.lock();
        for one in followed.values() {
            one.stale.store(true, Ordering::SeqCst);
        }
        followed.keys().cloned().collect()
    }
}

impl RedisBus {
    fn shards(&self) -> Option<&Shards> {
        self.shards.as_ref()
    }

    /// In a cluster: subscribes `channel` unless it is already, and then catches it up. True
    /// when it did both (the caller need not catch up again).
    pub(super) async fn follow_shard(&self, channel: &Channel) -> bool {
        let Some(shards) = self.shards() else {
            return false;
        };
        let followed = shards
            .lock()
            .entry(channel.name().into())
            .or_insert_with(|| {
                Arc::new(Followed {
                    stale: AtomicBool::new(true),
                    gate: tokio::sync::Mutex::default(),
                })
            })
            .clone();
        self.subscribe_shard(shards, channel, &followed, false)
            .await
            .unwrap_or(false)
    }

    /// Subscribes a stale channel and catches it up; `Ok(false)`: it was not stale. `Err`: the
    /// subscription failed (it stays stale).
    async fn subscribe_shard(
        &self,
        shards: &Shards,
        channel: &Channel,
        followed: &Followed,
        after_outage: bool,
    ) -> Result<bool, ()> {
        if !followed.stale.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let _gate = followed.gate.lock().await;
        if !followed.stale.swap(false, Ordering::SeqCst) {
            return Ok(false);
        }
        let shard = Keys::new(&self.prefix, channel.name()).events;
        // Subscribed first, then caught up: an event published in between arrives both ways
        // and is taken once (by its id).
        let subscribed = shards.connection.clone().ssubscribe(&shard).await;
        if let Err(err) = subscribed {
            followed.stale.store(true, Ordering::SeqCst);
            self.failed(&format!("subscribing to channel {}", channel.name()), &err);
            return Err(());
        }
        if !self.sync(channel, after_outage).await {
            followed.stale.store(true, Ordering::SeqCst);
            return Err(());
        }
        Ok(true)
    }

    /// Takes the pushes of the subscriptions connection until shutdown; tends the
    /// subscriptions and the node list every `TEND`.
    pub(super) async fn follow_shards(
        self: Arc<Self>,
        mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    ) {
        let control = self.channels.control().clone();
        let mut feeds = Feeds::default();
        let mut tend = tokio::time::interval(TEND);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => self.take_push(push, &mut feeds),
                    None => return,
                },
                _ = tend.tick() => {
                    tokio::spawn(self.clone().tend());
                }
                () = control.closed() => return,
            }
        }
    }

    fn take_push(self: &Arc<Self>, push: PushInfo, feeds: &mut Feeds) {
        let Some(shards) = self.shards() else { return };
        match push.kind {
            PushKind::SMessage => match push.data.get(1) {
                Some(Value::BulkString(payload)) => self.receive(payload, feeds),
                _ => tracing::warn!("skipped a sharded message without a payload"),
            },
            PushKind::SUnsubscribe => {
                let Some(Value::BulkString(shard)) = push.data.first() else {
                    return;
                };
                let Some(name) = std::str::from_utf8(shard)
                    .ok()
                    .and_then(|shard| Keys::channel_of_events(&self.prefix, shard))
                else {
                    return;
                };
                // Our own SUNSUBSCRIBE comes back too: that channel is no longer followed.
                let Some(followed) = shards.lock().get(name).cloned() else {
                    return;
                };
                followed.stale.store(true, Ordering::SeqCst);
                self.redirections.inc();
                tracing::info!(
                    channel = name,
                    "the cluster moved this channel's slot; subscribing on its new owner"
                );
                tokio::spawn(self.clone().resubscribe(vec![name.into()]));
            }
            PushKind::Disconnection => {
                tracing::warn!(
                    "lost a Redis Cluster node; subscribing again and catching up; \
                     input to its slots waits, POST gets 503 meanwhile"
                );
                let names = shards.all_stale();
                tokio::spawn(self.clone().resubscribe(names));
                tokio::spawn(self.clone().tend());
            }
            _ => {}
        }
    }

    /// Subscribes the named channels again (each on the node that owns its slot now) and
    /// catches each up; tries those that fail again with backoff until they go through.
    async fn resubscribe(self: Arc<Self>, mut names: Vec<Arc<str>>) {
        let Some(shards) = self.shards() else { return };
        let control = self.channels.control().clone();
        let mut delay = BACKOFF.0;
        loop {
            let attempts = names.iter().map(|name| async {
                let followed = shards.lock().get(name).cloned();
                let (Some(channel), Some(followed)) = (self.channels.get(name), followed) else {
                    return true; // no longer followed
                };
                self.subscribe_shard(shards, &channel, &followed, true)
                    .await
                    .is_ok()
            });
            let done = join_all(attempts).await;
            names = names
                .into_iter()
                .zip(done)
                .filter_map(|(name, done)| (!done).then_some(name))
                .collect();
            if names.is_empty() {
                tracing::info!("the cluster's subscriptions are back; caught up");
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = control.closed() => return,
            }
            delay = (delay * 2).min(SENTINEL_BACKOFF_MAX);
        }
    }

    /// Unsubscribes the channels gone from the registry, and looks at the nodes again.
    async fn tend(self: Arc<Self>) {
        let Some(shards) = self.shards() else { return };
        let gone: Vec<Arc<str>> = {
            let mut followed = shards.lock();
            let gone: Vec<Arc<str>> = followed
                .keys()
                .filter(|name| self.channels.get(name).is_none())
                .cloned()
                .collect();
            for name in &gone {
                followed.remove(name);
            }
            gone
        };
        for name in gone {
            let shard = Keys::new(&self.prefix, &name).events;
            if let Err(err) = shards.connection.clone().sunsubscribe(&shard).await {
                tracing::debug!(channel = &*name, "unsubscribing: {err}");
            }
        }
        self.look_at_nodes(shards).await;
    }

    /// Reads the live nodes; a master seen before that is no longer one (it failed, and its
    /// replica took over) is a failover.
    async fn look_at_nodes(&self, shards: &Shards) {
        let Commands::Cluster(mut commands) = self.commands() else {
            return;
        };
        let nodes = match cluster::nodes(&mut commands).await {
            Ok(nodes) => nodes,
            Err(err) => return tracing::debug!("reading the cluster's nodes: {err}"),
        };
        let masters = |nodes: &[Node]| -> Vec<String> {
            nodes
                .iter()
                .filter(|node| node.role == "master")
                .map(|node| node.address.clone())
                .collect()
        };
        let mut known = shards.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let (before, now) = (masters(&known), masters(&nodes));
        for gone in before.iter().filter(|master| !now.contains(master)) {
            self.failovers.inc();
            self.master.remove(&[("address", gone.clone())]);
            tracing::warn!(
                master = gone,
                "a Redis Cluster master failed; its replica took over"
            );
        }
        for master in &now {
            self.master
                .get_or_create(&[("address", master.clone())])
                .set(1);
        }
        *known = nodes;
    }
}
