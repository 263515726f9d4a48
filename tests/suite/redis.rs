//! Several instances as one broadcast through Redis (`--redis`), on a real redis-server started
//! for each test: every input on any instance reaches every client on every instance with the
//! same ids; a client resumes on another instance with its Last-Event-ID; the history window;
//! a stalled client holds back its own instance only; a Redis outage and an empty restart (with
//! /stats and /metrics); rediss://; Redis down at start. Streams are read with
//! eventsource-stream, comments (notices, heartbeats) from the raw body.

use crate::common;

use std::time::{Duration, Instant};

use common::redis::{AUTH, Redis, instance, over_tls, refusal_of_an_unknown_certificate};
use common::{Client, Server, TcpClient, WAIT, data, ids};
use eventsource_stream::Event;
use prometheus_parse::{Scrape, Value};

fn pairs(events: &[Event]) -> Vec<(String, String)> {
    ids(events).into_iter().zip(data(events)).collect()
}

async fn post_lines(server: &Server, path: &str, body: &str) -> serde_json::Value {
    let answer = server.post(path, &[AUTH], body.to_owned()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()
}

/// Waits until the instance's `/stats` shows the Redis link `up` (or down).
async fn wait_for_link(server: &Server, up: bool) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = server.stats().await;
        if stats["redis"]["up"] == up {
            return stats;
        }
        assert!(Instant::now() < deadline, "link never {up}: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_with_three_inputs_are_one_broadcast() {
    let redis = Redis::start();
    let url = redis.url();
    let mut stdin = Server::piped(&["--redis", &url, "--stdin", "-f", "json"]);
    let ticker = Server::start(&[
        "--redis",
        &url,
        "-i",
        "100ms",
        "-m",
        "tick {seq}",
        "--count",
        "3",
        "--wait-clients",
        "1",
    ]);
    let poster = instance(&redis, &[]);
    let mut clients: Vec<Client> = Vec::new();
    let mut builds: Vec<Client> = Vec::new();
    for server in [&stdin, &poster, &ticker] {
        builds.push(server.events("/events/build").await);
        // The ticker's client comes last: the ticker starts once it is there.
        clients.push(server.events("/events").await);
    }
    stdin.write(b"{\"data\":\"line 1\"}\n{\"data\":\"to build\",\"channel\":\"build\"}\n");
    let answer = post_lines(&poster, "/events", "post 1\npost 2").await;
    stdin.write(b"{\"data\":\"line 2\"}\n");
    // A named channel numbers on its own, alike everywhere.
    for client in &mut builds {
        assert_eq!(
            pairs(&[client.next().await]),
            [("1".into(), "to build".into())]
        );
    }
    let build = post_lines(&poster, "/events/build", "build 2").await;
    assert_eq!(build["first_id"], "2");
    for client in &mut builds {
        assert_eq!(
            pairs(&[client.next().await]),
            [("2".into(), "build 2".into())]
        );
    }

    let first = pairs(&clients[0].take(7).await);
    for client in &mut clients[1..] {
        assert_eq!(pairs(&client.take(7).await), first, "instances disagree");
    }
    let expected_ids: Vec<String> = (1..=7).map(|id| id.to_string()).collect();
    assert_eq!(
        first.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        expected_ids,
        "one numbering, no gap"
    );
    // A tick shows its own Redis-given id.
    let (ticks, mut others): (Vec<_>, Vec<_>) =
        first.iter().partition(|(_, data)| data.starts_with("tick"));
    assert_eq!(ticks.len(), 3, "{first:?}");
    for (id, data) in ticks {
        assert_eq!(data, &format!("tick {id}"));
    }
    let mut others: Vec<&str> = others.drain(..).map(|(_, data)| data.as_str()).collect();
    others.sort_unstable();
    assert_eq!(others, ["line 1", "line 2", "post 1", "post 2"]);
    // The POST's two lines got consecutive ids, as its answer says.
    let first_id: u64 = answer["first_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(answer["last_id"], (first_id + 1).to_string());
    let at = first
        .iter()
        .position(|(id, _)| *id == first_id.to_string())
        .unwrap();
    assert_eq!(first[at].1, "post 1");
    assert_eq!(first[at + 1].1, "post 2");

    for server in [&stdin, &poster, &ticker] {
        let stats = server.stats().await;
        assert_eq!(stats["redis"]["up"], true, "{stats}");
        assert!(
            stats["redis"]["events_received"].as_u64().unwrap() >= 1,
            "{stats}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_resumes_on_another_instance_with_its_last_event_id() {
    let redis = Redis::start();
    let a = instance(&redis, &[]);
    let b = instance(&redis, &[]);
    let c = instance(&redis, &[]);
    let mut first = a.events("/events/room").await;
    post_lines(&c, "/events/room", "1\n2\n3").await;
    let seen = first.take(3).await;
    drop(first);
    post_lines(&c, "/events/room", "4\n5").await;
    // B never had this channel: it comes from Redis, after the id A gave.
    let last = seen.last().unwrap().id.clone();
    let mut second = b
        .events_with("/events/room", &[("Last-Event-ID", &last)])
        .await;
    post_lines(&a, "/events/room", "6").await;
    let resumed = second.take(3).await;
    assert_eq!(data(&resumed), ["4", "5", "6"]);
    assert_eq!(ids(&resumed), ["4", "5", "6"]);
    // No event twice: what comes next is the next one published, wherever it was.
    post_lines(&b, "/events/room", "7").await;
    assert_eq!(second.next_is("7").await.id, "7", "an event twice");
    // And back to A, which followed all along: the same ids.
    let mut third = a
        .events_with("/events/room", &[("Last-Event-ID", "5")])
        .await;
    assert_eq!(
        pairs(&third.take(2).await),
        [("6".into(), "6".into()), ("7".into(), "7".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_window_is_what_redis_keeps() {
    let redis = Redis::start();
    let a = instance(&redis, &["--history", "3"]);
    let b = instance(&redis, &["--history", "3"]);
    let lines: Vec<String> = (1..=10).map(|n| format!("e{n}")).collect();
    post_lines(&a, "/events/w", &lines.join("\n")).await;
    let mut earliest = b
        .events_with("/events/w", &[("Last-Event-ID", "earliest")])
        .await;
    assert_eq!(ids(&earliest.take(3).await), ["8", "9", "10"]);
    let mut resumed = b.events_with("/events/w", &[("Last-Event-ID", "8")]).await;
    assert_eq!(data(&resumed.take(2).await), ["e9", "e10"]);
    let mut late = b.raw("/events/w", &[("Last-Event-ID", "2")]).await;
    late.read_until_contains("id: 10\n").await;
    let text = late.text();
    assert!(
        text.contains(": 5 events after id 2 are no longer kept; replaying the 3 kept\n\n"),
        "{text:?}"
    );
    assert!(text.find("no longer kept").unwrap() < text.find("id: 8\n").unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_lost_and_restarted_empty() {
    let mut redis = Redis::start();
    let url = redis.url();
    let mut stdin = Server::piped(&["--redis", &url, "--stdin", "--keep-alive", "200ms"]);
    let poster = instance(&redis, &["--keep-alive", "200ms"]);
    let mut reader = poster.events("/events").await;
    let mut raw = stdin.raw("/events", &[]).await;
    post_lines(&poster, "/events", "1\n2\n3").await;
    assert_eq!(ids(&reader.take(3).await), ["1", "2", "3"]);

    redis.kill();
    wait_for_link(&poster, false).await;
    wait_for_link(&stdin, false).await;
    let answer = poster.post("/events", &[AUTH], "refused").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("--redis"), "{answer:?}");
    stdin.write(b"waited\n");
    // Streams stay open: heartbeats go on while Redis is away.
    let before = raw.text().matches(":\n\n").count();
    raw.read_until("heartbeats during the outage", |received| {
        String::from_utf8_lossy(received).matches(":\n\n").count() >= before + 2
    })
    .await;

    redis.restart();
    let stats = wait_for_link(&poster, true).await;
    assert!(
        stats["redis"]["reconnects"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    wait_for_link(&stdin, true).await;
    // The line that waited goes out; ids never go backwards.
    let waited = reader.next().await;
    assert_eq!((waited.id.as_str(), waited.data.as_str()), ("4", "waited"));
    let answer = post_lines(&poster, "/events", "after").await;
    assert_eq!(answer["first_id"], "5");
    assert_eq!(
        pairs(&[reader.next().await]),
        [("5".into(), "after".into())]
    );

    // A new instance knows only what Redis kept: a client from before the restart is told.
    let fresh = instance(&redis, &[]);
    let mut back = fresh.raw("/events", &[("Last-Event-ID", "2")]).await;
    back.read_until_contains("id: 5\n").await;
    let text = back.text();
    assert!(
        text.contains(": 1 events after id 2 are no longer kept"),
        "{text:?}"
    );
    assert!(!text.contains("id: 3\n"), "{text:?}");
    let resets = poster.stats().await["redis"]["resets"].as_u64().unwrap();
    assert!(resets >= 1, "the empty restart went unnoticed");
    // The same link figures, as Prometheus reads them.
    assert_eq!(metric(&poster, "sse_broadcast_redis_up").await, 1.0);
    assert!(metric(&poster, "sse_broadcast_redis_reconnects_total").await >= 1.0);
    assert!(metric(&poster, "sse_broadcast_redis_resets_total").await >= 1.0);
    assert!(metric(&poster, "sse_broadcast_redis_events_received_total").await >= 1.0);
}

/// One unlabelled sample from `/metrics`, parsed by prometheus-parse.
async fn metric(server: &Server, name: &str) -> f64 {
    let text = server.metrics().await;
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let sample = scrape
        .samples
        .iter()
        .find(|sample| sample.metric == name)
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    match sample.value {
        Value::Gauge(value) | Value::Counter(value) | Value::Untyped(value) => value,
        _ => panic!("{name} is not a number"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_client_holds_back_its_own_instance_only() {
    const EVENTS: usize = 200;
    let redis = Redis::start();
    // On A, input may wait on a client for an hour: nothing is dropped during the test.
    let a = instance(
        &redis,
        &["--client-buffer", "4", "--stall-timeout", "1h", "-q"],
    );
    let b = instance(&redis, &["-q"]);
    let _stalled = TcpClient::get(&a, "/events", Some(4096));
    a.wait_for_consumers(1).await;
    let mut reader = b.events("/events").await;
    // 200 events of 64 KiB: far more than the kernel buffers for the client that never reads.
    let line = "x".repeat(64 * 1024);
    for _ in 0..EVENTS / 10 {
        post_lines(&b, "/events", &[line.as_str(); 10].join("\n")).await;
    }
    let received = reader.take(EVENTS).await;
    assert_eq!(ids(&received).last().unwrap(), &EVENTS.to_string());
    // A is still held back by its own client, and only A.
    let held = a.stats().await["events_sent"].as_u64().unwrap();
    assert!(
        held < EVENTS as u64,
        "A sent {held} of {EVENTS} to a client that reads nothing"
    );
    assert_eq!(b.stats().await["events_sent"], EVENTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn rediss_speaks_tls_checked_against_the_trusted_roots() {
    let redis = Redis::start_tls();
    let url = redis.url();
    let ca = redis.tls().unwrap().ca.as_path();
    refusal_of_an_unknown_certificate(&url);
    let a = Server::spawn(over_tls(&url, Some(ca)), common::Input::Null);
    let b = Server::spawn(over_tls(&url, Some(ca)), common::Input::Null);
    let mut client = b.events("/events").await;
    post_lines(&a, "/events", "over tls").await;
    assert_eq!(
        pairs(&[client.next().await]),
        [("1".into(), "over tls".into())]
    );
}

#[test]
fn redis_down_at_start_exits_1_naming_the_flag() {
    let redis = Redis::start();
    let url = redis.url();
    drop(redis);
    let output = std::process::Command::new(common::BIN)
        .args(["--port", "0", "--redis", &url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--redis") && stderr.contains(&url),
        "{stderr}"
    );

    let output = std::process::Command::new(common::BIN)
        .args(["--redis", "http://127.0.0.1:6379"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a bad URL is a usage error");
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_with_another_prefix_are_another_broadcast() {
    let redis = Redis::start();
    let blue = instance(&redis, &["--redis-prefix", "blue"]);
    let also_blue = instance(&redis, &["--redis-prefix", "blue"]);
    let green = instance(&redis, &["--redis-prefix", "green"]);
    let mut blue_reader = also_blue.events("/events").await;
    let mut green_reader = green.events("/events").await;

    post_lines(&blue, "/events", "for blue 1\nfor blue 2").await;
    let answer = post_lines(&green, "/events", "for green").await;
    // Each prefix numbers on its own, and neither sees the other's events.
    assert_eq!(answer["first_id"], "1", "{answer}");
    assert_eq!(
        pairs(&blue_reader.take(2).await),
        [
            ("1".into(), "for blue 1".into()),
            ("2".into(), "for blue 2".into())
        ]
    );
    assert_eq!(
        pairs(&green_reader.take(1).await),
        [("1".to_owned(), "for green".to_owned())]
    );
    // Green's event did not reach blue: the next event there is blue's own, numbered on.
    post_lines(&also_blue, "/events", "for blue 3").await;
    assert_eq!(
        blue_reader.next_is("for blue 3").await.id,
        "3",
        "green's event reached blue"
    );
    // Nor blue's green.
    post_lines(&green, "/events", "for green 2").await;
    assert_eq!(green_reader.next_is("for green 2").await.id, "2");
}
