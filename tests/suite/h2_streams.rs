//! Two streams on one HTTP/2 connection (h2c), spoken with the `h2` crate so the test controls
//! flow control: one reads everything, the other never releases its window. Input waits for the
//! stalled stream, then that stream alone is reset; the live one gets every event, the
//! connection stays up, and the server's memory stays flat.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::{Server, WAIT};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use h2::RecvStream;
use tokio::net::TcpStream;

/// 48 MiB: ten times the memory the server grows by, so a stalled stream that kept what it did
/// not take shows plainly.
const LINES: usize = 48_000;
const LINE_BYTES: usize = 1024;

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_http2_stream_is_reset_alone() {
    let mut server = Server::piped(&[
        "--wait-clients",
        "2",
        "--client-buffer",
        "64",
        "--stall-timeout",
        "1s",
        "--history",
        "0",
        "-q",
    ]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let socket = TcpStream::connect(&address).await.unwrap();
    // A small window per stream, a large one for the connection: the stalled stream fills its
    // own window without starving the live one.
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(16 * 1024)
        .initial_connection_window_size(64 * 1024 * 1024)
        .handshake::<_, Bytes>(socket)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let url = format!("http://{address}/events");
    let request = || http::Request::get(&url).body(()).unwrap();
    let (live, _) = client.send_request(request(), true).unwrap();
    let mut client = client.ready().await.unwrap();
    let (stalled, _) = client.send_request(request(), true).unwrap();
    let live = live.await.unwrap();
    let stalled = stalled.await.unwrap();
    assert_eq!(
        (live.status().as_u16(), stalled.status().as_u16()),
        (200, 200)
    );
    let mut stalled_body = stalled.into_body(); // never read, never releases its window
    let rss_before = server.rss_kib();

    let line = "x".repeat(LINE_BYTES - 12);
    let mut input = Vec::with_capacity(LINES * LINE_BYTES);
    for n in 0..LINES {
        input.extend_from_slice(format!("{n:010} {line}\n").as_bytes());
    }
    let feeder = server.feed(input);

    let mut events = Box::pin(reading(live.into_body()).eventsource());
    for n in 0..LINES {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap_or_else(|_| panic!("event {n} within {WAIT:?}"))
            .expect("the live stream goes on")
            .unwrap();
        assert_eq!(event.id, (n + 1).to_string());
        assert!(
            event.data.starts_with(&format!("{n:010} ")),
            "{}",
            event.data
        );
    }
    feeder.join().unwrap();

    // The stalled stream was reset (a stream error, not the end of the connection).
    let reset = tokio::time::timeout(WAIT, async {
        loop {
            match stalled_body.data().await {
                Some(Ok(_)) => continue, // what it had been sent before it stalled
                Some(Err(err)) => return err,
                None => panic!("the stalled stream ended cleanly instead of being reset"),
            }
        }
    })
    .await
    .expect("the stalled stream is reset");
    assert!(reset.is_reset(), "{reset:?}");
    assert!(!connection.is_finished(), "the connection was closed");
    let stats = server.stats().await;
    assert_eq!(stats["clients_dropped_stalled"], 1, "{stats}");
    assert_eq!(stats["consumers"], 1, "{stats}");
    let log = server.wait_for_log("resetting its HTTP/2 stream");
    assert_eq!(
        log.matches("resetting its HTTP/2 stream").count(),
        1,
        "{log}"
    );

    // 48 MiB went through; had the stalled stream kept what it did not take, memory would have
    // grown by as much. Its buffers and the allocator's working set (about 2 MiB) are what it
    // may grow by: the bound is ten times that.
    let grown = server.rss_kib().saturating_sub(rss_before);
    let input_kib = (LINES * LINE_BYTES / 1024) as u64;
    eprintln!("RSS grew by {grown} KiB while {input_kib} KiB went through");
    assert!(
        grown < input_kib / 2,
        "RSS grew by {grown} KiB while {input_kib} KiB went through"
    );
}

/// The body as a byte stream, giving the window back as it reads (what a client that keeps up
/// does).
fn reading(body: RecvStream) -> impl futures_util::Stream<Item = Result<Bytes, h2::Error>> {
    futures_util::stream::unfold(body, |mut body| async move {
        let chunk = body.data().await?;
        if let Ok(bytes) = &chunk {
            let _ = body.flow_control().release_capacity(bytes.len());
        }
        Some((chunk, body))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_reach_an_idle_http2_stream() {
    let server = Server::start(&["--stdin", "--keep-alive", "100ms"]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let socket = TcpStream::connect(&address).await.unwrap();
    let (client, connection) = h2::client::handshake(socket).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(format!("http://{address}/events"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let mut body = Box::pin(reading(response.await.unwrap().into_body()));
    let mut received = Vec::new();
    while received.len() < 6 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("a heartbeat within 5 s")
            .unwrap()
            .unwrap();
        received.extend_from_slice(&chunk);
    }
    assert_eq!(&received[..6], b":\n\n:\n\n");
}
