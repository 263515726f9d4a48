//! What the binary says on stderr, and where it listens: -q, -v, --log-format json, --bind.

mod common;

use common::Server;

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
