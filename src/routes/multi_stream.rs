//! A stream of several channels, `GET <events-path>/a,b,c` (DESIGN.md §10): one consumer of
//! each channel, whose events it merges in the order this instance received them, each with
//! the stream's cursor as its id (`cursor.rs`). `Last-Event-ID` (or `?lastEventId=`) holding a
//! cursor resumes each channel after its position, `earliest` replays all kept, and a channel
//! the cursor does not name starts live. It is one stream under `--max-clients`, and it is
//! evicted when it stalls any of its channels (`control/client.rs` marks each).
//!
//! A value that is not a cursor (a plain id, say) is answered as a single-channel stream
//! answers an unknown id: a comment saying so, then live events. A refusal would be final to
//! an EventSource, and the stream has nothing better to resume from.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use warp::reply::{Reply, Response};

use super::cursor::{self, Cursor};
use super::deadline::Deadline;
use super::refusal::{Asker, refuse};
use super::sse_reply::{self, spread};
use super::stream::{BATCH_BYTES, join_prelude};
use crate::bus::Bus;
use crate::channel::{Channel, EARLIEST, Frame, Joined, Receiver, Stamp, Start, TryRecvError};
use crate::channels::{ChannelName, Channels, Role};
use crate::control::{Client, Mark, StreamSlot};
use crate::event;

