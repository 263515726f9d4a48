//! The control: what every channel shares with the connections that serve their streams. It
//! orders the eviction of a channel's stalled clients (one `watch` value every connection
//! waits on), tells everyone that shutdown began (a cancellation token), marks socket progress
//! for the stall check (`client.rs` keeps each client's marks), counts open streams against
//! `--max-clients`, hands out each stream's end during a drain (`drain.rs`), keeps the
//! process-wide counters, and passes on each channel's occupancy changes (`occupancy.rs`) to
//! whoever runs the hooks.
//!
//! Channels (`channel/`, one per name in `channels/`) number, keep and fan out events; the
//! control knows none of them by name, only the id an eviction order carries.

mod client;
mod drain;
mod occupancy;
mod slots;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub use client::{Client, Cut, Mark};
pub use drain::Drain;
pub use occupancy::{Change, Watch};
pub use slots::{PeerSlot, StreamSlot};

/// Why a stream or publish request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-clients` streams are open.
    Full,
    /// `--max-streams-per-peer` streams are open from this client's address.
    PeerFull,
    /// A publish needs a channel slot and `--max-channels` channels hold events.
    TooManyChannels,
    /// Shutting down.
    Closed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Full => "--max-clients streams are open",
            Refusal::PeerFull => "--max-streams-per-peer streams are open from this address",
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
    /// Woken when the last open stream ends (a drain waits for it).
    no_streams: Notify,
    /// `--drain`, when it is not 0.
    drain: Option<Arc<Drain>>,
    /// `--max-streams-per-peer`, and the streams open per client address (only while it is set).
    max_per_peer: Option<usize>,
    per_peer: Mutex<HashMap<IpAddr, usize>>,
    /// Counts the waits for room: a connection marks each write with the current value.
    wait_epoch: AtomicU64,
    /// The newest eviction order (see `Eviction`); connections wait on it.
    evictions: watch::Sender<Option<Eviction>>,
    /// Cancelled when shutdown begins: accept nothing new, close each connection once its
    /// response is done.
    closing: CancellationToken,
    /// Whether any socket took bytes since `writes` was last read: lets shutdown tell a draining
    /// client from a stuck one. A flag, not a count of writes: every connection writing to one
    /// shared counter made its cache line move between the cores on every write.
    wrote: AtomicBool,
    /// The number `writes` gives: moved by one each time it is read after a write.
    writes: AtomicU64,
    dropped_stalled: AtomicU64,
    refused: AtomicU64,
    /// Publishes refused because no channel slot was free (`--max-channels`).
    publishes_refused: AtomicU64,
    /// Connections closed at once for `--max-connections`.
    connections_refused: AtomicU64,
    started: Instant,
    /// Channels getting their first reader or losing their last (`--on-occupied`).
    pub occupancy: Watch,
}

impl Control {
    pub fn new(max_clients: Option<usize>) -> Self {
        Control::with_peer_limit(max_clients, None)
    }

    /// With `--max-streams-per-peer` too.
    pub fn with_peer_limit(max_clients: Option<usize>, max_per_peer: Option<usize>) -> Self {
        Control {
            max_clients,
            streams: AtomicUsize::new(0),
            no_streams: Notify::new(),
            drain: None,
            max_per_peer,
            per_peer: Mutex::new(HashMap::new()),
            wait_epoch: AtomicU64::new(0),
            evictions: watch::Sender::new(None),
            closing: CancellationToken::new(),
            wrote: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            dropped_stalled: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            publishes_refused: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            started: Instant::now(),
            occupancy: Watch::default(),
        }
    }

