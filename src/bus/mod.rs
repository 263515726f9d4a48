//! The bus: where inputs (ticker, stdin, POST) publish. Alone (`Local`), the channel numbers
//! and fans out at once. With `--redis` (`redis/`), an event is first stored in Redis, which
//! gives it its id; every instance then hands the same numbered events, in order, to its own
//! channel, which fans them out to its local streams. Channels never learn which it is.

mod engine;
mod redis;

use std::iter::Peekable;
use std::sync::Arc;
use std::time::SystemTime;

use crate::channel::{Channel, Sent};
use crate::event::{Event, EventName};
use crate::template::{Context, Template};

pub use self::redis::{
    Counts, Decision, LEASE, RedisBus, RedisConfig, RedisStats, check_url as check_redis_url,
    presence_field, redacted as redacted_redis_url,
};

#[derive(Debug, Clone)]
pub enum Bus {
    Local,
    Redis(Arc<RedisBus>),
}

/// Why a publish did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSent {
    /// Shutting down.
    Closed,
    /// Redis cannot be reached (the text says why).
    Unavailable(String),
}

/// A run ends at this many events or before this much data: one script call stays short, so
/// it blocks Redis only briefly and is answered well within the response timeout (a timeout
/// would answer 503 for events that were stored). Stdin's runs keep to the same limits.
pub const RUN_EVENTS: usize = 512;
pub const RUN_BYTES: usize = 1 << 20;

/// The next run of `events`: at most `RUN_EVENTS` events and `RUN_BYTES` of data (an event
/// larger than that is a run of its own). Empty once `events` is.
fn next_run(events: &mut Peekable<impl Iterator<Item = Event>>) -> Vec<Event> {
    let mut run = Vec::new();
    let mut bytes = 0;
    while run.len() < RUN_EVENTS
        && let Some(size) = events.peek().map(|event| event.data().len())
        && (run.is_empty() || bytes + size <= RUN_BYTES)
        && let Some(event) = events.next()
    {
        bytes += size;
        run.push(event);
    }
    run
}

impl Bus {
    /// Publishes `events` with consecutive ids; returns what the first and last reached. With
    /// Redis down it does not wait: the caller (POST) answers 503. `events` is taken as it is
    /// sent (alone, one at a time; with Redis in runs, `next_run`, each one script call: ids
    /// are consecutive within a run, and another publisher's event may come between two runs),
    /// so a publisher need never hold them all.
    pub async fn publish(
        &self,
        channel: &Arc<Channel>,
        events: impl Iterator<Item = Event> + Send,
    ) -> Result<(Sent, Sent), NotSent> {
        match self {
            Bus::Local => channel.publish_all(events).await.ok_or(NotSent::Closed),
            Bus::Redis(redis) => {
                let mut first = None;
                let mut last = None;
                let mut events = events.peekable();
                loop {
                    let run = next_run(&mut events);
                    if run.is_empty() {
                        break;
                    }
                    let drafts = run.iter().map(engine::Draft::from_event).collect();
                    let mut sent = redis.publish(channel, drafts).await?;
                    last = sent.pop().or(last);
                    if first.is_none() {
                        first = sent.into_iter().next().or_else(|| last.clone());
                    }
                }
                Ok((first.ok_or(NotSent::Closed)?, last.ok_or(NotSent::Closed)?))
            }
        }
    }

    /// Publishes `events` with consecutive ids; while Redis is down, waits for it to come back
    /// (stdin). Returns what the last reached; `None` once shutting down.
    pub async fn publish_waiting(
        &self,
        channel: &Arc<Channel>,
        events: Vec<Event>,
    ) -> Option<Sent> {
        match self {
            Bus::Local => channel
                .publish_all(events.into_iter())
                .await
                .map(|(_, last)| last),
            Bus::Redis(redis) => {
                let drafts = events.iter().map(engine::Draft::from_event).collect();
                redis.publish_waiting(channel, drafts).await
            }
        }
    }

    /// Publishes one rendering of the ticker's template, its `{seq}` showing the event's own
    /// id; waits for Redis as `publish_waiting` does. `None` once shutting down.
    pub async fn tick(
        &self,
        channel: &Arc<Channel>,
        template: &Template,
        event: Option<&EventName>,
    ) -> Option<()> {
        let named = |data| {
            let built = Event::new(data);
            match event {
                Some(name) => built.with_event(name.clone()),
                None => built,
            }
        };
        match self {
            Bus::Local => channel
                .publish(|context| named(template.render(&context)))
                .await
                .map(drop),
            Bus::Redis(redis) => {
                let context = Context {
                    seq: 0, // given by Redis: the rendering is cut where it goes
                    consumers: channel.consumers(),
                    now: SystemTime::now(),
                };
                let draft = engine::Draft::from_parts(
                    template.render_around_seq(&context),
                    &named(String::new()),
                );
                redis.publish_waiting(channel, vec![draft]).await.map(drop)
            }
        }
    }

    /// Brings a channel up to what Redis holds before a stream subscribes (a client arriving
    /// with a Last-Event-ID another instance gave it). Nothing to do alone, or with Redis down
    /// (the stream is served from what this instance has).
    pub async fn catch_up(&self, channel: &Channel, last_event_id: Option<&str>) {
        if let Bus::Redis(redis) = self {
            redis.catch_up(channel, last_event_id).await;
        }
    }

    /// Why Redis keeps this instance from taking new streams (unreachable; in a cluster, no
    /// node answering or the cluster failed); `None` when it serves, or alone (no `--redis`).
    pub fn redis_unready(&self) -> Option<&'static str> {
        match self {
            Bus::Local => None,
            Bus::Redis(redis) => redis.unready(),
        }
    }

    /// The Redis link's figures, with `--redis`.
    pub fn redis_stats(&self) -> Option<RedisStats> {
        match self {
            Bus::Local => None,
            Bus::Redis(redis) => Some(redis.stats()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_end_at_512_events_or_1_mib() {
        let lengths = |events: Vec<Event>| {
            let mut events = events.into_iter().peekable();
            std::iter::from_fn(|| Some(next_run(&mut events).len()))
                .take_while(|&len| len > 0)
                .collect::<Vec<_>>()
        };
        let small: Vec<Event> = (0..1100).map(|n| Event::new(n.to_string())).collect();
        assert_eq!(lengths(small), [512, 512, 76]);
        let big: Vec<Event> = (0..5).map(|_| Event::new("x".repeat(400 * 1024))).collect();
        assert_eq!(lengths(big), [2, 2, 1]);
        let huge = vec![Event::new("x".repeat(3 << 20)), Event::new("y")];
        assert_eq!(lengths(huge), [1, 1]);
        assert!(lengths(Vec::new()).is_empty());
    }
}
