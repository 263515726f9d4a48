//! Named channels on the real binary: each with its own ids, history and consumers; routed by
//! `--channel` and by a JSON line's `"channel"`; names checked on the path as sent; bounded by
//! `--max-channels`; `Last-Event-ID: earliest`. Streams are read with eventsource-stream.

mod common;

use std::time::Duration;

use common::{Server, data, ids};

#[tokio::test(flavor = "multi_thread")]
async fn each_channel_numbers_and_keeps_its_own_events() {
    let mut server = Server::piped(&["-f", "json"]);
    let mut build = server.events("/events/build").await;
    let mut deploy = server.events("/events/deploy").await;
    let mut default = server.events("/events").await;
    server.wait_for_consumers(3).await;

    server.write(
        concat!(
            r#"{"data": "compile", "channel": "build"}"#,
            "\n",
            r#"{"data": "plain"}"#,
            "\n",
            r#"{"data": "link", "channel": "build"}"#,
            "\n",
            r#"{"data": "ship", "channel": "deploy", "event": "stage"}"#,
            "\n",
            r#"{"data": "also plain", "channel": "default"}"#,
            "\n",
            r#"{"data": "bad name", "channel": "no/slash"}"#,
            "\n",
        )
        .as_bytes(),
    );
    let got = build.take(2).await;
    assert_eq!(
        (data(&got), ids(&got)),
        (
            vec!["compile".to_owned(), "link".into()],
            vec!["1".to_owned(), "2".into()]
        )
    );
    let got = deploy.next().await;
    assert_eq!(
        (got.data.as_str(), got.id.as_str(), got.event.as_str()),
        ("ship", "1", "stage")
    );
    let got = default.take(2).await;
    assert_eq!(data(&got), ["plain", "also plain"]);
    assert_eq!(ids(&got), ["1", "2"]);
    // Nothing crossed over: the next event on each is the next one sent to it.
    assert!(
        deploy
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );

    let log = server.wait_for_log("line 6: skipped");
    assert!(log.contains("sent channel=build id=1 consumers=1"), "{log}");
    assert!(
        log.contains("sent channel=deploy id=1 consumers=1"),
        "{log}"
    );
    assert!(
        log.contains("sent id=1 consumers=1"),
        "the default channel is not named: {log}"
    );

    // `/events/default` is the default channel, with its history.
    let mut again = server
        .events_with("/events/default", &[("Last-Event-ID", "1")])
        .await;
    assert_eq!(again.next().await.data, "also plain");

    let stats = server.stats().await;
    assert_eq!(stats["events_sent"], 5, "{stats}");
    assert_eq!(stats["consumers"], 4, "{stats}");
    assert_eq!(stats["channels"]["build"]["events_sent"], 2, "{stats}");
    assert_eq!(stats["channels"]["build"]["newest_id"], "2", "{stats}");
    assert_eq!(stats["channels"]["deploy"]["consumers"], 1, "{stats}");
    assert_eq!(stats["channels"]["default"]["consumers"], 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ticker_publishes_to_its_channel() {
    let server = Server::start(&[
        "-i",
        "50ms",
        "-m",
        "tick {seq}",
        "--channel",
        "clock",
        "--wait-clients",
        "1",
    ]);
    let mut default = server.events("/events").await;
    // --wait-clients counts the ticker's channel: a default-channel client does not start it.
    assert!(
        default
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    let mut clock = server.events("/events/clock").await;
    let got = clock.take(3).await;
    assert_eq!(data(&got), ["tick 1", "tick 2", "tick 3"]);
    assert_eq!(ids(&got), ["1", "2", "3"]);
    server.wait_for_log("sent channel=clock id=1 consumers=1");
    assert!(
        default
            .next_within(Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_checked_as_sent() {
    let server = Server::start(&["-i", "1s", "--publish-token", "t"]);
    let too_long = format!("/events/{}", "x".repeat(65));
    for path in [
        "/events/",
        "/events/.hidden",
        "/events/-x",
        "/events/a%20b",
        "/events/%62uild",
        "/events/a/b",
        "/events/caf%C3%A9",
        too_long.as_str(),
    ] {
        let get = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(get.status(), 404, "GET {path}");
        let post = server
            .post(path, &[("Authorization", "Bearer t")], "x")
            .await;
        assert_eq!(post.status, 404, "POST {path}");
    }
    let longest = format!("/events/{}", "x".repeat(64));
    let ok = server.events(&longest).await;
    assert_eq!(ok.status, 200);
    assert_eq!(server.events("/events/Job-7.log_2").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn earliest_replays_everything_kept_and_the_header_wins() {
    let mut server = Server::piped(&["--history", "3"]);
    server.write(b"one\ntwo\nthree\nfour\n");
    server.wait_for_log("sent id=4");

    let mut by_header = server
        .events_with("/events", &[("Last-Event-ID", "earliest")])
        .await;
    assert_eq!(data(&by_header.take(3).await), ["two", "three", "four"]);
    let mut by_query = server.events("/events?lastEventId=earliest").await;
    assert_eq!(data(&by_query.take(3).await), ["two", "three", "four"]);
    // A reconnecting EventSource keeps the page's query and sends the id it saw in the header.
    let mut reconnect = server
        .events_with("/events?lastEventId=earliest", &[("Last-Event-ID", "3")])
        .await;
    assert_eq!(reconnect.next().await.data, "four");

    server.write(b"five\n");
    for client in [&mut by_header, &mut by_query, &mut reconnect] {
        let live = client.next().await;
        assert_eq!((live.data.as_str(), live.id.as_str()), ("five", "5"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_channels_refuses_new_ones_and_memory_stays_flat() {
    let server = Server::start(&["-i", "1h", "--max-channels", "3", "--publish-token", "t"]);
    let mut held = Vec::new();
    for name in ["a", "b", "c"] {
        let client = server.events(&format!("/events/{name}")).await;
        assert_eq!(client.status, 200);
        held.push(client);
    }
    let refused = reqwest::get(server.url("/events/d")).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let post = server
        .post("/events/d", &[("Authorization", "Bearer t")], "x")
        .await;
    assert_eq!(post.status, 503);
    assert!(post.headers.contains_key("retry-after"));
    // Existing channels and the default one are still served.
    assert_eq!(server.events("/events/a").await.status, 200);
    assert_eq!(server.events("/events").await.status, 200);
    assert!(server.stats().await["requests_refused"].as_u64().unwrap() >= 2);

    // Once unread, channels that never sent anything make room at once.
    drop(held);
    server.wait_for_consumers(0).await;
    let client = reqwest::Client::new();
    let try_names = async |count: usize, seed: usize| {
        for n in 0..count {
            let name = format!("r{:x}", (seed + n).wrapping_mul(2_654_435_761));
            let status = client
                .get(server.url(&format!("/events/{name}")))
                .send()
                .await
                .unwrap()
                .status();
            assert!(status == 200 || status == 503, "{status}");
        }
    };
    try_names(500, 0).await;
    let before = server.rss_kib();
    try_names(3000, 500).await;
    let after = server.rss_kib();
    let stats = server.stats().await;
    assert!(stats["channels"].as_object().unwrap().len() <= 4, "{stats}");
    // Thousands of names cost nothing lasting: allow allocator noise, not growth per name.
    assert!(
        after < before + 2048,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
