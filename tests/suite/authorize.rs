//! `--authorize-url` (DESIGN.md §17): a real HTTP backend in the test (a small server on a free
//! port that records every request head and answers as each test scripts it) decides for the
//! real binary: it allows, refuses with 401 and 403 (passed on), narrows (fewer channels, an
//! `expires_in` that ends the stream), stalls past `--authorize-timeout`, fails with a 500 or is
//! not there (the refusal an EventSource comes back from; 503 and Retry-After for a POST). The
//! cache's hits and expiry are counted by the backend itself; what the backend is told is read
//! from its own record; no cookie or token reaches the server's log.

use crate::common;

use std::time::{Duration, Instant};

use common::backend::{Backend, Reply, json, reply};
use common::listener::header;
use common::{RawClient, Server, WAIT, assert_refused_with_retry};
use reqwest::StatusCode;

/// What the backend answers: a status line's tail, extra header lines, a body, after a delay.
/// A URL where nothing listens.
fn nothing_there() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/auth", listener.local_addr().unwrap())
}

/// A server reading JSON lines (with their `"channel"`) from stdin, asking `url`.
pub(crate) fn start(url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["-f", "json", "-v", "--authorize-url", url];
    args.extend_from_slice(extra);
    Server::piped(&args)
}

pub(crate) fn publish(server: &mut Server, channel: &str, data: &str) {
    server.write(format!("{{\"data\": \"{data}\", \"channel\": \"{channel}\"}}\n").as_bytes());
}

/// A plain GET: its status, headers and the start of its body are all a refusal has.
async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    common::within("an answer", request.send()).await.unwrap()
}

/// `sse_broadcast_authorize_…` counters as /metrics reads them.
pub(crate) async fn counters(server: &Server) -> (f64, f64, f64, f64) {
    let text = server.metrics().await;
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let value = |name: &str, outcome: Option<&str>| {
        scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name
                    && outcome.is_none_or(|outcome| sample.labels.get("outcome") == Some(outcome))
            })
            .map_or(0.0, |sample| match sample.value {
                prometheus_parse::Value::Counter(value) => value,
                _ => panic!("{name} is not a counter"),
            })
    };
    let decisions = "sse_broadcast_authorize_decisions_total";
    (
        value(decisions, Some("allowed")),
        value(decisions, Some("denied")),
        value(decisions, Some("error")),
        value("sse_broadcast_authorize_cache_hits_total", None),
    )
}

pub(crate) const COOKIE: &str = "session=c00kie-s3cret";
const BEARER: &str = "Bearer t0ken-s3cret";
const ORIGIN: &str = "http://app.example";

#[tokio::test]
async fn an_allowed_stream_reads_and_the_backend_hears_what_it_needs() {
    let backend = Backend::start(|_| reply("204 No Content"));
    let mut server = start(&backend.url, &[]);
    let mut client = server
        .events_with(
            "/events/a,b",
            &[
                ("cookie", COOKIE),
                ("authorization", BEARER),
                ("origin", ORIGIN),
            ],
        )
        .await;
    assert_eq!(client.status, StatusCode::OK);
    server.wait_for_consumers(2).await;
    publish(&mut server, "b", "for b");
    assert_eq!(client.next().await.data, "for b");
    let heads = backend.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = &heads[0];
    assert!(head.starts_with("GET /auth HTTP/1.1\r\n"), "{head}");
    for (name, value) in [
        ("cookie", COOKIE),
        ("authorization", BEARER),
        ("origin", ORIGIN),
        ("x-sse-channels", "a,b"),
        ("x-sse-method", "GET"),
        ("x-forwarded-for", "127.0.0.1"),
    ] {
        assert_eq!(header(head, name), Some(value), "{name} in {head}");
    }
    // The decision is logged, the credentials never.
    let log = server.wait_for_log("authorization backend decided");
    assert!(!log.contains("c00kie") && !log.contains("t0ken"), "{log}");
    assert_eq!(counters(&server).await, (1.0, 0.0, 0.0, 0.0));
}

