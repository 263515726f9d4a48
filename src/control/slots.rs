//! What an open stream holds for its life and gives back when it ends: its place under
//! `--max-clients` (`StreamSlot`), under `--max-streams-per-peer` (`PeerSlot`), and its seat among
//! its channels' readers (`--presence`). Kept beside `Control`, whose counters they give back.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Control;

/// An open stream's place under `--max-clients`, given back when it is dropped, with its place
/// under `--max-streams-per-peer` when that is set (boxed: most servers set no such limit, and
/// every stream holds its slot).
#[derive(Debug)]
pub struct StreamSlot {
    pub(super) control: Arc<Control>,
    pub(super) held: Option<Box<Held>>,
}

/// What else a stream holds for its life, given back when it ends.
#[derive(Debug, Default)]
pub(super) struct Held {
    _peer: Option<PeerSlot>,
    /// Its seat among its channels' readers (`--presence`), from a layer above this one.
    _seat: Option<Box<dyn std::fmt::Debug + Send + Sync>>,
}

impl StreamSlot {
    /// The stream holds `peer` too, for its life.
    pub fn hold(&mut self, peer: Option<PeerSlot>) {
        if peer.is_some() {
            self.held.get_or_insert_default()._peer = peer;
        }
    }

    /// The stream holds `seat` too, for its life (dropped when the stream ends).
    pub fn seat(&mut self, seat: impl std::fmt::Debug + Send + Sync + 'static) {
        self.held.get_or_insert_default()._seat = Some(Box::new(seat));
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if self.control.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.control.no_streams.notify_waiters();
        }
    }
}

/// An open stream's place under `--max-streams-per-peer`, given back when it is dropped.
#[derive(Debug)]
pub struct PeerSlot {
    pub(super) control: Arc<Control>,
    pub(super) peer: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.control.lock_per_peer();
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}
