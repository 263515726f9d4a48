//! `GET <events-path>/a,b,c`: opens a stream of several channels (DESIGN.md §10): each channel
//! found or made and caught up, one place under `--max-clients` for the whole stream, each
//! channel joined where the `Last-Event-ID` cursor says (`stream/several.rs` reads it and
//! merges the channels), or refused as a stream of one channel is.
//!
//! A value that is not a cursor (a plain id, say) is answered as a single-channel stream
//! answers an unknown id: a comment saying so, then live events. A refusal would be final to
//! an EventSource, and the stream has nothing better to resume from.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use warp::reply::{Reply, Response};

use super::refusal::{Asker, refuse};
use super::sse_reply;
use crate::bus::Bus;
use crate::channel::{EARLIEST, Start};
use crate::channels::{ChannelName, Channels, Role};
use crate::event;
use crate::stream::{Deadline, several_stream, spread, starts};

/// Opens the stream of `names` (2 to 16 distinct channels) from `last_event_id`.
pub async fn open(
    channels: &Channels,
    bus: &Bus,
    names: Vec<ChannelName>,
    last_event_id: Option<&str>,
    retry: Option<Duration>,
    deadline: Deadline,
    mut asker: Asker,
) -> Response {
    let (starts, unknown) = starts(&names, last_event_id);
    let mut opened = Vec::with_capacity(names.len());
    for (name, start) in names.iter().zip(&starts) {
        match channels.get_or_create(name, Role::Reader) {
            Ok(channel) => {
                // With --redis: what another instance published is here first.
                let asked = match start {
                    Start::Live => None,
                    Start::Earliest => Some(EARLIEST.to_owned()),
                    Start::After(seq) => Some(seq.to_string()),
                };
                bus.catch_up(&channel, asked.as_deref()).await;
                opened.push(channel);
            }
            Err(refusal) => return refuse(refusal, asker.peer(), asker.event_source),
        }
    }
    let control = channels.control();
    let taken = asker
        .open_peer_stream(control)
        .and_then(|peer| Ok((peer, control.open_stream()?)));
    let mut slot = match taken {
        Ok((peer, mut slot)) => {
            slot.hold(peer);
            slot
        }
        Err(refusal) => return refuse(refusal, asker.peer(), asker.event_source),
    };
    let mut joined = Vec::with_capacity(opened.len());
    for (channel, start) in opened.iter().zip(starts) {
        match channel.join(start) {
            Ok(one) => joined.push(one),
            Err(refusal) => return refuse(refusal, asker.peer(), asker.event_source),
        }
    }
    if let Some(present) = asker.present.take() {
        // A reader of each channel, after its place in each: it reads its own joins.
        slot.seat(present.presence.enter(opened.clone(), present.user).await);
    }
    tracing::debug!(
        peer = asker.peer(),
        channels = names.len(),
        last_event_id,
        "stream of several channels opened"
    );
    let mut prelude: VecDeque<Bytes> = retry
        .map(|base| event::retry(spread(base)))
        .into_iter()
        .collect();
    prelude.extend(unknown);
    let stream = several_stream(
        &opened,
        names,
        joined,
        prelude,
        deadline,
        asker.connection,
        slot,
    );
    let mut response = warp::reply::stream(stream).into_response();
    sse_reply::set_headers(response.headers_mut());
    response
}
