//! The `sse-broadcast` binary: parse the command line, start logging, run, map the result to an
//! exit code. The library's `lib.rs` traces one event through the modules.

use std::process::ExitCode;

use sse_broadcast::{app, cli, logging};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = cli::Cli::parse_config(); // usage errors: clap prints them and exits 2
    let log_flush = logging::init(&config.log);
    let result = app::run(config).await;
    drop(log_flush); // the last log lines go out before the exit status
    if let Err(err) = result {
        eprintln!("sse-broadcast: {err:#}"); // one line: context, then cause
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
