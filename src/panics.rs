//! Which panics the process survives. A panic in a task that serves one connection, or one
//! HTTP/2 stream, ends that connection (or stream) alone: tokio catches it and drops the task,
//! its socket with it, and the hook installed here logs it at error with the peer and counts it
//! (`/metrics`). Any other panic (the accept loop, the input, the heartbeat, the bus, a thread)
//! ends the process with 101, as a panic in `main` does: a server that lost one of those would
//! go on as if nothing happened and exit 0 later. A hyper, h2 or rustls bug that one client can
//! trigger must not disconnect everyone.
//!
//! At the bottom of the layers: serving says which task is a connection's (`install`'s
//! argument), the metrics read the count.

use std::net::SocketAddr;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicU64, Ordering};

static CONNECTION_PANICS: AtomicU64 = AtomicU64::new(0);

/// Installs the hook. `peer` tells, from inside the panicking task, whether it serves a
/// connection or an HTTP/2 stream, and for whom (`None`: a task the process cannot lose).
pub fn install(peer: fn() -> Option<SocketAddr>) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |panic| match peer() {
        Some(peer) => {
            CONNECTION_PANICS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                %peer,
                "{}; closing this connection alone",
                describe(panic)
            );
        }
        None => {
            report(panic);
            std::process::exit(101);
        }
    }));
}

/// Connections and HTTP/2 streams ended by a panic since start.
pub fn connection_panics() -> u64 {
    CONNECTION_PANICS.load(Ordering::Relaxed)
}

/// "panicked at src/x.rs:1:2: the message".
fn describe(panic: &PanicHookInfo<'_>) -> String {
    let payload = panic.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    match panic.location() {
        Some(at) => format!("panicked at {at}: {message}"),
        None => format!("panicked: {message}"),
    }
}

/// Panics when the variable `SSE_BROADCAST_TEST_PANIC` is `POINT:DETAIL`, so that tests can show what a
/// panic ends. POINT is `request` (DETAIL: a request path; the task serving that request
/// panics) or `stdin` (DETAIL: a line's data; the input task panics). Debug builds only: the
/// tests run the debug binary, and a release build has no switch that panics it on demand
/// (this function is empty there).
#[cfg(debug_assertions)]
pub fn provoke(point: &str, detail: &str) {
    const TEST_PANIC_ENV: &str = "SSE_BROADCAST_TEST_PANIC";
    static SPEC: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let spec = SPEC.get_or_init(|| std::env::var(TEST_PANIC_ENV).ok());
    let asked = spec.as_deref().and_then(|spec| spec.strip_prefix(point));
    if asked.and_then(|rest| rest.strip_prefix(':')) == Some(detail) {
        panic!("{TEST_PANIC_ENV} asked for a panic at {point}:{detail}");
    }
}

/// See the debug build's `provoke`: nothing here.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn provoke(_point: &str, _detail: &str) {}
