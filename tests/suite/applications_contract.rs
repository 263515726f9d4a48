//! DESIGN.md §17 clause by clause, for what `presence`, `authorize` and `occupancy` leave
//! unchecked: a user named by the authorization backend's answer joins and leaves as a token's
//! `sub` would, and a public channel's `/presence` names them only to whom the backend lets
//! read it; an ordinary leave and anonymous readers across two instances on one redis-server
//! (no token in the log); `expires_in` bounds how long an answer is kept, which is kept per
//! `Authorization` as per cookie; a backend's 5xx refuses a POST with 503 and Retry-After; a
//! hook still running at shutdown gets SIGTERM. Real binary, real SSE parser, a real HTTP backend on a free port, waits for events.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::backend::{self, Backend, Reply, reply};
use common::listener::header;
use common::redis::{AUTH, Redis, instance};
use common::{BIN, Client, Input, Server, WAIT};
use serde_json::{Value, json};

const SECRET: &str = "a test secret of 32 bytes or more";

/// An HS256 token for `sub` that may read `subscribe`, for a minute.
fn token(sub: &str, subscribe: &[&str]) -> String {
    common::user_token(SECRET, sub, subscribe)
}

/// A response of `status` with a JSON `body` (none if empty).
fn response(status: &'static str, body: &str) -> Reply {
    if body.is_empty() {
        reply(status)
    } else {
        Reply {
            status,
            ..backend::json(body)
        }
    }
}

/// The next event, which must be a presence one of `kind`; its data.
async fn presence_event(client: &mut Client, kind: &str) -> Value {
    let event = client.next().await;
    assert_eq!(event.event, kind, "{event:?}");
    assert_eq!(event.id, "", "a presence event has no id: {event:?}");
    serde_json::from_str(&event.data).unwrap()
}

