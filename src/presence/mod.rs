//! `--presence`: who reads each channel. A stream takes a `Seat` on each of its channels when
//! it opens (after its place in the channel, so it reads its own join) and gives it back when
//! it ends. A user (a token's `sub`) joins with its first stream on a channel and leaves with
//! its last; a stream without a user is an anonymous reader of its own. Joins and leaves go to
//! the channel's streams as live-only frames (`Channel::announce`): never kept, never replayed,
//! no id.
//!
//! Alone, this instance's counts are the channel's, and this file announces. With `--redis`
//! (`shared.rs`), each change of this instance's share is told to Redis, which counts over
//! every instance under a lease and announces through Pub/Sub (`bus::RedisBus::presence`).
//!
//! Either way a stream counts before its response starts: alone, its join is made under the
//! lock; with Redis, `enter` waits until Redis was told (`COUNTED_WAIT` at most). Were it told
//! later, a user who opens a stream on one instance and then closes the one it had on another
//! could be counted out first: a `leave` and a `join` for someone who never left.

mod shared;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::bus::{Counts, LEASE, RedisBus, presence_field};
use crate::channel::{Channel, live_frame};

/// The readers of one channel on this instance.
#[derive(Debug, Default)]
struct Room {
    /// Each user's streams.
    users: HashMap<Box<str>, u64>,
    anonymous: u64,
    streams: u64,
}

/// One change of this instance's share of a channel, for Redis.
#[derive(Debug)]
struct Change {
    channel: Arc<str>,
    /// The field (`bus::presence_field`) and its count now.
    field: String,
    streams: u64,
    /// Dropped once Redis was told (or could not be): a stream opening waits for it.
    told: Option<oneshot::Sender<()>>,
}

/// How long a stream opening waits for Redis to count it: about a command's response timeout.
/// Past it (Redis out of reach) the stream opens anyway; the next renewal tells Redis.
const COUNTED_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Presence {
    rooms: Mutex<HashMap<Arc<str>, Room>>,
    /// With `--redis`: Redis counts, and where this instance's changes go.
    redis: Option<(Arc<RedisBus>, UnboundedSender<Change>)>,
}

/// `GET /presence/NAME`: a channel's readers over every instance.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub channel: String,
    pub streams: u64,
    pub anonymous: u64,
    /// Named users, by name.
    pub users: Vec<UserStreams>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct UserStreams {
    pub user: String,
    pub streams: u64,
}

/// A stream's reader, while its request is served: it takes a `Seat` on its channels once it
/// is placed in them.
#[derive(Debug)]
pub struct Present {
    pub presence: Arc<Presence>,
    /// The token's `sub`; `None`: anonymous.
    pub user: Option<Box<str>>,
}

/// A stream's place among the readers of its channels; dropping it is leaving them.
#[derive(Debug)]
pub struct Seat {
    presence: Arc<Presence>,
    user: Option<Box<str>>,
    channels: Vec<Arc<Channel>>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        for channel in &self.channels {
            self.presence
                .change(channel, self.user.as_deref(), false, None);
        }
    }
}

impl Presence {
    /// Presence on this instance alone, or over every instance of `redis`: then the task
    /// returned tells Redis this instance's changes until `closing`, and those left then.
    pub fn new(
        redis: Option<Arc<RedisBus>>,
        closing: tokio_util::sync::CancellationToken,
    ) -> (Arc<Self>, Option<tokio::task::JoinHandle<()>>) {
        let Some(bus) = redis else {
            let presence = Presence {
                rooms: Mutex::default(),
                redis: None,
            };
            return (Arc::new(presence), None);
        };
        let (changes, taken) = tokio::sync::mpsc::unbounded_channel();
        let presence = Arc::new(Presence {
            rooms: Mutex::default(),
            redis: Some((bus.clone(), changes)),
        });
        let task = tokio::spawn(shared::run(presence.clone(), bus, taken, closing));
        (presence, Some(task))
    }

