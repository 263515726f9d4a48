//! Logs on stderr through `tracing`: level from -q/-v unless RUST_LOG says otherwise, colour only
//! for a terminal (never with NO_COLOR), so a log read by a script or a file holds plain text.
//!
//! Lines are written by a background thread through a buffer flushed whenever it runs dry, so the
//! per-send line costs the sender a format and a queue push, not a system call. The queue blocks
//! when full instead of dropping: no log line is lost.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// `--log-format`: plain lines for people, JSON objects for a log shipper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How much is logged and how (`-q`, `-v`, `--log-format`).
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    pub quiet: bool,
    pub verbose: u8,
    pub format: LogFormat,
}

/// Starts logging; the returned guard flushes the last lines when dropped at exit.
pub fn init(config: &LogConfig) -> WorkerGuard {
    let level = match (config.quiet, config.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies only speak up for warnings.
    let default = format!("warn,sse_broadcast={level}");
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse::<Targets>().unwrap_or_else(|err| {
            eprintln!("sse-broadcast: RUST_LOG ignored ({err}); using the -q/-v level");
            default.parse().expect("the default filter parses")
        }),
        _ => default.parse().expect("the default filter parses"),
    };
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // The queue is preallocated (its default of 128,000 lines costs 4 MiB of RSS at rest);
    // 4,096 lines absorb a burst, and a longer one waits for the writer instead of growing.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(false)
        .thread_name("log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let layer = fmt::layer().with_writer(writer).with_ansi(colour);
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => registry.with(layer).init(),
        LogFormat::Json => registry.with(layer.json()).init(),
    }
    guard
}
