//! Scale-out flags: the Redis that makes several instances one broadcast.

use clap::Args;

use super::values::{RedisUrl, parse_redis_prefix};

#[derive(Debug, Args)]
#[command(next_help_heading = "Scale-out")]
pub struct ScaleOutFlags {
    /// Redis shared by several instances, which then act as one broadcast: same events, same
    /// ids, replay on any of them (redis:// or rediss://; through Sentinel:
    /// redis-sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/DB]#MASTER; a Redis Cluster:
    /// redis-cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...], rediss-cluster:// for TLS).
    #[arg(long, value_name = "URL", value_parser = RedisUrl,
          env = "SSE_BROADCAST_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// Prefix of the Redis keys and Pub/Sub channel; instances with the same URL and prefix are
    /// one broadcast.
    #[arg(long, value_name = "TEXT", default_value = "sse-broadcast", value_parser = parse_redis_prefix,
          env = "SSE_BROADCAST_REDIS_PREFIX")]
    pub redis_prefix: String,
}