    /// How long a dead instance's readers still count: the lease, with `--redis`.
    pub fn lease(&self) -> Option<Duration> {
        self.redis.as_ref().map(|_| LEASE)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stream of `user` (`None`: anonymous) opened on `channels`: it joins each, and with
    /// Redis this returns once Redis counts it. Changes are told in order, so the last
    /// channel's being told means every one was. Dropped meanwhile, the seat is given back.
    pub async fn enter(
        self: &Arc<Self>,
        channels: Vec<Arc<Channel>>,
        user: Option<Box<str>>,
    ) -> Seat {
        let mut counted = None;
        for (i, channel) in channels.iter().enumerate() {
            let told = match (&self.redis, i + 1 == channels.len()) {
                (Some(_), true) => {
                    let (told, waiting) = oneshot::channel();
                    counted = Some(waiting);
                    Some(told)
                }
                _ => None,
            };
            self.change(channel, user.as_deref(), true, told);
        }
        let seat = Seat {
            presence: self.clone(),
            user,
            channels,
        };
        if let Some(counted) = counted {
            // Err either way: the sender is dropped once Redis was told.
            let _ = tokio::time::timeout(COUNTED_WAIT, counted).await;
        }
        seat
    }

    /// One stream of `user` opened or closed on `channel`. Under the lock, so the changes of
    /// one channel are announced (or told to Redis) in the order they happened.
    fn change(
        &self,
        channel: &Arc<Channel>,
        user: Option<&str>,
        opened: bool,
        told: Option<oneshot::Sender<()>>,
    ) {
        let mut rooms = self.lock();
        let name: Arc<str> = channel.name().into();
        let room = rooms.entry(name.clone()).or_default();
        let count = match user {
            Some(user) => room.users.entry(user.into()).or_default(),
            None => &mut room.anonymous,
        };
        let was = *count;
        *count = if opened {
            was + 1
        } else {
            was.saturating_sub(1)
        };
        let now = *count;
        room.streams = if opened {
            room.streams + 1
        } else {
            room.streams.saturating_sub(1)
        };
        let streams = room.streams;
        if let Some(user) = user
            && now == 0
        {
            room.users.remove(user);
        }
        if room.streams == 0 {
            rooms.remove(&name);
        }
        match &self.redis {
            // Err: shutting down; nothing more is told.
            Some((_, changes)) => drop(changes.send(Change {
                channel: name,
                field: presence_field(user),
                streams: now,
                told,
            })),
            None => {
                // A user joins with its first stream and leaves with its last; an anonymous
                // reader is each stream.
                if user.is_none() || (opened && was == 0) || (!opened && now == 0) {
                    let kind = if opened { "join" } else { "leave" };
                    channel.announce(live_frame(kind, &data(user, streams)));
                }
            }
        }
    }

    /// The readers of `channel` over every instance (alone: this one's); with `names`, who.
    /// With Redis unreachable: this instance's own.
    pub async fn snapshot(&self, channel: &str, names: bool) -> Snapshot {
        let counts = match &self.redis {
            Some((bus, _)) => bus.presence(channel, &[], false).await,
            None => None,
        };
        let counts = counts.unwrap_or_else(|| self.local(channel));
        let mut users: Vec<UserStreams> = match names {
            true => counts
                .users
                .into_iter()
                .map(|(user, streams)| UserStreams { user, streams })
                .collect(),
            false => Vec::new(),
        };
        users.sort_by(|a, b| a.user.cmp(&b.user));
        Snapshot {
            channel: channel.to_owned(),
            streams: counts.streams,
            anonymous: counts.anonymous,
            users,
        }
    }

    /// This instance's readers of `channel`.
    fn local(&self, channel: &str) -> Counts {
        let rooms = self.lock();
        let Some(room) = rooms.get(channel) else {
            return Counts::default();
        };
        Counts {
            streams: room.streams,
            anonymous: room.anonymous,
            users: room
                .users
                .iter()
                .map(|(user, streams)| (user.to_string(), *streams))
                .collect(),
        }
    }

    /// The channels this instance has readers on.
    fn channels(&self) -> Vec<Arc<str>> {
        self.lock().keys().cloned().collect()
    }

    /// This instance's whole share of `channel` now, for Redis (empty: no reader).
    fn share(&self, channel: &str) -> Vec<(String, u64)> {
        let rooms = self.lock();
        let Some(room) = rooms.get(channel) else {
            return Vec::new();
        };
        let mut fields: Vec<(String, u64)> = room
            .users
            .iter()
            .map(|(user, streams)| (presence_field(Some(user)), *streams))
            .collect();
        if room.anonymous > 0 {
            fields.push((presence_field(None), room.anonymous));
        }
        fields
    }
}

/// A join's or leave's data: the user (`null`: anonymous) and the channel's streams now. The
/// same bytes as `presence.lua` writes, so a client sees no difference between one instance
/// and several.
fn data(user: Option<&str>, streams: u64) -> String {
    let user = serde_json::to_string(&user).unwrap_or_else(|_| "null".into());
    format!("{{\"user\":{user},\"streams\":{streams}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_json_with_the_user_first() {
        assert_eq!(data(Some("a\"b"), 2), r#"{"user":"a\"b","streams":2}"#);
        assert_eq!(data(None, 0), r#"{"user":null,"streams":0}"#);
    }
}
