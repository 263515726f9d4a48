//! One client as serving and its stream both see it: who it is, how far its stream got, and
//! when its socket last took bytes. Serving creates it (one per HTTP/1 connection, one per
//! HTTP/2 stream) and hands it to the routes through the request's extensions; the stream marks
//! its positions, the socket its progress, and the eviction check reads both. A stream of
//! several channels marks its position in each: it is evicted when stalled in any of them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Control, Eviction};
use crate::throttle::{SharedThrottle, WARNING_PERIOD};

/// The record of one client (an HTTP/1 connection carries one stream at a time; each HTTP/2
/// stream has its own record).
#[derive(Debug)]
pub struct Client {
    pub peer: SocketAddr,
    /// The channel of the stream being served (its positions count per channel).
    channel: AtomicU64,
    /// Position of the last live frame the stream took; `u64::MAX` while no stream is open.
    position: AtomicU64,
    /// A stream of several channels: its position in each channel after the first (the first
    /// is `channel` and `position`). Empty for a stream of one.
    further: Mutex<Option<Arc<[Mark]>>>,
    /// The control's wait mark when the client last took bytes.
    progress: AtomicU64,
    /// HTTP/2 only: the stream marks its own progress each time h2 takes a chunk (the client's
    /// window had room); on HTTP/1 the socket's writes mark it.
    marks_chunks: Option<Arc<Control>>,
}

/// Where a stream of several channels stands in one of them besides its first: the stream
/// marks it as it takes that channel's frames, the eviction check reads it.
#[derive(Debug)]
pub struct Mark {
    channel: u64,
    position: AtomicU64,
}

impl Mark {
    /// The stream stands at `position` in `channel` (an id `Channel::id` gives).
    pub fn new(channel: u64, position: u64) -> Self {
        Mark {
            channel,
            position: AtomicU64::new(position),
        }
    }

    /// The stream took live frames of this channel up to `position`.
    pub fn at(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
    }

    fn holds_back(&self, eviction: Eviction) -> bool {
        self.channel == eviction.channel
            && self.position.load(Ordering::Relaxed) <= eviction.through
    }
}

/// How a stalled client is dropped, for the warning that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Its HTTP/1 connection is closed (the stream is the connection).
    Connection,
    /// Its HTTP/2 stream is reset; the connection and its other streams go on.
    H2Stream,
}

impl Client {
    /// The client of an HTTP/1 connection (plain or TLS), whose socket writes mark progress.
    pub fn new(peer: SocketAddr, control: &Control) -> Self {
        Client {
            peer,
            channel: AtomicU64::new(0),
            position: AtomicU64::new(u64::MAX),
            further: Mutex::new(None),
            progress: AtomicU64::new(control.wait_epoch()),
            marks_chunks: None,
        }
    }

    /// The client of one HTTP/2 stream, whose body marks progress chunk by chunk.
    pub fn for_h2_stream(peer: SocketAddr, control: Arc<Control>) -> Self {
        Client {
            marks_chunks: Some(control.clone()),
            ..Client::new(peer, &control)
        }
    }

    /// A stream of `channel` starts at `position`.
    pub fn stream_started(&self, channel: u64, position: u64) {
        self.channel.store(channel, Ordering::Relaxed);
        self.position.store(position, Ordering::Relaxed);
    }

    /// The stream just started (`stream_started`) reads further channels, marked in `marks`.
    pub fn also_reads(&self, marks: Arc<[Mark]>) {
        *self.lock_further() = Some(marks);
    }

    fn lock_further(&self) -> std::sync::MutexGuard<'_, Option<Arc<[Mark]>>> {
        // Nothing panics while holding it; recover the data rather than cascade a panic.
        self.further
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stream took live frames up to `position`.
    pub fn stream_at(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
    }

    /// The stream's body handed a chunk to the protocol.
    pub fn chunk_sent(&self) {
        if let Some(control) = &self.marks_chunks {
            self.progress
                .store(control.socket_wrote(), Ordering::Relaxed);
        }
    }

    pub fn stream_ended(&self) {
        self.position.store(u64::MAX, Ordering::Relaxed);
        *self.lock_further() = None;
    }

    /// The socket took bytes: the client is reading.
    pub fn wrote(&self, control: &Control) {
        self.progress
            .store(control.socket_wrote(), Ordering::Relaxed);
    }

    /// Resolves when an eviction order names this client, after logging (saying how it is
    /// dropped) and counting it; the caller then drops it. Orders given before the call are
    /// not looked at: they named streams older than this wait.
    pub async fn evicted(&self, control: &Control, how: Cut) {
        let mut evictions = control.evictions();
        while evictions.changed().await.is_ok() {
            let eviction = *evictions.borrow_and_update();
            if self.is_evicted(eviction, control, how) {
                return;
            }
        }
        std::future::pending().await
    }

    fn is_evicted(&self, eviction: Option<Eviction>, control: &Control, how: Cut) -> bool {
        if !eviction.is_some_and(|eviction| self.is_stalled(eviction)) {
            return false;
        }
        let action = match how {
            Cut::Connection => "disconnecting it",
            Cut::H2Stream => "resetting its HTTP/2 stream",
        };
        static WARNING: SharedThrottle = SharedThrottle::new(WARNING_PERIOD);
        if let Some(clients) = WARNING.note() {
            tracing::warn!(
                peer = %self.peer,
                clients,
                "client took no event for --stall-timeout while input waited for it; {action}"
            );
        }
        control.count_stalled_drop();
        true
    }

    fn is_stalled(&self, eviction: Eviction) -> bool {
        if self.progress.load(Ordering::Relaxed) >= eviction.wait {
            return false;
        }
        let first = self.channel.load(Ordering::Relaxed) == eviction.channel
            && self.position.load(Ordering::Relaxed) <= eviction.through;
        first
            || self
                .lock_further()
                .as_deref()
                .is_some_and(|marks| marks.iter().any(|mark| mark.holds_back(eviction)))
    }
}
