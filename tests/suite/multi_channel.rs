//! Several channels on one stream (DESIGN.md §10), on the real binary, read with
//! eventsource-stream: each event's id is the stream's cursor, a cursor resumes every channel
//! exactly (header or query), `earliest`, the missed-events comment naming the channel, what
//! is not a cursor, the paths refused, `--max-clients` counting the stream once, tokens that
//! must allow every channel, and the hyper path beside the lean one.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Server, data, ids};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// One JSON input line for `channel`.
fn line(channel: &str, data: &str) -> String {
    format!("{}\n", json!({"channel": channel, "data": data}))
}

fn send(server: &mut Server, lines: &[(&str, &str)]) {
    let text: String = lines
        .iter()
        .map(|(channel, data)| line(channel, data))
        .collect();
    server.write(text.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_id_is_the_cursor_with_the_events_own_channel_first() {
    let mut server = Server::piped(&["-f", "json"]);
    // deploy has an event before the stream opens: the stream stands at it; build has none.
    send(&mut server, &[("deploy", "before")]);
    server.wait_for_log("sent channel=deploy id=1");
    let mut both = server.events("/events/deploy,build").await;
    let mut plain = server.events("/events/build").await;
    server.wait_for_consumers(3).await;
    let stats = server.stats().await;
    assert_eq!(stats["channels"]["deploy"]["consumers"], 1, "{stats}");
    assert_eq!(stats["channels"]["build"]["consumers"], 2, "{stats}");

    // A source's own id and event name: the name goes through, the id gives way to the cursor.
    let named = json!({"channel": "deploy", "data": "ship\nit", "event": "stage", "id": "mine"});
    let text = line("build", "compile") + &format!("{named}\n") + &line("build", "link");
    server.write(text.as_bytes());
    let got = both.take(3).await;
    assert_eq!(
        ids(&got),
        ["build:1,deploy:1", "deploy:2,build:1", "build:2,deploy:2"]
    );
    assert_eq!(data(&got), ["compile", "ship\nit", "link"]);
    assert_eq!(
        [got[0].event.as_str(), got[1].event.as_str()],
        ["message", "stage"]
    );
    // A stream of one channel is as it was: plain ids.
    let got = plain.take(2).await;
    assert_eq!(
        (ids(&got), data(&got)),
        (
            vec!["1".into(), "2".into()],
            vec!["compile".into(), "link".into()]
        )
    );
    assert_eq!(
        both.response_headers["content-type"], "text/event-stream",
        "the headers of every stream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_resumes_each_channel_with_no_duplicate_and_no_gap() {
    let mut server = Server::piped(&["-f", "json"]);
    let mut first = server.events("/events/a,b,c").await;
    server.wait_for_consumers(3).await;
    send(&mut server, &[("a", "a1"), ("b", "b1"), ("a", "a2")]);
    let seen = first.take(3).await;
    let last = seen[2].id.clone();
    assert_eq!(last, "a:2,b:1,c:0");
    drop(first);
    server.wait_for_consumers(0).await;
    // Missed while away, in the order they were sent: the header resumes exactly after them.
    send(
        &mut server,
        &[("b", "b2"), ("c", "c1"), ("a", "a3"), ("b", "b3")],
    );
    server.wait_for_log("sent channel=b id=3");
    let mut back = server
        .events_with("/events/a,b,c", &[("last-event-id", &last)])
        .await;
    let got = back.take(4).await;
    assert_eq!(data(&got), ["b2", "c1", "a3", "b3"]);
    assert_eq!(
        ids(&got),
        ["b:2,a:2,c:0", "c:1,a:2,b:2", "a:3,b:2,c:1", "b:3,a:3,c:1"]
    );
    // Then live, going on from the replay.
    send(&mut server, &[("c", "c2")]);
    assert_eq!(back.next_is("c2").await.id, "c:2,a:3,b:3");

    // The query does the same for a client that cannot set the header, and the header wins.
    let path = "/events/c,a?lastEventId=c:1,a:2";
    let mut query = server.events(path).await;
    let got = query.take(2).await;
    assert_eq!(data(&got), ["a3", "c2"]);
    let mut header = server
        .events_with(path, &[("last-event-id", "a:3,c:1")])
        .await;
    assert_eq!(header.next().await.data, "c2");

    // A channel the cursor does not name starts live, standing at its newest id; names that
    // are not on the stream are ignored.
    let mut partly = server
        .events_with("/events/b,c", &[("last-event-id", "c:1,zz:9")])
        .await;
    let got = partly.next().await;
    assert_eq!((got.data.as_str(), got.id.as_str()), ("c2", "c:2,b:3"));
    send(&mut server, &[("b", "b4")]);
    assert_eq!(partly.next_is("b4").await.id, "b:4,c:2");
}

#[tokio::test(flavor = "multi_thread")]
async fn earliest_replays_every_kept_event_in_arrival_order_then_goes_live() {
    let mut server = Server::piped(&["-f", "json", "--history", "3"]);
    send(
        &mut server,
        &[
            ("x", "x1"),
            ("y", "y1"),
            ("x", "x2"),
            ("y", "y2"),
            ("x", "x3"),
            ("x", "x4"),
        ],
    );
    server.wait_for_log("sent channel=x id=4");
    let mut stream = server.events("/events/y,x?lastEventId=earliest").await;
    // x keeps 2..4 (3 events): before its first replayed one, the stream stands at x:1.
    let got = stream.take(5).await;
    assert_eq!(data(&got), ["y1", "x2", "y2", "x3", "x4"]);
    assert_eq!(
        ids(&got),
        ["y:1,x:1", "x:2,y:1", "y:2,x:2", "x:3,y:2", "x:4,y:2"]
    );
    send(&mut server, &[("y", "y3")]);
    assert_eq!(stream.next_is("y3").await.id, "y:3,x:4");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_position_older_than_kept_is_told_naming_its_channel() {
    let mut server = Server::piped(&["-f", "json", "--history", "2"]);
    send(
        &mut server,
        &[
            ("old", "1"),
            ("old", "2"),
            ("old", "3"),
            ("old", "4"),
            ("new", "n1"),
        ],
    );
    server.wait_for_log("sent channel=new id=1");
    let mut raw = server
        .raw("/events/old,new", &[("last-event-id", "old:1,new:1")])
        .await;
    raw.read_until_contains("data: 4").await;
    assert_eq!(
        raw.text(),
        ": 1 events of channel old after id 1 are no longer kept; replaying the 2 kept\n\n\
         id: old:3,new:1\ndata: 3\n\nid: old:4,new:1\ndata: 4\n\n"
    );
    // Ahead of the numbering (the channel was reclaimed, or the server restarted): told too.
    let mut ahead = server
        .raw("/events/old,new", &[("last-event-id", "old:4,new:7")])
        .await;
    ahead.read_until_contains("\n\n").await;
    assert!(
        ahead
            .text()
            .starts_with(": events of channel new after id 7 are no longer kept"),
        "{}",
        ahead.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_that_is_not_a_cursor_gets_a_comment_then_live_events() {
    let mut server = Server::piped(&["-f", "json"]);
    send(&mut server, &[("a", "kept")]);
    server.wait_for_log("sent channel=a id=1");
    let mut raw = server.raw("/events/a,b", &[("last-event-id", "1")]).await;
    raw.read_until_contains("\n\n").await;
    assert!(
        raw.text().starts_with(": unknown Last-Event-ID \"1\""),
        "{}",
        raw.text()
    );
    server.wait_for_consumers(2).await;
    send(&mut server, &[("b", "live")]);
    raw.read_until_contains("data: live").await;
    assert!(
        raw.text().ends_with("\n\nid: b:1,a:1\ndata: live\n\n"),
        "{}",
        raw.text()
    );
    assert!(!raw.text().contains("kept"), "nothing replayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_names_two_to_sixteen_distinct_valid_channels() {
    let server = Server::start(&["-i", "1h", "--max-clients", "1"]);
    let names: Vec<String> = (1..=17).map(|n| format!("c{n}")).collect();
    let http = reqwest::Client::new();
    for path in [
        "/events/a,a".to_owned(),
        "/events/a,default,default".into(),
        "/events/a,".into(),
        "/events/,a".into(),
        "/events/a,.b".into(),
        "/events/a,b%2Cc".into(),
        "/events/a;b".into(),
        format!("/events/{}", names.join(",")),
    ] {
        let status = http.get(server.url(&path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    // Sixteen are served, and the stream is one under --max-clients: a second one is refused.
    let sixteen = server
        .events(&format!("/events/{}", names[..16].join(",")))
        .await;
    assert_eq!(sixteen.status, 200);
    server.wait_for_consumers(16).await;
    let refused = http.get(server.url("/events/a,b")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    let stats = server.stats().await;
    assert_eq!(stats["channels"]["c16"]["consumers"], 1, "{stats}");
    drop(sixteen);
    server.wait_for_consumers(0).await;
    assert_eq!(
        http.get(server.url("/events/a,b"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

const SECRET: &str = "a test secret of 32 bytes or more";

fn token(subscribe: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"exp": now + 60, "sse_broadcast": {"subscribe": subscribe}});
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_must_allow_every_channel_named() {
    let mut server = Server::piped(&["-f", "json", "--jwt-secret", SECRET, "--public", "news"]);
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<String>| {
        let mut request = http.get(server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let refused = get("/events/team.a,ops,team.b", Some(token(json!(["team.*"]))))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(
        refused.text().await.unwrap().trim(),
        "the token does not allow reading channel ops",
        "the first channel refused is named"
    );
    let missing = get("/events/news,team.a", None).await.unwrap();
    assert_eq!(missing.status(), 401, "one private channel needs a token");
    let public = get("/events/news,default", None).await.unwrap();
    assert_eq!(
        public.status(),
        401,
        "default is private unless --public says so"
    );

    let allowed = token(json!(["team.*", "ops"]));
    let bearer = format!("Bearer {allowed}");
    let mut stream = server
        .events_with("/events/team.a,news,ops", &[("authorization", &bearer)])
        .await;
    assert_eq!(stream.status, 200);
    send(&mut server, &[("ops", "paged")]);
    assert_eq!(stream.next().await.id, "ops:1,team.a:0,news:0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hyper_path_serves_it_as_the_lean_one_does() {
    let mut server = Server::piped(&["-f", "json"]);
    // One client, one connection: its first request is not a stream, so hyper serves the
    // connection, and the stream that follows on it.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let stats = http.get(server.url("/stats")).send().await.unwrap();
    assert_eq!(stats.status(), 200);
    stats.text().await.unwrap();
    let response = http.get(server.url("/events/p,q")).send().await.unwrap();
    let mut stream = common::Client::from_response(response);
    server.wait_for_consumers(2).await;
    send(&mut server, &[("q", "one"), ("p", "two")]);
    let got = stream.take(2).await;
    assert_eq!(ids(&got), ["q:1,p:0", "p:1,q:1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_of_several_channels_stays_open_when_a_publish_is_refused_a_slot() {
    let mut server = Server::piped(&["-f", "json", "--max-channels", "2"]);
    // `kept` holds an event (a slot); `waiting` only has readers (no slot).
    send(&mut server, &[("kept", "k1")]);
    server.wait_for_log("sent channel=kept id=1");
    let response = reqwest::get(server.url("/events/kept,waiting"))
        .await
        .unwrap();
    let mut stream = common::Client::from_response(response);
    server.wait_for_consumers(2).await;
    // The second slot goes to `new`; `waiting` then needs one that is not free.
    send(
        &mut server,
        &[("new", "n1"), ("waiting", "w1"), ("kept", "k2")],
    );
    server.wait_for_log("sent channel=kept id=2");
    server.wait_for_log("skipped: channel waiting refused");
    assert_eq!(stream.next_is("k2").await.id, "kept:2,waiting:0");
}
