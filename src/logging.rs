//! Logs on stderr through `tracing`: level from -q/-v unless RUST_LOG says otherwise, colour only
//! for a terminal (never with NO_COLOR), so a log read by a script or a file holds plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{LogConfig, LogFormat};

pub fn init(config: &LogConfig) {
    let level = match (config.quiet, config.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies only speak up for warnings.
    let default = format!("warn,sse_broadcast={level}");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match config.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
