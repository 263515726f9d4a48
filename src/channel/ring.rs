//! The shared ring: one queue of sent events per channel that serves both the history
//! (`Last-Event-ID` replay) and the fan-out (every stream reads it by position). It is grown on
//! demand and shrunk when drained, so a channel costs what it holds: nothing while nothing is
//! kept, at most `max(--history, --client-buffer)` events otherwise.
//!
//! Each slot counts the readers whose next frame it is, and the ring the readers that have read
//! everything; from those it knows its slowest reader without a list of readers. A slot leaves
//! the ring only when no reader still has to read it and it is no longer kept for replay. So no
//! live reader ever falls out of the ring: the slowest one holds input back (backpressure), and
//! a stalled one is evicted (its stream dropped) rather than skipped. There is no lag to skip.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

use super::{Frame, Stamp};

/// Counts the events this process sent on all channels: each slot's `arrival`.
static ARRIVALS: AtomicU64 = AtomicU64::new(1);

/// One sent event.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) seq: u64,
    /// The source's own id, when it gave one; otherwise the wire id is `seq`.
    pub(super) id: Option<Box<str>>,
    pub(super) bytes: Bytes,
    /// Its place among the events of every channel, in the order they were sent.
    pub(super) arrival: u64,
    /// Readers whose next frame this is.
    waiting: u32,
}

impl Slot {
    /// Made under its channel's lock as the event is sent, so arrivals follow the send order.
    pub(super) fn new(seq: u64, id: Option<Box<str>>, bytes: Bytes) -> Self {
        Slot {
            seq,
            id,
            bytes,
            arrival: ARRIVALS.fetch_add(1, Ordering::Relaxed),
            waiting: 0,
        }
    }

    pub(super) fn stamp(&self) -> Stamp {
        Stamp {
            seq: self.seq,
            arrival: self.arrival,
        }
    }
}

/// Positions count the events a channel has sent, from 1; a reader's position is that of the
/// next frame it will read.
#[derive(Debug)]
pub(super) struct Ring {
    slots: VecDeque<Slot>,
    /// The position of `slots[0]`.
    first: u64,
    /// The newest slots kept for replay (the rest are there only for readers behind).
    kept: usize,
    /// The bytes of those slots' events.
    kept_bytes: usize,
    /// Readers that have read every slot.
    caught_up: u32,
    readers: usize,
    /// The position of the slowest reader (`next()` when none is behind).
    slowest: u64,
}

/// Below this capacity the ring is not shrunk: the allocation is small, and a channel that
/// sends steadily would otherwise free and allocate it over and over.
const SMALL: usize = 8;

impl Ring {
    pub(super) fn new() -> Self {
        Ring {
            slots: VecDeque::new(),
            first: 1,
            kept: 0,
            kept_bytes: 0,
            caught_up: 0,
            readers: 0,
            slowest: 1,
        }
    }

    /// The position the next event will take.
    pub(super) fn next(&self) -> u64 {
        self.first + self.slots.len() as u64
    }

    pub(super) fn readers(&self) -> usize {
        self.readers
    }

    /// How many events the slowest reader has still to read.
    pub(super) fn behind(&self) -> u64 {
        self.next() - self.slowest
    }

    /// The events kept for replay, oldest first.
    pub(super) fn kept(&self) -> impl DoubleEndedIterator<Item = &Slot> + ExactSizeIterator {
        self.slots.range(self.slots.len() - self.kept..)
    }

    /// Appends a sent event; readers that had read everything now have it to read. The history
    /// keeps at most `history` events of at most `history_bytes` in all, the newest: older ones
    /// go once no reader needs them.
    pub(super) fn push(&mut self, mut slot: Slot, history: usize, history_bytes: usize) {
        slot.waiting = std::mem::take(&mut self.caught_up);
        self.kept += 1;
        self.kept_bytes += slot.bytes.len();
        self.slots.push_back(slot);
        while self.kept > history || self.kept_bytes > history_bytes {
            let oldest = &self.slots[self.slots.len() - self.kept];
            self.kept_bytes -= oldest.bytes.len();
            self.kept -= 1;
        }
        self.advance_slowest();
    }

    /// A new reader, at the next position (it has seen everything sent so far).
    pub(super) fn join(&mut self) -> u64 {
        self.readers += 1;
        self.caught_up += 1;
        self.next()
    }

