//! Several channels on one stream beyond one plain connection: evicted from all its channels
//! when it stalls one, several such streams on one HTTP/2 connection (h2c), and three Redis
//! instances where a cursor means the same on each, the client switching instance mid-stream.

use crate::common;

use common::redis::{Redis, instance, post};
use common::tls::{self, Http};
use common::{Server, TcpClient, data, ids};
use reqwest::Version;
use serde_json::json;

fn lines(channel: &str, range: std::ops::RangeInclusive<u32>, len: usize) -> Vec<u8> {
    let pad = "x".repeat(len);
    range
        .map(|n| {
            format!(
                "{}\n",
                json!({"channel": channel, "data": format!("{n} {pad}")})
            )
        })
        .collect::<String>()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_of_several_is_evicted_from_all_its_channels_with_one_warning() {
    const EVENTS: u32 = 20_000;
    let mut server = Server::piped(&["-f", "json", "--stall-timeout", "1s", "-q"]);
    // Never reads: a small receive buffer fills soon. It reads quiet `a` and busy `b`.
    let stalled = TcpClient::get(&server, "/events/a,b", Some(4096));
    let stalled_address = stalled.local_addr().to_string();
    server.wait_for_consumers(2).await;
    let mut fast = server.events("/events/b").await;
    server.wait_for_consumers(3).await;
    let feeder = server.feed(lines("b", 1..=EVENTS, 1024));
    for n in 1..=EVENTS {
        let event = fast.next().await;
        assert_eq!(event.id, n.to_string());
    }
    feeder.join().unwrap();
    let stats = server.wait_for_stat("consumers", 1).await;
    assert_eq!(stats["clients_dropped_stalled"], 1, "{stats}");
    // `a` had no reader but this one and holds no event: without it, the registry may sweep it.
    let a = &stats["channels"]["a"];
    assert!(
        a.is_null() || a["consumers"] == 0,
        "gone from a too: {stats}"
    );
    assert_eq!(stats["channels"]["b"]["consumers"], 1, "{stats}");
    let log = server.stderr();
    let warnings = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains(&stalled_address))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_of_several_channels_share_one_http2_connection() {
    let mut server = Server::piped(&["-f", "json", "--max-clients", "2"]);
    let h2c = tls::client(None, Http::H2c);
    let url = server.url("/events/red,blue");
    let mut first = tls::events(&h2c, &url, &[], Version::HTTP_2).await;
    server.wait_for_consumers(2).await;
    server.write(&lines("blue", 1..=2, 0));
    let got = first.take(2).await;
    assert_eq!(ids(&got), ["blue:1,red:0", "blue:2,red:0"]);
    // A second stream on the same connection resumes from the first one's cursor.
    server.write(&lines("red", 1..=1, 0));
    let resume = [("last-event-id", got[0].id.as_str())];
    let mut second = tls::events(&h2c, &url, &resume, Version::HTTP_2).await;
    let replayed = second.take(2).await;
    assert_eq!(data(&replayed), ["2 ", "1 "]);
    assert_eq!(ids(&replayed), ["blue:2,red:0", "red:1,blue:2"]);
    assert_eq!(first.next().await.id, "red:1,blue:2");
    // Two streams of two channels each: --max-clients 2 counts streams, not channels.
    let refused = tls::get(&h2c, &url, &[]).await;
    assert_eq!(refused.status(), 503);
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 4, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_means_the_same_on_every_redis_instance() {
    let redis = Redis::start();
    let [one, two, three] = [
        instance(&redis, &[]),
        instance(&redis, &[]),
        instance(&redis, &[]),
    ];
    post(&three, "jobs", "j1\nj2").await;
    let mut stream = one.events("/events/jobs,mail?lastEventId=earliest").await;
    assert_eq!(
        ids(&stream.take(2).await),
        ["jobs:1,mail:0", "jobs:2,mail:0"]
    );
    post(&two, "mail", "m1").await;
    let last = stream.next_is("m1").await.id;
    assert_eq!(last, "mail:1,jobs:2");
    drop(stream);

    // Away from instance one; meanwhile every instance publishes. Back, on instance two.
    post(&three, "jobs", "j3").await;
    post(&one, "mail", "m2").await;
    post(&two, "jobs", "j4").await;
    let mut stream = two
        .events_with("/events/jobs,mail", &[("last-event-id", &last)])
        .await;
    let got = stream.take(3).await;
    let mut got_data = data(&got);
    got_data.sort();
    assert_eq!(
        got_data,
        ["j3", "j4", "m2"],
        "neither a duplicate nor a gap"
    );
    let last = got[2].id.clone();
    // However this instance received them, each id is the cursor after that very event.
    for event in &got {
        let own = event.id.split(',').next().unwrap();
        let expected = match event.data.as_str() {
            "j3" => "jobs:3",
            "j4" => "jobs:4",
            _ => "mail:2",
        };
        assert_eq!(own, expected, "{got:?}");
    }
    assert!(
        last == "jobs:4,mail:2" || last == "mail:2,jobs:4",
        "after all three the cursor holds both: {last}"
    );
    drop(stream);

    // And on to instance three, which never served this stream nor read mail.
    post(&one, "mail", "m3").await;
    let mut stream = three
        .events_with("/events/jobs,mail", &[("last-event-id", &last)])
        .await;
    let next = stream.next().await;
    assert_eq!(
        (next.data.as_str(), next.id.as_str()),
        ("m3", "mail:3,jobs:4")
    );
    post(&two, "jobs", "j5").await;
    assert_eq!(stream.next_is("j5").await.id, "jobs:5,mail:3");
}
