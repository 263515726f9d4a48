//! `--history-bytes` bounds what Redis keeps, not only the local history: the channel's stream
//! holds the newest events whose values fit, its byte count (`PREFIX:{CHANNEL}:bytes`) says
//! exactly what they hold, an event larger than the bound goes out but is not kept, and a
//! reader resuming from a trimmed position on another instance is told what it missed, then
//! gets what was kept. Checked with `redis-cli` on a real redis-server.

use crate::common;

use common::redis::{AUTH, Redis, instance};
use common::{Server, data, ids};

const STREAM: &str = "sse-broadcast:{big}:stream";
const BYTES: &str = "sse-broadcast:{big}:bytes";

async fn post_lines(server: &Server, lines: &[String]) {
    let answer = server.post("/events/big", &[AUTH], lines.join("\n")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// Event `n` of exactly `size` bytes of data: `n` then padding.
fn event(n: usize, size: usize) -> String {
    let mut line = format!("{n} ");
    line.push_str(&"x".repeat(size - line.len()));
    line
}

/// The ids of the stream's entries, oldest first (`N-0` as the scripts write them).
fn stream_ids(redis: &Redis) -> Vec<String> {
    redis
        .cli(&["XRANGE", STREAM, "-", "+"])
        .lines()
        .filter(|line| line.ends_with("-0"))
        .map(|line| line.trim_end_matches("-0").to_owned())
        .collect()
}

fn cli_trimmed(redis: &Redis, args: &[&str]) -> String {
    redis.cli(args).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_keeps_the_newest_events_that_fit_in_history_bytes() {
    let redis = Redis::start();
    // Far more events than the bound holds, and a count bound that would keep them all.
    let a = instance(&redis, &["--history", "100", "--history-bytes", "10KiB"]);
    let lines: Vec<String> = (1..=10).map(|n| event(n, 2000)).collect();
    post_lines(&a, &lines).await;
    // 10240 bytes hold five events of 2000: the newest five, and the count says so exactly.
    assert_eq!(stream_ids(&redis), ["6", "7", "8", "9", "10"]);
    assert_eq!(cli_trimmed(&redis, &["XLEN", STREAM]), "5");
    assert_eq!(cli_trimmed(&redis, &["GET", BYTES]), "10000");
    let memory: u64 = cli_trimmed(&redis, &["MEMORY", "USAGE", STREAM])
        .parse()
        .unwrap();
    assert!(memory < 20_000, "the stream takes {memory} bytes");

    // Another instance, started after, has only Redis to replay from (its own bound is the
    // default 16MiB): a reader resuming from id 2 is told of the three it missed, then gets
    // the five kept.
    let b = instance(&redis, &[]);
    let mut late = b.raw("/events/big", &[("Last-Event-ID", "2")]).await;
    late.read_until_contains("id: 10\n").await;
    let text = late.text();
    let notice = ": 3 events after id 2 are no longer kept; replaying the 5 kept\n";
    assert!(text.contains(notice), "{text:?}");
    assert!(text.find(notice).unwrap() < text.find("id: 6\n").unwrap());
    let mut resumed = b
        .events_with("/events/big", &[("Last-Event-ID", "5")])
        .await;
    let kept = resumed.take(5).await;
    assert_eq!(ids(&kept), ["6", "7", "8", "9", "10"]);
    assert_eq!(data(&kept), lines[5..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_larger_than_the_bound_goes_out_but_is_not_kept() {
    let redis = Redis::start();
    let a = instance(&redis, &["--history-bytes", "4KiB"]);
    let mut reader = a.events("/events/big").await;
    post_lines(&a, &[event(1, 1000)]).await;
    let large = event(2, 5000);
    post_lines(&a, std::slice::from_ref(&large)).await;
    assert_eq!(reader.take(2).await[1].data, large);
    assert_eq!(cli_trimmed(&redis, &["XLEN", STREAM]), "0");
    assert_eq!(cli_trimmed(&redis, &["GET", BYTES]), "0");
    // Numbering goes on above the event that was not kept.
    post_lines(&a, &[event(3, 1000)]).await;
    assert_eq!(stream_ids(&redis), ["3"]);
    assert_eq!(cli_trimmed(&redis, &["GET", BYTES]), "1000");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_byte_count_is_counted_again_from_the_stream() {
    let redis = Redis::start();
    let a = instance(&redis, &["--history-bytes", "5000"]);
    post_lines(&a, &[event(1, 1000), event(2, 1000)]).await;
    // As a stream written by an earlier version, which kept no count.
    redis.cli(&["DEL", BYTES]);
    post_lines(&a, &[event(3, 1000), event(4, 1000), event(5, 1500)]).await;
    // 5500 bytes in all: the oldest goes, the count is exact.
    assert_eq!(stream_ids(&redis), ["2", "3", "4", "5"]);
    assert_eq!(cli_trimmed(&redis, &["GET", BYTES]), "4500");
}