/// Opens the stream of `names` (2 to 16 distinct channels) from `last_event_id`.
pub async fn open(
    channels: &Channels,
    bus: &Bus,
    names: Vec<ChannelName>,
    last_event_id: Option<&str>,
    retry: Option<Duration>,
    deadline: Deadline,
    asker: Asker,
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
    let slot = match taken {
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
    let stream = MultiStream::new(
        &opened,
        names,
        joined,
        prelude,
        deadline,
        asker.connection,
        slot,
    );
    let mut response = warp::reply::stream(stream.into_body()).into_response();
    sse_reply::set_headers(response.headers_mut());
    response
}

/// Where the stream starts in each channel, and a notice when `last_event_id` is not a cursor.
fn starts(names: &[ChannelName], last_event_id: Option<&str>) -> (Vec<Start>, Option<Bytes>) {
    let all = |start| vec![start; names.len()];
    let Some(last) = last_event_id else {
        return (all(Start::Live), None);
    };
    if last == EARLIEST {
        return (all(Start::Earliest), None);
    }
    let Some(positions) = cursor::parse(last) else {
        let notice = event::comment(&format!(
            "unknown Last-Event-ID {last:?} (a stream of several channels resumes from an id such as a:5,b:17); sending live events only"
        ));
        return (all(Start::Live), Some(notice));
    };
    let start = |name: &ChannelName| {
        positions
            .iter()
            .find(|(named, _)| named == name)
            .map_or(Start::Live, |&(_, seq)| Start::After(seq))
    };
    (names.iter().map(start).collect(), None)
}

/// One channel of the stream.
struct Member {
    /// Its kept events still to replay, oldest first: the frames the channel stores, shared,
    /// each given its id as it goes into a batch.
    replay: VecDeque<(Stamp, Bytes)>,
    receiver: Receiver,
    /// A frame taken but not sent yet: the one that arrived first goes first.
    ready: Option<Frame>,
    /// The channel ended (shutdown), and this stream read all it had.
    closed: bool,
}

/// Everything one stream of several channels holds.
struct MultiStream {
    /// In the URL's order. Emptied while dropping, so the receivers go (input stops waiting for
    /// them) before the connection is told the stream ended.
    members: Vec<Member>,
    cursor: Cursor,
    prelude: VecDeque<Bytes>,
    connection: Option<Arc<Client>>,
    /// The stream's place in each channel after the first, for the eviction check (the
    /// first's is the connection's own mark).
    marks: Arc<[Mark]>,
    /// Set when the deadline passed: the next poll ends the stream.
    finished: bool,
    /// When the stream ends of itself (its token's expiry), checked before each batch.
    deadline: Deadline,
    /// Held for the stream's life: its one place under `--max-clients`.
    _slot: StreamSlot,
}

impl MultiStream {
    fn new(
        channels: &[Arc<Channel>],
        names: Vec<ChannelName>,
        joined: Vec<Joined>,
        mut prelude: VecDeque<Bytes>,
        deadline: Deadline,
        connection: Option<Arc<Client>>,
        slot: StreamSlot,
    ) -> Self {
        let marks: Arc<[Mark]> = channels[1..]
            .iter()
            .zip(&joined[1..])
            .map(|(channel, one)| Mark::new(channel.id(), one.position))
            .collect();
        if let Some(connection) = &connection {
            connection.stream_started(channels[0].id(), joined[0].position);
            connection.also_reads(marks.clone());
        }
        let cursor = Cursor::new(names, joined.iter().map(|one| one.stands_at).collect());
        let mut members = Vec::with_capacity(joined.len());
        for one in joined {
            prelude.extend(one.notice);
            members.push(Member {
                replay: one.replay.into(),
                receiver: one.receiver,
                ready: None,
                closed: false,
            });
        }
        MultiStream {
            members,
            cursor,
            prelude,
            connection,
            marks,
            finished: false,
            deadline,
            _slot: slot,
        }
    }

    fn into_body(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + Sync + 'static {
        futures_util::stream::unfold(self, |mut state| async move {
            let chunk = state.next_chunk().await?;
            if let Some(connection) = &state.connection {
                connection.chunk_sent();
            }
            Some((Ok(chunk), state))
        })
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if let Some(words) = self.deadline.due() {
            return Some(self.last_words(words));
        }
        if let Some(first) = self.prelude.pop_front() {
            return Some(join_prelude(&mut self.prelude, first));
        }
        if let Some(batch) = self.replay_batch() {
            return Some(batch);
        }
        loop {
            if let Some(batch) = self.batch() {
                return Some(batch);
            }
            if self.members.iter().all(|member| member.closed) {
                return None;
            }
            let waits = self
                .members
                .iter_mut()
                .enumerate()
                .filter(|(_, member)| !member.closed)
                .map(|(index, member)| {
                    Box::pin(async move { (index, member.receiver.recv().await) })
                });
            let woke = tokio::select! {
                (received, _, _) = futures_util::future::select_all(waits) => Ok(received),
                words = self.deadline.reached() => Err(words),
            };
            let (index, received) = match woke {
                Ok(received) => received,
                Err(words) => return Some(self.last_words(words)),
            };
            let member = &mut self.members[index];
            match received {
                Ok(frame) => member.ready = Some(frame),
                Err(_closed) => member.closed = true,
            }
        }
    }

    /// The stream's last chunk; nothing follows (the receivers go at once, so input no longer
    /// waits for them).
    fn last_words(&mut self, words: Bytes) -> Bytes {
        self.finished = true;
        self.prelude.clear();
        self.members.clear();
        words
    }

    /// The next kept events to replay, merged in the order this instance received them (each
    /// channel's are in order), each with the cursor as its id, up to `BATCH_BYTES` (a larger
    /// event goes alone); `None` once the replay is over. Only this batch is ever copied.
    fn replay_batch(&mut self) -> Option<Bytes> {
        let mut batch = BytesMut::new();
        loop {
            let next = self
                .members
                .iter()
                .enumerate()
                .filter_map(|(index, member)| Some((index, member.replay.front()?)))
                .min_by_key(|(_, (stamp, _))| stamp.arrival);
            let Some((index, (_, bytes))) = next else {
                break;
            };
            if !batch.is_empty() && batch.len() + bytes.len() > BATCH_BYTES {
                break;
            }
            let Some((stamp, bytes)) = self.members[index].replay.pop_front() else {
                break;
            };
            self.cursor.advance(index, stamp.seq);
            event::put_with_id(&mut batch, &bytes, &self.cursor.id(index));
        }
        (!batch.is_empty()).then(|| batch.freeze())
    }

    /// Takes the frame each channel has waiting, if any.
    fn take_ready(&mut self) {
        for member in &mut self.members {
            if member.ready.is_some() || member.closed {
                continue;
            }
            match member.receiver.try_recv() {
                Ok(frame) => member.ready = Some(frame),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Closed) => member.closed = true,
            }
        }
    }

    /// The frames ready, earliest arrival first, each event with the cursor as its id, up to
    /// `BATCH_BYTES`; `None` when none is ready. Heartbeats go out from the first channel only:
    /// one is enough to keep a quiet stream's proxies open, and each channel sends its own.
    fn batch(&mut self) -> Option<Bytes> {
        let mut batch = BytesMut::new();
        while batch.len() < BATCH_BYTES {
            // Every channel is looked at again before each pick, not only the one just taken
            // from: a frame that reached another channel meanwhile may have arrived earlier
            // than the taken channel's next.
            self.take_ready();
            let next = self
                .members
                .iter()
                .enumerate()
                .filter_map(|(index, member)| Some((index, member.ready.as_ref()?)))
                .min_by_key(|(_, frame)| frame.stamp.map_or(0, |stamp| stamp.arrival));
            let Some((index, _)) = next else { break };
            let Some(frame) = self.members[index].ready.take() else {
                break;
            };
            self.took(index, frame.position);
            match frame.stamp {
                Some(stamp) => {
                    self.cursor.advance(index, stamp.seq);
                    event::put_with_id(&mut batch, &frame.bytes, &self.cursor.id(index));
                }
                None if index == 0 => batch.extend_from_slice(&frame.bytes),
                None => {}
            }
        }
        (!batch.is_empty()).then(|| batch.freeze())
    }

    /// Records that channel `index`'s live frames up to `position` were taken.
    fn took(&self, index: usize, position: u64) {
        match index {
            0 => {
                if let Some(connection) = &self.connection {
                    connection.stream_at(position);
                }
            }
            _ => self.marks[index - 1].at(position),
        }
    }
}

impl Drop for MultiStream {
    fn drop(&mut self) {
        self.members.clear();
        if let Some(connection) = &self.connection {
            connection.stream_ended();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<ChannelName> {
        text.split(',').map(|name| name.parse().unwrap()).collect()
    }

    #[test]
    fn a_cursor_resumes_the_channels_it_names_and_the_others_start_live() {
        let names = names("a,b,c");
        assert_eq!(starts(&names, None), (vec![Start::Live; 3], None));
        assert_eq!(starts(&names, Some("earliest")).0, vec![Start::Earliest; 3]);
        let (resumed, notice) = starts(&names, Some("c:4,a:9,zz:1"));
        assert_eq!(resumed, [Start::After(9), Start::Live, Start::After(4)]);
        assert!(notice.is_none());
        let (live, notice) = starts(&names, Some("17"));
        assert_eq!(live, vec![Start::Live; 3]);
        assert!(notice.is_some_and(|n| n.starts_with(b": unknown Last-Event-ID \"17\"")));
    }
}
