//! `--authorize-url` under a crowd (DESIGN.md §17): requests asking the same question while it is
//! being asked wait for its answer instead of asking again, whatever the answer; different
//! questions are asked each. The backend holds its answer until the test has seen the waiters
//! counted in /metrics, so every request is known to have come while the question was in flight.
//! Also here: `--authorize-timeout`'s default, 2 s.

use crate::authorize::{COOKIE, UNDECIDED, counters, publish, start};
use crate::common;

use std::time::{Duration, Instant};

use common::backend::{Backend, Hold, Reply, reply};
use common::{Client, RawClient, Server, WAIT, assert_refused_with_retry};
use reqwest::StatusCode;

/// How many streams come at once with the same cookie.
const CROWD: usize = 20;

/// A backend answering `status`, each answer held until `hold` lets it go.
fn held(hold: &Hold, status: &'static str) -> Backend {
    let hold = hold.clone();
    Backend::start(move |_| Reply {
        held: Some(hold.clone()),
        ..reply(status)
    })
}

/// `sse_broadcast_authorize_merged_total`.
async fn merged(server: &Server) -> f64 {
    let text = server.metrics().await;
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let sample = scrape
        .samples
        .iter()
        .find(|sample| sample.metric == "sse_broadcast_authorize_merged_total")
        .expect("the merged counter in /metrics");
    match sample.value {
        prometheus_parse::Value::Counter(value) => value,
        _ => panic!("not a counter: {sample:?}"),
    }
}

/// Waits until `done` holds (polling, for `WAIT` at most), letting the test's tasks run.
async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "no {what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_crowd_with_one_cookie_is_asked_about_once() {
    let hold = Hold::default();
    let backend = held(&hold, "204 No Content");
    let mut server = start(&backend.url, &[]);
    // The first to ask goes away before the answer: the others still get it.
    let url = server.url("/events/a");
    let first = tokio::spawn(async move { Client::connect(&url, &[("cookie", COOKIE)]).await });
    until("the question", || async { backend.asked() == 1 }).await;
    first.abort();
    let streams: Vec<_> = (0..CROWD)
        .map(|_| {
            let url = server.url("/events/a");
            tokio::spawn(async move { Client::connect(&url, &[("cookie", COOKIE)]).await })
        })
        .collect();
    let waiters = CROWD as f64;
    until("waiters", || async { merged(&server).await == waiters }).await;
    hold.release();
    let mut clients = Vec::new();
    for stream in streams {
        let client = stream.await.unwrap();
        assert_eq!(client.status, StatusCode::OK);
        clients.push(client);
    }
    server.wait_for_consumers(CROWD as u64).await;
    publish(&mut server, "a", "for all");
    for client in &mut clients {
        assert_eq!(client.next().await.data, "for all");
    }
    assert_eq!(backend.asked(), 1);
    // Every request is counted as decided (the one that went away too, if the server was still
    // at it); one line is logged, for the one question.
    let (allowed, denied, errors, hits) = counters(&server).await;
    assert!(allowed == waiters || allowed == waiters + 1.0, "{allowed}");
    assert_eq!((denied, errors, hits), (0.0, 0.0, 0.0));
    assert_eq!(merged(&server).await, waiters);
    let log = server.wait_for_log("authorization backend decided");
    assert_eq!(
        log.matches("authorization backend decided").count(),
        1,
        "{log}"
    );
}

#[tokio::test]
async fn a_crowd_shares_a_failure_and_the_next_one_asks_again() {
    let hold = Hold::default();
    let backend = held(&hold, "503 Service Unavailable");
    let server = start(&backend.url, &[]);
    // Half of them EventSources: those get the refusal they come back from, the others a 503.
    let answers: Vec<_> = (0..CROWD)
        .map(|n| {
            let url = server.url("/events/a");
            tokio::spawn(async move {
                let mut request = reqwest::Client::new().get(url).header("cookie", COOKIE);
                if n % 2 == 1 {
                    request = request.header("accept", "text/event-stream");
                }
                let response = common::within("an answer", request.send()).await.unwrap();
                let status = response.status();
                let retry_after = response.headers().get("retry-after").cloned();
                let body = common::within("a body", response.text()).await.unwrap();
                (n, status, retry_after, body)
            })
        })
        .collect();
    let waiters = (CROWD - 1) as f64;
    until("waiters", || async { merged(&server).await == waiters }).await;
    hold.release();
    for answer in answers {
        let (n, status, retry_after, body) = answer.await.unwrap();
        if n % 2 == 1 {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_refused_with_retry(body.as_bytes(), UNDECIDED);
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(retry_after.unwrap(), "5");
        }
    }
    assert_eq!(backend.asked(), 1);
    assert_eq!(counters(&server).await, (0.0, 0.0, CROWD as f64, 0.0));
    // Nothing was kept: the next request asks again.
    let again = reqwest::Client::new()
        .get(server.url("/events/a"))
        .header("cookie", COOKIE)
        .send();
    let again = common::within("an answer", again).await.unwrap();
    assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(backend.asked(), 2);
}

#[tokio::test]
async fn different_cookies_are_different_questions() {
    let hold = Hold::default();
    let backend = held(&hold, "204 No Content");
    let server = start(&backend.url, &[]);
    let streams: Vec<_> = ["session=one", "session=two"]
        .into_iter()
        .map(|cookie| {
            let url = server.url("/events/a");
            tokio::spawn(async move { Client::connect(&url, &[("cookie", cookie)]).await })
        })
        .collect();
    // Both are asked while the first is still held.
    until("second question", || async { backend.asked() == 2 }).await;
    hold.release();
    for stream in streams {
        assert_eq!(stream.await.unwrap().status, StatusCode::OK);
    }
    assert_eq!(merged(&server).await, 0.0);
}

#[tokio::test]
async fn without_authorize_timeout_a_backend_gets_2_seconds() {
    // Held, never let go: the backend never answers.
    let backend = held(&Hold::default(), "200 OK");
    let server = start(&backend.url, &[]);
    let asked = Instant::now();
    let mut event_source =
        RawClient::connect(&server.url("/events/a"), &[("accept", "text/event-stream")]).await;
    assert_eq!(event_source.status, StatusCode::OK);
    let body = event_source.until_end().await.to_vec();
    let waited = asked.elapsed();
    assert_refused_with_retry(&body, UNDECIDED);
    // A timer does not fire early; the upper bound only guards against no timeout at all.
    assert!(waited >= Duration::from_secs(2), "refused after {waited:?}");
    assert!(waited < Duration::from_secs(30), "refused after {waited:?}");
    assert_eq!(backend.asked(), 1);
}
