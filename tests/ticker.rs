//! The ticker as a user runs it: the bare demo, a template, --count, --event.

mod common;

use std::process::Command;

use common::{Input, Server, data, ids};

/// The bare binary with a terminal for stdin is the classic demo. `script` (util-linux) gives it
/// the terminal; its stderr reaches the harness through descriptor 3.
#[tokio::test]
async fn bare_binary_at_a_terminal_ticks_hello_with_the_time() {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        r#"exec script -qefc "exec '$0' --port 0 2>&3" /dev/null 3>&2"#,
        common::BIN,
    ]);
    let server = Server::spawn(command, Input::Null);
    expect_hello_within_the_interval(&server).await;
}

#[tokio::test]
async fn interval_of_two_seconds_ticks_hello_with_the_time() {
    // Stdin at /dev/null would be read as input: naming the interval asks for the ticker.
    let server = Server::start(&["--interval", "2s"]);
    expect_hello_within_the_interval(&server).await;
}

async fn expect_hello_within_the_interval(server: &Server) {
    let mut client = server.events("/events").await;
    let started = std::time::Instant::now();
    let event = client.next().await;
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
    let time = event
        .data
        .strip_prefix("hello, now is: ")
        .expect(&event.data);
    chrono::DateTime::parse_from_rfc3339(time).expect("an RFC 3339 time");
    assert_eq!(event.event, "message");
}

#[tokio::test]
async fn template_fields_count_and_event_name() {
    let server = Server::start(&[
        "-i",
        "100ms",
        "-m",
        "tick {seq} to {consumers} {{ok}}",
        "--count",
        "3",
        "-e",
        "clock",
        "--wait-clients",
        "1",
    ]);
    let mut client = server.events("/events").await;
    let events = client.take(3).await;
    assert_eq!(
        data(&events),
        ["tick 1 to 1 {ok}", "tick 2 to 1 {ok}", "tick 3 to 1 {ok}"]
    );
    assert_eq!(ids(&events), ["1", "2", "3"]);
    assert!(events.iter().all(|e| e.event == "clock"));
    server.wait_for_log("ticker finished");
    assert!(
        client
            .next_within(std::time::Duration::from_millis(400))
            .await
            .is_none()
    );
}
