//! Channel slots: `--max-channels` counts channels that hold events. Readers waiting on fresh
//! channels take no slot and stay open through publishes to other new channels at the limit; a
//! publish that needs a slot when none is free is refused (POST: 503 + Retry-After; a stdin
//! line: one warning a period, counted in /stats and /metrics); a thousand reader-only
//! channels do not block a publisher; `--max-clients` still bounds readers. Events are read
//! with eventsource-stream, the waiting readers' streams as raw bytes (heartbeats).

use crate::common;

use common::{RawClient, Server, count};

const AUTH: (&str, &str) = ("Authorization", "Bearer t");
const EVENT_STREAM: (&str, &str) = ("Accept", "text/event-stream");

/// Reads until `reader` got one heartbeat more than it had: its stream is still open.
async fn still_open(reader: &mut RawClient) {
    let seen = count(&reader.received, ":\n\n");
    reader
        .read_until("a heartbeat", |received| count(received, ":\n\n") > seen)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_waiting_on_fresh_channels_stay_open_at_the_limit() {
    let mut server = Server::piped(&[
        "-f",
        "json",
        "--max-channels",
        "3",
        "--publish-token",
        "t",
        "--keep-alive",
        "100ms",
    ]);
    // Pages opened before their jobs publish: three fresh channels, nothing sent yet.
    let mut waiting = Vec::new();
    for name in ["user-1", "user-2", "user-3"] {
        let reader = server
            .raw(&format!("/events/{name}"), &[EVENT_STREAM])
            .await;
        assert_eq!(reader.status, 200, "{name}");
        waiting.push(reader);
    }
    // More readers on fresh names are served too: they take no slot.
    let mut more = server.raw("/events/user-4", &[EVENT_STREAM]).await;
    assert_eq!(more.status, 200);
    server.wait_for_consumers(4).await;

    // Three POSTs to three other new channels take the three slots.
    for name in ["a", "b", "c"] {
        let answer = server.post(&format!("/events/{name}"), &[AUTH], name).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // At the limit: a fourth new channel, and a channel readers wait on, are refused.
    for name in ["d", "user-1"] {
        let answer = server.post(&format!("/events/{name}"), &[AUTH], "x").await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.headers["retry-after"], "5", "{answer:?}");
    }
    // Stdin lines for a new channel: skipped, one warning for the lot, every one counted.
    for _ in 0..20 {
        server.write(b"{\"data\": \"late\", \"channel\": \"e\"}\n");
    }
    server.wait_for_stat("publishes_refused", 22).await;
    let log = server.stderr();
    assert_eq!(
        log.matches("skipped: channel e refused").count(),
        1,
        "{log}"
    );

    // Every waiting reader is still there: no stream was ended to make room.
    for reader in waiting.iter_mut().chain([&mut more]) {
        still_open(reader).await;
        assert!(!reader.text().contains("made room"), "{}", reader.text());
    }
    let stats = server.stats().await;
    for name in ["user-1", "user-2", "user-3", "user-4"] {
        assert_eq!(stats["channels"][name]["consumers"], 1, "{stats}");
        assert!(stats["channels"][name].get("yields_to_publisher").is_none());
    }
    let metrics = server.metrics().await;
    for line in [
        "sse_broadcast_publishes_refused_total 22",
        "sse_broadcast_channel_slots 3",
        "sse_broadcast_events_total{channel=\"a\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("user-"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_reader_only_channels_do_not_block_a_publisher() {
    let server = Server::start(&["--max-channels", "1", "--publish-token", "t"]);
    // 63 streams of 16 channels each: 1,008 channels with a reader and nothing published.
    let mut readers = Vec::new();
    for stream in 0..63 {
        let names: Vec<String> = (0..16).map(|n| format!("w{stream}-{n}")).collect();
        let reader = server
            .raw(&format!("/events/{}", names.join(",")), &[EVENT_STREAM])
            .await;
        assert_eq!(reader.status, 200, "{}", reader.text());
        readers.push(reader);
    }
    server.wait_for_consumers(1008).await;
    let answer = server.post("/events/deploys", &[AUTH], "v1 is out").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let mut deploys = server
        .events_with("/events/deploys", &[("Last-Event-ID", "earliest")])
        .await;
    assert_eq!(deploys.next().await.data, "v1 is out");
    // The one slot is taken now; the readers stay.
    let answer = server.post("/events/w0-0", &[AUTH], "x").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 1009, "{stats}");
    assert!(
        stats["channels"].as_object().unwrap().len() > 1008,
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_clients_still_bounds_readers_channels() {
    let server = Server::start(&["--max-clients", "5", "--max-channels", "1"]);
    let mut readers = Vec::new();
    for n in 0..5 {
        let reader = server.raw(&format!("/events/r{n}"), &[]).await;
        assert_eq!(reader.status, 200);
        readers.push(reader);
    }
    server.wait_for_consumers(5).await;
    // Past --max-clients a reader on a fresh name is refused, however many names it tries;
    // the channels its requests made hold nothing and are swept as the registry grows.
    let http = reqwest::Client::new();
    for n in 5..505 {
        let url = server.url(&format!("/events/r{n}"));
        let refused = http.get(url).send().await.unwrap();
        assert_eq!(refused.status(), 503, "r{n}");
    }
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 5, "{stats}");
    assert_eq!(stats["requests_refused"], 500, "{stats}");
    let channels = stats["channels"].as_object().unwrap().len();
    assert!(channels < 200, "{channels} channels for 5 readers: {stats}");
}
