//! The connections to a Redis Cluster, from the crate's cluster client: one for commands
//! (scripts and XRANGE, each sent to the master of its keys' slot, `MOVED` and `ASK` followed by
//! the crate) and one for the sharded subscriptions, whose RESP3 pushes carry the messages
//! (`shards.rs`). Each holds one connection per node, however many channels are followed. Kept
//! apart because a `SUNSUBSCRIBE` the server pushes when a slot moves would otherwise be taken
//! for the answer of a command in flight on that node. Also what `CLUSTER NODES` says, for
//! `/stats` and `/metrics`.
//!
//! The crate follows a command's `MOVED` and `ASK` inside its cluster connection and tells no
//! one; the answers pass through its node connections first, so the commands connection is
//! built on a node connection of ours (`Counted`) that counts them on their way.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::{ClusterConnection, Connect};
use redis::{
    AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo,
    RedisError, RedisFuture, RedisResult, Value,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::url::ClusterNodes;
use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// A command is tried this many times more (a node lost, the slot map refreshed meanwhile)
/// before it fails: within `RESPONSE_TIMEOUT` in all, then input waits or POST gets 503.
const RETRIES: u32 = 3;

fn settings(builder: ClusterClientBuilder) -> ClusterClientBuilder {
    builder
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(RETRIES)
        .min_retry_wait(100)
        .max_retry_wait(1000)
}

/// The commands connection: the cluster connection over `Counted` node connections.
pub type Commands = ClusterConnection<Counted>;

/// `MOVED` and `ASK` answers to commands (scripts, XRANGE), each then followed by the crate.
/// One for the process: the crate builds node connections with `Connect`, which takes no
/// state of ours, and a process has one bus.
pub static COMMAND_REDIRECTIONS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The commands connection (RESP2, no pushes). Built with the crate's generic constructor (it
/// is `#[doc(hidden)]` in redis 1.8), the only way to see what a node answered.
pub async fn commands(nodes: &ClusterNodes) -> RedisResult<Commands> {
    let client = settings(nodes.builder()).build()?;
    timed(client.get_async_generic_connection::<Counted>()).await
}

/// A node connection of the commands connection: the crate's own multiplexed connection,
/// counting the redirections it is answered.
#[derive(Clone)]
pub struct Counted(MultiplexedConnection);

impl Connect for Counted {
    fn connect_with_config<'a, T>(info: T, config: AsyncConnectionConfig) -> RedisFuture<'a, Self>
    where
        T: IntoConnectionInfo + Send + 'a,
    {
        Box::pin(async move {
            let connection =
                <MultiplexedConnection as Connect>::connect_with_config(info, config).await?;
            Ok(Counted(connection))
        })
    }
}

impl ConnectionLike for Counted {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let answer = self.0.req_packed_command(cmd).await;
            count_redirections(answer.as_ref().map(std::slice::from_ref));
            answer
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let answer = self.0.req_packed_commands(pipeline, offset, count).await;
            count_redirections(answer.as_deref());
            answer
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

/// Counts the `MOVED` and `ASK` in an answer: the node connection hands a server's error to
/// the cluster connection as a value (which it then follows), or as an error.
fn count_redirections(answer: Result<&[Value], &RedisError>) {
    let redirection = |code: Option<&str>| matches!(code, Some("MOVED" | "ASK"));
    let found = match answer {
        Ok(values) => values
            .iter()
            .filter(|value| match value {
                Value::ServerError(err) => redirection(Some(err.code())),
                _ => false,
            })
            .count(),
        Err(err) => usize::from(redirection(err.code())),
    };
    COMMAND_REDIRECTIONS.inc_by(found as u64);
}

/// The subscriptions connection and the pushes it receives (messages, confirmations, the
/// `SUNSUBSCRIBE`s of a slot move, and a `Disconnection` when a node's connection drops).
pub async fn subscriptions(
    nodes: &ClusterNodes,
) -> RedisResult<(ClusterConnection, mpsc::UnboundedReceiver<PushInfo>)> {
    let (pushes, received) = mpsc::unbounded_channel();
    let client = settings(nodes.builder())
        .use_protocol(ProtocolVersion::RESP3)
        .push_sender(pushes)
        .build()?;
    Ok((timed(client.get_async_connection()).await?, received))
}

/// Opening a cluster connection asks every seed in turn: bounded as a whole.
async fn timed<T>(opening: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(3 * CONNECT_TIMEOUT + Duration::from_secs(1), opening)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// A node as `CLUSTER NODES` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `host:port`.
    pub address: String,
    /// "master" or "replica".
    pub role: &'static str,
}

/// The live nodes (a node flagged `fail` is left out), as one node sees the cluster.
pub async fn nodes(commands: &mut Commands) -> RedisResult<Vec<Node>> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(commands)
        .await?;
    Ok(parse_nodes(&text))
}

/// Lines of `ID HOST:PORT@BUS[,HOSTNAME] FLAGS MASTER PING PONG EPOCH LINK SLOTS...`.
fn parse_nodes(text: &str) -> Vec<Node> {
    let mut nodes: Vec<Node> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let address = fields.next()?.split(['@', ',']).next()?;
            let flags: Vec<&str> = fields.next()?.split(',').collect();
            if flags
                .iter()
                .any(|flag| matches!(*flag, "fail" | "noaddr" | "handshake"))
            {
                return None;
            }
            let role = if flags.contains(&"master") {
                "master"
            } else {
                "replica"
            };
            Some(Node {
                address: address.to_owned(),
                role,
            })
        })
        .collect();
    nodes.sort_by(|a, b| (a.role, &a.address).cmp(&(b.role, &b.address)));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_leave_out_failed_ones() {
        let text = "\
a 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922
b 127.0.0.1:7001@17001 myself,master - 0 1 1 connected 0-5460
c 127.0.0.1:7003@17003 master,fail - 0 1 3 connected
d 127.0.0.1:7004@17004,h slave b 0 1 1 connected
";
        let nodes = parse_nodes(text);
        let shown: Vec<(&str, &str)> = nodes
            .iter()
            .map(|node| (node.address.as_str(), node.role))
            .collect();
        assert_eq!(
            shown,
            [
                ("127.0.0.1:7001", "master"),
                ("127.0.0.1:7002", "master"),
                ("127.0.0.1:7004", "replica")
            ]
        );
    }
}