async fn sentinel(server: &Server, channel: &str, client: &mut Client, text: &str) {
    let answer = server
        .post(&format!("/events/{channel}"), &[AUTH], text.to_owned())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    client.next_is(text).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_the_backend_names_joins_and_leaves() {
    // Each cookie's session is its user; no cookie: allowed, unnamed.
    let backend = Backend::start(|head| match header(head, "cookie") {
        Some(cookie) => {
            let user = cookie.trim_start_matches("session=");
            response("200 OK", &format!(r#"{{"user": "{user}"}}"#))
        }
        None => response("204 No Content", ""),
    });
    let server = Server::start(&[
        "--presence",
        "--authorize-url",
        &backend.url,
        "--publish-token",
        "t",
        "-v",
    ]);
    let mut ann = server
        .events_with("/events/room", &[("cookie", "session=ann")])
        .await;
    assert_eq!(ann.status, 200);
    assert_eq!(
        presence_event(&mut ann, "join").await,
        json!({"user": "ann", "streams": 1})
    );
    let bob = server
        .events_with("/events/room", &[("cookie", "session=bob")])
        .await;
    assert_eq!(
        presence_event(&mut ann, "join").await,
        json!({"user": "bob", "streams": 2})
    );
    let nobody = server.events("/events/room").await;
    assert_eq!(
        presence_event(&mut ann, "join").await,
        json!({"user": null, "streams": 3})
    );
    drop(bob);
    assert_eq!(
        presence_event(&mut ann, "leave").await,
        json!({"user": "bob", "streams": 2})
    );
    drop(nobody);
    assert_eq!(
        presence_event(&mut ann, "leave").await,
        json!({"user": null, "streams": 1})
    );
    sentinel(&server, "room", &mut ann, "no more").await;
    assert!(!server.stderr().contains("session="), "{}", server.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn across_instances_a_leave_is_announced_and_anonymous_readers_count_everywhere() {
    let redis = Redis::start();
    let flags = [
        "--presence",
        "--jwt-secret",
        SECRET,
        "--public",
        "lobby",
        "-v",
    ];
    let a = instance(&redis, &flags);
    let b = instance(&redis, &flags);
    let (ivan, hana) = (token("ivan", &["lobby"]), token("hana", &["lobby"]));
    let bearer = |token: &str| format!("Bearer {token}");
    let mut on_b = b
        .events_with("/events/lobby", &[("Authorization", &bearer(&ivan))])
        .await;
    assert_eq!(
        presence_event(&mut on_b, "join").await,
        json!({"user": "ivan", "streams": 1})
    );
    let anonymous = a.events("/events/lobby").await;
    assert_eq!(
        presence_event(&mut on_b, "join").await,
        json!({"user": null, "streams": 2})
    );
    let hana_on_a = a
        .events_with("/events/lobby", &[("Authorization", &bearer(&hana))])
        .await;
    assert_eq!(
        presence_event(&mut on_b, "join").await,
        json!({"user": "hana", "streams": 3})
    );
    // Either instance answers for both; anonymous readers are counted, not named.
    let expected = json!({"channel": "lobby", "streams": 3, "anonymous": 1, "users": [
        {"user": "hana", "streams": 1}, {"user": "ivan", "streams": 1}]});
    for server in [&a, &b] {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen: Value = reqwest::Client::new()
                .get(server.url("/presence/lobby"))
                .bearer_auth(&ivan)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .map(|text| serde_json::from_str(&text).unwrap_or(Value::Null))
                .unwrap();
            if seen == expected {
                break;
            }
            assert!(Instant::now() < deadline, "{seen}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Streams on A close as streams do: B announces each leave, once.
    drop(anonymous);
    assert_eq!(
        presence_event(&mut on_b, "leave").await,
        json!({"user": null, "streams": 2})
    );
    drop(hana_on_a);
    assert_eq!(
        presence_event(&mut on_b, "leave").await,
        json!({"user": "hana", "streams": 1})
    );
    sentinel(&b, "lobby", &mut on_b, "nothing else").await;
    for server in [&a, &b] {
        let log = server.stderr();
        assert!(!log.contains(&ivan) && !log.contains(&hana), "{log}");
    }
}

#[tokio::test]
async fn expires_in_bounds_how_long_an_answer_is_kept() {
    let backend = Backend::start(|_| response("200 OK", r#"{"expires_in": 1}"#));
    let server = Server::start(&["--authorize-url", &backend.url, "--authorize-cache", "10m"]);
    let cookie = [("cookie", "session=s3cret")];
    let asked_at = Instant::now();
    // Kept for 1 s, not 10 min: then the backend is asked again.
    loop {
        let client = server.events_with("/events/a", &cookie).await;
        assert_eq!(client.status, 200);
        if backend.asked() == 2 {
            break;
        }
        assert!(asked_at.elapsed() < WAIT, "never asked again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(asked_at.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_post_the_failing_backend_does_not_decide_gets_503_and_is_not_kept() {
    let backend = Backend::start(|_| response("502 Bad Gateway", ""));
    let server = Server::start(&["--authorize-url", &backend.url]);
    for asked in 1..=2 {
        let refused = server
            .post("/events/build", &[("cookie", "session=s3cret")], "line\n")
            .await;
        assert_eq!(refused.status, 503, "{refused:?}");
        assert!(refused.headers.contains_key("retry-after"), "{refused:?}");
        assert_eq!(backend.asked(), asked);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_still_running_at_shutdown_gets_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (started, ended) = (dir.path().join("started"), dir.path().join("ended"));
    // The hook says it runs, then waits; SIGTERM ends it through its trap.
    let hook = format!(
        "trap 'echo TERM > {ended}; exit 0' TERM; echo $SSE_CHANNEL > {started}; \
         while :; do sleep 0.1; done",
        ended = ended.display(),
        started = started.display()
    );
    let mut command = Command::new(BIN);
    command.args(["--port", "0", "--on-occupied", &hook]);
    let mut server = Server::spawn(command, Input::Null);
    let reader = server.events("/events/busy").await;
    common::poll_until("the hook to start", WAIT, || {
        std::fs::read_to_string(&started).is_ok_and(|text| text == "busy\n")
    });
    server.terminate();
    drop(reader);
    server.wait_exit();
    common::poll_until("the hook to get SIGTERM", WAIT, || {
        std::fs::read_to_string(&ended).is_ok_and(|text| text == "TERM\n")
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_through_the_backend_names_readers_only_to_those_it_lets_read() {
    let backend = Backend::start(|head| match header(head, "cookie") {
        Some(cookie) => {
            let user = cookie.trim_start_matches("session=");
            response("200 OK", &format!(r#"{{"user": "{user}"}}"#))
        }
        None => response("401 Unauthorized", ""),
    });
    let server = Server::start(&[
        "--presence",
        "--authorize-url",
        &backend.url,
        "--public",
        "lobby",
        "--publish-token",
        "t",
    ]);
    // Ann reads the public lobby and a private room in one stream: a named reader of each.
    let mut ann = server
        .events_with("/events/lobby,room", &[("cookie", "session=ann")])
        .await;
    assert_eq!(ann.status, 200);
    for _ in 0..2 {
        let join = presence_event(&mut ann, "join").await;
        assert_eq!(join["user"], "ann", "{join}");
    }
    let presence = |path: &'static str, cookie: Option<&'static str>| {
        let mut request = reqwest::Client::new().get(server.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    };
    let named = json!([{"user": "ann", "streams": 1}]);
    // The private room: the backend decides, as for its stream.
    assert_eq!(presence("/presence/room", None).await.0, 401);
    let (status, room) = presence("/presence/room", Some("session=ann")).await;
    assert_eq!((status.as_u16(), &room["users"]), (200, &named));
    // The public lobby without credentials: the counts, no names.
    let (status, lobby) = presence("/presence/lobby", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        lobby,
        json!({"channel": "lobby", "streams": 1, "anonymous": 0, "users": []})
    );
    // With what lets her read it, Ann sees the names.
    let (status, lobby) = presence("/presence/lobby", Some("session=ann")).await;
    assert_eq!((status.as_u16(), &lobby["users"]), (200, &named));
}

#[tokio::test]
async fn an_answer_is_kept_per_authorization_header_too() {
    // Allows the one bearer the application knows, refuses any other.
    let backend = Backend::start(|head| match header(head, "authorization") {
        Some("Bearer app-session-1") => response("204 No Content", ""),
        _ => response("403 Forbidden", ""),
    });
    let server = Server::start(&["--authorize-url", &backend.url, "--authorize-cache", "10m"]);
    let status = |bearer: &'static str| {
        let request = reqwest::Client::new()
            .get(server.url("/events/a"))
            .header("authorization", bearer);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("Bearer app-session-1").await, 200);
    // Another bearer is another question, and its refusal does not stand for the first.
    assert_eq!(status("Bearer app-session-2").await, 403);
    assert_eq!(status("Bearer app-session-1").await, 200);
    assert_eq!(status("Bearer app-session-2").await, 403);
    assert_eq!(backend.asked(), 2);
    assert!(
        !server.stderr().contains("app-session"),
        "{}",
        server.stderr()
    );
}
