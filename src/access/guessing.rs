//! Slows password guessing. After repeated wrong credentials from one peer (`--auth`, or a
//! POST's bearer token: `publish.rs`), its further failures are answered late, each later than
//! the last, and past a bound at once with 429 and `Retry-After`. Right credentials are never
//! held, and other peers are not touched. A peer is its address (an IPv6 one by its /64, which
//! one host commonly holds whole); behind a proxy, the client's as `--trusted-proxy` makes it
//! out (`forwarded.rs`).
//!
//! The failures of a peer are paced as a leaky bucket (GCRA): `BURST` are answered at once,
//! then one per `INTERVAL`; one that would wait longer than `MAX_DELAY` is refused instead, so a
//! peer holds at most `MAX_DELAY / INTERVAL` answers in waiting.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::refused::Refused;

/// Failures a peer may have answered at once (typos), before pacing begins.
const BURST: u32 = 10;
/// The pace after that: one failure answered per this period.
const INTERVAL: Duration = Duration::from_secs(1);
/// The longest a failure's answer is held; later ones get 429.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// Peers remembered at once; past it, new peers share one pace (see `failed`).
const MAX_PEERS: usize = 65_536;

/// What a failure from a peer is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// The usual refusal, at once.
    None,
    /// The usual refusal, after this long.
    Delay(Duration),
    /// 429, with `Retry-After` this long.
    TooMany(Duration),
}

/// Each peer's pace: when its failures will have drained (the bucket's level, as a time).
#[derive(Debug, Default)]
pub struct Guesses {
    peers: Mutex<HashMap<IpAddr, Instant>>,
}

impl Guesses {
    /// Records a failure from `peer` (unknown only in unit tests) and says how to answer it.
    pub fn failed(&self, peer: Option<IpAddr>) -> Penalty {
        let Some(peer) = peer else {
            return Penalty::None;
        };
        self.failed_at(peer_key(peer), Instant::now())
    }

    fn failed_at(&self, mut key: IpAddr, now: Instant) -> Penalty {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.len() >= MAX_PEERS && !peers.contains_key(&key) {
            peers.retain(|_, drained| *drained > now);
            // Still full (many addresses failing at once): the newcomers share one pace.
            if peers.len() >= MAX_PEERS {
                key = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            }
        }
        let drained = peers
            .get(&key)
            .copied()
            .filter(|drained| *drained > now)
            .unwrap_or(now);
        let next = drained + INTERVAL;
        let over = (next - now).saturating_sub(INTERVAL * BURST);
        if over > MAX_DELAY {
            // Not counted: the peer is told to come back once a held answer would fit.
            return Penalty::TooMany(over - MAX_DELAY);
        }
        peers.insert(key, next);
        if over.is_zero() {
            Penalty::None
        } else {
            Penalty::Delay(over)
        }
    }
}

/// The address that stands for a peer: an IPv6 address by its /64.
pub fn peer_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// 429 for a peer that failed too often, with the wait in `Retry-After` (whole seconds, at
/// least 1).
pub fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Refused::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong credentials from your address; try again in {secs} s"),
    )
    .with(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_at_once_then_held_answers_then_429() {
        let guesses = Guesses::default();
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..BURST {
            assert_eq!(guesses.failed_at(peer, start), Penalty::None);
        }
        for held in 1..=10 {
            assert_eq!(
                guesses.failed_at(peer, start),
                Penalty::Delay(INTERVAL * held)
            );
        }
        assert_eq!(guesses.failed_at(peer, start), Penalty::TooMany(INTERVAL));
        // Another peer is not touched.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(guesses.failed_at(other, start), Penalty::None);
        // Time drains the bucket: after a quiet minute the burst is there again.
        let later = start + Duration::from_secs(60);
        assert_eq!(guesses.failed_at(peer, later), Penalty::None);
    }

    #[test]
    fn an_ipv6_peer_is_its_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(peer_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
