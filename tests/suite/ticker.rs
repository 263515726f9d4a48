//! The ticker as a user runs it: the bare demo, a template, --count, --event.

use crate::common;

use std::process::Command;
use std::time::Duration;

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

/// Four ticks: "hello" with the time, consecutive ids, and three intervals between the first
/// and the fourth by the times the server wrote in them (whole seconds), not by when they
/// arrived: a loaded machine delays a tick, never hastens one, and a tick that never comes fails
/// the harness's bounded read. It fails when the interval is not `interval`: 3 s ticking at the
/// default 2 s puts 6 s between the first and the fourth, under the 8 s asked of it.
async fn expect_hello_every(server: &Server, interval: Duration) {
    let mut client = server.events("/events").await;
    let events = client.take(4).await;
    let times: Vec<i64> = events
        .iter()
        .map(|event| {
            let time = event
                .data
                .strip_prefix("hello, now is: ")
                .expect(&event.data);
            assert_eq!(event.event, "message");
            chrono::DateTime::parse_from_rfc3339(time)
                .expect("an RFC 3339 time")
                .timestamp()
        })
        .collect();
    let first: u64 = events[0].id.parse().expect("a numeric id");
    assert_eq!(
        ids(&events),
        [first, first + 1, first + 2, first + 3].map(|n| n.to_string())
    );
    // Whole seconds: three intervals of 3 s written as 8 at least (9, less a second cut off).
    let three_intervals = times[3] - times[0];
    let least = 3 * interval.as_secs() as i64 - 1;
    assert!(
        three_intervals >= least,
        "four ticks written {three_intervals} s apart, not about {} s: {times:?}",
        3 * interval.as_secs()
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
