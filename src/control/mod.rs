//! The control: what every channel shares with the connections that serve their streams. It
//! orders the eviction of a channel's stalled clients (one `watch` value every connection
//! waits on), tells everyone that shutdown began (a cancellation token), marks socket progress
//! for the stall check (`client.rs` keeps each client's marks), counts open streams against
//! `--max-clients`, and keeps the process-wide counters.
//!
//! Channels (`channel/`, one per name in `channels/`) number, keep and fan out events; the
//! control knows none of them by name, only the id an eviction order carries.

mod client;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use client::{Client, Cut, Mark};

/// Why a stream or publish request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-clients` streams are open.
    Full,
    /// A publish needs a channel slot and `--max-channels` channels hold events.
    TooManyChannels,
    /// Shutting down.
    Closed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Full => "--max-clients streams are open",
            Refusal::TooManyChannels => "--max-channels channels hold events",
            Refusal::Closed => "shutting down",
        })
    }
}

/// The streams of one channel that its input has waited on for `--stall-timeout`: those still
/// at the buffer limit (last live position at or below `through`) whose socket took no byte
/// since the wait began (their progress mark is older than `wait`). Progress is counted at the
/// socket, not at the stream: a client that drains a few MiB of kernel buffer slowly is
/// reading, not stalled. Positions count per channel, hence `channel`.
///
/// One order replaces the last: should two channels evict at the same instant, a connection may
/// see only the newer order; the other channel's input then waits one more `--stall-timeout`
/// and orders again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    pub channel: u64,
    pub through: u64,
    pub wait: u64,
}

#[derive(Debug)]
pub struct Control {
    max_clients: Option<usize>,
    /// Streams open over all channels.
    streams: AtomicUsize,
    /// Counts the waits for room: a connection marks each write with the current value.
    wait_epoch: AtomicU64,
    /// The newest eviction order (see `Eviction`); connections wait on it.
    evictions: watch::Sender<Option<Eviction>>,
    /// Cancelled when shutdown begins: accept nothing new, close each connection once its
    /// response is done.
    closing: CancellationToken,
    /// Socket writes by all connections: lets shutdown tell a draining client from a stuck one.
    writes: AtomicU64,
    dropped_stalled: AtomicU64,
    refused: AtomicU64,
    /// Publishes refused because no channel slot was free (`--max-channels`).
    publishes_refused: AtomicU64,
    /// Connections closed at once for `--max-connections`.
    connections_refused: AtomicU64,
    started: Instant,
}

/// An open stream's place under `--max-clients`, given back when it is dropped.
#[derive(Debug)]
pub struct StreamSlot(Arc<Control>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Control {
    pub fn new(max_clients: Option<usize>) -> Self {
        Control {
            max_clients,
            streams: AtomicUsize::new(0),
            wait_epoch: AtomicU64::new(0),
            evictions: watch::Sender::new(None),
            closing: CancellationToken::new(),
            writes: AtomicU64::new(0),
            dropped_stalled: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            publishes_refused: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Takes a place for a new stream, or refuses past `--max-clients` (counted).
    pub fn open_stream(self: &Arc<Self>) -> Result<StreamSlot, Refusal> {
        let max = self.max_clients.unwrap_or(usize::MAX);
        match self
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            }) {
            Ok(_) => Ok(StreamSlot(self.clone())),
            Err(_) => {
                self.count_refusal();
                Err(Refusal::Full)
            }
        }
    }

    /// Starts a wait for room; returns its mark (see `Eviction`).
    pub fn begin_wait(&self) -> u64 {
        self.wait_epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Orders the connections to drop the streams `eviction` names.
    pub fn order_eviction(&self, eviction: Eviction) {
        self.evictions.send_replace(Some(eviction));
    }

    /// The mark a new connection starts with (see `Eviction`).
    pub fn wait_epoch(&self) -> u64 {
        self.wait_epoch.load(Ordering::Acquire)
    }

    /// The eviction orders: one receiver per connection.
    pub fn evictions(&self) -> watch::Receiver<Option<Eviction>> {
        self.evictions.subscribe()
    }

    /// Resolves once shutdown began (see `close`).
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.closing.cancelled()
    }

    /// Counts a client dropped for stalling (the connection does the dropping).
    pub fn count_stalled_drop(&self) {
        self.dropped_stalled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a publish (a POST, a stdin line) refused for want of a channel slot.
    pub fn count_publish_refused(&self) {
        self.publishes_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn publishes_refused(&self) -> u64 {
        self.publishes_refused.load(Ordering::Relaxed)
    }

    /// Counts a refused request (its route answers it).
    pub fn count_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Called by a connection after its socket took bytes; returns the mark to record (see
    /// `Eviction`).
    pub fn socket_wrote(&self) -> u64 {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.wait_epoch.load(Ordering::Acquire)
    }

    /// A number that grows while any socket takes bytes.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Tells every connection to close once its response is done, and the accept loop to stop.
    /// The channels end their streams (`Channels::close`).
    pub fn close(&self) {
        self.closing.cancel();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    pub fn clients_dropped_stalled(&self) -> u64 {
        self.dropped_stalled.load(Ordering::Relaxed)
    }

    pub fn requests_refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a connection closed at accept for `--max-connections` (serving closes it).
    pub fn count_connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connections_refused(&self) -> u64 {
        self.connections_refused.load(Ordering::Relaxed)
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_max_clients_and_frees_the_slot_on_drop() {
        let control = Arc::new(Control::new(Some(1)));
        let first = control.open_stream().unwrap();
        assert_eq!(control.open_stream().unwrap_err(), Refusal::Full);
        assert_eq!(control.requests_refused(), 1);
        drop(first);
        assert!(control.open_stream().is_ok());
    }
}
