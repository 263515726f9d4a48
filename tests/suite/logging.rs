//! What the binary says on stderr, and where it listens: -q, -v, --log-format json, --bind; and
//! that a stderr nobody reads never stops the serving (lines are dropped, counted, reported).

use crate::common;

use std::time::Duration;

use common::{Input, Server};
use futures_util::StreamExt;

/// The stderr lines after the `listening on` line.
fn log_lines(server: &Server) -> Vec<String> {
    server
        .stderr()
        .lines()
        .skip_while(|line| !line.starts_with("listening on"))
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn default_log_is_plain_text_with_one_line_per_send() {
    let server = Server::start(&["-i", "50ms", "--count", "3", "--wait-clients", "1"]);
    let mut client = server.events("/events").await;
    client.take(3).await;
    let log = server.wait_for_log("sent id=3 consumers=1");
    assert!(log.contains("sent id=1 consumers=1"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour when stderr is not a terminal:\n{log}"
    );
}

#[tokio::test]
async fn quiet_keeps_the_address_and_drops_the_send_lines() {
    let server = Server::start(&["-i", "50ms", "--count", "3", "--wait-clients", "1", "-q"]);
    let mut client = server.events("/events").await;
    assert_eq!(common::ids(&client.take(3).await), ["1", "2", "3"]);
    server.wait_for_consumers(1).await;
    let log = server.stderr();
    assert!(log.starts_with("listening on http://127.0.0.1:"), "{log}");
    assert!(!log.contains("sent"), "{log}");
}

#[tokio::test]
async fn verbose_adds_debug_lines() {
    let server = Server::start(&["-i", "1s", "-v"]);
    let _client = server.events("/events").await;
    server.wait_for_log("stream opened");
}

#[tokio::test]
async fn json_log_lines_are_objects_with_the_send_fields() {
    let server = Server::start(&[
        "-i",
        "50ms",
        "--count",
        "2",
        "--wait-clients",
        "1",
        "--log-format",
        "json",
    ]);
    let mut client = server.events("/events").await;
    client.take(2).await;
    server.wait_for_log("ticker finished");
    let sends: Vec<serde_json::Value> = log_lines(&server)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .filter(|entry: &serde_json::Value| entry["fields"]["message"] == "sent")
        .collect();
    assert_eq!(sends.len(), 2, "{}", server.stderr());
    for (n, entry) in sends.iter().enumerate() {
        assert_eq!(entry["level"], "INFO");
        assert_eq!(entry["fields"]["id"], n as u64 + 1);
        assert_eq!(entry["fields"]["consumers"], 1);
    }
}

#[tokio::test]
async fn bind_serves_on_the_address_given() {
    let server = Server::start(&["-i", "50ms", "--bind", "127.0.0.2"]);
    assert!(
        server.base.starts_with("http://127.0.0.2:"),
        "{}",
        server.base
    );
    let mut client = server.events("/events").await;
    assert!(client.next().await.data.starts_with("hello, now is: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_stderr_is_never_read_still_answers_after_10000_refusals() {
    let server = Server::start_stderr_unread(&["--max-clients", "0", "-i", "1h"], Input::Null);
    let http = reqwest::Client::new();
    let refused = futures_util::stream::iter(0..10_000)
        .map(|_| {
            let request = http.get(server.url("/events")).send();
            async move { request.await.map(|response| response.status().as_u16()) }
        })
        .buffer_unordered(32)
        .filter(|status| std::future::ready(matches!(status, Ok(503))))
        .count();
    let refused = tokio::time::timeout(Duration::from_secs(120), refused)
        .await
        .expect("10,000 refusals answered");
    assert_eq!(refused, 10_000);
    let stats = tokio::time::timeout(common::WAIT, server.stats())
        .await
        .expect("/stats answered");
    assert_eq!(stats["requests_refused"], 10_000, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_stderr_cannot_take_are_dropped_counted_and_reported() {
    const LINES: usize = 20_000;
    let mut server = Server::start_stderr_unread(&["--wait-clients", "1"], Input::Pipe);
    let mut client = server.events("/events").await;
    // Each line is an event and a `sent` log line: far more than the pipe and the log queue hold.
    let feeder = server.feed(
        (1..=LINES)
            .map(|n| format!("line {n}\n"))
            .collect::<String>()
            .into(),
    );
    let events = client.take(LINES).await;
    assert_eq!(events[LINES - 1].data, format!("line {LINES}"));
    feeder.join().unwrap();

    let metrics = server.metrics().await;
    let dropped: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("sse_broadcast_log_lines_dropped_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in\n{metrics}"));
    assert!(dropped > 0, "{metrics}");

    // Once stderr is read again, a warning says how many went.
    server.read_stderr_again();
    let log = server.wait_for_log("log lines dropped");
    let reported: u64 = log
        .lines()
        .filter(|line| line.contains("log lines dropped"))
        .filter_map(|line| {
            line.split(" total=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or_else(|| panic!("no total= in the warning:\n{log}"));
    assert!(
        reported >= dropped,
        "reported {reported}, counted {dropped}\n{log}"
    );
    // What got through is intact lines, and the `listening on` line came first.
    assert!(log.starts_with("listening on http://127.0.0.1:"), "{log}");
}
