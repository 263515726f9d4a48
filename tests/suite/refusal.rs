//! What a refused stream request is told. An EventSource (it accepts `text/event-stream`) gets
//! a 200 stream that says why and when to come back, then ends, so it reconnects; a browser
//! takes a 503 as final. Other clients keep 503 with `Retry-After`. Both count as refusals.

use crate::common;

use common::browser::Browser;
use common::{Client, Server, TcpClient, assert_refused_with_retry};

const EVENT_STREAM: (&str, &str) = ("Accept", "text/event-stream");

#[tokio::test(flavor = "multi_thread")]
async fn a_browsers_event_source_refused_for_max_clients_comes_back() {
    let Some(mut browser) =
        Browser::launch("a_browsers_event_source_refused_for_max_clients_comes_back")
    else {
        return;
    };
    let mut server = Server::piped(&["--max-clients", "1"]);
    let holder = Client::connect(&server.url("/events"), &[]).await;
    assert_eq!(holder.status, 200);
    server.wait_for_consumers(1).await;

    // Any page of the origin will do; the built-in one would open a stream of its own.
    browser.open(&server.url("/stats"));
    browser.eval(
        "window.seen = [];
         const source = new EventSource('/events');
         source.onopen = () => seen.push('open');
         source.onerror = () => seen.push('error ' + source.readyState);
         source.onmessage = (event) => seen.push('message ' + event.data);",
    );
    // readyState 0 is CONNECTING: the browser will try again (2, CLOSED, is what a 503 gives).
    browser.wait_for(
        "the refused stream to end with a reconnect pending",
        "seen.join() === 'open,error 0'",
    );
    assert_eq!(server.stats().await["requests_refused"], 1);

    drop(holder);
    // The server said to come back after 5 to 7.5 s.
    browser.wait_for("the reconnect", "seen.join() === 'open,error 0,open'");
    server.wait_for_consumers(1).await;
    server.write(b"after the refusal\n");
    browser.wait_for(
        "the event",
        "seen.join() === 'open,error 0,open,message after the refusal'",
    );
    browser.assert_no_script_errors();
}

#[tokio::test]
async fn a_refused_event_source_reads_why_and_when_and_the_stream_ends() {
    let server = Server::start(&["-i", "1h", "--max-clients", "2"]);
    let _held = [
        server.events("/events/a").await,
        server.events("/events").await,
    ];
    server.wait_for_consumers(2).await;

    // Past --max-clients over HTTP/2 (h2c, served by hyper) and on the lean HTTP/1.1 path. (A
    // stream never meets --max-channels: readers take no channel slot.)
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let refused = common::tls::get(&h2, &server.url("/events/b"), &[EVENT_STREAM]).await;
    assert_eq!(refused.version(), reqwest::Version::HTTP_2);
    assert_eq!(refused.status(), 200);
    assert_eq!(refused.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(common::WAIT, refused.bytes())
        .await
        .expect("the stream ends")
        .unwrap();
    assert_refused_with_retry(
        &body,
        ": too many clients (--max-clients); try again later\n\n",
    );

    let mut lean = TcpClient::get(&server, "/events/a", None);
    let deadline = std::time::Instant::now() + common::WAIT;
    while lean.read_some(4096).unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream did not end"
        );
    }
    assert!(lean.head.as_deref().unwrap().starts_with("HTTP/1.1 200 OK"));
    assert_refused_with_retry(
        &lean.body,
        ": too many clients (--max-clients); try again later\n\n",
    );

    // Without `text/event-stream` in Accept (curl sends */*): 503, as before.
    let plain = reqwest::get(server.url("/events/a")).await.unwrap();
    assert_eq!(plain.status(), 503);
    assert_eq!(plain.headers()["retry-after"], "5");

    let stats = server.stats().await;
    assert_eq!(stats["requests_refused"], 3, "{stats}");
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|line| line == "sse_broadcast_requests_refused_total 3"),
        "{metrics}"
    );
}
