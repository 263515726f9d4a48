//! Logging flags: how much goes to stderr, and in which format.

use clap::{ArgAction, Args};

use super::values::Switch;
use crate::logging::{LogConfig, LogFormat};

#[derive(Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LoggingFlags {
    /// Only warnings and errors (the `listening on` line is always printed).
    #[arg(short, long, conflicts_with = "verbose", env = "SSE_BROADCAST_QUIET", value_parser = Switch)]
    pub quiet: bool,

    /// More detail (-vv for tracing). RUST_LOG overrides both.
    #[arg(short, long, action = ArgAction::Count, env = "SSE_BROADCAST_VERBOSE")]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "text",
        env = "SSE_BROADCAST_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

impl LoggingFlags {
    pub fn config(&self) -> LogConfig {
        LogConfig {
            quiet: self.quiet,
            verbose: self.verbose,
            format: self.log_format,
        }
    }
}
