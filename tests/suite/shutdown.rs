//! How the process ends: on SIGTERM and SIGINT every stream ends cleanly and the exit code is 0;
//! when stdin ends without --exit-on-eof the server says so and keeps serving.

use crate::common;

use std::process::Command;

use common::{Server, data, ids};

/// Sends `signal` (a `kill` name such as "TERM") to the server.
fn send_signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Two clients receive a few stdin lines; then `signal` ends both streams and the process.
async fn signal_ends_every_stream(signal: &str) {
    let mut server = Server::piped(&["--stdin"]);
    let mut first = server.events("/events").await;
    let mut second = server.events("/events").await;
    server.wait_for_consumers(2).await;
    server.write(b"one\ntwo\n");
    assert_eq!(data(&first.take(2).await), ["one", "two"]);
    assert_eq!(data(&second.take(2).await), ["one", "two"]);

    send_signal(&server, signal);
    // Both streams end (EOF, not an error), with nothing more on them.
    assert!(first.until_end().await.is_empty());
    assert!(second.until_end().await.is_empty());
    let status = server.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; stderr:\n{}",
        server.stderr()
    );
    let log = server.stderr();
    assert!(log.contains("signal received"), "{log}");
    assert!(!log.contains(" ERROR "), "{log}");
}

#[tokio::test]
async fn sigterm_ends_every_stream_and_exits_0() {
    signal_ends_every_stream("TERM").await;
}

#[tokio::test]
async fn sigint_ends_every_stream_and_exits_0() {
    signal_ends_every_stream("INT").await;
}

#[tokio::test]
async fn sigterm_with_a_ticker_and_no_clients_exits_0() {
    let mut server = Server::start(&["-i", "50ms"]);
    server.wait_for_log("sent id=2 ");
    server.terminate_cleanly();
}

#[tokio::test]
async fn sigterm_ends_a_stream_that_is_still_receiving_ticks() {
    let mut server = Server::start(&["-i", "20ms"]);
    let mut client = server.events("/events").await;
    client.take(3).await;
    server.terminate();
    // Ticks sent before the signal may still arrive; then the stream ends.
    let rest = client.until_end().await;
    assert!(
        rest.iter().all(|e| e.data.starts_with("hello, now is: ")),
        "{rest:?}"
    );
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[tokio::test]
async fn stdin_eof_without_exit_on_eof_keeps_serving() {
    let mut server = Server::piped(&["--stdin", "--publish-token", "t"]);
    let mut early = server.events("/events").await;
    server.wait_for_consumers(1).await;
    server.write(b"one\ntwo\nthree");
    server.close_stdin();
    let got = early.take(3).await;
    assert_eq!(data(&got), ["one", "two", "three"]);
    server.wait_for_log("stdin ended");

    // Still serving: the process runs, a new client connects, /stats answers.
    assert!(server.is_running(), "stderr:\n{}", server.stderr());
    let mut late = server.events("/events").await;
    assert_eq!(late.status, 200);
    server.wait_for_consumers(2).await;
    let stats = server.stats().await;
    assert_eq!(stats["events_sent"], 3, "{stats}");
    assert_eq!(stats["newest_id"], "3", "{stats}");

    // A late client that reconnects with Last-Event-ID gets what it missed from the history.
    let mut resumed = server
        .events_with("/events", &[("last-event-id", "1")])
        .await;
    let replayed = resumed.take(2).await;
    assert_eq!(data(&replayed), ["two", "three"]);
    assert_eq!(ids(&replayed), ["2", "3"]);

    // No stream was ended by the end of input, and nothing new was sent: the next event each
    // gets is the one posted now (stdin is gone, POST still publishes).
    let answer = server
        .post("/events", &[("Authorization", "Bearer t")], "posted")
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    for client in [&mut early, &mut late, &mut resumed] {
        assert_eq!(client.next_is("posted").await.id, "4");
    }
    let stats = server.stats().await;
    assert_eq!(stats["consumers"], 3, "{stats}");
    assert!(server.is_running(), "stderr:\n{}", server.stderr());

    // A signal still ends it cleanly.
    server.terminate();
    assert!(early.until_end().await.is_empty());
    assert!(late.until_end().await.is_empty());
    assert!(resumed.until_end().await.is_empty());
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[tokio::test]
async fn stdin_eof_with_exit_on_eof_delivers_everything_then_exits_0() {
    let mut server = Server::piped(&["--stdin", "--exit-on-eof"]);
    let mut first = server.events("/events").await;
    let mut second = server.events("/events").await;
    server.wait_for_consumers(2).await;
    let lines: Vec<String> = (1..=200).map(|i| format!("line {i}")).collect();
    server.write((lines.join("\n") + "\n").as_bytes());
    server.close_stdin();
    assert_eq!(data(&first.until_end().await), lines);
    assert_eq!(data(&second.until_end().await), lines);
    assert_eq!(server.wait_exit().code(), Some(0));
    let log = server.stderr();
    assert!(log.contains("stdin ended"), "{log}");
}

#[tokio::test]
async fn sigterm_while_waiting_for_clients_exits_0() {
    let mut server = Server::piped(&["--stdin", "--wait-clients", "2"]);
    let mut client = server.events("/events").await;
    server.wait_for_log("waiting for clients");
    server.write(b"held back\n");
    server.terminate();
    assert!(client.until_end().await.is_empty());
    assert_eq!(server.wait_exit().code(), Some(0), "{}", server.stderr());
}

#[tokio::test]
async fn a_client_that_stopped_reading_does_not_keep_the_process_alive() {
    use std::io::Write as _;
    let mut server = Server::piped(&["--stdin"]);
    // A raw client that asks for the stream and never reads a byte of it.
    let address = server.base.strip_prefix("http://").unwrap().to_owned();
    let mut stuck = std::net::TcpStream::connect(&address).unwrap();
    write!(stuck, "GET /events HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    server.wait_for_consumers(1).await;
    // More than the socket buffers hold: the server's writes to it block.
    let line = "x".repeat(1 << 20) + "\n";
    for _ in 0..16 {
        server.write(line.as_bytes());
    }
    server.wait_for_log("sent id=16 ");
    server.terminate_cleanly();
    drop(stuck);
}
