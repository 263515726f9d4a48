//! Readers cannot squat publishers out: streams on made-up names fill `--max-channels`, yet a
//! POST or a stdin line for a new channel is served, taking the place of the oldest channel that
//! only readers asked for and that received nothing; that channel's streams end with a refusal
//! an EventSource survives. `/metrics` labels only channels that received events. Events are
//! read with eventsource-stream, the squatters' streams as raw bytes (comments and `retry:`).

mod common;

use common::{RawClient, Server, assert_refused_with_retry};

const AUTH: (&str, &str) = ("Authorization", "Bearer t");
const EVENT_STREAM: (&str, &str) = ("Accept", "text/event-stream");
const MADE_ROOM: &str = ": this channel received no event and made room for a publisher (--max-channels); try again later\n\n";

#[tokio::test(flavor = "multi_thread")]
async fn readers_on_made_up_names_give_their_places_to_publishers() {
    let mut server = Server::piped(&["-f", "json", "--max-channels", "3", "--publish-token", "t"]);
    let mut squatters: Vec<RawClient> = Vec::new();
    for name in ["made-up-1", "made-up-2", "made-up-3"] {
        let squatter = server
            .raw(&format!("/events/{name}"), &[EVENT_STREAM])
            .await;
        assert_eq!(squatter.status, 200, "{name}");
        squatters.push(squatter);
    }
    server.wait_for_consumers(3).await;
    // Readers still meet the bound: a fourth made-up name is refused.
    let refused = reqwest::get(server.url("/events/made-up-4")).await.unwrap();
    assert_eq!(refused.status(), 503);

    let answer = server.post("/events/deploys", &[AUTH], "v1 is out").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    server.write(b"{\"data\": \"compiled\", \"channel\": \"builds\"}\n");
    server.wait_for_log("sent channel=builds id=1");
    // The two oldest squatters' streams said why and when to come back, and ended.
    for squatter in &mut squatters[..2] {
        assert_refused_with_retry(squatter.until_end().await, MADE_ROOM);
    }
    let log = server.stderr();
    assert!(!log.contains("skipped"), "{log}");

    // What was published is there for readers, replayed and live.
    let mut deploys = server
        .events_with("/events/deploys", &[("Last-Event-ID", "earliest")])
        .await;
    assert_eq!(deploys.next().await.data, "v1 is out");
    let mut builds = server
        .events_with("/events/builds", &[("Last-Event-ID", "earliest")])
        .await;
    assert_eq!(builds.next().await.data, "compiled");
    let answer = server.post("/events/deploys", &[AUTH], "v2 is out").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(deploys.next_is("v2 is out").await.id, "2");

    // /stats lists the squatter left and says it yields; /metrics names none of them.
    let stats = server.stats().await;
    let channels = &stats["channels"];
    assert_eq!(
        channels["made-up-3"]["yields_to_publisher"], true,
        "{stats}"
    );
    assert_eq!(channels["made-up-3"]["consumers"], 1, "{stats}");
    assert_eq!(channels["deploys"]["yields_to_publisher"], false, "{stats}");
    assert!(channels.get("made-up-1").is_none(), "{stats}");
    let metrics = server.metrics().await;
    assert!(!metrics.contains("made-up"), "{metrics}");
    for line in [
        "sse_broadcast_events_total{channel=\"deploys\"} 2",
        "sse_broadcast_consumers{channel=\"builds\"} 1",
        "sse_broadcast_channels 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }

    // A publisher is served while a squatter is left; then, with none, it is refused.
    let answer = server.post("/events/tests", &[AUTH], "green").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_refused_with_retry(squatters[2].until_end().await, MADE_ROOM);
    let answer = server.post("/events/more", &[AUTH], "x").await;
    assert_eq!(answer.status, 503, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_with_a_reader_and_events_keeps_its_place() {
    let mut server = Server::piped(&["-f", "json", "--max-channels", "1", "--publish-token", "t"]);
    let mut reader = server.events("/events/live").await;
    server.wait_for_consumers(1).await;
    let answer = server.post("/events/live", &[AUTH], "first").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(reader.next_is("first").await.id, "1");

    let answer = server.post("/events/other", &[AUTH], "x").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    server.write(b"{\"data\": \"y\", \"channel\": \"other\"}\n");
    server.write(b"{\"data\": \"second\", \"channel\": \"live\"}\n");
    server.wait_for_log("line 1: skipped: channel other refused");
    assert_eq!(reader.next_is("second").await.id, "2");
    let stats = server.stats().await;
    assert_eq!(stats["channels"]["live"]["consumers"], 1, "{stats}");
    assert!(stats["channels"].get("other").is_none(), "{stats}");
}
