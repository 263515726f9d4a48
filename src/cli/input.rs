//! Input flags: what becomes an event (the ticker, stdin lines) and where it is published.

use std::time::Duration;

use clap::Args;

use super::values::{DurationRange, MILLISECOND, Switch, WEEK};
use crate::channels::ChannelName;
use crate::event::EventName;
use crate::lines::Format;
use crate::template::Template;

/// A weekly ticker (with --count) is plausible; anything longer is a typo.
const INTERVAL: DurationRange = DurationRange::new(MILLISECOND, WEEK);

#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct InputFlags {
    /// Send --message every DURATION (500ms, 2s, 1m; 1ms to 7 days).
    #[arg(short, long, value_name = "DURATION", value_parser = INTERVAL.parser(), allow_hyphen_values = true,
          env = "SSE_BROADCAST_INTERVAL")]
    pub interval: Option<Duration>,

    /// Ticker message. Fields: {time} (local, RFC 3339) {unix} {unix_ms} {seq} (this event's id)
    /// {consumers}; {{ and }} are literal braces.
    #[arg(
        short,
        long,
        value_name = "TEMPLATE",
        default_value = "hello, now is: {time}",
        env = "SSE_BROADCAST_MESSAGE"
    )]
    pub message: Template,

    /// Ticker: stop after N events.
    #[arg(long, value_name = "N", env = "SSE_BROADCAST_COUNT")]
    pub count: Option<u64>,

    /// Read stdin lines as events (with --interval too: both merge).
    #[arg(long, env = "SSE_BROADCAST_STDIN", value_parser = Switch)]
    pub stdin: bool,

    /// Stdin line format. json: one object a line, {"data": string or any JSON value,
    /// "event"?: string, "id"?: string or number, "retry"?: milliseconds}.
    #[arg(
        short,
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "text",
        env = "SSE_BROADCAST_FORMAT"
    )]
    pub format: FormatFlag,

    /// Event type on every event (default: none, which a browser dispatches as "message").
    #[arg(short, long, value_name = "NAME", env = "SSE_BROADCAST_EVENT")]
    pub event: Option<EventName>,

    /// The channel the ticker and stdin publish to (a JSON line's "channel" overrides it); its
    /// stream is <events-path>/NAME. Names: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or
    /// digit.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "default",
        env = "SSE_BROADCAST_CHANNEL"
    )]
    pub channel: ChannelName,
}

/// `--format`'s values, as `--help` shows them; each is a `lines::Format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatFlag {
    /// Each line is the data of one event.
    Text,
    /// Each line is a JSON object: {"data": ..., "event"?, "id"?, "retry"? (ms)}.
    Json,
}

impl From<FormatFlag> for Format {
    fn from(flag: FormatFlag) -> Self {
        match flag {
            FormatFlag::Text => Format::Text,
            FormatFlag::Json => Format::Json,
        }
    }
}
