//! `--drain` (DESIGN.md §16): on SIGTERM `/readyz` turns 503 at once (and
//! `sse_broadcast_ready` 0) while `/healthz` stays 200, new streams get the refusal an
//! EventSource survives, and the open streams end spread evenly over the window, each told
//! `retry:` first; the process exits 0 once the last one ended. A second signal ends the rest at
//! once. Over HTTP/2 the streams of one connection end on their own schedules, then the
//! connection closes. Times are measured from just before the signal, so a loaded machine can
//! only make an end later, never earlier.

use crate::common;

use std::time::{Duration, Instant};

use common::{RawClient, Server, WAIT};
use futures_util::future::join_all;
use tokio::net::TcpStream;

/// What a drained stream says last, before its `retry:` value.
const DRAINED: &str = ": this server is shutting down (--drain); reconnect\n\nretry: ";
/// What a refused EventSource reads during a drain.
const REFUSED: &str = ": shutting down; try again later\n\nretry: ";

/// GET `path` with `headers`: the status and the body.
async fn ask(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let response = common::tls::get(&reqwest::Client::new(), &server.url(path), headers).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asks `/readyz` until it answers 503 (the signal is handled a moment after `kill` returns);
/// returns the body.
async fn wait_until_not_ready(server: &Server) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = ask(server, "/readyz", &[]).await;
        if status == 503 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status}: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `retry:` value (ms) at the very end of a drained stream, or fails naming the body.
