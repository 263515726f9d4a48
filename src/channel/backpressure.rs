//! Backpressure: input waits while the slowest live stream is `--client-buffer` frames behind,
//! and when one makes no progress for `--stall-timeout` meanwhile, the channel has the control
//! (`control/`) order its eviction; serving drops it. Streams wake waiting input as they take
//! frames or end (`Receiver`).

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tracing::field;

use super::{Channel, Sent, WireId};
use crate::control::Eviction;
use crate::event::Event;
use crate::template::Context;

impl Channel {
    /// Publishes one event built from its context (so a template can show its own id and the
    /// consumer count it reaches). Waits while the slowest client is `client_buffer` frames
    /// behind; a client stalled for `stall_timeout` meanwhile is dropped. Returns the number of
    /// streams the event was queued for, or `None` once the channel is closed.
    pub async fn publish(&self, build: impl FnOnce(Context) -> Event) -> Option<usize> {
        let _input = self.input.lock().await;
        self.publish_one(None, build)
            .await
            .map(|sent| sent.consumers)
    }

    /// Publishes `events` in order with consecutive ids (no other input comes between them),
    /// each waiting for room as `publish` does. Returns what the first and the last reached, or
    /// `None` when the channel closed before all were sent.
    pub async fn publish_all(
        &self,
        events: impl Iterator<Item = Event> + Send,
    ) -> Option<(Sent, Sent)> {
        let _input = self.input.lock().await;
        let mut first = None;
        let mut last = None;
        for event in events {
            let sent = self.publish_one(None, |_| event).await?;
            first.get_or_insert_with(|| sent.clone());
            last = Some(sent);
        }
        Some((first?, last?))
    }

    /// `seq`: the id given from outside (`NumberedInput`); `None`: the channel numbers.
    pub(super) async fn publish_one(
        &self,
        seq: Option<u64>,
        build: impl FnOnce(Context) -> Event,
    ) -> Option<Sent> {
        let mut build = Some(build);
        let mut waiting: Option<(Instant, u64)> = None;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                if state.ring.behind() < self.config.client_buffer as u64 {
                    self.input_waiting.store(false, Ordering::Relaxed);
                    let build = build.take().expect("built once, then returns");
                    if let Some(seq) = seq {
                        state.next_seq = seq;
                    }
                    let sent = self.send_event(&mut state, build);
                    drop(state);
                    self.sent.notify_waiters();
                    // Logged outside the lock: streams and the heartbeat never wait on the log.
                    // The default channel's lines stay as they were: `sent id=N consumers=M`.
                    let channel = (!self.is_default()).then(|| field::display(&self.name));
                    let consumers = sent.consumers;
                    match &sent.id {
                        WireId::Seq(id) => tracing::info!(channel, id, consumers, "sent"),
                        WireId::Given(id) => tracing::info!(channel, id, consumers, "sent"),
                    }
                    return Some(sent);
                }
                self.input_waiting.store(true, Ordering::Release);
            }
            let (since, wait) =
                *waiting.get_or_insert_with(|| (Instant::now(), self.control.begin_wait()));
            tokio::select! {
                () = &mut room => {}
                () = tokio::time::sleep_until(since + self.config.stall_timeout) => {
                    self.evict_stalled(wait);
                    waiting = None;
                }
            }
        }
    }

    /// Asks connections to drop every stream of this channel still at the buffer limit that took
    /// nothing since input began to wait (`wait`), `stall_timeout` ago.
    fn evict_stalled(&self, wait: u64) {
        let state = self.lock();
        let newest = state.ring.next() - 1;
        let through = newest.saturating_sub(self.config.client_buffer as u64);
        drop(state);
        tracing::debug!(
            channel = &*self.name,
            through,
            "input held back; dropping stalled clients"
        );
        self.control.order_eviction(Eviction {
            channel: self.id,
            through,
            wait,
        });
    }

    /// Called when the slowest stream moved on (it took a frame, or it ended): wakes input
    /// that waits for room.
    pub(super) fn room_made(&self) {
        if self.input_waiting.load(Ordering::Acquire) {
            self.room.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{new_channel, publish_n};

    #[tokio::test(start_paused = true)]
    async fn input_waits_for_a_full_client_then_orders_its_eviction() {
        let channel = new_channel(0, 2);
        let sub = channel.subscribe(None).unwrap();
        let mut evictions = channel.control.evictions();
        publish_n(&channel, 2).await;
        // The third event waits: the client is two frames behind and takes none.
        let publisher = tokio::spawn({
            let channel = channel.clone();
            async move { publish_n(&channel, 1).await }
        });
        evictions.changed().await.unwrap();
        assert_eq!(
            evictions.borrow().unwrap().through,
            sub.position,
            "the client at the limit goes"
        );
        assert!(!publisher.is_finished());
        drop(sub);
        publisher.await.unwrap();
        assert_eq!(channel.stats().events_sent, 3);
    }
}
