//! Redis through Sentinel (`--redis redis-sentinel://...#MASTER`), on a real master, replica
//! and three Sentinels started for each test: two instances go on across a `kill -9` of the
//! master (every POST that got 200 reaches the readers on both, or they read the missed-events
//! comment; ids never go backwards; streams stay open); with passwords, none appears in any
//! output; a malformed URL, its password masked, is a usage error; no Sentinel is exit 1.

use crate::common;

use std::time::{Duration, Instant};

use common::redis::{
    AUTH, assert_bad_url_masked, delivered_or_told, instance_at, unreachable_at_start,
};
use common::sentinel::SentinelSet;
use common::{BIN, Server, WAIT};

async fn stats(server: &Server) -> serde_json::Value {
    server.stats().await["redis"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_follow_a_failover_without_a_silent_gap() {
    let mut set = SentinelSet::start(None);
    let url = set.url();
    let x = instance_at(&url, &["--keep-alive", "300ms"]);
    let y = instance_at(&url, &["--keep-alive", "300ms"]);
    assert_eq!(
        stats(&x).await["master"],
        format!("127.0.0.1:{}", set.master_port())
    );
    let mut readers = [x.raw("/events", &[]).await, y.raw("/events", &[]).await];
    let mut stored: Vec<String> = Vec::new();
    let mut post = async |server: &Server, n: usize| -> bool {
        let line = format!("event {n}");
        let answer = server.post("/events", &[AUTH], line.clone()).await;
        if answer.status == 200 {
            stored.push(line);
        }
        answer.status == 200
    };
    let mut n = 0;
    for _ in 0..50 {
        n += 1;
        assert!(post(if n % 2 == 0 { &x } else { &y }, n).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let old = set.master_port();
    set.kill_master();
    let killed = Instant::now();
    // A steady publish goes on across the failover, on both instances, until both store again.
    let (mut x_back, mut y_back) = (false, false);
    while !(x_back && y_back) {
        assert!(
            killed.elapsed() < WAIT,
            "not both back within {WAIT:?}: x {x_back}, y {y_back}"
        );
        n += 1;
        x_back |= post(&x, n).await;
        n += 1;
        y_back |= post(&y, n).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new = set.wait_for_new_master(old);
    for _ in 0..20 {
        n += 1;
        assert!(post(if n % 2 == 0 { &x } else { &y }, n).await);
    }
    for (reader, server) in readers.iter_mut().zip([&x, &y]) {
        delivered_or_told(reader, &stored).await;
        let link = stats(server).await;
        assert_eq!(link["master"], format!("127.0.0.1:{new}"), "{link}");
        assert_eq!(link["failovers"], 1, "{link}");
        assert_eq!(link["up"], true, "{link}");
    }
    eprintln!(
        "failover followed by both instances {:?} after kill -9",
        killed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_passwords_it_works_and_no_output_holds_one() {
    const PASSWORD: &str = "pw-Sentinel-7f3a";
    let set = SentinelSet::start(Some(PASSWORD));
    let url = set.url();
    assert!(url.contains(PASSWORD));
    let x = instance_at(&url, &["-vv"]);
    let mut reader = x.events("/events").await;
    let answer = x.post("/events", &[AUTH], "hello".to_owned()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(reader.next_is("hello").await.id, "1");
    let stats = x.stats().await.to_string();
    let metrics = x.metrics().await;
    assert!(
        metrics.contains(&format!(
            "sse_broadcast_redis_master{{address=\"127.0.0.1:{}\"}} 1",
            set.master_port()
        )),
        "{metrics}"
    );
    for (what, text) in [
        ("stats", &stats),
        ("metrics", &metrics),
        ("stderr", &x.stderr()),
    ] {
        assert!(!text.contains(PASSWORD), "the password in {what}: {text}");
    }
    // A wrong password: the instance does not start, and says so without the password given.
    let wrong = url.replace(PASSWORD, "wrong-pw-91c2");
    let output = std::process::Command::new(BIN)
        .args(["--redis", &wrong, "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis"), "{stderr}");
    assert!(!stderr.contains("wrong-pw-91c2"), "{stderr}");
}

#[test]
fn bad_sentinel_urls_are_usage_errors_with_the_password_masked() {
    for url in [
        "redis-sentinel://:hunter2-secret@127.0.0.1:26379",
        "redis-sentinel://:hunter2-secret@127.0.0.1:notaport#m",
    ] {
        assert_bad_url_masked(url, "redis-sentinel://…@127.0.0.1");
    }
    // Nor does --help show the URL taken from the environment.
    let output = std::process::Command::new(BIN)
        .arg("--help")
        .env("SSE_BROADCAST_REDIS", "redis://:hunter2-secret@cache:6379")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("SSE_BROADCAST_REDIS"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
}

#[test]
fn no_sentinel_reachable_at_start_exits_1_naming_the_flag() {
    let port = common::redis::free_port();
    let url = format!("redis-sentinel://127.0.0.1:{port}#themaster");
    unreachable_at_start(&url);
}
