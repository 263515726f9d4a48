//! `--auth USER:PASSWORD`: HTTP Basic on every path, checked with real requests; failed attempts
//! logged (rate-limited) and the password nowhere in the output; CORS preflights answered without
//! credentials; the warning for a non-loopback bind without it.

use crate::common;

use std::process::Command;

use assert_cmd::prelude::*;
use common::{BIN, Client, Server, WAIT, data};
use predicates::prelude::*;

/// A password with colons (RFC 7617 splits at the first one) and characters that need quoting.
const PASSWORD: &str = "s3cret:with:colons&ü";

fn auth_server(args: &[&str]) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0"])
        .args(args)
        .env("SSE_BROADCAST_AUTH", format!("me:{PASSWORD}"));
    Server::spawn(command, common::Input::Null)
}

async fn get_as(server: &Server, path: &str, user: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some((name, password)) = user {
        request = request.basic_auth(name, Some(password));
    }
    tokio::time::timeout(WAIT, request.send())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_path_needs_the_credentials() {
    let server = auth_server(&["-i", "50ms", "-m", "tick {seq}"]);
    for path in ["/", "/events", "/stats", "/nope"] {
        for user in [None, Some(("me", "wrong")), Some(("you", PASSWORD))] {
            let response = get_as(&server, path, user).await;
            assert_eq!(response.status(), 401, "{path} as {user:?}");
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Basic realm="sse-broadcast", charset="UTF-8""#
            );
        }
    }
    let right = Some(("me", PASSWORD));
    assert_eq!(get_as(&server, "/", right).await.status(), 200);
    assert_eq!(get_as(&server, "/stats", right).await.status(), 200);
    assert_eq!(get_as(&server, "/nope", right).await.status(), 404);
    let mut stream = Client::from_response(get_as(&server, "/events", right).await);
    assert_eq!(stream.status, 200);
    assert!(stream.next().await.data.starts_with("tick "));

    // Scheme case and surrounding spaces as some clients send them.
    use base64::Engine as _;
    let token = base64::prelude::BASE64_STANDARD.encode(format!("me:{PASSWORD}"));
    let response = reqwest::Client::new()
        .get(server.url("/stats"))
        .header("authorization", format!("basic   {token} "))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_attempts_are_logged_rate_limited_and_the_password_never() {
    let server = auth_server(&["-i", "1s", "-vv"]);
    let attempts = [("me", "guess1"), ("me", "guess2"), ("admin", PASSWORD)];
    for user in attempts {
        assert_eq!(get_as(&server, "/events", Some(user)).await.status(), 401);
    }
    let right = get_as(&server, "/stats", Some(("me", PASSWORD))).await;
    assert_eq!(right.status(), 200);
    let log = server.wait_for_log("refused wrong credentials");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("refused wrong credentials"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per period:\n{log}");
    assert!(warnings[0].contains("WARN"), "{log}");
    assert!(warnings[0].contains("peer=127.0.0.1:"), "{log}");
    // Not the password, not its colon-free parts, not the guesses.
    for secret in [PASSWORD, "s3cret", "guess1"] {
        assert!(!log.contains(secret), "{secret:?} in stderr:\n{log}");
    }
}

#[test]
fn help_and_errors_never_show_the_password() {
    Command::new(BIN)
        .arg("--help")
        .env("SSE_BROADCAST_AUTH", "me:topsecret")
        .assert()
        .success()
        .stdout(predicate::str::contains("SSE_BROADCAST_AUTH"))
        .stdout(predicate::str::contains("topsecret").not());
    for bad in ["nocolon", ":nouser", "nopassword:"] {
        Command::new(BIN)
            .args(["--auth", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--auth"))
            .stderr(predicate::str::contains("USER:PASSWORD"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cors_preflight_needs_no_credentials() {
    let server = auth_server(&["-i", "1s", "--cors", "https://app.example"]);
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/events"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization, last-event-id",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    // The request itself still needs them, and a refusal carries the CORS headers a page
    // needs to read it.
    let refused = reqwest::Client::new()
        .get(server.url("/stats"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_the_network_without_auth_warns_once() {
    let open = Server::start(&["-i", "1s", "-b", "0.0.0.0"]);
    let log = open.wait_for_log("without --auth");
    assert_eq!(log.matches("without --auth").count(), 1, "{log}");
    assert!(log.contains("WARN"), "{log}");

    let guarded = auth_server(&["-i", "50ms", "-b", "0.0.0.0"]);
    let port = guarded.base.rsplit(':').next().unwrap().to_owned();
    let local = format!("http://127.0.0.1:{port}/events");
    let response = reqwest::Client::new()
        .get(&local)
        .basic_auth("me", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let mut stream = Client::from_response(response);
    assert_eq!(stream.take(2).await.len(), 2);
    let loopback = Server::start(&["-i", "50ms"]);
    let mut events = loopback.events("/events").await;
    assert_eq!(data(&events.take(1).await).len(), 1);
    for server in [&guarded, &loopback] {
        assert!(
            !server.stderr().contains("without --auth"),
            "{}",
            server.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_uses_its_token_where_readers_use_the_password() {
    let mut command = Command::new(BIN);
    command
        .args(["--port", "0", "--stdin"])
        .env("SSE_BROADCAST_AUTH", format!("me:{PASSWORD}"))
        .env("SSE_BROADCAST_PUBLISH_TOKEN", "publisher-token");
    let server = Server::spawn(command, common::Input::Null);
    let reader = get_as(&server, "/events/build", Some(("me", PASSWORD))).await;
    let mut reader = Client::from_response(reader);
    assert_eq!(reader.status, 200);

    let bearer = [("authorization", "Bearer publisher-token")];
    let published = server.post("/events/build", &bearer, "built\n").await;
    assert_eq!(published.status, 200, "{published:?}");
    assert_eq!(reader.next().await.data, "built");

    // A wrong token is the publish route's 401; the token opens nothing else.
    let wrong = server
        .post("/events/build", &[("authorization", "Bearer guess")], "x\n")
        .await;
    assert_eq!(wrong.status, 401);
    let stats = reqwest::Client::new()
        .get(server.url("/stats"))
        .bearer_auth("publisher-token")
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 401);
    assert!(stats.headers().contains_key("www-authenticate"));
}
