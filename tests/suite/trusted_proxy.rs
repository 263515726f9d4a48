//! `--trusted-proxy` and `--max-streams-per-peer` (DESIGN.md §16): behind a trusted proxy the
//! client is the right-most untrusted address of `X-Forwarded-For` (or `Forwarded`), for the
//! per-client stream limit, the wrong-credential pacing and the logs; a peer that is not trusted
//! is its own address whatever it sends. Connections come from chosen 127.0.0.0/8 addresses:
//! 127.0.0.2 plays the proxy, 127.0.0.3 a client that writes the headers itself.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Server, WAIT, assert_refused_with_retry};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const REFUSED: &str =
    ": too many streams from your address (--max-streams-per-peer); try again later\n\n";

/// A client whose connections come from `source`.
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .unwrap()
}

/// An EventSource's GET of the default stream from `source` with `headers`: the response, whose
/// body is still to read.
async fn stream_from(
    server: &Server,
    source: Ipv4Addr,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![("Accept", "text/event-stream")];
    all.extend_from_slice(headers);
    common::tls::get(&client_from(source), &server.url("/events"), &all).await
}

/// The whole body of a refused stream (it ends), or a test failure if it does not end.
async fn refused_body(response: reqwest::Response) -> Vec<u8> {
    tokio::time::timeout(WAIT, response.bytes())
        .await
        .expect("a refusal ends its stream")
        .unwrap()
        .to_vec()
}

/// Reads the stream's first chunk (its `retry:`, as the server is started with `--retry`):
/// open and serving, not refused.
async fn is_open(response: reqwest::Response) -> reqwest::Response {
    assert_eq!(response.status(), 200);
    let mut response = response;
    let first = tokio::time::timeout(WAIT, response.chunk())
        .await
        .expect("a first chunk")
        .unwrap()
        .expect("the stream is open");
    assert!(first.starts_with(b"retry: "), "{first:?}");
    response
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let server = Server::start(&[
        "-i",
        "1h",
        "--retry",
        "3s",
        "--trusted-proxy",
        "127.0.0.2/32",
        "--max-streams-per-peer",
        "2",
    ]);
    let alice = [("X-Forwarded-For", "203.0.113.7")];
    let _first = is_open(stream_from(&server, PROXY, &alice).await).await;
    // Prepending addresses does not make another client: the proxy appended the real one.
    let forged = [("X-Forwarded-For", "198.51.100.99, 203.0.113.7")];
    let _second = is_open(stream_from(&server, PROXY, &forged).await).await;
    let third = stream_from(&server, PROXY, &alice).await;
    assert_eq!(third.status(), 200);
    assert_refused_with_retry(&refused_body(third).await, REFUSED);
    server.wait_for_log_where("the refusal logged with the client's address", |line| {
        line.contains("--max-streams-per-peer") && line.contains("203.0.113.7")
    });
    // Another client behind the same proxy, by either header.
    let bob = [("X-Forwarded-For", "203.0.113.8")];
    let _bob = is_open(stream_from(&server, PROXY, &bob).await).await;
    let carol = [("Forwarded", "for=\"[2001:db8::5]:4711\";proto=https")];
    let _carol = is_open(stream_from(&server, PROXY, &carol).await).await;
    // One ended: alice has room again.
    drop(_first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let again = stream_from(&server, PROXY, &alice).await;
        let mut again = again;
        let chunk = again.chunk().await.unwrap().unwrap_or_default();
        if !chunk.starts_with(b": too many") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice never got room back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_untrusted_peer_is_its_own_address_whatever_it_sends() {
    let server = Server::start(&[
        "-i",
        "1h",
        "--retry",
        "3s",
        "--trusted-proxy",
        "127.0.0.2",
        "--max-streams-per-peer",
        "2",
    ]);
    let _one =
        is_open(stream_from(&server, OTHER, &[("X-Forwarded-For", "203.0.113.1")]).await).await;
    let _two =
        is_open(stream_from(&server, OTHER, &[("Forwarded", "for=203.0.113.2")]).await).await;
    let three = stream_from(&server, OTHER, &[("X-Forwarded-For", "203.0.113.3")]).await;
    assert_refused_with_retry(&refused_body(three).await, REFUSED);
    server.wait_for_log_where("the refusal logged with the peer's own address", |line| {
        line.contains("--max-streams-per-peer") && line.contains("127.0.0.3:")
    });
    // A client that is not an EventSource reads a status.
    let plain = common::tls::get(&client_from(OTHER), &server.url("/events"), &[]).await;
    assert_eq!(plain.status(), 503);
    assert_eq!(plain.headers()["retry-after"], "5");
}

/// Wrong `--auth` passwords sent at once from `source` as `forwarded_for`, until one is
/// answered 429; the held ones are dropped.
async fn guess_until_429(server: &Server, source: Ipv4Addr, forwarded_for: &str) {
    let client = client_from(source);
    let mut guesses: FuturesUnordered<_> = (0..40)
        .map(|_| {
            client
                .get(server.url("/stats"))
                .basic_auth("me", Some("wrong"))
                .header("X-Forwarded-For", forwarded_for)
                .send()
        })
        .collect();
    loop {
        let answer = tokio::time::timeout(WAIT, guesses.next())
            .await
            .expect("answers in time")
            .expect("a 429 among 40 guesses")
            .unwrap();
        if answer.status() == 429 {
            return;
        }
    }
}

/// The status of one wrong guess from `source` as `forwarded_for`, answered at once.
async fn one_guess(server: &Server, source: Ipv4Addr, forwarded_for: &str) -> u16 {
    let answer = client_from(source)
        .get(server.url("/stats"))
        .basic_auth("me", Some("wrong"))
        .header("X-Forwarded-For", forwarded_for)
        .send();
    tokio::time::timeout(Duration::from_secs(2) + WAIT, answer)
        .await
        .expect("an answer")
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_are_paced_per_forwarded_client() {
    let server = Server::start(&[
        "-i",
        "1h",
        "--auth",
        "me:a long password",
        "--trusted-proxy",
        "127.0.0.2",
    ]);
    guess_until_429(&server, PROXY, "203.0.113.7").await;
    assert_eq!(one_guess(&server, PROXY, "203.0.113.7").await, 429);
    // Another client behind the proxy is not paced for the first one's guesses.
    assert_eq!(one_guess(&server, PROXY, "203.0.113.8").await, 401);
    // An untrusted peer sending the header is paced as itself.
    guess_until_429(&server, OTHER, "203.0.113.9").await;
    assert_eq!(one_guess(&server, OTHER, "203.0.113.10").await, 429);
}