fn drained_retry(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    text.rsplit_once(DRAINED)
        .and_then(|(_, tail)| tail.strip_suffix("\n\n"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no drain notice and retry: at the end of {text:?}"))
}

/// Opens `path` and reads its prelude (`--retry`'s frame): the stream is open.
async fn open(server: &Server, path: &str) -> RawClient {
    let mut stream = server.raw(path, &[]).await;
    assert_eq!(stream.status, 200);
    stream.read_until_contains("retry: ").await;
    stream
}

/// Reads each stream to its end; returns each body and when it ended, after `since`.
async fn ends(streams: Vec<RawClient>, since: Instant) -> Vec<(Vec<u8>, Duration)> {
    join_all(streams.into_iter().map(|mut stream| async move {
        let body = stream.until_end().await.to_vec();
        (body, since.elapsed())
    }))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_spreads_the_ends_of_40_streams_over_its_window() {
    let window = Duration::from_secs(4);
    let mut server = Server::start(&["-i", "100ms", "--drain", "4s", "--retry", "300ms"]);
    // Both kinds of stream: one channel, and several merged into one.
    let paths = (0..40).map(|k| match k % 4 {
        0 => "/events/default,news",
        _ => "/events",
    });
    let streams = join_all(paths.map(|path| open(&server, path))).await;
    assert_eq!(ask(&server, "/readyz", &[]).await, (200, "ready\n".into()));

    let signalled = Instant::now();
    server.terminate();
    let reading = tokio::spawn(ends(streams, signalled));

    // As soon as the signal is handled: not ready, still alive, and new streams refused as an
    // EventSource survives.
    let reason = wait_until_not_ready(&server).await;
    assert_eq!(
        reason,
        "not ready: shutting down; new streams are refused\n"
    );
    assert_eq!(ask(&server, "/healthz", &[]).await, (200, "ok\n".into()));
    let (_, metrics) = ask(&server, "/metrics", &[]).await;
    assert!(metrics.contains("\nsse_broadcast_ready 0\n"), "{metrics}");
    let accept = [("Accept", "text/event-stream")];
    let mut refused = server.raw("/events", &accept).await;
    assert_eq!(refused.status, 200);
    let refusal = String::from_utf8_lossy(refused.until_end().await).into_owned();
    assert!(refusal.starts_with(REFUSED), "{refusal:?}");
    let (status, _) = ask(&server, "/events/default,news", &[]).await;
    assert_eq!(status, 503);

    let ended = reading.await.unwrap();
    let log = server.stderr();
    let mut times: Vec<Duration> = ended.iter().map(|(_, at)| *at).collect();
    times.sort();
    // No burst at the start: stream k of 40 ends at (k+1)/40 of the window, so no end comes
    // before a fortieth of it, and at most 4 in its first tenth (a late end only moves later).
    assert!(times[0] >= window / 40, "{times:?}\n{log}");
    let early = times.iter().filter(|at| **at <= window / 10).count();
    assert!(early <= 4, "{early} ended in the first tenth: {times:?}");
    // Spread, not bunched at the end either: a quarter ended by the window's middle (a fair
    // share is half), the last near the window's end (the slack is for a loaded machine).
    assert!(times[10] <= window / 2, "{times:?}");
    assert!(times[39] >= window * 9 / 10, "{times:?}");
    assert!(times[39] <= window + Duration::from_secs(3), "{times:?}");
    for (body, _) in &ended {
        let retry = drained_retry(body);
        // --retry 300ms, spread per stream up to half as much again.
        assert!((300..=450).contains(&retry), "{retry}");
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}\n{}", server.stderr());
    let log = server.stderr();
    assert!(log.contains("streams=40"), "{log}");
    assert!(log.contains("drained: every stream ended"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_ends_the_remaining_streams_at_once() {
    let mut server = Server::start(&["-i", "100ms", "--drain", "60s", "--retry", "300ms"]);
    let streams = join_all((0..4).map(|_| open(&server, "/events"))).await;
    let signalled = Instant::now();
    server.terminate();
    let reading = tokio::spawn(ends(streams, signalled));
    wait_until_not_ready(&server).await;
    server.wait_for_log("draining: new streams are refused");
    server.terminate();
    let ended = reading.await.unwrap();
    // The first place was 15 s in: every stream ended long before, none told to drain.
    for (body, at) in &ended {
        assert!(*at < Duration::from_secs(15), "{at:?}");
        assert!(!String::from_utf8_lossy(body).contains(DRAINED), "{body:?}");
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}\n{}", server.stderr());
    assert!(
        server
            .stderr()
            .contains("second signal: ending the remaining streams now")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_streams_end_on_their_own_schedules_then_the_connection_closes() {
    let window = Duration::from_secs(2);
    let mut server = Server::start(&["-i", "100ms", "--drain", "2s", "--retry", "300ms"]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let socket = TcpStream::connect(&address).await.unwrap();
    let (client, connection) = h2::client::handshake(socket).await.unwrap();
    let connection = tokio::spawn(connection);
    let url = format!("http://{address}/events");
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let mut client = client.clone().ready().await.unwrap();
        let request = http::Request::get(&url).body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let mut body = response.into_body();
        let first = tokio::time::timeout(WAIT, body.data()).await.unwrap();
        assert!(first.unwrap().unwrap().starts_with(b"retry: "));
        bodies.push(body);
    }
    let signalled = Instant::now();
    server.terminate();
    let ended = join_all(bodies.into_iter().map(|mut body| async move {
        let mut received = Vec::new();
        while let Some(chunk) = tokio::time::timeout(WAIT, body.data()).await.unwrap() {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            received.extend_from_slice(&chunk);
        }
        (received, signalled.elapsed())
    }))
    .await;
    let last_end = signalled.elapsed();
    let mut times: Vec<Duration> = ended.iter().map(|(_, at)| *at).collect();
    times.sort();
    // Four places, half a second apart: the first not before its place, the last after
    // three quarters of the window, each stream after its own `retry:`.
    assert!(times[0] >= window / 4, "{times:?}");
    assert!(times[3] >= window * 3 / 4, "{times:?}");
    for (body, _) in &ended {
        drained_retry(body);
    }
    // Only then does the connection close (GOAWAY, then the end of the socket).
    let closed = tokio::time::timeout(WAIT, connection).await.unwrap();
    assert!(closed.unwrap().is_ok());
    assert!(signalled.elapsed() >= last_end);
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}\n{}", server.stderr());
}