#[tokio::test]
async fn refusals_are_passed_on_with_their_body_and_challenge() {
    let backend = Backend::start(|head| match header(head, "cookie") {
        None => Reply {
            headers: "WWW-Authenticate: Cookie realm=\"app\"\r\n".into(),
            body: "log in first\n".into(),
            ..reply("401 Unauthorized")
        },
        Some(_) => Reply {
            body: "not your channel".into(),
            ..reply("403 Forbidden")
        },
    });
    let server = start(&backend.url, &[]);
    let anonymous = get(&server, "/events/a", &[]).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Cookie realm=\"app\""
    );
    assert_eq!(anonymous.text().await.unwrap(), "log in first\n");
    let someone = get(&server, "/events/a", &[("cookie", COOKIE)]).await;
    assert_eq!(someone.status(), StatusCode::FORBIDDEN);
    assert_eq!(someone.text().await.unwrap(), "not your channel\n");
    // An EventSource is refused the same way: a refusal is final for it, as it should be.
    let event_source = get(&server, "/events", &[("accept", "text/event-stream")]).await;
    assert_eq!(event_source.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(counters(&server).await, (0.0, 3.0, 0.0, 0.0));
    assert!(!server.stderr().contains("c00kie"));
}

#[tokio::test]
async fn a_json_body_narrows_the_channels() {
    let backend = Backend::start(|_| json(r#"{"user": "ann", "subscribe": ["a", "news.*"]}"#));
    let mut server = start(&backend.url, &[]);
    // Asked for three, allowed two: the stream carries those two only.
    let mut client = server
        .events_with("/events/a,b,news.today", &[("cookie", COOKIE)])
        .await;
    assert_eq!(client.status, StatusCode::OK);
    server.wait_for_consumers(2).await;
    let stats = server.stats().await;
    assert_eq!(
        stats["channels"]["b"]["consumers"],
        serde_json::Value::Null,
        "{stats}"
    );
    publish(&mut server, "b", "not for ann");
    publish(&mut server, "news.today", "for ann");
    assert_eq!(client.next().await.data, "for ann");
    // Asked for one it does not allow: refused, naming it.
    let refused = get(&server, "/events/b", &[("cookie", COOKIE)]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("channel b"));
    let log = server.wait_for_log("user=\"ann\"");
    assert!(!log.contains("c00kie"), "{log}");
}

#[tokio::test]
async fn expires_in_ends_the_stream_then() {
    let backend = Backend::start(|_| json(r#"{"expires_in": 2}"#));
    let server = start(&backend.url, &[]);
    let opened = Instant::now();
    let mut client = RawClient::connect(&server.url("/events"), &[("cookie", COOKIE)]).await;
    assert_eq!(client.status, StatusCode::OK);
    let body = client.until_end().await;
    let lasted = opened.elapsed();
    assert!(
        String::from_utf8_lossy(body).ends_with(": token expired\n\n"),
        "{body:?}"
    );
    assert!(
        lasted >= Duration::from_millis(1900),
        "ended after {lasted:?}"
    );
}

/// The last words of an EventSource's stream when the backend gave no decision.
pub(crate) const UNDECIDED: &str =
    ": the authorization backend (--authorize-url) did not decide; try again later\n\n";

/// A backend that gives no decision: a timeout, a 500, nothing listening.
async fn refuses_as_an_event_source_survives(url: &str, extra: &[&str]) {
    let server = start(url, extra);
    let mut event_source =
        RawClient::connect(&server.url("/events/a"), &[("accept", "text/event-stream")]).await;
    assert_eq!(event_source.status, StatusCode::OK);
    let body = event_source.until_end().await.to_vec();
    assert_refused_with_retry(&body, UNDECIDED);
    let other = get(&server, "/events/a", &[]).await;
    assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(other.headers()["retry-after"], "5");
    // Neither was kept: each was asked, and counted as an error.
    assert_eq!(counters(&server).await, (0.0, 0.0, 2.0, 0.0));
    server.wait_for_log("gave no decision");
}

#[tokio::test]
async fn a_slow_backend_refuses_after_the_timeout() {
    let backend = Backend::start(|_| Reply {
        delay: Duration::from_secs(30),
        ..reply("200 OK")
    });
    let started = Instant::now();
    refuses_as_an_event_source_survives(&backend.url, &["--authorize-timeout", "300ms"]).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(backend.asked(), 2);
}

#[tokio::test]
async fn a_failing_backend_refuses_and_is_asked_again() {
    let backend = Backend::start(|_| reply("500 Internal Server Error"));
    refuses_as_an_event_source_survives(&backend.url, &[]).await;
    assert_eq!(backend.asked(), 2);
}

#[tokio::test]
async fn a_backend_that_is_down_refuses() {
    refuses_as_an_event_source_survives(&nothing_there(), &[]).await;
}

/// Allows a request with a cookie, refuses one without.
fn cookie_backend() -> Backend {
    Backend::start(|head| match header(head, "cookie") {
        Some(_) => reply("200 OK"),
        None => reply("401 Unauthorized"),
    })
}

#[tokio::test]
async fn answers_are_kept_per_question() {
    let backend = cookie_backend();
    let server = start(&backend.url, &["--authorize-cache", "10m"]);
    for _ in 0..3 {
        let allowed = get(&server, "/events/a", &[("cookie", COOKIE)]).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        let refused = get(&server, "/events/a", &[]).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(backend.asked(), 2);
    // Another cookie, channel set or method is another question.
    let other = get(&server, "/events/a", &[("cookie", "session=other")]).await;
    assert_eq!(other.status(), StatusCode::OK);
    let channels = get(&server, "/events/a,b", &[("cookie", COOKIE)]).await;
    assert_eq!(channels.status(), StatusCode::OK);
    let post = server.post("/events/a", &[("cookie", COOKIE)], "x\n").await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(backend.asked(), 5);
    // allowed, denied, errors, cache hits: every decision counts, the kept ones also as hits.
    assert_eq!(counters(&server).await, (6.0, 3.0, 0.0, 4.0));
}

#[tokio::test]
async fn a_kept_answer_expires_from_when_it_was_given() {
    let backend = cookie_backend();
    let server = start(&backend.url, &["--authorize-cache", "1s"]);
    let asked_at = Instant::now();
    let deadline = asked_at + WAIT;
    // Used again and again, the answer still ends 1 s after it was given: then the backend
    // is asked anew.
    loop {
        let allowed = get(&server, "/events/a", &[("cookie", COOKIE)]).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        if backend.asked() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "never asked again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(asked_at.elapsed() >= Duration::from_secs(1));
    let (_, _, _, hits) = counters(&server).await;
    assert!(hits >= 1.0, "{hits}");
}

#[tokio::test]
async fn a_post_goes_through_the_backend() {
    let backend = Backend::start(|head| match header(head, "cookie") {
        Some(cookie) if cookie.contains("writer") => json(r#"{"user": "w", "publish": ["build"]}"#),
        _ => reply("401 Unauthorized"),
    });
    let server = start(&backend.url, &[]);
    let writer = [("cookie", "session=writer"), ("origin", ORIGIN)];
    let published = server.post("/events/build", &writer, "line\n").await;
    assert_eq!(published.status, StatusCode::OK, "{published:?}");
    let head = backend.heads().pop().unwrap();
    assert_eq!(header(&head, "x-sse-method"), Some("POST"));
    assert_eq!(header(&head, "x-sse-channels"), Some("build"));
    assert_eq!(header(&head, "origin"), Some(ORIGIN));
    let elsewhere = server.post("/events/deploy", &writer, "line\n").await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "{elsewhere:?}");
    let nobody = server.post("/events/build", &[], "line\n").await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    // --publish-token still publishes without asking.
    let asked = backend.asked();
    let server = server_with_token(&backend.url);
    let by_token = server
        .post(
            "/events/build",
            &[("authorization", "Bearer pub-s3cret")],
            "line\n",
        )
        .await;
    assert_eq!(by_token.status, StatusCode::OK);
    assert_eq!(backend.asked(), asked);
    assert!(!server.stderr().contains("pub-s3cret"));
}

fn server_with_token(url: &str) -> Server {
    start(url, &["--publish-token", "pub-s3cret"])
}

#[tokio::test]
async fn a_post_the_backend_does_not_decide_gets_503() {
    let server = start(&nothing_there(), &[]);
    let refused = server
        .post("/events/build", &[("cookie", COOKIE)], "line\n")
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers["retry-after"], "5");
    let stalled = Backend::start(|_| Reply {
        delay: Duration::from_secs(30),
        ..reply("200 OK")
    });
    let server = start(&stalled.url, &["--authorize-timeout", "200ms"]);
    let refused = server
        .post("/events/build", &[("cookie", COOKIE)], "line\n")
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.body.contains("--authorize-url"), "{refused:?}");
    assert!(WAIT > Duration::from_secs(1));
}

#[test]
fn a_bad_url_is_a_usage_error() {
    for bad in ["not a url", "ftp://host/auth", "http://"] {
        let output = common::cli::command()
            .args(["--authorize-url", bad])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: invalid value for '--authorize-url <URL>'"),
            "{stderr}"
        );
    }
    let output = common::cli::command()
        .args(["--authorize-cache", "5s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// The Flask backend of docs/presence-and-hooks.md, run as written (its ports changed) with the
/// server the page starts beside it.
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_flask_backend_decides() {
    use common::recipe::{Recipe, Script};
    let (flask, port) = (common::redis::free_port(), common::redis::free_port());
    let recipe = Recipe::containing("docs/presence-and-hooks.md", "sh", "authorize.py")
        .port(5000, flask)
        .port(8080, port);
    let mut script = Script::start(&recipe, &[]);
    script.wait_for_port(flask);
    script.wait_for_port(port);
    let base = format!("http://127.0.0.1:{port}");
    const ANN: &[(&str, &str)] = &[("cookie", "session=c0ffee")];
    let mut reader = common::Client::connect(&format!("{base}/events/news,user-ann"), ANN).await;
    assert_eq!(reader.status, StatusCode::OK, "{}", script.log());
    assert!(reader.next().await.data.starts_with("hello, now is"));
    let get = |path: &str, headers: &'static [(&'static str, &'static str)]| {
        let mut request = reqwest::Client::new().get(format!("{base}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let elsewhere = get("/events/team", ANN).await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);
    let nobody = get("/events/news", &[]).await.unwrap();
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(nobody.text().await.unwrap(), "log in first\n");
    let post = reqwest::Client::new()
        .post(format!("{base}/events/news"))
        .header("cookie", "session=c0ffee")
        .body("x\n")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    assert!(!script.log().contains("c0ffee"), "{}", script.log());
}

/// An HS256 token with `SECRET` granting `rights` for a minute.
fn token(rights: serde_json::Value) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let claims = serde_json::json!({"exp": exp, "sse_broadcast": rights});
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

const SECRET: &str = "a test secret of 32 bytes or more";

#[tokio::test]
async fn what_a_token_or_public_grants_is_not_asked() {
    let backend = Backend::start(|_| reply("200 OK"));
    let server = start(&backend.url, &["--jwt-secret", SECRET, "--public", "news"]);
    let reader = format!("Bearer {}", token(serde_json::json!({"subscribe": ["a"]})));
    let reader = [("authorization", reader.as_str())];
    assert_eq!(
        get(&server, "/events/news", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&server, "/events/a", &reader).await.status(),
        StatusCode::OK
    );
    assert_eq!(backend.asked(), 0);
    // A channel the token does not cover: the backend decides, for the channels that are not
    // public, with the token forwarded as it came.
    assert_eq!(
        get(&server, "/events/news,a,b", &reader).await.status(),
        StatusCode::OK
    );
    let head = backend.heads().pop().unwrap();
    assert_eq!(header(&head, "x-sse-channels"), Some("a,b"));
    assert_eq!(header(&head, "authorization"), Some(reader[0].1));
    // A token that fails is no refusal: the application may know the request otherwise.
    let bad = [("authorization", "Bearer nonsense"), ("cookie", COOKIE)];
    assert_eq!(
        get(&server, "/events/a", &bad).await.status(),
        StatusCode::OK
    );
    assert_eq!(backend.asked(), 2);
    // A publisher's token publishes without a question.
    let publisher = format!("Bearer {}", token(serde_json::json!({"publish": ["a"]})));
    let published = server
        .post("/events/a", &[("authorization", publisher.as_str())], "x\n")
        .await;
    assert_eq!(published.status, StatusCode::OK);
    assert_eq!(backend.asked(), 2);
    assert!(!server.stderr().contains("nonsense"));
}

#[tokio::test]
async fn public_channels_need_no_question_without_tokens_too() {
    let backend = cookie_backend();
    let server = start(&backend.url, &["--public", "news.*"]);
    assert_eq!(
        get(&server, "/events/news.today", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(backend.asked(), 0);
    let refused = get(&server, "/events/news.today,private", &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let head = backend.heads().pop().unwrap();
    assert_eq!(header(&head, "x-sse-channels"), Some("private"));
}

#[tokio::test]
async fn cookies_sent_on_several_lines_reach_the_backend_as_one() {
    // As HTTP/2 browsers send them: a line per cookie.
    let backend = Backend::start(|_| reply("204 No Content"));
    let server = start(&backend.url, &[]);
    let lines = [("cookie", "theme=dark"), ("cookie", COOKIE)];
    assert_eq!(
        get(&server, "/events/a", &lines).await.status(),
        StatusCode::OK
    );
    let head = backend.heads().pop().unwrap();
    let joined = format!("theme=dark; {COOKIE}");
    assert_eq!(header(&head, "cookie"), Some(joined.as_str()), "{head}");
}
