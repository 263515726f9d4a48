//! The hub: what every channel shares with the connections that serve their streams. It gives
//! connections their orders (drop a stalled client of a channel, close at shutdown) through one
//! `watch` channel, marks socket progress for the stall check, counts open streams against
//! `--max-clients`, and keeps the process-wide counters.
//!
//! Channels (`channel.rs`, one per name in `channels.rs`) number, keep and fan out events; the
//! hub knows none of them by name, only the id an eviction order carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How each channel buffers, remembers and waits, and how many streams may be open in all.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Events kept for `Last-Event-ID` replay (0 = none), per channel.
    pub history: usize,
    /// Frames a client may be behind before input waits for it.
    pub client_buffer: usize,
    /// How long input may wait on a client that makes no progress before that client is dropped.
    pub stall_timeout: Duration,
    /// Streams allowed at once, over all channels; further requests are refused.
    pub max_clients: Option<usize>,
}

/// Why a stream or publish request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-clients` streams are open.
    Full,
    /// `--max-channels` named channels are alive and none can be reclaimed.
    TooManyChannels,
    /// Shutting down.
    Closed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Full => "--max-clients streams are open",
            Refusal::TooManyChannels => "--max-channels named channels are alive",
            Refusal::Closed => "shutting down",
        })
    }
}

/// What every connection is told; one value, so each connection waits on a single channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orders {
    /// Drop the streams this eviction names.
    pub evict: Option<Eviction>,
    /// Shutting down: accept nothing new and close each connection once its response is done.
    pub closing: bool,
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
pub struct Hub {
    max_clients: Option<usize>,
    /// Streams open over all channels.
    streams: AtomicUsize,
    /// Counts the waits for room: a connection marks each write with the current value.
    wait_epoch: AtomicU64,
    orders: watch::Sender<Orders>,
    /// Socket writes by all connections: lets shutdown tell a draining client from a stuck one.
    writes: AtomicU64,
    dropped_stalled: AtomicU64,
    refused: AtomicU64,
    started: Instant,
}

/// An open stream's place under `--max-clients`, given back when it is dropped.
#[derive(Debug)]
pub struct StreamSlot(Arc<Hub>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(max_clients: Option<usize>) -> Self {
        Hub {
            max_clients,
            streams: AtomicUsize::new(0),
            wait_epoch: AtomicU64::new(0),
            orders: watch::Sender::new(Orders::default()),
            writes: AtomicU64::new(0),
            dropped_stalled: AtomicU64::new(0),
            refused: AtomicU64::new(0),
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
        self.orders
            .send_modify(|orders| orders.evict = Some(eviction));
    }

    /// The mark a new connection starts with (see `Eviction`).
    pub fn wait_epoch(&self) -> u64 {
        self.wait_epoch.load(Ordering::Acquire)
    }

    /// The orders for connections: one receiver per connection, and one for the accept loop.
    pub fn orders(&self) -> watch::Receiver<Orders> {
        self.orders.subscribe()
    }

    /// Counts a client dropped for stalling (the connection does the dropping).
    pub fn count_stalled_drop(&self) {
        self.dropped_stalled.fetch_add(1, Ordering::Relaxed);
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
        self.orders.send_modify(|orders| orders.closing = true);
    }

    pub fn is_closing(&self) -> bool {
        self.orders.borrow().closing
    }

    pub fn clients_dropped_stalled(&self) -> u64 {
        self.dropped_stalled.load(Ordering::Relaxed)
    }

    pub fn requests_refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
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
        let hub = Arc::new(Hub::new(Some(1)));
        let first = hub.open_stream().unwrap();
        assert_eq!(hub.open_stream().unwrap_err(), Refusal::Full);
        assert_eq!(hub.requests_refused(), 1);
        drop(first);
        assert!(hub.open_stream().is_ok());
    }
}
