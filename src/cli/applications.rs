//! Application flags: commands run when a channel gets its first reader or loses its last.

use clap::Args;
use clap::builder::NonEmptyStringValueParser;

use crate::occupancy::Hooks;

#[derive(Debug, Args)]
#[command(next_help_heading = "Applications")]
pub struct ApplicationFlags {
    /// Run CMD (with sh -c, SSE_CHANNEL naming the channel) when a channel gets its first
    /// reader: a producer that runs only while someone watches. With --redis, readers are
    /// counted over every instance and one instance runs it. For one channel one hook runs at a
    /// time; a change meanwhile runs the other hook when it ends. Its environment has no
    /// SSE_BROADCAST_* variable.
    #[arg(long, value_name = "CMD", value_parser = NonEmptyStringValueParser::new(),
          env = "SSE_BROADCAST_ON_OCCUPIED")]
    pub on_occupied: Option<String>,

    /// Run CMD (as --on-occupied) when a channel loses its last reader (with --redis: its last
    /// reader over every instance; the readers of an instance that died count until its 15 s
    /// lease ends).
    #[arg(long, value_name = "CMD", value_parser = NonEmptyStringValueParser::new(),
          env = "SSE_BROADCAST_ON_VACATED")]
    pub on_vacated: Option<String>,
}

impl ApplicationFlags {
    pub fn hooks(&self) -> Hooks {
        Hooks {
            occupied: self.on_occupied.clone(),
            vacated: self.on_vacated.clone(),
        }
    }
}
