//! Live events from Redis are delivered per channel: a channel whose reader stalls holds back
//! no other channel on that instance, and its own live events wait in a bounded queue; past
//! it, the channel catches up from its stream, and its readers still get every event in order,
//! or, for what the stream no longer keeps, a notice where the gap is: never a silent one.

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

/// Opens `streams` streams of the channel `storm` at once, all resuming after id 2, and sees
/// each get id 3.
async fn resume_all(server: &Server, streams: usize) {
    let mut readers = futures_util::future::join_all(
        (0..streams).map(|_| server.events_with("/events/storm", &[("Last-Event-ID", "2")])),
    )
    .await;
    for reader in &mut readers {
        assert_eq!(reader.next().await.id, "3");
    }
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
    resume_all(&x, STREAMS).await;
    let calls = sync_calls(&redis);
    assert_eq!(calls, 0, "script calls for {STREAMS} resuming streams");
    // A fresh instance has the channel to catch up: the streams arriving at once share it.
    let z = instance(&redis, &["-q", "--max-clients", "1000"]);
    redis.cli(&["CONFIG", "RESETSTAT"]);
    resume_all(&z, STREAMS).await;
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

/// The catch-up after an overflow can only take what the stream still keeps (`--history`):
/// the events dropped from the queue and trimmed from the stream meanwhile are announced to
/// the readers as a comment just before the first event after the gap, with its exact size.
#[tokio::test(flavor = "multi_thread")]
async fn events_the_stream_no_longer_keeps_after_an_overflow_are_announced_where_they_were() {
    const HISTORY: &str = "100";
    let redis = Redis::start();
    let x = instance(
        &redis,
        &[
            "--client-buffer",
            "4",
            "--stall-timeout",
            "1h",
            "--history",
            HISTORY,
            "-v",
        ],
    );
    let y = instance(&redis, &["--history", HISTORY, "-q"]);
    let stalled = TcpClient::get(&x, "/events/a", Some(4096));
    x.wait_for_consumers(1).await;
    let mut reader = x.raw("/events/a", &[]).await;
    let line = "a".repeat(8 * 1024);
    for _ in 0..EVENTS / PER_POST {
        post_lines(&y, "/events/a", &[line.as_str(); PER_POST].join("\n")).await;
    }
    x.wait_for_log("the rest will be taken from the stream");
    drop(stalled);
    let last = format!("id: {EVENTS}\n");
    let received = reader.read_until_contains(&last).await;
    let text = String::from_utf8_lossy(received).into_owned();

    // Walk the frames: each id follows the one before it, or a notice of exactly the gap
    // comes first. Heartbeats (`--keep-alive`) are comments too, and are let through.
    let mut newest = 0u64;
    let mut notice: Option<String> = None;
    let mut announced = 0u64;
    for frame in text.split("\n\n").filter(|frame| !frame.is_empty()) {
        if let Some(comment) = frame.strip_prefix(": ").filter(|c| c.contains("were lost")) {
            notice = Some(comment.to_owned());
            continue;
        }
        let Some(id) = frame
            .lines()
            .find_map(|line| line.strip_prefix("id: "))
            .map(|id| id.parse::<u64>().unwrap())
        else {
            continue;
        };
        if id != newest + 1 {
            let expected = format!(
                "{} events after id {newest} were lost (no longer kept in Redis)",
                id - newest - 1
            );
            assert_eq!(
                notice.as_deref(),
                Some(expected.as_str()),
                "a silent gap before id {id}"
            );
            announced += id - newest - 1;
        }
        notice = None;
        newest = id;
    }
    assert_eq!(newest, EVENTS as u64);
    // The queue overflowed and the stream kept only the last HISTORY events: some were lost,
    // and every one of them was announced.
    assert!(announced > 0, "no gap: the overflow was not exercised");
    assert!(
        announced < EVENTS as u64,
        "announced {announced} lost of {EVENTS}"
    );
}
