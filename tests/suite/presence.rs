//! `--presence` (DESIGN.md §17): joins and leaves in the channel itself, read with a real SSE
//! parser (eventsource-stream) from the real binary; users named by the `sub` of tokens minted
//! here (HS256), several streams per user, anonymous readers of a public channel, a stream of
//! several channels, `/presence/NAME` and who may read it; and two instances on one
//! redis-server, one killed with `kill -9`, whose users the other announces gone when the
//! lease ends. Every wait is for an event or an answer: a sentinel event published after
//! the point checked stands for "nothing else came".

use crate::common;

use std::time::{Duration, Instant};

use common::redis::{AUTH, Redis, instance};
use common::{Client, Server};
use eventsource_stream::Event;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a test secret of 32 bytes or more";

/// The lease of a dead instance's readers (15 s), a renewal period on top, and room for a
/// loaded machine.
const LEASE_WAIT: Duration = Duration::from_secs(45);

/// An HS256 token for `sub` that may read `subscribe`, for a minute.
fn token(sub: &str, subscribe: &[&str]) -> String {
    common::user_token(SECRET, sub, subscribe)
}

/// A server with tokens and presence; `extra` adds flags.
fn server(extra: &[&str]) -> Server {
    let mut args = vec!["--presence", "--jwt-secret", SECRET, "--publish-token", "t"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

async fn open(server: &Server, path: &str, token: Option<&str>) -> Client {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|bearer| ("Authorization", bearer))
        .into_iter()
        .collect();
    let client = server.events_with(path, &headers).await;
    assert_eq!(client.status, 200, "{path}");
    client
}

/// The next event, which must be a presence one of `kind`; its data. (Its id is the last
/// event's, as WHATWG keeps it: a presence event has none of its own, see `no_id_on_the_wire`.)
async fn presence_event(client: &mut Client, kind: &str) -> Value {
    let event = client.next().await;
    assert_eq!(event.event, kind, "{event:?}");
    serde_json::from_str(&event.data).unwrap()
}

async fn publish(server: &Server, channel: &str, text: &str) {
    let answer = server
        .post(&format!("/events/{channel}"), &[AUTH], text.to_owned())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Reads the sentinel `text` next: nothing else came before it.
async fn sentinel(server: &Server, channel: &str, client: &mut Client, text: &str) -> Event {
    publish(server, channel, text).await;
    client.next_is(text).await
}

async fn get(server: &Server, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let body = answer.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_joins_with_the_first_stream_and_leaves_with_the_last() {
    let server = server(&[]);
    let alice = token("alice", &["room"]);
    let bob = token("bob", &["room"]);
    let mut alice1 = open(&server, "/events/room", Some(&alice)).await;
    assert_eq!(
        presence_event(&mut alice1, "join").await,
        json!({"user": "alice", "streams": 1}),
        "the joining stream reads its own join"
    );
    // Alice's second stream: no second join, to either stream.
    let mut alice2 = open(&server, "/events/room", Some(&alice)).await;
    let mut bob1 = open(&server, "/events/room", Some(&bob)).await;
    for stream in [&mut alice1, &mut alice2, &mut bob1] {
        assert_eq!(
            presence_event(stream, "join").await,
            json!({"user": "bob", "streams": 3})
        );
    }
    let (status, seen) = get(&server, "/presence/room", Some(&bob)).await;
    assert_eq!(status, 200);
    assert_eq!(
        seen,
        json!({"channel": "room", "streams": 3, "anonymous": 0, "users": [
            {"user": "alice", "streams": 2}, {"user": "bob", "streams": 1}]})
    );
    // One of Alice's two streams closes: she is still here, nobody is told.
    drop(alice2);
    wait_for_presence(&server, "room", &bob, |seen| seen["streams"] == 2).await;
    publish(&server, "room", "after one of two").await;
    bob1.next_is("after one of two").await;
    alice1.next_is("after one of two").await;
    // Her last one closes: she leaves.
    drop(alice1);
    assert_eq!(
        presence_event(&mut bob1, "leave").await,
        json!({"user": "alice", "streams": 1})
    );
    // The history holds the events only: a reader resuming from the start replays no join.
    let mut late = server
        .events_with(
            "/events/room",
            &[
                ("Authorization", &format!("Bearer {bob}")),
                ("Last-Event-ID", "earliest"),
            ],
        )
        .await;
    let replayed = late.next_is("after one of two").await;
    assert_eq!(replayed.id, "1");
    // Then live: no join for Bob's second stream, and his first sees none either.
    publish(&server, "room", "live").await;
    late.next_is("live").await;
    bob1.next_is("live").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_readers_of_a_public_channel_are_each_a_reader() {
    let server = server(&["--public", "lobby"]);
    let mut first = open(&server, "/events/lobby", None).await;
    assert_eq!(
        presence_event(&mut first, "join").await,
        json!({"user": null, "streams": 1})
    );
    let second = open(&server, "/events/lobby", None).await;
    assert_eq!(
        presence_event(&mut first, "join").await,
        json!({"user": null, "streams": 2})
    );
    let carol = token("carol", &["lobby"]);
    let _named = open(&server, "/events/lobby", Some(&carol)).await;
    assert_eq!(
        presence_event(&mut first, "join").await,
        json!({"user": "carol", "streams": 3})
    );
    // Anyone gets the counts of a public channel; only a token that may read it the names.
    let (status, counts) = get(&server, "/presence/lobby", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        counts,
        json!({"channel": "lobby", "streams": 3, "anonymous": 2, "users": []})
    );
    let (_, named) = get(&server, "/presence/lobby", Some(&carol)).await;
    assert_eq!(named["users"], json!([{"user": "carol", "streams": 1}]));
    drop(second);
    assert_eq!(
        presence_event(&mut first, "leave").await,
        json!({"user": null, "streams": 2})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_id_on_the_wire() {
    let server = server(&["--public", "lobby"]);
    publish(&server, "lobby", "kept").await;
    let mut raw = server
        .raw("/events/lobby", &[("Last-Event-ID", "earliest")])
        .await;
    let bytes = raw.read_until_contains("event: join").await;
    let text = String::from_utf8_lossy(bytes).into_owned();
    // The kept event first (its id), then the join: live only, no id of its own.
    assert!(
        text.ends_with("id: 1\ndata: kept\n\nevent: join\ndata: {\"user\":null,\"streams\":1}\n\n"),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_of_several_channels_is_a_reader_of_each() {
    let server = server(&[]);
    let dave = token("dave", &["a", "b"]);
    let erin = token("erin", &["b"]);
    let mut watcher = open(&server, "/events/b", Some(&erin)).await;
    presence_event(&mut watcher, "join").await;
    let mut both = open(&server, "/events/a,b", Some(&dave)).await;
    // The stream of several channels reads its joins, each naming its channel.
    let mut joins: Vec<Value> = Vec::new();
    for _ in 0..2 {
        joins.push(presence_event(&mut both, "join").await);
    }
    joins.sort_by_key(|join| join["channel"].as_str().unwrap().to_owned());
    assert_eq!(
        joins,
        [
            json!({"channel": "a", "user": "dave", "streams": 1}),
            json!({"channel": "b", "user": "dave", "streams": 2})
        ]
    );
    assert_eq!(
        presence_event(&mut watcher, "join").await,
        json!({"user": "dave", "streams": 2})
    );
    let (_, a) = get(&server, "/presence/a", Some(&dave)).await;
    assert_eq!(a["users"], json!([{"user": "dave", "streams": 1}]));
    // Its events keep their cursor ids; a presence event did not move them.
    publish(&server, "a", "on a").await;
    let event = both.next_is("on a").await;
    assert_eq!(event.id, "a:1,b:0");
    drop(both);
    assert_eq!(
        presence_event(&mut watcher, "leave").await,
        json!({"user": "dave", "streams": 1})
    );
    let (_, a) = get(&server, "/presence/a", Some(&dave)).await;
    assert_eq!(
        a,
        json!({"channel": "a", "streams": 0, "anonymous": 0, "users": []})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_of_a_private_channel_needs_a_right_to_read_it() {
    let server = server(&["--public", "open"]);
    let reader = token("frank", &["secret"]);
    let other = token("grace", &["elsewhere"]);
    let (status, _) = get(&server, "/presence/secret", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&server, "/presence/secret", Some(&other)).await;
    assert_eq!(status, 403);
    let (status, empty) = get(&server, "/presence/secret", Some(&reader)).await;
    assert_eq!(status, 200);
    assert_eq!(
        empty,
        json!({"channel": "secret", "streams": 0, "anonymous": 0, "users": []}),
        "nobody reads it: zero counts"
    );
    // A token without a right on a public channel sees the counts, not the names.
    let _frank = open(&server, "/events/open", Some(&reader)).await;
    let (status, counts) = get(&server, "/presence/open", Some(&other)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (counts["streams"].as_u64(), &counts["users"]),
        (Some(1), &json!([]))
    );
    let (status, _) = get(&server, "/presence/not%20a%20name", Some(&reader)).await;
    assert_eq!(status, 404);
    // Without --presence there is no such endpoint, and no join on the wire.
    let plain = Server::start(&["--publish-token", "t"]);
    let (status, _) = get(&plain, "/presence/open", None).await;
    assert_eq!(status, 404);
    let mut client = plain.events("/events/open").await;
    sentinel(&plain, "open", &mut client, "only events").await;
}

/// An instance on `redis` with presence and tokens.
fn shared(redis: &Redis) -> Server {
    instance(redis, &["--presence", "--jwt-secret", SECRET])
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_count_together_and_a_killed_ones_users_leave_when_its_lease_ends() {
    let redis = Redis::start();
    let mut a = shared(&redis);
    let b = shared(&redis);
    let (hana, ivan) = (token("hana", &["team"]), token("ivan", &["team"]));
    let mut on_b = open(&b, "/events/team", Some(&ivan)).await;
    assert_eq!(
        presence_event(&mut on_b, "join").await,
        json!({"user": "ivan", "streams": 1})
    );
    // Hana's streams are on A, and one more of Ivan's: one join, counted over both.
    let mut on_a = open(&a, "/events/team", Some(&hana)).await;
    assert_eq!(
        presence_event(&mut on_a, "join").await,
        json!({"user": "hana", "streams": 2})
    );
    assert_eq!(
        presence_event(&mut on_b, "join").await,
        json!({"user": "hana", "streams": 2})
    );
    let _hana2 = open(&a, "/events/team", Some(&hana)).await;
    let _ivan2 = open(&a, "/events/team", Some(&ivan)).await;
    let expected = json!({"channel": "team", "streams": 4, "anonymous": 0, "users": [
        {"user": "hana", "streams": 2}, {"user": "ivan", "streams": 2}]});
    let seen = wait_for_presence(&b, "team", &ivan, |seen| seen == &expected).await;
    assert_eq!(seen, expected);
    sentinel(&b, "team", &mut on_b, "no more joins").await;
    let (_, stats) = get(&b, "/stats", Some(&token("root", &["*"]))).await;
    assert_eq!(stats["presence"]["lease_seconds"], 15);
    // A dies: its streams never say goodbye. B announces Hana's leave once A's lease ends,
    // and Ivan, still here on B, does not leave.
    a.signal("KILL");
    a.wait_exit();
    let killed = Instant::now();
    let leave = on_b.next_within(LEASE_WAIT).await;
    // No id of its own: the last event id stays the sentinel's.
    assert_eq!((leave.event.as_str(), leave.id.as_str()), ("leave", "1"));
    let leave: Value = serde_json::from_str(&leave.data).unwrap();
    assert_eq!(leave, json!({"user": "hana", "streams": 1}));
    assert!(killed.elapsed() < LEASE_WAIT);
    let (_, seen) = get(&b, "/presence/team", Some(&ivan)).await;
    assert_eq!(
        seen,
        json!({"channel": "team", "streams": 1, "anonymous": 0, "users": [
            {"user": "ivan", "streams": 1}]})
    );
    sentinel(&b, "team", &mut on_b, "after the lease").await;
}

/// `/presence/NAME` once `done` holds for it (each instance tells Redis on its own task).
async fn wait_for_presence(
    server: &Server,
    channel: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let (_, seen) = get(server, &format!("/presence/{channel}"), Some(token)).await;
        if done(&seen) || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_who_is_here_page_of_the_docs_shows_who_joins_and_leaves_in_chromium() {
    use common::browser::Browser;
    use common::recipe::Recipe;
    let test = "the_who_is_here_page_of_the_docs_shows_who_joins_and_leaves_in_chromium";
    let Some(browser) = Browser::launch(test) else {
        return;
    };
    let mut browser = browser.scripted(
        "var here = () => document.getElementById('users').textContent;
         var openStreams = () => document.getElementById('streams').textContent;",
        "({users: here(), streams: openStreams()})",
        "document.getElementById('users') !== null",
    );
    let recipe = Recipe::containing("docs/presence-and-hooks.md", "html", "who-is-here.html");
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("who-is-here.html"), recipe.text()).unwrap();
    let server = server(&["--static-dir", site.path().to_str().unwrap()]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Someone is here before the page opens: the page learns it from /presence/room.
    let (ken, liz) = (token("ken", &["room"]), token("liz", &["room"]));
    let early = runtime.block_on(open(&server, "/events/room", Some(&ken)));
    // What an application does after its own login: it sets the cookie for the hub's origin.
    browser.call(
        "Storage.setCookies",
        json!({"cookies": [{"name": "sse_broadcast_token", "value": token("judy", &["room"]),
                            "url": server.url("/")}]}),
    );
    browser.open(&server.url("/who-is-here.html"));
    browser.wait_for(
        "judy and ken",
        "here() === 'judy, ken' && openStreams() === '2'",
    );
    // Liz comes, with two streams (one join), and goes; Ken goes.
    let liz1 = runtime.block_on(open(&server, "/events/room", Some(&liz)));
    let liz2 = runtime.block_on(open(&server, "/events/room", Some(&liz)));
    // Her second stream is no join: the page still shows the count her join told.
    browser.wait_for(
        "liz too",
        "here() === 'judy, ken, liz' && openStreams() === '3'",
    );
    // One of her two streams closing is no leave; her last one is.
    drop((liz1, early));
    browser.wait_for("ken gone, liz still here", "here() === 'judy, liz'");
    drop(liz2);
    browser.wait_for("judy alone", "here() === 'judy' && openStreams() === '1'");
    drop(runtime);
    browser.assert_no_script_errors();
}

#[test]
fn presence_with_a_redis_cluster_is_a_usage_error() {
    let output = std::process::Command::new(common::BIN)
        .args(["--presence", "--redis", "redis-cluster://127.0.0.1:7000"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--presence") && stderr.contains("Cluster"),
        "{stderr}"
    );
}
