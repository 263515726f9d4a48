//! Presence over every instance (`--presence` with `--redis`). Each instance keeps its own
//! share of a channel's readers (`PREFIX:{NAME}:presence:INSTANCE`: streams per user, and the
//! anonymous ones) under a lease in `PREFIX:{NAME}:present`, renewed every `LEASE / 4` while
//! it has readers there (the lease `--on-occupied` uses: `occupancy.rs`). `presence.lua`
//! keeps the counts over every instance (`PREFIX:{NAME}:presence`), counts out an instance
//! whose lease ended (it died), and publishes each join and leave once on
//! `PREFIX:presence`; every instance, the one that made it included, hands it to its own
//! streams of the channel (`announce`). So the leaves of a dead instance's users are
//! announced by the first survivor that renews after its lease ended.

use std::collections::HashMap;

use serde::Deserialize;

use super::{LEASE, RedisBus};
use crate::channel::live_frame;

/// What the script publishes for one join or leave.
#[derive(Debug, Deserialize)]
struct Announced {
    channel: String,
    event: String,
    data: String,
}

/// One field of a share or of the counts: the anonymous streams, or one user's.
pub fn field(user: Option<&str>) -> String {
    match user {
        None => ANONYMOUS.to_owned(),
        Some(user) => format!("u:{user}"),
    }
}

const ANONYMOUS: &str = "a";
const TOTAL: &str = "#";

/// A channel's readers over every live instance.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub streams: u64,
    pub anonymous: u64,
    /// Each user's streams, by user.
    pub users: HashMap<String, u64>,
}

impl RedisBus {
    /// The Pub/Sub channel of presence announcements.
    pub(super) fn presence_topic(prefix: &str) -> String {
        format!("{prefix}:presence")
    }

    /// Tells Redis this instance's streams on `channel` now for each field of `changed` (with
    /// `whole`, its whole share: fields left out are 0), renews its lease there and counts
    /// out instances whose lease ended. Returns the counts over every live instance; `None`
    /// when Redis could not be asked (the caller tells the whole share at its next renewal).
    pub async fn presence(
        &self,
        channel: &str,
        changed: &[(String, u64)],
        whole: bool,
    ) -> Option<Counts> {
        let tag = format!("{}:{{{channel}}}", self.prefix);
        let shares = format!("{tag}:presence:");
        let mut call = self.presence_script.key(format!("{tag}:present"));
        call.key(format!("{tag}:presence"))
            .key(format!("{shares}{}", self.instance))
            .arg(&self.instance)
            .arg(LEASE.as_millis() as u64)
            .arg(&shares)
            .arg(Self::presence_topic(&self.prefix))
            .arg(channel)
            .arg(if whole { "1" } else { "0" });
        for (field, streams) in changed {
            call.arg(field).arg(streams);
        }
        let reply: redis::RedisResult<Vec<(String, u64)>> =
            call.invoke_async(&mut self.commands()).await;
        match reply {
            Ok(fields) => {
                self.succeeded();
                Some(counts(fields))
            }
            Err(err) => {
                self.failed(&format!("counting who reads channel {channel}"), &err);
                None
            }
        }
    }

    /// One announcement from Pub/Sub: to this instance's streams of its channel, if any.
    pub(super) fn announce(&self, payload: &[u8]) {
        let announced = match serde_json::from_slice::<Announced>(payload) {
            Ok(announced) => announced,
            Err(err) => {
                tracing::warn!("skipped a presence message that is not one: {err}");
                return;
            }
        };
        if let Some(channel) = self.channels.get(&announced.channel) {
            channel.announce(live_frame(&announced.event, &announced.data));
        }
    }
}

/// The counts from the script's reply.
fn counts(fields: Vec<(String, u64)>) -> Counts {
    let mut counts = Counts::default();
    for (field, streams) in fields {
        match field.as_str() {
            TOTAL => counts.streams = streams,
            ANONYMOUS => counts.anonymous = streams,
            user => {
                if let Some(user) = user.strip_prefix("u:") {
                    counts.users.insert(user.to_owned(), streams);
                }
            }
        }
    }
    counts
}
