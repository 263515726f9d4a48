//! The ticker: renders `--message` every `--interval` as it is published (`Bus::tick`), so
//! `{seq}` and `{consumers}` show the id and the audience of the very event they are part of.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::bus::Bus;
use crate::channel::Channel;
use crate::event::EventName;
use crate::template::Template;

/// What the ticker sends and how often.
#[derive(Debug, Clone)]
pub struct Ticker {
    pub every: Duration,
    pub template: Template,
    pub event: Option<EventName>,
    /// Stop after this many events (`None`: tick until shutdown).
    pub count: Option<u64>,
}

impl Ticker {
    /// Ticks until `count` events are sent or the channel closes. The first event goes out one
    /// interval after start, as with a Go `time.Ticker`.
    pub async fn run(self, bus: Bus, channel: Arc<Channel>) {
        let mut interval = tokio::time::interval_at(Instant::now() + self.every, self.every);
        // A tick that waited for a slow client is not made up for with a burst.
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sent = 0;
        while self.count.is_none_or(|count| sent < count) {
            interval.tick().await;
            let published = bus
                .tick(&channel, &self.template, self.event.as_ref())
                .await;
            if published.is_none() {
                return;
            }
            sent += 1;
        }
        tracing::info!(sent, "ticker finished (--count)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelConfig;
    use crate::control::Control;

    #[tokio::test(start_paused = true)]
    async fn sends_count_events_rendered_with_their_own_id() {
        let config = ChannelConfig {
            history: 10,
            history_bytes: 16 << 20,
            client_buffer: 16,
            stall_timeout: Duration::from_secs(1),
        };
        let channel = Arc::new(Channel::new(
            "build".into(),
            1,
            config,
            Arc::new(Control::new(None)),
        ));
        let mut subscription = channel.subscribe(None).unwrap();
        let ticker = Ticker {
            every: Duration::from_secs(2),
            template: "tick {seq} of {consumers}".parse().unwrap(),
            event: Some("clock".parse().unwrap()),
            count: Some(3),
        };
        let started = Instant::now();
        ticker.run(Bus::Local, channel.clone()).await;
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        for seq in 1..=3 {
            let frame = subscription.receiver.recv().await.unwrap();
            let expected = format!("event: clock\nid: {seq}\ndata: tick {seq} of 1\n\n");
            assert_eq!(frame.bytes, expected.as_bytes());
        }
    }
}
