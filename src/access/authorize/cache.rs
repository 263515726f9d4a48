//! The decisions of `--authorize-url`, kept for `--authorize-cache` from the moment each was
//! made (DESIGN.md §17). Use does not extend an entry: a backend that revokes a session is
//! obeyed within that time. The key is a SHA-256 digest of everything the backend was asked
//! (`Question::key`), so no cookie or token is kept here, and an answer is reused only for the
//! very question it answered. Bounded: past `MAX_ENTRIES` the oldest entry goes first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::time::Instant;

use super::decision::Decision;

/// Entries kept at most: a few MiB at worst (a digest, a decision and its queue place each).
pub const MAX_ENTRIES: usize = 10_000;

/// A digest of one question.
pub type Key = [u8; 32];

#[derive(Debug)]
struct Entry {
    decision: Decision,
    until: Instant,
    /// Its number in the order of making: tells this entry from an older one of the same key
    /// still queued.
    made: u64,
}

/// Decisions by question, with their order of making (oldest first) for eviction.
#[derive(Debug, Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    order: VecDeque<(Key, u64)>,
    made: u64,
}

impl Cache {
    /// The decision made for `key`, while it holds.
    pub fn get(&self, key: &Key) -> Option<Decision> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner
            .entries
            .get(key)
            .filter(|entry| entry.until > Instant::now())
            .map(|entry| entry.decision.clone())
    }

    /// Keeps `decision` until `until`; entries that expired, and past `MAX_ENTRIES` the oldest,
    /// make room first.
    pub fn put(&self, key: Key, decision: Decision, until: Instant) {
        let now = Instant::now();
        if until <= now {
            return;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Inner {
            entries,
            order,
            made: count,
        } = &mut *inner;
        while let Some((oldest, made)) = order.front().copied() {
            let current = entries.get(&oldest).filter(|entry| entry.made == made);
            let expired = current.is_none_or(|entry| entry.until <= now);
            if !expired && entries.len() < MAX_ENTRIES {
                break;
            }
            order.pop_front();
            if current.is_some() {
                entries.remove(&oldest);
            }
        }
        *count += 1;
        order.push_back((key, *count));
        entries.insert(
            key,
            Entry {
                decision,
                until,
                made: *count,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(n: usize) -> Key {
        let mut key = [0; 32];
        key[..8].copy_from_slice(&n.to_le_bytes());
        key
    }

    #[tokio::test(start_paused = true)]
    async fn entries_hold_until_their_time_and_no_longer() {
        let cache = Cache::default();
        let now = Instant::now();
        cache.put(
            key(1),
            Decision::unanswerable_for_tests(),
            now + Duration::from_secs(10),
        );
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(2)).is_none());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(cache.get(&key(1)).is_some(), "use does not extend it");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.get(&key(1)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_goes_when_full() {
        let cache = Cache::default();
        let until = Instant::now() + Duration::from_secs(60);
        for n in 0..=MAX_ENTRIES {
            cache.put(key(n), Decision::unanswerable_for_tests(), until);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(cache.get(&key(0)).is_none() && cache.get(&key(MAX_ENTRIES)).is_some());
        // A key made again is not evicted by its older place in the queue.
        cache.put(key(1), Decision::unanswerable_for_tests(), until);
        cache.put(
            key(MAX_ENTRIES + 1),
            Decision::unanswerable_for_tests(),
            until,
        );
        assert!(cache.get(&key(1)).is_some());
    }
}
