//! `/healthz` and `/readyz` in every state (DESIGN.md §16): ready, at `--max-clients`, with
//! Redis down and back (a real redis-server killed and restarted), and through a drain
//! (`drain.rs`); answered without `--auth` credentials or a token and under any `Host`, and
//! mirrored by `sse_broadcast_ready` in `/metrics`.

use crate::common;

use std::time::{Duration, Instant};

use common::redis::{Redis, instance};
use common::{Server, WAIT};

/// GET `path` with `headers`: the status and the body.
async fn ask(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let response = common::tls::get(&reqwest::Client::new(), &server.url(path), headers).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The value of `sse_broadcast_ready` in `/metrics`.
async fn ready_metric(server: &Server, headers: &[(&str, &str)]) -> String {
    let (_, text) = ask(server, "/metrics", headers).await;
    text.lines()
        .find_map(|line| line.strip_prefix("sse_broadcast_ready "))
        .unwrap_or_else(|| panic!("no sse_broadcast_ready in\n{text}"))
        .to_owned()
}

/// Asks `/readyz` until it answers `status`; returns the body.
async fn wait_for_readyz(server: &Server, status: u16) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (now, body) = ask(server, "/readyz", &[]).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}; last: {now} {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ready_until_max_clients_are_open() {
    let server = Server::start(&["-i", "1h", "--max-clients", "2"]);
    assert_eq!(ask(&server, "/healthz", &[]).await, (200, "ok\n".into()));
    assert_eq!(ask(&server, "/readyz", &[]).await, (200, "ready\n".into()));
    assert_eq!(ready_metric(&server, &[]).await, "1");
    let first = server.events("/events").await;
    let _second = server.events("/events").await;
    server.wait_for_consumers(2).await;
    let (status, reason) = ask(&server, "/readyz", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(reason, "not ready: --max-clients streams are open\n");
    assert_eq!(ready_metric(&server, &[]).await, "0");
    // Alive all along.
    assert_eq!(ask(&server, "/healthz", &[]).await.0, 200);
    drop(first);
    wait_for_readyz(&server, 200).await;
    assert_eq!(ready_metric(&server, &[]).await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn not_ready_while_redis_is_unreachable() {
    let mut redis = Redis::start();
    let server = instance(&redis, &[]);
    assert_eq!(ask(&server, "/readyz", &[]).await.0, 200);
    redis.kill();
    let reason = wait_for_readyz(&server, 503).await;
    assert_eq!(
        reason,
        "not ready: Redis is unreachable (--redis); reconnecting\n"
    );
    assert_eq!(ready_metric(&server, &[]).await, "0");
    assert_eq!(ask(&server, "/healthz", &[]).await.0, 200);
    redis.restart();
    assert_eq!(wait_for_readyz(&server, 200).await, "ready\n");
    assert_eq!(ready_metric(&server, &[]).await, "1");
}

#[tokio::test]
async fn probes_need_no_credentials_and_take_any_host() {
    let auth = Server::start(&["-i", "1h", "--auth", "me:secret"]);
    assert_eq!(ask(&auth, "/stats", &[]).await.0, 401);
    assert_eq!(ask(&auth, "/healthz", &[]).await.0, 200);
    assert_eq!(ask(&auth, "/readyz", &[]).await.0, 200);

    let secret = "0123456789abcdef0123456789abcdef";
    let tokens = Server::start(&["-i", "1h", "--jwt-secret", secret]);
    assert_eq!(ask(&tokens, "/metrics", &[]).await.0, 401);
    assert_eq!(ask(&tokens, "/readyz", &[]).await.0, 200);

    // A prober addresses the pod by its IP: the Host check (a loopback bind) lets probes by,
    // and nothing else.
    let pod = [("Host", "10.1.2.3:8080")];
    let guarded = Server::start(&["-i", "1h"]);
    assert_eq!(ask(&guarded, "/stats", &pod).await.0, 403);
    assert_eq!(ask(&guarded, "/healthz", &pod).await, (200, "ok\n".into()));
    assert_eq!(
        ask(&guarded, "/readyz", &pod).await,
        (200, "ready\n".into())
    );
}
