//! `--max-stream-age` (DESIGN.md §16): each stream ends after its age (drawn per stream within
//! ±10 %) with a comment and `retry:`, and a client that reconnects as an EventSource does
//! (after the `retry:` wait, with `Last-Event-ID` from the last `id:` it saw) misses nothing
//! and gets nothing twice. Bodies are parsed by eventsource-stream; Chromium's EventSource
//! shows the same over its own reconnections.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;

use common::Server;
use common::browser::Browser;

const AGED: &str = ": this stream reached its age (--max-stream-age); reconnect\n\nretry: ";

/// Every event of a finished body, as (id, data).
async fn parse(body: &[u8]) -> Vec<(String, String)> {
    let chunks = [Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(
        body,
    ))];
    let parsed: Vec<_> = futures_util::stream::iter(chunks)
        .eventsource()
        .collect()
        .await;
    parsed
        .into_iter()
        .map(|event| event.expect("a well-formed stream"))
        .filter(|event| !event.data.is_empty())
        .map(|event| (event.id, event.data))
        .collect()
}

/// A ticker whose streams age after about a second, told to come back after 100 ms.
const AGING: [&str; 8] = [
    "-i",
    "50ms",
    "-m",
    "tick {seq}",
    "--max-stream-age",
    "1s",
    "--retry",
    "100ms",
];

#[tokio::test]
async fn an_aged_stream_ends_with_retry_and_its_client_resumes_without_loss() {
    let server = Server::start(&AGING);
    let mut last_id: Option<String> = None;
    let mut seen: Vec<(String, String)> = Vec::new();
    for _ in 0..3 {
        let headers: Vec<(&str, &str)> = last_id
            .as_deref()
            .map(|id| ("Last-Event-ID", id))
            .into_iter()
            .collect();
        let opened = Instant::now();
        let mut stream = server.raw("/events", &headers).await;
        let body = stream.until_end().await.to_vec();
        // Never before 0.9 of its age; the upper bound is left to the machine's load.
        assert!(
            opened.elapsed() >= Duration::from_millis(900),
            "ended early"
        );
        let text = String::from_utf8_lossy(&body).into_owned();
        let retry = text
            .rsplit_once(AGED)
            .and_then(|(_, tail)| tail.strip_suffix("\n\n"))
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or_else(|| panic!("no age notice and retry: at the end of {text:?}"));
        // --retry 100ms, spread per client up to half as much again.
        assert!(retry >= Duration::from_millis(100) && retry <= Duration::from_millis(150));
        let events = parse(&body).await;
        assert!(!events.is_empty(), "{text:?}");
        last_id = events.last().map(|(id, _)| id.clone());
        seen.extend(events);
        // As an EventSource does, it waits the retry: it was told before coming back.
        tokio::time::sleep(retry).await;
    }
    // Every tick from the first seen to the last, each once, in order.
    let first: u64 = seen[0].0.parse().unwrap();
    for (offset, (id, data)) in seen.iter().enumerate() {
        let expected = first + offset as u64;
        assert_eq!(id, &expected.to_string(), "{seen:?}");
        assert_eq!(data, &format!("tick {expected}"));
    }
    assert!(seen.len() > 3, "{seen:?}");
}

/// The same promise with a real EventSource: Chromium's own reconnection, told by `retry:`
/// when to come back and sending its `Last-Event-ID`, misses no tick and sees none twice.
#[test]
fn a_browsers_event_source_outlives_its_aged_streams_without_loss() {
    let Some(mut browser) =
        Browser::launch("a_browsers_event_source_outlives_its_aged_streams_without_loss")
    else {
        return;
    };
    let server = Server::start(&AGING);
    // Any page of the origin will do; the built-in one would open a stream of its own.
    browser.open(&server.url("/stats"));
    browser.eval(
        "window.opens = 0;
         window.seen = [];
         window.source = new EventSource('/events');
         source.onopen = () => opens += 1;
         source.onmessage = (event) => seen.push([event.lastEventId, event.data]);",
    );
    // Three streams: the first two ended by their age, the browser came back after each.
    browser.wait_for("two reconnections after aged streams", "opens >= 3");
    browser.wait_for("ticks on the third stream", "seen.length >= 45");
    let seen = browser.eval("source.close(); seen");
    let seen: Vec<(String, String)> = serde_json::from_value(seen).unwrap();
    let first: u64 = seen[0].0.parse().unwrap();
    for (offset, (id, data)) in seen.iter().enumerate() {
        let expected = first + offset as u64;
        assert_eq!(id, &expected.to_string(), "{seen:?}");
        assert_eq!(data, &format!("tick {expected}"), "{seen:?}");
    }
    browser.assert_no_script_errors();
}
