//! The link to the Redis in use: a client, the multiplexed commands connection and the
//! master's address. With one server the link is reopened on the same address after an
//! outage; through Sentinel each reopening first asks the Sentinels for the master, so a
//! failover is followed as an outage is (§7): reconnect, catch up, go on.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::sentinel::SentinelClient;
use redis::{Client, RedisResult};
use tokio::sync::Mutex;

use super::url::{Sentinels, Target};

/// A connection attempt that takes longer has failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A command's answer (scripts and XRANGE are quick; none blocks): past this, Redis is lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the master is found.
pub enum Finder {
    Direct(Box<Client>),
    /// The crate's Sentinel client asks the Sentinels in turn (it needs `&mut`).
    Sentinel(Box<(Mutex<SentinelClient>, Sentinels)>),
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
        }
    }
}

/// One opened link.
pub struct Link {
    pub client: Client,
    pub commands: ConnectionManager,
    /// `host:port` of the server in use (the master, through Sentinel); no password.
    pub master: String,
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
        })
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self, Finder::Sentinel(_))
    }

    /// Finds the server (asking the Sentinels, which check that it says it is the master)
    /// and opens the commands connection to it.
    pub async fn open(&self) -> RedisResult<Link> {
        let client = match self {
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
            client,
            commands,
            master,
        })
    }
}

impl Link {
    /// A Pub/Sub connection of its own, subscribed to `topic`.
    pub async fn subscribe(&self, topic: &str) -> RedisResult<PubSub> {
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        pubsub.subscribe(topic).await?;
        Ok(pubsub)
    }
}
