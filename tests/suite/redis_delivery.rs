//! Live events from Redis are delivered per channel: a channel whose reader stalls holds back
//! no other channel on that instance, and its own live events wait in a bounded queue; past
//! it, the channel catches up from its stream, and its readers still get every event in order.

use crate::common;

use common::redis::{AUTH, Redis, instance};
use common::{Server, TcpClient, ids};

const EVENTS: usize = 1500;
const PER_POST: usize = 100;

async fn post_lines(server: &Server, path: &str, body: &str) {
    let answer = server.post(path, &[AUTH], body.to_owned()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_reader_on_one_channel_delays_no_other_channel() {
    let redis = Redis::start();
    // On X, input may wait on a client for an hour: only per-channel delivery lets B through.
    let x = instance(
        &redis,
        &[
            "--client-buffer",
            "4",
            "--stall-timeout",
            "1h",
            "--history",
            "5000",
            "-v",
        ],
    );
    let y = instance(&redis, &["--history", "5000", "-q"]);
    let stalled = TcpClient::get(&x, "/events/a", Some(4096));
    x.wait_for_consumers(1).await;
    let mut reader_a = x.events("/events/a").await;
    let mut reader_b = x.events("/events/b").await;
    // 1500 events of 8 KiB for A: far more than the kernel buffers of the client that never
    // reads, and more than the live events a channel may have waiting.
    let line = "a".repeat(8 * 1024);
    for _ in 0..EVENTS / PER_POST {
        post_lines(&y, "/events/a", &[line.as_str(); PER_POST].join("\n")).await;
    }
    post_lines(&y, "/events/b", "for b").await;
    assert_eq!(reader_b.next_is("for b").await.id, "1");
    x.wait_for_log("the rest will be taken from the stream");
    // A's stalled client goes; A's other reader gets every event, in order, without a gap.
    drop(stalled);
    let received = reader_a.take(EVENTS).await;
    let expected: Vec<String> = (1..=EVENTS).map(|id| id.to_string()).collect();
    assert_eq!(ids(&received), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_storm_on_one_channel_shares_its_catch_ups() {
    const STREAMS: usize = 400;
    let redis = Redis::start();
    let x = instance(&redis, &["-q", "--max-clients", "1000"]);
    post_lines(&x, "/events/storm", "1\n2\n3").await;
    redis.cli(&["CONFIG", "RESETSTAT"]);
    // The instance follows the channel: streams resuming from an id it has cost Redis nothing
    // (before, every stream request ran sync.lua).
    let mut readers = futures_util::future::join_all(
        (0..STREAMS).map(|_| x.events_with("/events/storm", &[("Last-Event-ID", "2")])),
    )
    .await;
    for reader in &mut readers {
        assert_eq!(reader.next().await.id, "3");
    }
    let calls = sync_calls(&redis);
    assert_eq!(calls, 0, "script calls for {STREAMS} resuming streams");
    // A fresh instance has the channel to catch up: the streams arriving at once share it.
    let z = instance(&redis, &["-q", "--max-clients", "1000"]);
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let mut readers = futures_util::future::join_all(
        (0..STREAMS).map(|_| z.events_with("/events/storm", &[("Last-Event-ID", "2")])),
    )
    .await;
    for reader in &mut readers {
        assert_eq!(reader.next().await.id, "3");
    }
    let calls = sync_calls(&redis);
    assert!(
        calls <= 4,
        "{calls} catch-ups for {STREAMS} streams of a new channel"
    );
}

/// Script calls since the last `CONFIG RESETSTAT` (only catch-ups: nothing publishes).
fn sync_calls(redis: &Redis) -> u64 {
    redis
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
