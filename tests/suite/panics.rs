//! A panic in one connection's task, or one HTTP/2 stream's, ends that connection (or stream)
//! alone: logged at error with the peer, counted in /metrics, every other stream goes on. A
//! panic in a task the process cannot lose (here: the input) still ends it, with 101.
//!
//! The panics are provoked through `SSE_BROADCAST_TEST_PANIC` (`src/panics.rs`), which only a
//! debug build reads: the tests run the debug binary, and a release build has no such switch.

use crate::common;

use std::process::Command;

use common::{BIN, Client, Input, Server};

fn server_panicking_at(point: &str) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0"])
        .env("SSE_BROADCAST_TEST_PANIC", point);
    Server::spawn(command, Input::Pipe)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_ends_its_connection_or_stream_alone() {
    let mut server = server_panicking_at("request:/boom");
    // A stream on the lean HTTP/1.1 path, and one over HTTP/2 (h2c) beside the request that
    // will panic on the same connection.
    let mut lean = server.events("/events").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = common::tls::get(&h2, &server.url("/events"), &[]).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let mut over_h2 = Client::from_response(response);
    server.wait_for_consumers(2).await;

    // HTTP/1.1: the connection closes without an answer.
    let plain = reqwest::Client::new().get(server.url("/boom")).send().await;
    assert!(plain.is_err(), "{plain:?}");
    // HTTP/2: that stream is reset; its connection and the stream beside it go on.
    let reset = h2.get(server.url("/boom")).send().await;
    assert!(reset.is_err(), "{reset:?}");
    server.write(b"after the panics\n");
    assert_eq!(lean.next().await.data, "after the panics");
    assert_eq!(over_h2.next().await.data, "after the panics");
    assert!(server.is_running());

    let log = server.wait_for_log_where("two panics logged", |log| {
        log.matches("closing this connection alone").count() == 2
    });
    for line in log
        .lines()
        .filter(|l| l.contains("closing this connection alone"))
    {
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        assert!(line.contains("request:/boom"), "{line}");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|line| line == "sse_broadcast_connection_panics_total 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_the_input_ends_the_process() {
    let mut server = server_panicking_at("stdin:boom");
    let mut reader = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(b"before\n");
    assert_eq!(reader.next().await.data, "before");
    server.write(b"boom\n");
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(101), "{}", server.stderr());
    assert!(
        server.stderr().contains("panicked at"),
        "{}",
        server.stderr()
    );
}
