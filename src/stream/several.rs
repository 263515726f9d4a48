//! The body of a stream of several channels, `GET <events-path>/a,b,c` (DESIGN.md §10; opened
//! by `routes/multi_stream.rs`): one consumer of each channel, whose events it merges in the
//! order this instance received them, each with the stream's cursor as its id (`cursor.rs`). `Last-Event-ID` (or `?lastEventId=`) holding a
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
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use super::body::{BATCH_BYTES, Core, Fed, Feed, body};
use super::deadline::Deadline;
use crate::channel::{
    Channel, Closed, EARLIEST, Frame, Joined, Receiver, Stamp, Start, TryRecvError, Wait,
};
use crate::channels::ChannelName;
use crate::control::{Client, Mark, StreamSlot};
use crate::cursor::{self, Cursor};
use crate::event;

/// Where the stream starts in each channel, and a notice when `last_event_id` is not a cursor.
pub fn starts(names: &[ChannelName], last_event_id: Option<&str>) -> (Vec<Start>, Option<Bytes>) {
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

/// The body of a stream of `channels` (named `names`, in the URL's order), each joined at its
/// start: `prelude` (the `retry:` frame, a notice for an id that is not a cursor), each
/// channel's replay notice, the replays merged, then the live events, until `deadline`.
pub fn several_stream(
    channels: &[Arc<Channel>],
    names: Vec<ChannelName>,
    joined: Vec<Joined>,
    mut prelude: VecDeque<Bytes>,
    deadline: Deadline,
    connection: Option<Arc<Client>>,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + Sync + 'static {
    let feed = SeveralFeed::new(channels, names, joined, &mut prelude, connection.as_deref());
    body(feed, prelude, deadline, connection, slot)
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
    /// The wait for the channel's next change.
    wait: Wait,
}

/// The live part of a stream of several channels (the prelude and deadline are
/// `body.rs`'s).
struct SeveralFeed {
    /// In the URL's order. Emptied at the end, so the receivers go (input stops waiting for
    /// them) before the connection is told the stream ended.
    members: Vec<Member>,
    cursor: Cursor,
    /// The stream's place in each channel after the first, for the eviction check (the
    /// first's is the connection's own mark).
    marks: Arc<[Mark]>,
}

impl SeveralFeed {
    /// The feed of `joined`; their replay notices go to `prelude`.
    fn new(
        channels: &[Arc<Channel>],
        names: Vec<ChannelName>,
        joined: Vec<Joined>,
        prelude: &mut VecDeque<Bytes>,
        connection: Option<&Client>,
    ) -> Self {
        let marks: Arc<[Mark]> = channels[1..]
            .iter()
            .zip(&joined[1..])
            .map(|(channel, one)| Mark::new(channel.id(), one.position))
            .collect();
        if let Some(connection) = connection {
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
                wait: Wait::default(),
            });
        }
        SeveralFeed {
            members,
            cursor,
            marks,
        }
    }
}

impl Feed for SeveralFeed {
    fn poll_next(&mut self, cx: &mut Context<'_>, core: &mut Core) -> Poll<Fed> {
        if let Some(batch) = self.replay_batch() {
            return Poll::Ready(Fed::Chunk(batch));
        }
        loop {
            if let Some(batch) = self.batch(core.connection.as_deref()) {
                return Poll::Ready(Fed::Chunk(batch));
            }
            if self.members.iter().all(|member| member.closed) {
                return Poll::Ready(Fed::End);
            }
            // Nothing was ready: each open channel's wait is registered, and one that has a
            // frame after all (it came since the look) sends the loop round again.
            let mut woke = false;
            for member in self.members.iter_mut().filter(|member| !member.closed) {
                match member.receiver.poll_run(&mut member.wait, cx, 0) {
                    Poll::Ready(Ok(frame)) => member.ready = Some(frame),
                    Poll::Ready(Err(Closed)) => member.closed = true,
                    Poll::Pending => continue,
                }
                woke = true;
            }
            if !woke {
                return core.deadline.poll_reached(cx).map(Fed::Words);
            }
        }
    }

    fn close(&mut self) {
        self.members.clear();
    }
}

impl SeveralFeed {
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
    fn batch(&mut self, connection: Option<&Client>) -> Option<Bytes> {
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
            self.took(index, frame.position, connection);
            match frame.stamp {
                Some(stamp) => {
                    self.cursor.advance(index, stamp.seq);
                    event::put_with_id(&mut batch, &frame.bytes, &self.cursor.id(index));
                }
                None if &frame.bytes[..] != event::HEARTBEAT => {
                    put_named(&mut batch, &frame.bytes, self.cursor.name(index));
                }
                None if index == 0 => batch.extend_from_slice(&frame.bytes),
                None => {}
            }
        }
        (!batch.is_empty()).then(|| batch.freeze())
    }

    /// Records that channel `index`'s live frames up to `position` were taken.
    fn took(&self, index: usize, position: u64, connection: Option<&Client>) {
        match index {
            0 => {
                if let Some(connection) = connection {
                    connection.stream_at(position);
                }
            }
            _ => self.marks[index - 1].at(position),
        }
    }
}

/// An announcement (`--presence`'s join or leave: `event: NAME`, then `data: {...}`) on a
/// stream of several channels, which has no id to tell its channel by: its data names it
/// first, `{"channel":"NAME",...}`. Anything else goes as it is.
fn put_named(batch: &mut BytesMut, frame: &[u8], channel: &str) {
    const OPEN: &[u8] = b"\ndata: {";
    match frame.windows(OPEN.len()).position(|window| window == OPEN) {
        Some(at) => {
            let (head, rest) = frame.split_at(at + OPEN.len());
            batch.extend_from_slice(head);
            batch.extend_from_slice(b"\"channel\":\"");
            batch.extend_from_slice(channel.as_bytes());
            batch.extend_from_slice(b"\",");
            batch.extend_from_slice(rest);
        }
        None => batch.extend_from_slice(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_names_its_channel() {
        let mut batch = BytesMut::new();
        put_named(&mut batch, b"event: join\ndata: {\"user\":null}\n\n", "b.c");
        assert_eq!(
            &batch[..],
            b"event: join\ndata: {\"channel\":\"b.c\",\"user\":null}\n\n"
        );
    }

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
