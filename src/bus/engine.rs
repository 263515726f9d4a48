//! What travels through Redis: an event before it has an id (`Draft`, handed to the publish
//! script as JSON) and after (`Stored`, read back from Pub/Sub or the stream), and the key
//! names of one channel, under one hash tag so a Redis Cluster keeps them on one node.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// An event on its way to Redis, handed to `publish.lua` as JSON. Its data arrives cut where
/// the id goes (one piece when it shows none): the script joins the pieces with the id it gives.
///
/// The JSON names are one letter each (`d`, `e`, `i`, `r`): `publish.lua` reads them, and so
/// they must match the script; they are short because every event of a run crosses to Redis.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    #[serde(rename = "d")]
    data_pieces: Vec<String>,
    #[serde(rename = "e", skip_serializing_if = "Option::is_none")]
    event_name: Option<String>,
    #[serde(rename = "i", skip_serializing_if = "Option::is_none")]
    own_id: Option<String>,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    retry_ms: Option<String>,
}

impl Draft {
    pub fn from_event(event: &Event) -> Self {
        Draft::from_parts(vec![event.data().to_owned()], event)
    }

    /// `parts` as data, the other fields from `event`.
    pub fn from_parts(parts: Vec<String>, event: &Event) -> Self {
        Draft {
            data_pieces: parts,
            event_name: event.event_name().map(|name| name.as_str().to_owned()),
            own_id: event.id().map(str::to_owned),
            retry_ms: event.retry().map(|retry| retry.as_millis().to_string()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings always serialize")
    }

    /// The event as stored with id `seq` (what the script makes of it).
    pub fn into_event(self, seq: u64) -> Event {
        let data = self.data_pieces.join(&seq.to_string());
        Stored::build(data, self.event_name, self.own_id, self.retry_ms)
    }
}

/// A Pub/Sub message: one event as the publish script stored it. The JSON names are the
/// one-letter ones `publish.lua` writes (every instance of a prefix reads them: changing one
/// means changing the script, and instances of both versions would not understand each other).
#[derive(Debug, Deserialize)]
pub struct Message {
    /// The channel's name.
    #[serde(rename = "c")]
    pub channel: String,
    /// Its id, as the decimal text the script wrote.
    #[serde(rename = "n")]
    pub seq: String,
    /// The epoch of the channel's numbering.
    #[serde(rename = "p")]
    pub epoch: String,
    #[serde(rename = "d")]
    data: String,
    #[serde(rename = "e")]
    event_name: Option<String>,
    #[serde(rename = "i")]
    own_id: Option<String>,
    #[serde(rename = "r")]
    retry_ms: Option<String>,
}

impl Message {
    pub fn into_stored(self) -> Option<Stored> {
        Some(Stored {
            seq: checked_id(&self.seq)?,
            event: Stored::build(self.data, self.event_name, self.own_id, self.retry_ms),
        })
    }
}

/// An event with the id Redis gave it.
#[derive(Debug)]
pub struct Stored {
    pub seq: u64,
    pub event: Event,
}

impl Stored {
    /// From a stream entry: its id `N-0` and its fields (named `d`, `e`, `i`, `r` by
    /// `publish.lua`, as in a `Draft`). `None` when the id is not one `publish.lua` gives.
    pub fn from_entry(id: &str, mut fields: HashMap<String, String>) -> Option<Self> {
        let seq = id.strip_suffix("-0").and_then(checked_id)?;
        let event = Stored::build(
            fields.remove("d").unwrap_or_default(),
            fields.remove("e"),
            fields.remove("i"),
            fields.remove("r"),
        );
        Some(Stored { seq, event })
    }

    /// The fields were checked when the event was first made; one that no longer passes (a
    /// key written by something else) is left out rather than break the stream.
    fn build(
        data: String,
        name: Option<String>,
        id: Option<String>,
        retry: Option<String>,
    ) -> Event {
        let mut event = Event::new(data);
        if let Some(name) = name.and_then(|name| name.parse().ok()) {
            event = event.with_event(name);
        }
        if let Some(id) = id {
            event = event.clone().with_id(id).unwrap_or(event);
        }
        if let Some(ms) = retry.and_then(|ms| ms.parse().ok()) {
            event = event.with_retry(Duration::from_millis(ms));
        }
        event
    }
}

/// The highest id Redis can give: its counters are signed 64-bit (INCR refuses to pass it). An
/// id above it, or one that is no number, did not come from the publish script; it is refused
/// rather than trusted, so the channel's `id + 1` can never overflow.
pub const MAX_ID: u64 = i64::MAX as u64;

/// An id read from Redis, checked: decimal digits only, from 1 to `MAX_ID`.
pub fn checked_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|seq| (1..=MAX_ID).contains(seq))
}

