//! Socket activation (DESIGN.md §16): started by systemd (or `systemd-socket-activate`) with
//! listening sockets (`LISTEN_FDS`, for this process's `LISTEN_PID`), the server serves on them
//! and binds nothing. The socket outlives the process: while the service restarts, the kernel
//! keeps queueing connections on it, and the next process takes them.

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::errors::describe;

/// The TCP sockets systemd passed, ready to accept on; `None` when none was passed (or they
/// were meant for another process: `LISTEN_PID` is checked).
pub fn inherited() -> anyhow::Result<Option<Vec<TcpListener>>> {
    // The `listenfd` crate reads the variables and claims the descriptors; it is where the
    // unsafe step of owning a descriptor by number lives, not here.
    let mut passed = listenfd::ListenFd::from_env();
    if passed.len() == 0 {
        return Ok(None);
    }
    let count = passed.len();
    let context = |index: usize| {
        format!(
            "cannot serve on socket {} of {count} passed by systemd (LISTEN_FDS)",
            index + 1
        )
    };
    let mut listeners = Vec::with_capacity(count);
    for index in 0..count {
        // An error: not a TCP socket (a Unix or datagram one); none: already taken.
        let listener = passed
            .take_tcp_listener(index)
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .and_then(|listener| listener.context("it was taken already"))
            .with_context(|| context(index))?;
        listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map(|listener| listeners.push(listener))
            .map_err(|err| anyhow::anyhow!(describe(&err)))
            .with_context(|| context(index))?;
    }
    Ok(Some(listeners))
}
