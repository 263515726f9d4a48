//! Live events from Redis are delivered per channel: a channel whose reader stalls holds back
//! no other channel on that instance, and its own live events wait in a bounded queue; past
//! it, the channel catches up from its stream, and its readers still get every event in order.

mod common;

use common::redis::Redis;
use common::{Server, TcpClient, ids};

const AUTH: (&str, &str) = ("Authorization", "Bearer t");
const EVENTS: usize = 1500;
const PER_POST: usize = 100;

fn instance(redis: &Redis, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--publish-token", "t"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

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
