//! The `sse-broadcast` binary: parse the command line, start logging, run, map the result to an
//! exit code. The library's `lib.rs` traces one event through the modules.

use std::process::ExitCode;

use tokio::runtime::Builder;

use sse_broadcast::cli::Run;
use sse_broadcast::{app, cli, listen, logging};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // usage errors: clap prints them and exits 2
    match cli::Cli::parse_run() {
        Run::Serve(config) => run_on(Builder::new_multi_thread(), serve(*config)),
        // One stream, read in order: one thread does it, without a worker per core (each with
        // its allocator cache) beside it.
        Run::Listen(config) => run_on(Builder::new_current_thread(), async {
            let log_flush = logging::init(&config.log);
            let code = listen::run(*config).await;
            drop(log_flush);
            ExitCode::from(code)
        }),
    }
}

fn run_on(mut builder: Builder, work: impl Future<Output = ExitCode>) -> ExitCode {
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(work),
        Err(err) => {
            eprintln!("sse-broadcast: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: cli::Config) -> ExitCode {
    let log_flush = logging::init(&config.log);
    #[cfg(not(target_env = "msvc"))]
    purge_freed_memory_while_idle();
    let result = app::run(config).await;
    drop(log_flush); // the last log lines go out before the exit status
    if let Err(err) = result {
        eprintln!("sse-broadcast: {err:#}"); // one line: context, then cause
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Memory freed by a burst of work (a reconnect storm's handshakes: 0.7 KiB per TLS connection)
/// goes back to the system after jemalloc's decay time (10 s) only when something purges it:
/// without a background thread that is the next allocations, which an idle server does not
/// make, so it kept that memory for good. One thread is enough for purging.
#[cfg(not(target_env = "msvc"))]
fn purge_freed_memory_while_idle() {
    let enabled = tikv_jemalloc_ctl::max_background_threads::write(1)
        .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
    if let Err(err) = enabled {
        tracing::debug!(%err, "jemalloc's background thread not started");
    }
}
