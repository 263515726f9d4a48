//! The Pub/Sub follower: one task per instance takes the live events from Pub/Sub and hands
//! them, in order, to the local channels; when the link drops it reconnects with backoff and
//! catches every local channel up before saying the link is up again.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::join_all;
use redis::aio::PubSub;

use super::feed::Feeds;
use super::{BACKOFF, RedisBus, SENTINEL_BACKOFF_MAX};
use crate::bus::engine::Message;

impl RedisBus {
    /// Takes live events until the link drops, then reconnects (backoff), catches every local
    /// channel up and goes on; ends at shutdown.
    pub(super) async fn follow(self: Arc<Self>, mut pubsub: PubSub) {
        let control = self.channels.control().clone();
        let mut feeds = Feeds::default();
        loop {
            {
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message)
                                if self.presence_topic.as_deref()
                                    == Some(message.get_channel_name()) =>
                            {
                                self.announce(message.get_payload_bytes());
                            }
                            Some(message) => self.receive(message.get_payload_bytes(), &mut feeds),
                            None => break,
                        },
                        () = self.relink.notified() => break,
                        () = control.closed() => return,
                    }
                }
            }
            self.set_up(false);
            tracing::warn!(
                "lost the link to Redis; streams stay open, input waits, POST gets 503; reconnecting"
            );
            let mut delay = BACKOFF.0;
            let longest = if self.finder.is_sentinel() {
                SENTINEL_BACKOFF_MAX
            } else {
                BACKOFF.1
            };
            pubsub = loop {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = control.closed() => return,
                }
                match self.reopen().await {
                    Ok(pubsub) => break pubsub,
                    Err(err) => {
                        tracing::debug!("Redis still unreachable: {err}");
                        delay = (delay * 2).min(longest);
                    }
                }
            };
            self.reconnects.inc();
            // Subscribed first, then caught up: an event published in between arrives both
            // ways and is taken once (by its id).
            // Every channel at once: one whose reader stalls holds back no other.
            let channels = self.channels.all();
            join_all(channels.iter().map(|channel| self.sync(channel, true))).await;
            self.set_up(true);
            tracing::info!("Redis is back; caught up with what was published meanwhile");
        }
    }

    /// One Pub/Sub message (classic, or sharded in a cluster): an event for a channel this
    /// instance has (others are left to the instances that have them; a channel created later
    /// catches up from the stream), queued on that channel's feed.
    pub(super) fn receive(self: &Arc<Self>, payload: &[u8], feeds: &mut Feeds) {
        let message = match serde_json::from_slice::<Message>(payload) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!("skipped a Pub/Sub message that is not an event: {err}");
                return;
            }
        };
        let Some(channel) = self.channels.get(&message.channel) else {
            return;
        };
        let epoch = message.epoch.clone();
        let Some(stored) = message.into_stored() else {
            tracing::warn!(
                channel = channel.name(),
                "skipped an event without a valid id"
            );
            return;
        };
        self.received.inc();
        feeds.send(self, &channel, &epoch, stored);
    }
}