    /// With `--drain` (`drain.rs`).
    pub fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = Some(Arc::new(drain));
        self
    }

    /// Takes a place for a new stream, or refuses past `--max-clients` (counted) and once a
    /// drain began.
    pub fn open_stream(self: &Arc<Self>) -> Result<StreamSlot, Refusal> {
        if self.is_draining() {
            return Err(Refusal::Closed);
        }
        let max = self.max_clients.unwrap_or(usize::MAX);
        match self
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            }) {
            Ok(_) => Ok(StreamSlot {
                control: self.clone(),
                held: None,
            }),
            Err(_) => {
                self.count_refusal();
                Err(Refusal::Full)
            }
        }
    }

    /// Takes a place for a new stream from `peer` (the client's address, as `--trusted-proxy`
    /// makes it out; an IPv6 one by its /64), or refuses past `--max-streams-per-peer`
    /// (counted). `None` when no limit is set: nothing is counted.
    pub fn open_peer_stream(self: &Arc<Self>, peer: IpAddr) -> Result<Option<PeerSlot>, Refusal> {
        let Some(max) = self.max_per_peer else {
            return Ok(None);
        };
        let mut open = self.lock_per_peer();
        let count = open.entry(peer).or_insert(0);
        if *count >= max {
            drop(open);
            self.count_refusal();
            return Err(Refusal::PeerFull);
        }
        *count += 1;
        Ok(Some(PeerSlot {
            control: self.clone(),
            peer,
        }))
    }

    fn lock_per_peer(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Nothing panics while holding it; recover the counts rather than cascade a panic.
        self.per_peer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `--max-clients` streams are open: a new one would be refused.
    pub fn is_full(&self) -> bool {
        self.max_clients
            .is_some_and(|max| self.streams.load(Ordering::Acquire) >= max)
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
        // Read before written: once set, the flag stays in every core's cache until `writes`
        // clears it, so a write costs no cache-line transfer.
        if !self.wrote.load(Ordering::Relaxed) {
            self.wrote.store(true, Ordering::Relaxed);
        }
        self.wait_epoch.load(Ordering::Acquire)
    }

    /// A number that grows while any socket takes bytes: it differs from the one the last call
    /// gave if and only if a socket took bytes in between.
    pub fn writes(&self) -> u64 {
        if self.wrote.swap(false, Ordering::Relaxed) {
            self.writes.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.writes.load(Ordering::Relaxed)
        }
    }

    /// Tells every connection to close once its response is done, and the accept loop to stop.
    /// The channels end their streams (`Channels::close`).
    pub fn close(&self) {
        self.closing.cancel();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Whether shutdown began, with a drain or without: new streams are refused and readiness
    /// is 503.
    pub fn is_draining(&self) -> bool {
        self.is_closing() || self.drain.as_ref().is_some_and(|drain| drain.has_begun())
    }

    /// `--drain`, when it is not 0: each stream waits on it for its end (`drain.rs`).
    pub fn drain(&self) -> Option<&Arc<Drain>> {
        self.drain.as_ref()
    }

    /// Begins the drain over the streams open now (see `drain.rs`); returns it, or `None`
    /// without `--drain`.
    pub fn begin_drain(&self) -> Option<&Drain> {
        let drain = self.drain.as_deref()?;
        drain.begin(self.open_streams());
        Some(drain)
    }

    /// Streams open over all channels.
    pub fn open_streams(&self) -> usize {
        self.streams.load(Ordering::Acquire)
    }

    /// Resolves once no stream is open.
    pub async fn streams_ended(&self) {
        loop {
            // Registered before the count is read, so an end in between is not missed.
            let ended = self.no_streams.notified();
            if self.open_streams() == 0 {
                return;
            }
            ended.await;
        }
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

    #[test]
    fn refuses_past_max_streams_per_peer_and_frees_the_slot_on_drop() {
        let control = Arc::new(Control::with_peer_limit(None, Some(2)));
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let first = control.open_peer_stream(peer).unwrap();
        let _second = control.open_peer_stream(peer).unwrap();
        assert_eq!(
            control.open_peer_stream(peer).unwrap_err(),
            Refusal::PeerFull
        );
        assert!(control.open_peer_stream(other).unwrap().is_some());
        drop(first);
        assert!(control.open_peer_stream(peer).is_ok());
        let unlimited = Arc::new(Control::new(None));
        assert!(unlimited.open_peer_stream(peer).unwrap().is_none());
    }
}
