//! The ticker as a user runs it: the bare demo, a template, --count, --event.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Input, Server, data, ids};

/// The bare binary with a terminal for stdin is the classic demo.
#[tokio::test]
async fn bare_binary_at_a_terminal_ticks_hello_with_the_time_every_two_seconds() {
    let mut command = Command::new(common::BIN);
    command.args(["--port", "0"]);
    let server = Server::spawn(command, Input::Terminal);
    expect_hello_every(&server, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn interval_of_three_seconds_ticks_hello_with_the_time_that_often() {
    // Stdin at /dev/null would be read as input: naming the interval asks for the ticker.
    let server = Server::start(&["--interval", "3s"]);
    expect_hello_every(&server, Duration::from_secs(3)).await;
}

/// Three ticks: "hello" with the time, consecutive ids, and two intervals between the first and
/// the third. The bounds are loose (a loaded machine delays a tick, never hastens one; the upper
/// one is ten times the expected), yet the lower one tells 3 s from the default 2 s.
async fn expect_hello_every(server: &Server, interval: Duration) {
    let mut client = server.events("/events").await;
    let mut arrivals = Vec::new();
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(client.next().await);
        arrivals.push(Instant::now());
    }
    for event in &events {
        let time = event
            .data
            .strip_prefix("hello, now is: ")
            .expect(&event.data);
        chrono::DateTime::parse_from_rfc3339(time).expect("an RFC 3339 time");
        assert_eq!(event.event, "message");
    }
    let first: u64 = events[0].id.parse().expect("a numeric id");
    assert_eq!(
        ids(&events),
        [first, first + 1, first + 2].map(|n| n.to_string())
    );
    let two_intervals = arrivals[2] - arrivals[0];
    assert!(
        (interval * 3 / 2..interval * 20).contains(&two_intervals),
        "three ticks took {two_intervals:?}, not about {:?}",
        interval * 2
    );
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
        "--publish-token",
        "t",
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
    // The ticker sent no fourth: the next event is the one posted after it finished.
    let answer = server
        .post("/events", &[("Authorization", "Bearer t")], "posted")
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(client.next_is("posted").await.id, "4");
}