    /// The frames from `position` on for the reader there, which moves past them: the first
    /// whatever its size, then the next ones before position `until` while their bytes come
    /// to less than `budget` (so `0` takes one). They come as one frame: their bytes joined in order, the last one's
    /// position and stamp. `None` when the reader has read everything. Returns whether the
    /// slowest reader moved (input may have room).
    ///
    /// A run costs one pass over the slot counts, however many frames it holds: the reader
    /// leaves its first slot's count and joins the one after its last. The bytes are copied
    /// here, under the channel's lock, rather than each frame's shared `Bytes` cloned and
    /// dropped: that would be two atomic operations per frame on a count every reader of the
    /// event shares, which on two cores moves that cache line back and forth.
    pub(super) fn take(
        &mut self,
        position: u64,
        budget: usize,
        until: u64,
    ) -> Option<(Frame, bool)> {
        let first = self.index(position)?;
        let mut end = first + 1;
        let mut size = self.slots[first].bytes.len();
        while size < budget
            && position + ((end - first) as u64) < until
            && let Some(slot) = self.slots.get(end)
        {
            size += slot.bytes.len();
            end += 1;
        }
        let bytes = if end == first + 1 {
            self.slots[first].bytes.clone()
        } else {
            let mut joined = BytesMut::with_capacity(size);
            for slot in self.slots.range(first..end) {
                joined.extend_from_slice(&slot.bytes);
            }
            joined.freeze()
        };
        let last = &self.slots[end - 1];
        let frame = Frame {
            position: position + (end - 1 - first) as u64,
            bytes,
            stamp: Some(last.stamp()),
        };
        self.slots[first].waiting -= 1;
        match self.slots.get_mut(end) {
            Some(next) => next.waiting += 1,
            None => self.caught_up += 1,
        }
        let moved = self.advance_slowest();
        Some((frame, moved))
    }

    /// The reader at `position` is gone. Returns whether the slowest reader moved.
    pub(super) fn leave(&mut self, position: u64) -> bool {
        self.readers -= 1;
        match self.index(position) {
            Some(index) => self.slots[index].waiting -= 1,
            None => self.caught_up -= 1,
        }
        self.advance_slowest()
    }

    /// Whether the slowest reader moved; drops what nobody needs any more.
    fn advance_slowest(&mut self) -> bool {
        let before = self.slowest;
        self.slowest = self.slowest.max(self.first);
        while let Some(index) = self.index(self.slowest)
            && self.slots[index].waiting == 0
        {
            self.slowest += 1;
        }
        self.trim();
        self.slowest != before
    }

    /// Drops the slots before both the slowest reader and the history, then gives memory back
    /// once the ring holds a quarter of what it could.
    fn trim(&mut self) {
        let keep_from = self.slowest.min(self.next() - self.kept as u64);
        while self.first < keep_from {
            self.slots.pop_front();
            self.first += 1;
        }
        let capacity = self.slots.capacity();
        if capacity > SMALL && self.slots.len() <= capacity / 4 {
            self.slots.shrink_to(self.slots.len() * 2);
        }
    }

    fn index(&self, position: u64) -> Option<usize> {
        let offset = usize::try_from(position.checked_sub(self.first)?).ok()?;
        (offset < self.slots.len()).then_some(offset)
    }

