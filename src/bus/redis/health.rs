//! Whether a Redis Cluster serves, for `/readyz` and `redis_up` (§16, §18). The crate's cluster
//! connection never reports the cluster lost as a whole (it retries each command on whatever
//! node it can reach), so every `PROBE` one node is asked `CLUSTER INFO`: no node answering
//! within `PROBE_TIMEOUT`, or one that says `cluster_state:fail` (it reaches no majority of
//! masters, or some slot has no master while `cluster-require-full-coverage` is on), marks the
//! cluster down until a probe finds it ok again. With full coverage off, a master lost with
//! no replica to take over stops only its own slots: the cluster stays ok, and ready.
//!
//! Only readiness follows this: the link's own `up` (which gates publishing and catching up)
//! stays with the subscriptions, so channels on the masters still serving keep flowing.

use std::sync::Arc;
use std::time::Duration;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{RedisResult, Value};

use super::RedisBus;
use super::link::Commands;

/// How often the cluster is probed.
const PROBE: Duration = Duration::from_secs(1);
/// A probe not answered in this long finds no node.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a cluster does not serve, as `/readyz` says it.
pub const NO_NODE: &str = "no Redis Cluster node answers (--redis); reconnecting";
pub const FAILED: &str = "the Redis Cluster says cluster_state:fail (--redis): no majority of \
                          masters, or slots without a master";

impl RedisBus {
    /// Probes the cluster every `PROBE` until shutdown, noting whether it serves.
    pub(super) async fn watch_cluster(self: Arc<Self>) {
        let control = self.channels.control().clone();
        let mut probe = tokio::time::interval(PROBE);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = probe.tick() => {}
                () = control.closed() => return,
            }
            let Commands::Cluster(mut commands) = self.commands() else {
                return;
            };
            let mut info = redis::cmd("CLUSTER");
            info.arg("INFO");
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
            let answer =
                tokio::time::timeout(PROBE_TIMEOUT, commands.route_command(info, routing)).await;
            let down = match answer {
                Ok(answer) => verdict(answer),
                Err(_) => Some(NO_NODE),
            };
            self.set_cluster_down(down);
        }
    }

    fn set_cluster_down(&self, down: Option<&'static str>) {
        let mut now = self.cluster_down.lock().unwrap_or_else(|e| e.into_inner());
        if *now != down {
            match down {
                Some(reason) => tracing::warn!("not ready: {reason}"),
                None => tracing::info!("the Redis Cluster serves again: ready"),
            }
            *now = down;
        }
        self.link_up.set(i64::from(down.is_none() && self.is_up()));
    }
}

/// What an answer to `CLUSTER INFO` says: `None` when the cluster serves.
fn verdict(answer: RedisResult<Value>) -> Option<&'static str> {
    let text = match answer {
        Ok(Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(Value::VerbatimString { text, .. }) => text,
        Ok(_) | Err(_) => return Some(NO_NODE),
    };
    if text.lines().any(|line| line.trim() == "cluster_state:ok") {
        None
    } else {
        Some(FAILED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_state_decides() {
        let info = |text: &str| Ok(Value::BulkString(text.as_bytes().to_vec()));
        assert_eq!(
            verdict(info("cluster_enabled:1\r\ncluster_state:ok\r\n")),
            None
        );
        assert_eq!(
            verdict(info("cluster_state:fail\r\ncluster_slots_ok:0\r\n")),
            Some(FAILED)
        );
        let lost =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(verdict(Err(lost)), Some(NO_NODE));
    }
}
