//! Per-channel delivery of the live events: the follower only reads Pub/Sub and hands each
//! event to its channel's feed, a bounded queue drained by a task of that channel's own, so a
//! channel whose reader stalls (input waits for room, up to `--stall-timeout`) holds back no
//! other channel. Past `BACKLOG` waiting events a channel's further events are dropped from
//! the queue, not held: the feed then catches up from the stream, which keeps them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use super::RedisBus;
use crate::bus::engine::{MAX_ID, Stored};
use crate::channel::Channel;

/// Live events a channel may have waiting; past it, the channel catches up from its stream.
pub const BACKLOG: usize = 1024;

/// An event from Pub/Sub with the epoch of its channel's numbering.
type Live = (Box<str>, Stored);

/// The feeds of the channels that got live events, by channel id.
#[derive(Debug, Default)]
pub struct Feeds {
    feeds: HashMap<u64, Feed>,
    /// The number of feeds after the last sweep of those whose channel is gone.
    swept_at: usize,
}

#[derive(Debug)]
struct Feed {
    channel: Weak<Channel>,
    events: mpsc::Sender<Live>,
    /// Events were dropped because the queue was full: catch up from the stream.
    overflowed: Arc<AtomicBool>,
}

impl Feeds {
    /// Queues `stored` for `channel`, starting its feed if it has none; never waits.
    pub fn send(
        &mut self,
        bus: &Arc<RedisBus>,
        channel: &Arc<Channel>,
        epoch: &str,
        stored: Stored,
    ) {
        self.sweep();
        let alive = |feed: &Feed| {
            !feed.events.is_closed()
                && feed
                    .channel
                    .upgrade()
                    .is_some_and(|known| Arc::ptr_eq(&known, channel))
        };
        let feed = match self.feeds.get(&channel.id()) {
            Some(feed) if alive(feed) => feed,
            _ => {
                let (events, queue) = mpsc::channel(BACKLOG);
                let overflowed = Arc::new(AtomicBool::new(false));
                tokio::spawn(bus.clone().deliver(
                    Arc::downgrade(channel),
                    queue,
                    overflowed.clone(),
                ));
                let feed = Feed {
                    channel: Arc::downgrade(channel),
                    events,
                    overflowed,
                };
                self.feeds.insert(channel.id(), feed);
                &self.feeds[&channel.id()]
            }
        };
        let sent = feed.events.try_send((epoch.into(), stored));
        if let Err(mpsc::error::TrySendError::Full(_)) = sent
            && !feed.overflowed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                channel = channel.name(),
                "{BACKLOG} live events wait for this channel's slowest reader; \
                 the rest will be taken from the stream"
            );
        }
    }

    /// Drops the feeds of channels that are gone, each time the map has doubled.
    fn sweep(&mut self) {
        if self.feeds.len() < 2 * self.swept_at.max(16) {
            return;
        }
        self.feeds.retain(|_, feed| feed.channel.strong_count() > 0);
        self.swept_at = self.feeds.len();
    }
}

impl RedisBus {
    /// One channel's feed: hands its live events to it in order (filling gaps from the
    /// stream), and catches up from the stream after events were dropped. Ends with the
    /// channel, or when the follower drops the feed.
    async fn deliver(
        self: Arc<Self>,
        channel: Weak<Channel>,
        mut queue: mpsc::Receiver<Live>,
        overflowed: Arc<AtomicBool>,
    ) {
        while let Some((epoch, stored)) = queue.recv().await {
            let Some(channel) = channel.upgrade() else {
                return;
            };
            let mut input = channel.numbered_input().await;
            self.note_epoch(&channel, &mut input, &epoch);
            self.apply(&channel, &mut input, stored, true).await;
            // The follower drops an event only while the queue is full, so one more event
            // comes here after any drop: the check after it sees the flag.
            if queue.is_empty() && overflowed.swap(false, Ordering::Relaxed) {
                self.fill(&channel, &mut input, MAX_ID).await;
            }
        }
    }
}