/// One channel's keys: `PREFIX:{CHANNEL}:seq` (the counter), `:stream` (the history), `:bytes`
/// (what the stream's entries hold, kept beside it for `--history-bytes`) and `:epoch`. They begin with the prefix, so an ACL (`~PREFIX:*`) or `SCAN MATCH PREFIX:*`
/// scopes them, and the channel's name is their hash tag, so a Redis Cluster keeps the three
/// on one node (the scripts touch them all at once). In a cluster, `:events` is the channel's
/// shard channel: in the same slot, so the publish script may `SPUBLISH` to it.
#[derive(Debug)]
pub struct Keys {
    pub counter: String,
    pub stream: String,
    pub bytes: String,
    pub epoch: String,
    pub events: String,
}

impl Keys {
    pub fn new(prefix: &str, channel: &str) -> Self {
        let tag = format!("{prefix}:{{{channel}}}");
        Keys {
            counter: format!("{tag}:seq"),
            stream: format!("{tag}:stream"),
            bytes: format!("{tag}:bytes"),
            epoch: format!("{tag}:epoch"),
            events: format!("{tag}:events"),
        }
    }

    /// The channel's name in its shard channel `PREFIX:{CHANNEL}:events`.
    pub fn channel_of_events<'a>(prefix: &str, shard: &'a str) -> Option<&'a str> {
        shard
            .strip_prefix(prefix)?
            .strip_prefix(":{")?
            .strip_suffix("}:events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_becomes_the_event_the_script_stores() {
        let event = Event::new("").with_id("own").unwrap();
        let draft = Draft::from_parts(vec!["tick ".into(), " of 2".into()], &event);
        assert_eq!(draft.to_json(), r#"{"d":["tick "," of 2"],"i":"own"}"#);
        assert_eq!(
            &draft.into_event(41).encode(0)[..],
            b"id: own\ndata: tick 41 of 2\n\n"
        );
    }

    #[test]
    fn keys_begin_with_the_prefix_and_share_one_hash_tag() {
        let keys = Keys::new("sse", "build");
        assert_eq!(keys.counter, "sse:{build}:seq");
        assert_eq!(keys.stream, "sse:{build}:stream");
        assert_eq!(keys.bytes, "sse:{build}:bytes");
        assert_eq!(keys.epoch, "sse:{build}:epoch");
        assert_eq!(keys.events, "sse:{build}:events");
        assert_eq!(Keys::channel_of_events("sse", &keys.events), Some("build"));
        assert_eq!(Keys::channel_of_events("ss", &keys.events), None);
    }

    #[test]
    fn ids_from_redis_are_checked() {
        assert_eq!(checked_id("1"), Some(1));
        assert_eq!(checked_id("9223372036854775807"), Some(MAX_ID));
        for refused in ["", "0", "-1", "+1", " 1", "1.5", "9223372036854775808"] {
            assert_eq!(checked_id(refused), None, "{refused:?}");
        }
        assert_eq!(checked_id(&u64::MAX.to_string()), None);
        assert!(Stored::from_entry("18446744073709551615-0", HashMap::new()).is_none());
        assert!(Stored::from_entry("7-1", HashMap::new()).is_none());
        assert_eq!(Stored::from_entry("7-0", HashMap::new()).unwrap().seq, 7);
    }
}
