//! Stream flags (DESIGN §2): the shared heartbeat, the `retry:` field spread per client, and
//! `--max-clients`.

use crate::common;

use common::{Server, count};

#[tokio::test]
async fn an_idle_stream_gets_heartbeat_comments() {
    let server = Server::piped(&["--keep-alive", "300ms"]);
    let mut client = server.raw("/events", &[]).await;
    assert_eq!(client.status, 200);
    // Three heartbeats take about 0.9 s; the bound is generous.
    let body = client
        .read_until("three heartbeats", |body| count(body, ":\n\n") >= 3)
        .await;
    let text = String::from_utf8_lossy(body).into_owned();
    assert!(
        text.split_inclusive("\n\n").all(|frame| frame == ":\n\n"),
        "an idle stream holds heartbeats only: {text:?}"
    );
    // The heartbeat keeps coming while nothing else is sent.
    let before = count(&client.received, ":\n\n");
    client
        .read_until("more heartbeats", |body| count(body, ":\n\n") > before)
        .await;
}

/// The frames of a raw stream that are heartbeats (an empty comment, nothing else).
fn heartbeats(body: &[u8]) -> usize {
    String::from_utf8_lossy(body)
        .split_inclusive("\n\n")
        .filter(|frame| *frame == ":\n\n")
        .count()
}

#[tokio::test]
async fn every_channel_gets_its_own_heartbeat() {
    // Each channel's heartbeat waits for its own silence: a quiet channel gets its heartbeats
    // while another is busy, and the busy one gets none (it is never idle for --keep-alive). A
    // heartbeat sent to every channel on one timer fails the second half, one that waits for
    // silence everywhere the first.
    let mut server = Server::piped(&["--keep-alive", "1s"]);
    let mut quiet = server.raw("/events/quiet", &[]).await;
    let mut busy = server.raw("/events", &[]).await;
    server.wait_for_consumers(2).await;
    // The busy channel gets its next event as soon as its last one has arrived, so it is never
    // idle for longer than one round trip, however loaded the machine, with no clock in the
    // test; meanwhile the quiet one must get two heartbeats.
    let quiet = tokio::spawn(async move {
        quiet
            .read_until("two heartbeats", |body| heartbeats(body) >= 2)
            .await;
        quiet
    });
    let mut sent = 0;
    while !quiet.is_finished() {
        sent += 1;
        server.write(format!("busy {sent}\n").as_bytes());
        busy.read_until_contains(&format!("data: busy {sent}\n\n"))
            .await;
    }
    let quiet = quiet.await.expect("the quiet channel's heartbeats");
    let body = &busy.received;
    let text = String::from_utf8_lossy(body).into_owned();
    assert_eq!(
        heartbeats(body),
        0,
        "the busy channel was never idle, yet got heartbeats: {text:?}"
    );
    assert_eq!(count(body, "data: busy "), sent, "{text:?}");
    let quiet_text = quiet.text();
    assert!(
        quiet_text
            .split_inclusive("\n\n")
            .all(|frame| frame == ":\n\n"),
        "the quiet channel holds heartbeats only: {quiet_text:?}"
    );
}

#[tokio::test]
async fn each_stream_starts_with_a_retry_field_spread_over_r_to_one_and_a_half_r() {
    let server = Server::piped(&["--retry", "1s"]);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let mut client = server.raw("/events", &[]).await;
        let body = client.read_until_contains("\n\n").await;
        let text = String::from_utf8_lossy(body).into_owned();
        let first_frame = &text[..text.find("\n\n").unwrap() + 2];
        let millis: u64 = first_frame
            .strip_prefix("retry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("the stream should open with `retry: N`: {text:?}"));
        assert!(
            (1000..=1500).contains(&millis),
            "retry {millis} outside [1000, 1500]"
        );
        delays.push(millis);
    }
    // Drawn per client: ten equal draws out of 501 values would mean no spread at all.
    assert!(
        delays.iter().any(|&d| d != delays[0]),
        "every client got the same delay: {delays:?}"
    );
    // An EventSource parser applies it: the first event carries no data, so it is not dispatched,
    // and the next real event still arrives.
    let mut server = server;
    let mut client = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(b"after retry\n");
    assert_eq!(client.next().await.data, "after retry");
}

#[tokio::test]
async fn max_clients_refuses_further_streams_with_503_and_retry_after() {
    let server = Server::piped(&["--max-clients", "1"]);
    let first = server.events("/events").await;
    assert_eq!(first.status, 200);
    server.wait_for_consumers(1).await;

    let refused = reqwest::get(server.url("/events")).await.unwrap();
    assert_eq!(refused.status(), 503);
    let retry_after = refused
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        retry_after.parse::<u64>().is_ok_and(|secs| secs > 0),
        "Retry-After: {retry_after:?}"
    );
    let stats = server.stats().await;
    assert_eq!(stats["requests_refused"], 1, "{stats}");
    assert_eq!(stats["consumers"], 1, "{stats}");
    // `/stats` and the page are not streams: they are served while the stream slot is taken.
    assert_eq!(reqwest::get(server.url("/")).await.unwrap().status(), 200);

    // Once the first stream ends, a new one is accepted.
    drop(first);
    server.wait_for_consumers(0).await;
    let again = server.events("/events").await;
    assert_eq!(again.status, 200);
    // A refusal is counted before it is answered: this one's 200 is in, so it was not counted.
    assert_eq!(server.stats().await["requests_refused"], 1);
}