    /// Memory held by the slots (for tests of the bound).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(ring: &mut Ring, seq: u64, history: usize) {
        let bytes = Bytes::from(format!("id: {seq}\n\n"));
        ring.push(Slot::new(seq, None, bytes), history, usize::MAX);
    }

    #[test]
    fn the_slowest_reader_holds_slots_the_history_does_not() {
        let mut ring = Ring::new();
        let fast = ring.join();
        let slow = ring.join();
        assert_eq!((fast, slow), (1, 1));
        for seq in 1..=5 {
            push(&mut ring, seq, 2);
        }
        assert_eq!(ring.behind(), 5);
        let mut at = fast;
        while let Some((frame, _)) = ring.take(at, 0, u64::MAX) {
            assert_eq!(frame.position, at);
            at += 1;
        }
        assert_eq!(
            (at, ring.behind(), ring.len()),
            (6, 5, 5),
            "slow holds all five"
        );
        let (frame, moved) = ring.take(slow, 0, u64::MAX).unwrap();
        assert!(moved && frame.bytes == "id: 1\n\n");
        assert_eq!((ring.behind(), ring.len()), (4, 4));
        assert!(
            ring.leave(slow + 1),
            "the slow reader left: nobody is behind"
        );
        assert_eq!((ring.behind(), ring.len(), ring.readers()), (0, 2, 1));
        let kept: Vec<u64> = ring.kept().map(|slot| slot.seq).collect();
        assert_eq!(kept, [4, 5]);
    }

    #[test]
    fn a_run_is_the_frames_in_order_up_to_the_budget_and_moves_the_reader_past_them() {
        let mut ring = Ring::new();
        let fast = ring.join();
        let slow = ring.join();
        for seq in 1..=5 {
            push(&mut ring, seq, 0); // "id: N\n\n": 7 bytes each
        }
        // 7 + 7 < 15, so a third frame is taken; then 21 is not below it.
        let (run, moved) = ring.take(fast, 15, u64::MAX).unwrap();
        assert_eq!(&run.bytes[..], b"id: 1\n\nid: 2\n\nid: 3\n\n");
        assert_eq!((run.position, run.stamp.unwrap().seq), (3, 3));
        assert!(!moved, "the slow reader still holds the first slot");
        let (rest, _) = ring.take(run.position + 1, usize::MAX, u64::MAX).unwrap();
        assert_eq!(
            (&rest.bytes[..], rest.position),
            (&b"id: 4\n\nid: 5\n\n"[..], 5)
        );
        assert!(ring.take(6, usize::MAX, u64::MAX).is_none());
        let (all, moved) = ring.take(slow, usize::MAX, u64::MAX).unwrap();
        assert!(moved && all.position == 5 && all.bytes.len() == 35);
        assert_eq!(
            (ring.behind(), ring.len()),
            (0, 0),
            "both read all: nothing is kept"
        );
        push(&mut ring, 6, 0);
        assert_eq!(ring.behind(), 1, "both wait for the next event");
    }

    #[test]
    fn a_run_stops_before_the_position_it_is_bounded_by() {
        let mut ring = Ring::new();
        let reader = ring.join();
        for seq in 1..=4 {
            push(&mut ring, seq, 0);
        }
        let (run, _) = ring.take(reader, usize::MAX, 3).unwrap();
        assert_eq!(
            (&run.bytes[..], run.position),
            (&b"id: 1\n\nid: 2\n\n"[..], 2)
        );
        let (rest, _) = ring.take(3, usize::MAX, u64::MAX).unwrap();
        assert_eq!(rest.position, 4);
    }

    #[test]
    fn a_reader_that_joined_late_holds_only_what_came_after() {
        let mut ring = Ring::new();
        push(&mut ring, 1, 0);
        assert_eq!(ring.len(), 0, "nobody reads and nothing is kept");
        let late = ring.join();
        assert_eq!(late, 2);
        push(&mut ring, 2, 0);
        assert_eq!(ring.behind(), 1);
        assert_eq!(ring.take(late, 0, u64::MAX).unwrap().0.position, 2);
        assert!(ring.take(late + 1, 0, u64::MAX).is_none());
        assert_eq!((ring.behind(), ring.len()), (0, 0));
    }

    #[test]
    fn the_history_is_bounded_in_bytes_too() {
        let mut ring = Ring::new();
        for seq in 1..=10 {
            ring.push(
                Slot::new(seq, None, Bytes::from(vec![b'x'; 100])),
                1000,
                350,
            );
        }
        let kept: Vec<u64> = ring.kept().map(|slot| slot.seq).collect();
        assert_eq!(kept, [8, 9, 10], "the newest that fit in 350 bytes");
        assert_eq!(ring.len(), 3, "nobody reads: the rest is gone");
        // An event larger than the bound is sent, but not kept.
        ring.push(Slot::new(11, None, Bytes::from(vec![b'x'; 400])), 1000, 350);
        assert_eq!((ring.kept().len(), ring.len()), (0, 0));
    }

    #[test]
    fn memory_is_given_back_once_drained() {
        let mut ring = Ring::new();
        let reader = ring.join();
        for seq in 1..=1000 {
            push(&mut ring, seq, 0);
        }
        assert!(ring.capacity() >= 1000);
        for position in reader..reader + 1000 {
            ring.take(position, 0, u64::MAX).unwrap();
        }
        assert_eq!(ring.len(), 0);
        assert!(ring.capacity() <= SMALL, "capacity {}", ring.capacity());
    }
}
