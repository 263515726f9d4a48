//! What sse-broadcast keeps in Redis, and what it does with what it finds there: every key and
//! the Pub/Sub channel begin with `--redis-prefix`; keys of the earlier form are reported; and,
//! tried with `redis-cli` as an attacker (or a careless operator) would, a counter set back, an
//! epoch deleted, an id past 2^53 and a stream entry that is not UTF-8 neither move ids back
//! nor break the stream.

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::redis::{AUTH, Redis, instance};
use common::{Server, ids};

async fn post_lines(server: &Server, path: &str, body: &str) -> serde_json::Value {
    let answer = server.post(path, &[AUTH], body.to_owned()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()
}

fn lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn every_key_and_the_pubsub_channel_begin_with_the_prefix() {
    let redis = Redis::start();
    let blue = instance(&redis, &["--redis-prefix", "blue"]);
    let mut reader = blue.events("/events/build").await;
    post_lines(&blue, "/events/build", "one\ntwo").await;
    post_lines(&blue, "/events", "three").await;
    assert_eq!(ids(&reader.take(2).await), ["1", "2"]);
    assert_eq!(
        lines(&redis.cli(&["--scan"])),
        [
            "blue:{build}:bytes",
            "blue:{build}:epoch",
            "blue:{build}:seq",
            "blue:{build}:stream",
            "blue:{default}:bytes",
            "blue:{default}:epoch",
            "blue:{default}:seq",
            "blue:{default}:stream",
        ]
    );
    assert_eq!(lines(&redis.cli(&["PUBSUB", "CHANNELS"])), ["blue:events"]);
    // An ACL scoped to the prefix is enough.
    redis.cli(&[
        "ACL", "SETUSER", "scoped", "on", ">pw", "~blue:*", "&blue:*", "+@all",
    ]);
    let url = redis.url().replace("redis://", "redis://scoped:pw@");
    let scoped = Server::start(&[
        "--redis",
        &url,
        "--redis-prefix",
        "blue",
        "--publish-token",
        "t",
    ]);
    let answer = post_lines(&scoped, "/events/build", "four").await;
    assert_eq!(answer["first_id"], "3", "{answer}");
    assert_eq!(reader.next_is("four").await.id, "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_of_the_earlier_form_are_reported() {
    let redis = Redis::start();
    redis.cli(&["SET", "{blue:build}:seq", "7"]);
    redis.cli(&["SET", "{green:build}:seq", "7"]);
    let blue = instance(&redis, &["--redis-prefix", "blue"]);
    let line = blue.wait_for_log("earlier sse-broadcast");
    assert!(line.contains("{blue:CHANNEL}:seq"), "{line}");
    assert!(
        line.contains("{blue:build}:seq"),
        "names an example: {line}"
    );
    // Another prefix's old keys are not this one's.
    let red = instance(&redis, &["--redis-prefix", "red"]);
    post_lines(&red, "/events", "x").await;
    assert!(
        !red.stderr().contains("earlier sse-broadcast"),
        "{}",
        red.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_counter_set_back_or_an_epoch_deleted_never_moves_ids_back() {
    let redis = Redis::start();
    let a = instance(&redis, &[]);
    post_lines(&a, "/events/c", "1\n2\n3\n4\n5").await;
    redis.cli(&["SET", "sse-broadcast:{c}:seq", "2"]);
    let answer = post_lines(&a, "/events/c", "6").await;
    assert_eq!(answer["first_id"], "6", "{answer}");
    redis.cli(&["DEL", "sse-broadcast:{c}:epoch"]);
    redis.cli(&["SET", "sse-broadcast:{c}:seq", "1"]);
    // A fresh instance catches up (sync.lua) without setting the counter back...
    let b = instance(&redis, &[]);
    let mut reader = b.events_with("/events/c", &[("Last-Event-ID", "5")]).await;
    assert_eq!(reader.next().await.id, "6");
    assert_eq!(redis.cli(&["GET", "sse-broadcast:{c}:seq"]).trim(), "6");
    // ...and numbering goes on above everything seen.
    let answer = post_lines(&b, "/events/c", "7").await;
    assert_eq!(answer["first_id"], "7", "{answer}");
    assert_eq!(reader.next_is("7").await.id, "7");
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_past_2_pow_53_stay_exact() {
    let redis = Redis::start();
    redis.cli(&["SET", "sse-broadcast:{big}:seq", "9007199254740993"]);
    let a = instance(&redis, &[]);
    let mut reader = a.events("/events/big").await;
    let answer = post_lines(&a, "/events/big", "x\ny\nz").await;
    assert_eq!(answer["first_id"], "9007199254740994", "{answer}");
    assert_eq!(
        ids(&reader.take(3).await),
        ["9007199254740994", "9007199254740995", "9007199254740996"]
    );
    assert_eq!(
        redis.cli(&["GET", "sse-broadcast:{big}:seq"]).trim(),
        "9007199254740996"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_entry_that_is_not_utf8_is_skipped_and_told() {
    let redis = Redis::start();
    let a = instance(&redis, &[]);
    post_lines(&a, "/events/u", "one").await;
    let garbage: [&OsStr; 5] = [
        OsStr::new("XADD"),
        OsStr::new("sse-broadcast:{u}:stream"),
        OsStr::new("2-0"),
        OsStr::new("d"),
        OsStr::from_bytes(b"\xff\xfe"),
    ];
    redis.cli(&garbage);
    redis.cli(&["SET", "sse-broadcast:{u}:seq", "2"]);
    post_lines(&a, "/events/u", "three").await;
    // A fresh instance catches the channel up from the stream: it takes 1 and 3, and a client
    // resuming after 1 reads that one event could not be read, then 3.
    let b = instance(&redis, &[]);
    let mut raw = b.raw("/events/u", &[("Last-Event-ID", "1")]).await;
    raw.read_until_contains("data: three\n").await;
    let text = raw.text();
    let notice = ": 1 events after id 1 were lost (unreadable in Redis)\n";
    assert!(text.contains(notice), "{text:?}");
    assert!(
        text.find(notice).unwrap() < text.find("id: 3\n").unwrap(),
        "{text:?}"
    );
    b.wait_for_log("cannot be read");
    // The channel goes on.
    post_lines(&b, "/events/u", "four").await;
    raw.read_until_contains("data: four\n").await;
}
