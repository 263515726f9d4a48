//! The bus: where inputs (ticker, stdin, POST) publish. Alone (`Local`), the channel numbers
//! and fans out at once. With `--redis` (`redis/`), an event is first stored in Redis, which
//! gives it its id; every instance then hands the same numbered events, in order, to its own
//! channel, which fans them out to its local streams. Channels never learn which it is.

mod engine;
mod redis;

use std::sync::Arc;
use std::time::SystemTime;

use crate::channel::{Channel, Sent};
use crate::event::{Event, EventName};
use crate::template::{Context, Template};

pub use self::redis::{
    RedisBus, RedisConfig, RedisStats, check_url as check_redis_url, redacted as redacted_redis_url,
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

impl Bus {
    /// Publishes `events` with consecutive ids; returns what the first and last reached. With
    /// Redis down it does not wait: the caller (POST) answers 503.
    pub async fn publish(
        &self,
        channel: &Arc<Channel>,
        events: Vec<Event>,
    ) -> Result<(Sent, Sent), NotSent> {
        match self {
            Bus::Local => channel.publish_all(events).await.ok_or(NotSent::Closed),
            Bus::Redis(redis) => {
                let drafts = events.iter().map(engine::Draft::from_event).collect();
                let sent = redis.publish(channel, drafts).await?;
                let first = sent.first().cloned().ok_or(NotSent::Closed)?;
                let last = sent.last().cloned().ok_or(NotSent::Closed)?;
                Ok((first, last))
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
            Bus::Local => channel.publish_all(events).await.map(|(_, last)| last),
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
    pub async fn catch_up(&self, channel: &Channel) {
        if let Bus::Redis(redis) = self {
            redis.catch_up(channel).await;
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
