//! Named channels on the real binary: each with its own ids, history and consumers; routed by
//! `--channel` and by a JSON line's `"channel"`; names checked on the path as sent; bounded by
//! `--max-channels`; `Last-Event-ID: earliest`. Streams are read with eventsource-stream.

use crate::common;

use common::{Server, count, data, ids};

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
    server.write(
        concat!(
            r#"{"data": "end of build", "channel": "build"}"#,
            "\n",
            r#"{"data": "end of deploy", "channel": "deploy"}"#,
            "\n",
            r#"{"data": "end of default"}"#,
            "\n",
        )
        .as_bytes(),
    );
    assert_eq!(build.next_is("end of build").await.id, "3");
    assert_eq!(deploy.next_is("end of deploy").await.id, "2");
    assert_eq!(default.next_is("end of default").await.id, "3");

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
    again.next_is("end of default").await;

    let stats = server.stats().await;
    assert_eq!(stats["events_sent"], 8, "{stats}");
    assert_eq!(stats["consumers"], 4, "{stats}");
    assert_eq!(stats["channels"]["build"]["events_sent"], 3, "{stats}");
    assert_eq!(stats["channels"]["build"]["newest_id"], "3", "{stats}");
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
        "--publish-token",
        "t",
        "--keep-alive",
        "200ms",
    ]);
    let mut default = server.events("/events").await;
    let mut beats = server.raw("/events", &[]).await;
    server.wait_for_consumers(2).await;
    // --wait-clients counts the ticker's channel: default-channel clients do not start it. Had
    // they started it, its first tick (after 50 ms) would be gone, to no one, before the second
    // heartbeat (200 ms after the first) that the default channel sends a client there for both,
    // timed by the server's own clock; `clock`'s first id would then not be 1.
    beats
        .read_until("two heartbeats", |body| count(body, ":\n\n") >= 2)
        .await;
    let mut clock = server.events("/events/clock").await;
    let got = clock.take(3).await;
    assert_eq!(data(&got), ["tick 1", "tick 2", "tick 3"]);
    assert_eq!(ids(&got), ["1", "2", "3"]);
    server.wait_for_log("sent channel=clock id=1 consumers=1");
    // No tick reached the default channel: the first event there is the one posted to it.
    let answer = server
        .post("/events", &[("Authorization", "Bearer t")], "posted")
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(default.next_is("posted").await.id, "1");
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
async fn readers_channels_come_and_go_and_memory_stays_flat() {
    let server = Server::start(&["-i", "1h", "--max-channels", "3", "--publish-token", "t"]);
    // Readers take no channel slot (tests/suite/channel_slots.rs): four names past a limit of three
    // are all served.
    let mut held = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let client = server.events(&format!("/events/{name}")).await;
        assert_eq!(client.status, 200);
        held.push(client);
    }
    assert_eq!(server.events("/events/a").await.status, 200);
    assert_eq!(server.events("/events").await.status, 200);
    drop(held);
    server.wait_for_consumers(0).await;

    // Thousands of names cost nothing lasting: a channel only readers asked for is forgotten
    // once they left (swept as the registry doubles), so memory and the registry stay small.
    let client = reqwest::Client::new();
    let serve_names = async |count: usize, seed: usize| {
        for n in 0..count {
            let name = format!("r{:x}", (seed + n).wrapping_mul(2_654_435_761));
            let status = client
                .get(server.url(&format!("/events/{name}")))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "{name}");
        }
    };
    serve_names(500, 0).await;
    let before = server.rss_kib();
    serve_names(3000, 500).await;
    let after = server.rss_kib();
    let stats = server.stats().await;
    // At most twice what was alive at the last sweep, and no fewer than 64, before the next.
    assert!(
        stats["channels"].as_object().unwrap().len() <= 65,
        "{stats}"
    );
    // A channel kept per name would hold its client buffer (about 69 KiB, README), 200 MiB for
    // 3000 names. The bound is ten times the allocator noise this test used to allow (2 MiB).
    assert!(
        after < before + 20 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
