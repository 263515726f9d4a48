//! `--presence` over two instances on one redis-server, while renewals happen (DESIGN.md §17):
//! a user who moves between instances, always with a stream open (the new one opens before the
//! old one closes), never leaves, and once the moves end `/presence` on both instances says
//! who is there. Instance B holds readers on many channels, so each of its renewals (one call
//! per channel, every 3.75 s) takes a while; the moves go on until two of B's renewals were
//! seen in Redis, so some overlap them. And a dead instance's share in Redis lasts as long as
//! the counts it is part of, so the call that counts it out still finds it. Every wait is for
//! an event or an answer.

use crate::common;

use std::time::Instant;

use common::redis::{Redis, instance};
use common::{Client, Server};
use serde_json::{Value, json};

const SECRET: &str = "a test secret of 32 bytes or more";

/// Channels B has readers on besides `room`, 16 to a stream (the most a stream takes).
const FILLERS: usize = 640;

fn token(sub: &str) -> String {
    common::user_token(SECRET, sub, &["*"])
}

async fn open(server: &Server, path: &str, token: &str) -> Client {
    let bearer = format!("Bearer {token}");
    let client = server
        .events_with(path, &[("Authorization", bearer.as_str())])
        .await;
    assert_eq!(client.status, 200, "{path}");
    client
}

/// The lease of B on a channel only B reads: it moves at each of B's renewals, and only then.
fn lease_of_b(redis: &Redis) -> String {
    let keys = redis.cli(&["--scan", "--pattern", "*{f0}:present"]);
    let key = keys.lines().next().unwrap_or_default().to_owned();
    redis.cli(&["ZRANGE", key.as_str(), "0", "-1", "WITHSCORES"])
}

/// `/presence/room` on `server` once it is `expected`, or what it was when `WAIT` ran out
/// (each instance tells Redis of a close when it sees it).
async fn presence_becomes(server: &Server, token: &str, expected: &Value) -> Value {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let answer = reqwest::Client::new()
            .get(server.url("/presence/room"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let seen: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
        if &seen == expected || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_moving_between_instances_during_renewals_never_leaves() {
    let redis = Redis::start();
    let flags = ["--presence", "--jwt-secret", SECRET];
    let a = instance(&redis, &flags);
    let b = instance(&redis, &flags);
    let (watch, uma, filler) = (token("watch"), token("uma"), token("filler"));
    let mut watcher = open(&a, "/events/room", &watch).await;
    assert_eq!(watcher.next().await.event, "join");
    let mut fillers = Vec::new();
    for first in (0..FILLERS).step_by(16) {
        let names: Vec<String> = (first..first + 16).map(|i| format!("f{i}")).collect();
        fillers.push(open(&b, &format!("/events/{}", names.join(",")), &filler).await);
    }
    let mut on_a = open(&a, "/events/room", &uma).await;
    let joined: Value = serde_json::from_str(&watcher.next().await.data).unwrap();
    assert_eq!(joined, json!({"user": "uma", "streams": 2}));

    // Uma moves A -> B -> A ..., opening the new stream before closing the old one.
    let mut renewals = 0;
    let mut lease = lease_of_b(&redis);
    let mut moves = 0;
    let deadline = Instant::now() + 4 * common::WAIT;
    while renewals < 2 {
        assert!(Instant::now() < deadline, "B renewed {renewals} times");
        let on_b = open(&b, "/events/room", &uma).await;
        drop(on_a);
        on_a = open(&a, "/events/room", &uma).await;
        drop(on_b);
        moves += 1;
        let now = lease_of_b(&redis);
        if now != lease {
            renewals += 1;
            lease = now;
        }
    }

    let expected = json!({"channel": "room", "streams": 2, "anonymous": 0, "users": [
        {"user": "uma", "streams": 1}, {"user": "watch", "streams": 1}]});
    assert_eq!(presence_becomes(&a, &watch, &expected).await, expected);
    assert_eq!(presence_becomes(&b, &watch, &expected).await, expected);
    // Nothing was announced to the watcher during the moves: the sentinel comes next.
    common::redis::post(&a, "room", "after the moves").await;
    let next = watcher.next().await;
    assert_eq!(
        (next.event.as_str(), next.data.as_str()),
        ("message", "after the moves"),
        "after {moves} moves over {renewals} renewals of B"
    );
}

/// `PREFIX:{NAME}:presence:INSTANCE` of the one instance with readers on `channel`, and the
/// channel's counts `PREFIX:{NAME}:presence`.
fn share_and_counts(redis: &Redis, channel: &str) -> (String, String) {
    let share = redis.cli(&["--scan", "--pattern", &format!("*{{{channel}}}:presence:*")]);
    let share = share.lines().next().expect("a share").to_owned();
    let counts = share.rsplit_once(':').unwrap().0.to_owned();
    (share, counts)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_instances_share_lasts_as_long_as_the_counts_it_is_part_of() {
    // Were B's share to expire before the counts (4 leases after B's own last call), a later
    // call would count B out with nothing to take away: its readers would stay counted for as
    // long as calls go on, and their leaves would never be announced.
    let redis = Redis::start();
    let flags = ["--presence", "--jwt-secret", SECRET];
    let a = instance(&redis, &flags);
    let mut b = instance(&redis, &flags);
    let _reader = open(&b, "/events/gone", &token("gus")).await;
    let (share, counts) = share_and_counts(&redis, "gone");
    b.signal("KILL");
    b.wait_exit();
    // A call on A within B's lease (15 s from B's last renewal, at most 3.75 s ago): it
    // renews the counts, and must renew B's share with them.
    let answer = reqwest::Client::new()
        .get(a.url("/presence/gone"))
        .bearer_auth(token("gus"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let ttls = redis.cli(&[
        "EVAL",
        "return {redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[2])}",
        "2",
        &share,
        &counts,
    ]);
    let ttls: Vec<i64> = ttls.lines().map(|ttl| ttl.parse().unwrap()).collect();
    assert!(
        ttls[0] > 0,
        "B was counted out already: the call came too late ({ttls:?})"
    );
    assert!(
        ttls[0] >= ttls[1],
        "B's share expires before the counts: {ttls:?}"
    );
}
