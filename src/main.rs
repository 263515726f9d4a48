//! sse-broadcast: Server-Sent Events from a ticker or stdin lines to every connected client.
//!
//! One event's path: a source (`source::ticker` renders the template, `source::stdin` decodes a
//! line) builds an `event::Event`; `hub::Hub::publish` gives it its id and encodes it once to
//! `Bytes`, kept in the history and sent over a broadcast channel; each client's
//! `stream::client_stream` forwards those bytes as the body that `server::routes` answers
//! `/events` with, on a connection served by `connection::accept_loop`. `app` wires it together.

mod app;
mod cli;
mod connection;
mod event;
mod hub;
mod logging;
mod server;
mod source;
mod stream;
mod template;

use std::process::ExitCode;

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
