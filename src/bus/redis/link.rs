//! The link to the Redis in use: a client, the multiplexed commands connection and the
//! master's address. With one server the link is reopened on the same address after an
//! outage; through Sentinel each reopening first asks the Sentinels for the master, so a
//! failover is followed as an outage is (§7): reconnect, catch up, go on. A Redis Cluster's
//! link is opened once: the crate's cluster connection follows the cluster itself
//! (`cluster.rs`).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::sentinel::SentinelClient;
use redis::{Client, Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::Mutex;

use super::url::{ClusterNodes, Sentinels, Target};
use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// How the master is found.
pub enum Finder {
    Direct(Box<Client>),
    /// The crate's Sentinel client asks the Sentinels in turn (it needs `&mut`).
    Sentinel(Box<(Mutex<SentinelClient>, Sentinels)>),
    /// A Redis Cluster's seed nodes.
    Cluster(Box<ClusterNodes>),
}

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither holds anything to show that is not already in /stats; both hold a password.
        match self {
            Finder::Direct(_) => f.write_str("Finder::Direct"),
            Finder::Sentinel(sentinel) => {
                let sentinels = &sentinel.1;
                write!(
                    f,
                    "Finder::Sentinel({} of {:?})",
                    sentinels.master, sentinels.addresses
                )
            }
            Finder::Cluster(nodes) => write!(f, "Finder::Cluster({:?})", nodes.addresses),
        }
    }
}

/// One opened link.
pub struct Link {
    /// The client Pub/Sub connections are opened with; none in a cluster, whose sharded
    /// subscriptions go over a cluster connection (`cluster.rs`).
    client: Option<Client>,
    pub commands: Commands,
    /// `host:port` of the server in use (the master, through Sentinel; the seed nodes of a
    /// cluster); no password.
    pub master: String,
}

/// The connection commands go over: multiplexed to one server, or the crate's cluster
/// connection, which sends each command to the master of its keys' slot and follows `MOVED`
/// and `ASK`. Both are cheap to clone (a clone shares the connection).
#[derive(Clone)]
pub enum Commands {
    Single(ConnectionManager),
    Cluster(super::cluster::Commands),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(connection) => connection.req_packed_command(cmd),
            Commands::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Commands::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Commands::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Single(connection) => connection.get_db(),
            Commands::Cluster(connection) => connection.get_db(),
        }
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({})", self.master)
    }
}

impl Finder {
    pub fn new(target: Target) -> RedisResult<Finder> {
        Ok(match target {
            Target::Direct(client) => Finder::Direct(Box::new(client)),
            Target::Sentinel(sentinels) => {
                Finder::Sentinel(Box::new((Mutex::new(sentinels.client()?), sentinels)))
            }
            Target::Cluster(nodes) => Finder::Cluster(Box::new(nodes)),
        })
    }

    /// The seed nodes, for a Redis Cluster.
    pub fn cluster(&self) -> Option<&ClusterNodes> {
        match self {
            Finder::Cluster(nodes) => Some(nodes),
            _ => None,
        }
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self, Finder::Sentinel(_))
    }

    /// Finds the server (asking the Sentinels, which check that it says it is the master)
    /// and opens the commands connection to it.
    pub async fn open(&self) -> RedisResult<Link> {
        let client = match self {
            Finder::Cluster(nodes) => {
                let commands = super::cluster::commands(nodes).await?;
                let seeds: Vec<String> = nodes
                    .addresses
                    .iter()
                    .map(|(host, port)| format!("{host}:{port}"))
                    .collect();
                return Ok(Link {
                    client: None,
                    commands: Commands::Cluster(commands),
                    master: seeds.join(","),
                });
            }
            Finder::Direct(client) => Client::clone(client),
            Finder::Sentinel(sentinel) => {
                let mut sentinel = sentinel.0.lock().await;
                // Each Sentinel may take CONNECT_TIMEOUT; a few of them, not for ever.
                tokio::time::timeout(3 * CONNECT_TIMEOUT, sentinel.async_get_client())
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??
            }
        };
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let commands = client.get_connection_manager_with_config(settings).await?;
        let master = client.get_connection_info().addr().to_string();
        Ok(Link {
            client: Some(client),
            commands: Commands::Single(commands),
            master,
        })
    }
}

impl Link {
    /// A Pub/Sub connection of its own, subscribed to `topics`.
    pub async fn subscribe(&self, topics: &[&str]) -> RedisResult<PubSub> {
        let Some(client) = &self.client else {
            return Err((ErrorKind::Client, "a cluster has no classic Pub/Sub link").into());
        };
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        pubsub.subscribe(topics).await?;
        Ok(pubsub)
    }
}
