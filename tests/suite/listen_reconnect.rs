//! `sse-broadcast listen` across reconnects and refusals (DESIGN §15): a stream cut by a proxy
//! resumes from the last id (a cursor of several channels too), `retry: 0` is no busy loop, and
//! each status ends or retries as the contract says, with its exit code.

use crate::common;

use std::time::{Duration, Instant};

use common::Server;
use common::listener::{
    CuttingProxy, Listener, Scripted, header, records, sse_answer, status_answer,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_stream_resumes_from_the_last_id_with_nothing_lost_or_repeated() {
    let mut server = Server::piped(&["--stdin", "--retry", "100ms", "-q"]);
    let proxy = CuttingProxy::start(&server.address());
    let listener = Listener::start(&["-q", &proxy.url("/events")]);
    server.wait_for_consumers(1).await;
    server.write(b"one\ntwo\nthree\n");
    listener.wait_records(3, b'\n');
    proxy.cut();
    server.write(b"four\nfive\n"); // kept in the history while the listener is away
    let heads = proxy.wait_connections(2);
    assert_eq!(
        header(&heads[1], "last-event-id"),
        Some("3"),
        "{}",
        heads[1]
    );
    assert_eq!(header(&heads[0], "last-event-id"), None);
    server.write(b"six\n");
    assert_eq!(
        listener.wait_records(6, b'\n'),
        ["one", "two", "three", "four", "five", "six"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_of_several_channels_is_sent_back_whole() {
    let mut server = Server::piped(&["--stdin", "-f", "json", "--retry", "100ms", "-q"]);
    let proxy = CuttingProxy::start(&server.address());
    let listener = Listener::start(&["-q", "-o", "json", &proxy.url("/events/a,b")]);
    server.wait_for_consumers(2).await;
    server.write(b"{\"data\":\"a1\",\"channel\":\"a\"}\n{\"data\":\"b1\",\"channel\":\"b\"}\n");
    listener.wait_records(2, b'\n');
    proxy.cut();
    server.write(b"{\"data\":\"a2\",\"channel\":\"a\"}\n");
    let heads = proxy.wait_connections(2);
    assert_eq!(header(&heads[1], "last-event-id"), Some("b:1,a:1"));
    let lines = listener.wait_records(3, b'\n');
    assert_eq!(
        lines[2], r#"{"id":"a:2,b:1","data":"a2","channel":"a"}"#,
        "{lines:?}"
    );
}

#[test]
fn retry_zero_is_no_busy_loop() {
    let server = Scripted::start(|n, _| sse_answer(format!("retry: 0\ndata: {n}\n\n").as_bytes()));
    let started = Instant::now();
    let listener = Listener::start(&["-q", &server.url("/")]);
    let heads = server.wait_connections(6);
    // Five waits of at least the 100 ms floor lie between the first and the sixth connection.
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        header(&heads[5], "last-event-id"),
        None,
        "no id was ever sent"
    );
    assert!(
        listener
            .wait_records(6, b'\n')
            .starts_with(&["0".into(), "1".into()])
    );
}

#[test]
fn failures_back_off_and_max_retries_gives_up() {
    let server = Scripted::start(|_, _| status_answer("503 Service Unavailable", ""));
    let started = Instant::now();
    let mut listener = Listener::start(&["--max-retries", "2", &server.url("/x")]);
    // No retry: came, so the default (3 s) applies, then doubles.
    listener.expect_exit(1);
    assert_eq!(server.heads().len(), 3, "N retries: N + 1 attempts");
    assert!(started.elapsed() >= Duration::from_secs(9), "3 s, then 6 s");
    let log = listener.stderr();
    assert!(
        log.contains("503 Service Unavailable; gave up after 2 retries (--max-retries)"),
        "{log}"
    );
    assert!(!listener.is_running());
}

#[test]
fn statuses_end_the_listener_with_their_exit_code() {
    for (status, code) in [
        ("401 Unauthorized", 3),
        ("403 Forbidden", 3),
        ("404 Not Found", 4),
        ("410 Gone", 4),
        ("204 No Content", 0),
    ] {
        let server = Scripted::start(move |_, _| status_answer(status, ""));
        let mut listener = Listener::start(&[&server.url("/events")]);
        listener.expect_exit(code);
        assert_eq!(server.heads().len(), 1, "{status}: not retried");
        if code != 0 {
            let log = listener.stderr();
            assert!(
                log.contains(&format!("{}: {status}", server.url("/events"))),
                "{log}"
            );
        }
    }
    let html = Scripted::start(|_, _| {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>".to_vec()
    });
    let mut listener = Listener::start(&[&html.url("/")]);
    listener.expect_exit(1);
    assert!(
        listener
            .stderr()
            .contains("not an event stream (Content-Type text/html)")
    );
}

#[test]
fn a_stream_then_204_stops_after_resuming_from_its_id() {
    let server = Scripted::start(|n, _| match n {
        0 => sse_answer(b"retry: 50\nid: 7\ndata: last words\n\n"),
        _ => status_answer("204 No Content", ""),
    });
    let mut listener = Listener::start(&["-q", &server.url("/")]);
    listener.expect_exit(0);
    assert_eq!(records(&listener.stdout(), b'\n'), ["last words"]);
    assert_eq!(header(&server.heads()[1], "last-event-id"), Some("7"));
}

#[test]
fn redirects_are_followed_and_other_errors_retried() {
    let server = Scripted::start(|n, head| match n {
        0 => status_answer("500 Internal Server Error", ""),
        _ if head.starts_with("GET /old ") => status_answer("302 Found", "Location: /new\r\n"),
        _ => sse_answer(b"data: moved\n\n"),
    });
    let mut listener = Listener::start(&["-n", "1", &server.url("/old")]);
    listener.expect_exit(0);
    assert_eq!(records(&listener.stdout(), b'\n'), ["moved"]);
    let heads = server.heads();
    assert!(heads[2].starts_with("GET /new "), "{heads:?}");
    assert_eq!(header(&heads[2], "accept"), Some("text/event-stream"));
    assert!(listener.stderr().contains("500 Internal Server Error"));
}

#[test]
fn no_reconnect_ends_with_the_stream_and_a_refused_connection_is_an_error() {
    let server = Scripted::start(|_, _| sse_answer(b"data: only\n\n"));
    let mut listener = Listener::start(&["--no-reconnect", &server.url("/")]);
    listener.expect_exit(0);
    assert_eq!(records(&listener.stdout(), b'\n'), ["only"]);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", closed.local_addr().unwrap());
    drop(closed);
    let mut listener = Listener::start(&["--no-reconnect", &url]);
    listener.expect_exit(1);
    assert!(
        listener.stderr().contains("Connection refused"),
        "{}",
        listener.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_and_a_signal_end_it_quietly_with_0() {
    let mut server = Server::piped(&["--stdin", "-q"]);
    let url = server.url("/events");
    let mut head = Listener::spawn({
        let mut command = std::process::Command::new("sh");
        let bin = common::BIN;
        let script =
            format!("{{ '{bin}' listen -q '{url}'; echo \"listen exit $?\" >&2; }} | head -n 2");
        command.args(["-c", &script]);
        command
    });
    let mut stopped = Listener::start(&["-q", &url]);
    server.wait_for_consumers(2).await;
    server.write(b"1\n2\n");
    head.wait_stdout("two lines", |out| out == b"1\n2\n");
    // The listener learns that `head` is gone at its next write: events until it has left.
    let mut sent = 2;
    while head.is_running() && sent < 1000 {
        sent += 1;
        server.write(format!("{sent}\n").as_bytes());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    head.expect_exit(0);
    assert_eq!(head.stdout(), b"1\n2\n");
    stopped.wait_records(sent, b'\n');
    server.wait_for_consumers(1).await; // only `stopped` is left
    assert_eq!(head.stderr(), "listen exit 0\n", "quietly, with 0");
    stopped.signal("TERM");
    stopped.expect_exit(0);
    assert_eq!(stopped.stderr(), "");
}
