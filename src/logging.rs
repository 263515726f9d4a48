//! Logs on stderr through `tracing`: level from -q/-v unless RUST_LOG says otherwise, colour only
//! for a terminal (never with NO_COLOR), so a log read by a script or a file holds plain text.
//!
//! Lines are written by a background thread through a buffer flushed whenever it runs dry, so the
//! per-send line costs the sender a format and a queue push, not a system call. Logging never
//! blocks serving: when stderr is slower than the lines (a slow terminal, `| logger`, a stopped
//! log shipper), the queue fills and further lines are dropped, never waited for. The loss is
//! counted (`lines_dropped`, in `/metrics`) and reported by a warning with the count once the
//! writer has room again. (A queue that blocks when full would stop every tokio worker that logs:
//! the server stopped answering after some 4,600 refused requests with stderr not read.)

use std::io::{BufWriter, IsTerminal};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// Lines dropped because the queue was full, counted by the writer; set by `init`.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// How often a loss is looked for, and reported when there is one.
const LOSS_CHECK: Duration = Duration::from_secs(1);

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
    // 4,096 lines absorb a burst; past them a line is dropped and counted.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(true)
        .thread_name("log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let dropped = writer.error_counter();
    let _ = DROPPED.set(dropped.clone());
    let layer = fmt::layer().with_writer(writer).with_ansi(colour);
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => registry.with(layer).init(),
        LogFormat::Json => registry.with(layer.json()).init(),
    }
    let reporter = std::thread::Builder::new()
        .name("log-loss".into())
        .spawn(move || report_losses(&dropped));
    if let Err(err) = reporter {
        tracing::warn!("log lines dropped will be counted in /metrics but not reported: {err}");
    }
    guard
}

/// Log lines dropped since start because stderr was not read as fast as they came.
pub fn lines_dropped() -> u64 {
    DROPPED
        .get()
        .map_or(0, |counter| counter.dropped_lines() as u64)
}

/// Warns with the count whenever lines were dropped since the last look. A warning that is
/// itself dropped (the queue still full) is counted too, so the next look reports again: the
/// report gets through once the writer has room.
fn report_losses(dropped: &ErrorCounter) {
    let mut reported = 0;
    loop {
        std::thread::sleep(LOSS_CHECK);
        let total = dropped.dropped_lines();
        if total > reported {
            tracing::warn!(
                dropped = total - reported,
                total,
                "log lines dropped: stderr was not read as fast as they came"
            );
            reported = total;
        }
    }
}
