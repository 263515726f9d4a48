//! Lifecycle flags: when input starts and ends, how the server stops, and what happens to stdin
//! lines on the way.

use std::time::Duration;

use clap::Args;

use super::values::{DurationRange, HOUR, Switch, parse_size};

/// A drain's window: past an hour no service manager waits for it.
const DRAIN: DurationRange = DurationRange::new(Duration::from_secs(1), HOUR).or_off();

#[derive(Debug, Args)]
#[command(next_help_heading = "Lifecycle")]
pub struct LifecycleFlags {
    /// Read no input (and start no ticker) until N clients are connected to --channel.
    #[arg(long, value_name = "N", env = "SSE_BROADCAST_WAIT_CLIENTS")]
    pub wait_clients: Option<usize>,

    /// When input ends, deliver everything to the connected clients, end their streams, exit 0.
    #[arg(long, env = "SSE_BROADCAST_EXIT_ON_EOF", value_parser = Switch)]
    pub exit_on_eof: bool,

    /// On SIGTERM or SIGINT, refuse new streams (readiness turns 503) and end the open ones
    /// spread evenly over DURATION, each told retry: so its client comes back later, elsewhere;
    /// then exit 0. A second signal ends the rest at once. 1s to 1h; 0 ends them all at once.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = DRAIN.parser(),
          env = "SSE_BROADCAST_DRAIN")]
    pub drain: Duration,

    /// Copy stdin lines to stdout as they are read (a pass-through in a pipeline).
    #[arg(long, env = "SSE_BROADCAST_TEE", value_parser = Switch)]
    pub tee: bool,

    /// Stdin lines longer than SIZE go out in pieces of SIZE bytes, each its own event
    /// (JSON lines that long are skipped). Accepts 4MiB, 64KiB, 1000000.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size,
          env = "SSE_BROADCAST_MAX_LINE_BYTES")]
    pub max_line_bytes: usize,
}
