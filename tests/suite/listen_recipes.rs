//! docs/listen.md's recipes, run as written (only ports and paths changed) against this server:
//! a command per event, resuming across a kill with a cursor file, a relay between two hubs,
//! and a private channel read with a token from the environment.

use crate::common;

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use common::listener::wait_until;
use common::recipe::{Recipe, Script};
use common::{Client, Server};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const PAGE: &str = "docs/listen.md";

/// The port of a server the harness started (`http://127.0.0.1:PORT`).
fn port_of(server: &Server) -> u16 {
    server
        .address()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `file` holds at least `count` lines; returns them.
fn wait_lines(script: &Script, file: &std::path::Path, count: usize) -> Vec<String> {
    wait_until(&format!("{count} lines in {}", file.display()), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= count).then_some(lines)
    })
    .unwrap_or_else(|| panic!("the recipe's output:\n{}", script.log()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_per_event() {
    let mut server = Server::piped(&["--stdin", "-f", "json", "-q"]);
    let recipe = Recipe::under(PAGE, "A command per event", "sh", 0).port(8080, port_of(&server));
    let script = Script::start(&recipe, &[]);
    server.wait_for_consumers(1).await;
    server.write(b"{\"data\":\"v1.4 to prod\",\"event\":\"deploy\",\"channel\":\"ops\"}\n");
    server.write(b"{\"data\":\"noise\",\"event\":\"other\",\"channel\":\"ops\"}\n");
    server.write(b"{\"data\":\"v1.5\",\"event\":\"deploy\",\"channel\":\"ops\"}\n");
    let lines = wait_lines(&script, &script.file("deploys.log"), 2);
    assert_eq!(lines, ["1 v1.4 to prod", "3 v1.5"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn resuming_after_a_restart_with_a_cursor_file() {
    let mut server = Server::piped(&["--stdin", "--channel", "build", "-q"]);
    let state = tempfile::tempdir().unwrap();
    let recipe = Recipe::under(PAGE, "Resuming after a restart or a reboot", "sh", 0)
        .port(8080, port_of(&server))
        .path("/var/lib/build-feed", state.path().to_str().unwrap());
    let events = state.path().join("events.jsonl");
    let script = Script::start(&recipe, &[]);
    server.wait_for_consumers(1).await;
    server.write(b"a\nb\n");
    wait_lines(&script, &events, 2);
    drop(script); // killed, as a power cut or a crash would
    server.wait_for_consumers(0).await;
    assert_eq!(
        std::fs::read_to_string(state.path().join("cursor")).unwrap(),
        "2\n"
    );
    server.write(b"c\n"); // published while the listener is down
    let script = Script::start(&recipe, &[]);
    server.wait_for_consumers(1).await;
    server.write(b"d\n");
    let lines = wait_lines(&script, &events, 4);
    assert_eq!(
        lines,
        [
            r#"{"id":"1","data":"a"}"#,
            r#"{"id":"2","data":"b"}"#,
            r#"{"id":"3","data":"c"}"#,
            r#"{"id":"4","data":"d"}"#
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_between_two_hubs_keeps_names_and_ids() {
    let mut hub_a = Server::piped(&["--stdin", "-f", "json", "-q"]);
    let hub_b = free_port();
    let recipe = Recipe::under(PAGE, "A relay between two hubs", "sh", 0)
        .path(
            "http://hub-a.example:8080",
            &format!("http://127.0.0.1:{}", port_of(&hub_a)),
        )
        .port(8081, hub_b);
    let mut script = Script::start(&recipe, &[]);
    script.wait_for_port(hub_b);
    let mut reader = Client::connect(&format!("http://127.0.0.1:{hub_b}/events/build"), &[]).await;
    hub_a.wait_for_consumers(1).await;
    hub_a.write(b"{\"data\":\"one\",\"event\":\"built\",\"channel\":\"build\"}\n");
    hub_a.write(b"{\"data\":\"two\\nlines\",\"channel\":\"build\"}\n");
    let relayed = reader.take(2).await;
    assert_eq!(
        (
            relayed[0].data.as_str(),
            relayed[0].event.as_str(),
            relayed[0].id.as_str()
        ),
        ("one", "built", "1")
    );
    assert_eq!(
        (
            relayed[1].data.as_str(),
            relayed[1].event.as_str(),
            relayed[1].id.as_str()
        ),
        ("two\nlines", "message", "2")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_channel_with_a_token() {
    const SECRET: &str = "a test secret of 32 bytes or more";
    let mint = |subscribe: &str| {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 300;
        let claims = json!({"exp": exp, "sse_broadcast": {"subscribe": [subscribe]}});
        let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    };
    let (reader_token, admin_token) = (mint("private"), mint("*"));
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {admin_token}");
    headers.insert("authorization", bearer.parse().unwrap());
    let admin = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let mut server =
        Server::piped(&["--stdin", "-f", "json", "--jwt-secret", SECRET, "-q"]).asking_with(admin);
    let recipe = Recipe::under(PAGE, "A private channel with a token", "sh", 0).path(
        "https://hub.example:8443",
        &format!("http://127.0.0.1:{}", port_of(&server)),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("build-feed.token"),
        format!("{reader_token}\n"),
    )
    .unwrap();
    let script = Script::start_in(&recipe, &[], dir);
    server.wait_for_consumers(1).await;
    server.write(b"{\"data\":\"secret plans\",\"channel\":\"private\"}\n");
    let printed = r#"{"id":"1","data":"secret plans"}"#;
    wait_until("the event", || script.log().contains(printed).then_some(()))
        .unwrap_or_else(|| panic!("the recipe's output:\n{}", script.log()));
    assert!(!script.log().contains(&reader_token), "{}", script.log());
}
