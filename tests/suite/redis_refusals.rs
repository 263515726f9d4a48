//! What Redis refuses, and how much one POST costs it, tried with `redis-cli` on a real
//! redis-server: a key of the wrong type, a stream id past what Redis can count and a full
//! `maxmemory` answer 503, are logged at error with the reason, and are shown in /stats and
//! /metrics until a command succeeds again; a POST of thousands of lines is stored in runs of
//! at most 512 lines, one script call each.

use crate::common;

use common::redis::{AUTH, Redis, instance};
use common::{Server, ids};

async fn errors_metric(server: &Server) -> f64 {
    let text = server.metrics().await;
    let line = text
        .lines()
        .find(|line| line.starts_with("sse_broadcast_redis_errors_total "))
        .unwrap_or_else(|| panic!("no errors counter in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_reported_until_redis_accepts_again() {
    let redis = Redis::start();
    let a = instance(&redis, &[]);
    for (break_it, reason) in [
        (
            vec!["SET", "sse-broadcast:{w}:stream", "not a stream"],
            "WRONGTYPE",
        ),
        (
            vec![
                "XADD",
                "sse-broadcast:{w}:stream",
                "18446744073709551614-0",
                "d",
                "x",
            ],
            "does not hold an id",
        ),
        (vec!["CONFIG", "SET", "maxmemory", "1"], "OOM"),
    ] {
        redis.cli(&["DEL", "sse-broadcast:{w}:stream"]);
        redis.cli(&break_it);
        let answer = a.post("/events/w", &[AUTH], "x".to_owned()).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        let stats = a.stats().await["redis"].clone();
        let shown = stats["error"].as_str().unwrap_or_default();
        assert!(shown.contains(reason), "{stats}");
        a.wait_for_log_where("an error-level line with the reason", |line| {
            line.contains("ERROR") && line.contains("Redis refused") && line.contains(reason)
        });
        redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
        redis.cli(&["DEL", "sse-broadcast:{w}:stream"]);
        let answer = a.post("/events/w", &[AUTH], "y".to_owned()).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(a.stats().await["redis"]["error"], serde_json::Value::Null);
    }
    assert!(errors_metric(&a).await >= 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_post_is_stored_in_runs_of_512_lines() {
    const LINES: usize = 2000;
    let redis = Redis::start();
    let a = instance(&redis, &[]);
    let mut reader = a.events("/events/long").await;
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let body: Vec<String> = (1..=LINES).map(|n| format!("line {n}")).collect();
    let answer = a.post("/events/long", &[AUTH], body.join("\n")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["first_id"], "1");
    assert_eq!(answer.json()["last_id"], LINES.to_string());
    let received = reader.take(LINES).await;
    let expected: Vec<String> = (1..=LINES).map(|n| n.to_string()).collect();
    assert_eq!(ids(&received), expected);
    // One script call per run: ceil(2000 / 512) = 4 that ran (the very first EVALSHA fails
    // with NOSCRIPT: the client then loads the script and calls again).
    let stats = redis.cli(&["INFO", "commandstats"]);
    let field = |line: &str, name: &str| -> u64 {
        let value = line.split(&format!("{name}=")).nth(1).unwrap_or("0");
        value.split(',').next().unwrap().parse().unwrap()
    };
    let calls: u64 = stats
        .lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .map(|line| field(line, "calls") - field(line, "failed_calls"))
        .sum();
    assert_eq!(calls, 4, "{stats}");
}
