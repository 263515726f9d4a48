//! Stream flags: what each client's stream carries besides events (heartbeats, `retry:`), how
//! much is kept for replay, and how far a client may fall behind.

use std::time::Duration;

use clap::Args;

use super::values::{DAY, DurationRange, HOUR, MILLISECOND, WEEK, parse_size};

/// A heartbeat is for proxies whose idle timeouts are seconds to minutes: none waits an hour.
const KEEP_ALIVE: DurationRange = DurationRange::new(MILLISECOND, HOUR).or_off();
/// A client told to wait more than a day before reconnecting might as well be told to stay away.
const RETRY: DurationRange = DurationRange::new(MILLISECOND, DAY);
/// A stream's life: below a second it would spend itself reconnecting; past a week, say off.
const MAX_STREAM_AGE: DurationRange = DurationRange::new(Duration::from_secs(1), WEEK);
/// Input waits this long for a stalled client: a day already means "never evict".
const STALL_TIMEOUT: DurationRange = DurationRange::new(MILLISECOND, DAY);

#[derive(Debug, Args)]
#[command(next_help_heading = "Stream")]
pub struct StreamFlags {
    /// Send a heartbeat comment when nothing was sent for DURATION, so proxies keep a quiet
    /// stream open (1ms to 1h); 0 disables.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = KEEP_ALIVE.parser(),
          env = "SSE_BROADCAST_KEEP_ALIVE")]
    pub keep_alive: Duration,

    /// Reconnection delay sent at the start of each stream (retry:), drawn per client from
    /// [DURATION, 1.5 × DURATION] so that a restart's reconnects don't all arrive at once (1ms
    /// to 1 day).
    #[arg(long, value_name = "DURATION", value_parser = RETRY.parser(),
          env = "SSE_BROADCAST_RETRY")]
    pub retry: Option<Duration>,

    /// End each stream after DURATION (±10 %, drawn per stream), with retry: so its client
    /// reconnects (1s to 7 days). Clients spread onto instances added since, and a token is
    /// read anew; an EventSource resumes with Last-Event-ID and misses nothing.
    #[arg(long, value_name = "DURATION", value_parser = MAX_STREAM_AGE.parser(),
          env = "SSE_BROADCAST_MAX_STREAM_AGE")]
    pub max_stream_age: Option<Duration>,

    /// Events kept for Last-Event-ID replay; 0 disables replay.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        env = "SSE_BROADCAST_HISTORY"
    )]
    pub history: usize,

    /// Bytes the events kept for replay may take at most, per channel, as sent (the oldest go
    /// first; a replay that reaches past them is told how many it missed): 16MiB, 512KiB,
    /// 1000000. One event larger than SIZE is sent but not kept.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size,
          env = "SSE_BROADCAST_HISTORY_BYTES")]
    pub history_bytes: usize,

    /// Events a client may lag behind before input waits for it.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576),
          env = "SSE_BROADCAST_CLIENT_BUFFER")]
    pub client_buffer: u32,

    /// A client that takes no event for DURATION while input waits for it is disconnected (it
    /// reconnects and replays what it missed from the history). 1ms to 1 day.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = STALL_TIMEOUT.parser(),
          env = "SSE_BROADCAST_STALL_TIMEOUT")]
    pub stall_timeout: Duration,

    /// Streams allowed at once; a further EventSource is told when to come back (a 200 stream
    /// with retry:), other /events requests get 503 with Retry-After.
    #[arg(long, value_name = "N", env = "SSE_BROADCAST_MAX_CLIENTS")]
    pub max_clients: Option<usize>,

    /// Streams one client address may hold open at once (an IPv6 one counts by its /64); a
    /// further EventSource is told when to come back, as past --max-clients. Behind a proxy,
    /// give --trusted-proxy, or every client has the proxy's address.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          env = "SSE_BROADCAST_MAX_STREAMS_PER_PEER")]
    pub max_streams_per_peer: Option<u64>,
}
