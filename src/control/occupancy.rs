//! Who is told when a channel gets its first reader or loses its last one (`--on-occupied`,
//! `--on-vacated`). A channel reports each change under its own lock, so the changes of one
//! channel arrive in the order they happened; the receiver (`occupancy/`) decides what runs.
//! Nothing is kept per stream: a channel knows its reader count already.

use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// One change of a channel's local occupancy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub channel: Arc<str>,
    /// True: the channel got its first reader here; false: it lost its last one here.
    pub occupied: bool,
}

/// Where changes go, once someone asked for them. Unbounded: a change is two words, at most
/// two per stream opened and closed, and the receiver takes them as fast as they come.
#[derive(Debug, Default)]
pub struct Watch(OnceLock<UnboundedSender<Change>>);

impl Watch {
    /// The receiver of every change from now on; `None` when it was asked for before.
    pub fn take(&self) -> Option<UnboundedReceiver<Change>> {
        let (sender, receiver) = unbounded_channel();
        self.0.set(sender).ok()?;
        Some(receiver)
    }

    /// Reports a change if anyone listens.
    pub fn report(&self, channel: &Arc<str>, occupied: bool) {
        if let Some(sender) = self.0.get() {
            // Err: the receiver is gone at shutdown, when nothing more is run.
            let _ = sender.send(Change {
                channel: channel.clone(),
                occupied,
            });
        }
    }
}
