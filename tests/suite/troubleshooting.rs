//! Every shell block of docs/troubleshooting.md that starts the server, run as written (only its
//! port changed), and checked for what the page says it does.

use crate::common;

use common::recipe::{Recipe, Script};
use common::redis::free_port;
use common::{Client, WAIT};

const PAGE: &str = "docs/troubleshooting.md";

/// The page's block under `heading`, on a free port; returns it running and its base URL.
fn run(heading: &str, env: &[(&str, &str)]) -> (Script, String) {
    let port = free_port();
    let recipe = Recipe::under(PAGE, heading, "sh", 0).port(8080, port);
    let mut script = Script::start(&recipe, env);
    script.wait_for_port(port);
    (script, format!("http://127.0.0.1:{port}"))
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    tokio::time::timeout(WAIT, request.send())
        .await
        .expect("an answer in time")
        .expect("GET")
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_host_serves_the_name_behind_a_proxy() {
    let (script, base) = run("403 Forbidden behind a proxy or from a tool", &[]);
    let stats = format!("{base}/stats");
    let named = get(&stats, &[("host", "hub.example.com")]).await;
    assert_eq!(named.status(), 200, "{}", script.log());
    let other = get(&stats, &[("host", "other.example")]).await;
    assert_eq!(other.status(), 403);
    let body = other.text().await.unwrap();
    assert!(
        body.starts_with("403 Forbidden: this server answers only requests addressed to localhost"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nohup_with_an_interval_ticks_in_the_background() {
    let (script, base) = run("Silence in the background", &[]);
    let mut reader = Client::connect(&format!("{base}/events"), &[]).await;
    assert_eq!(reader.status, 200);
    let event = reader.next().await;
    assert!(event.data.starts_with("hello, now is: "), "{event:?}");
    let log = std::fs::read_to_string(script.file("sse-broadcast.log")).unwrap();
    assert!(log.contains("listening on"), "{log}");
    assert!(!log.contains(" WARN "), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_names_each_origin_exactly() {
    let (_script, base) = run("An EventSource stuck in readyState 2", &[]);
    let stats = format!("{base}/stats");
    for origin in ["https://app.example", "http://localhost:3000"] {
        let allowed = get(&stats, &[("origin", origin)]).await;
        assert_eq!(allowed.status(), 200);
        assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
    }
    for origin in ["https://app.example:8443", "http://localhost:3001"] {
        let other = get(&stats, &[("origin", origin)]).await;
        assert!(
            other.headers().get("access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_body_raises_the_post_limit() {
    let (script, base) = run("413 on a large POST", &[]);
    let post = |size: usize| {
        let lines = "x".repeat(99) + "\n";
        let body = lines.repeat(size / 100);
        reqwest::Client::new()
            .post(format!("{base}/events"))
            .header("authorization", "Bearer s3cret")
            .body(body)
            .send()
    };
    let two_mib = tokio::time::timeout(WAIT, post(2 << 20)).await.unwrap();
    assert_eq!(two_mib.unwrap().status(), 200, "{}", script.log());
    let nine_mib = tokio::time::timeout(WAIT, post(9 << 20)).await.unwrap();
    // Refused as it comes in: the answer, or the connection closed under the rest of the body.
    if let Ok(answer) = nine_mib {
        assert_eq!(answer.status(), 413);
    }
}
