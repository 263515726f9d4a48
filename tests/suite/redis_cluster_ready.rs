//! A Redis Cluster as readiness and TLS see it (DESIGN.md §16, §18), on six real redis-server
//! nodes (`common::cluster`): `/readyz` turns 503 with its one-line reason, and
//! `sse_broadcast_ready` 0, when every master is `kill -9`ed (the replicas reach no majority:
//! `cluster_state:fail`) and when every node is (none answers), and comes back to 200 once the
//! nodes are back; `rediss-cluster://` speaks TLS to every node, checked against the CA
//! `SSL_CERT_FILE` names, and refuses a cluster whose certificate nobody vouches for.

use crate::common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::redis::{instance_at, over_tls, post, refusal_of_an_unknown_certificate};
use common::{Input, Server, WAIT, data, ids};

/// `/readyz` now: its status and body.
async fn readyz(server: &Server) -> (u16, String) {
    let response = reqwest::get(server.url("/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asks `/readyz` until it answers `status`; returns the body. The cluster first has to notice
/// its own nodes' deaths (`cluster-node-timeout` 1 s), so the bound is twice the usual.
async fn wait_for_readyz(server: &Server, status: u16) -> String {
    let deadline = Instant::now() + 2 * WAIT;
    loop {
        let (now, body) = readyz(server).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}; last: {now} {body:?}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready_metric(server: &Server) -> String {
    let text = server.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix("sse_broadcast_ready "))
        .unwrap_or_else(|| panic!("no sse_broadcast_ready in\n{text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn not_ready_while_the_cluster_is_down_and_ready_again_after() {
    let mut cluster = Cluster::start(None);
    let server = instance_at(&cluster.url(), &[]);
    assert_eq!(wait_for_readyz(&server, 200).await, "ready\n");
    assert_eq!(ready_metric(&server).await, "1");

    // Every master killed: the replicas are alive but reach no majority of masters, so none
    // is promoted and each says cluster_state:fail.
    let masters: Vec<u16> = cluster
        .lines()
        .iter()
        .filter(|line| line.master && !line.slots.is_empty())
        .map(|line| line.port)
        .collect();
    assert_eq!(masters.len(), 3);
    for port in &masters {
        cluster.kill(*port);
    }
    let reason = wait_for_readyz(&server, 503).await;
    assert_eq!(reason.lines().count(), 1, "{reason:?}");
    assert!(
        reason.starts_with("not ready: ") && reason.contains("--redis"),
        "{reason:?}"
    );
    assert_eq!(ready_metric(&server).await, "0");
    assert_eq!(server.stats().await["redis"]["up"], false);
    for port in &masters {
        cluster.restart(*port);
    }
    assert_eq!(wait_for_readyz(&server, 200).await, "ready\n");
    assert_eq!(ready_metric(&server).await, "1");

    // Every node killed: none answers.
    let all = cluster.live_ports();
    for port in &all {
        cluster.kill(*port);
    }
    let reason = wait_for_readyz(&server, 503).await;
    assert_eq!(
        reason,
        "not ready: no Redis Cluster node answers (--redis); reconnecting\n"
    );
    for port in &all {
        cluster.restart(*port);
    }
    assert_eq!(wait_for_readyz(&server, 200).await, "ready\n");
    assert_eq!(server.stats().await["redis"]["up"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn rediss_cluster_speaks_tls_to_every_node() {
    let cluster = Cluster::start_tls();
    let url = cluster.url();
    assert!(url.starts_with("rediss-cluster://"), "{url}");
    let ca = cluster.tls().unwrap().ca.as_path();
    let stderr = refusal_of_an_unknown_certificate(&url);
    assert!(
        stderr.lines().count() == 1 && stderr.contains("--redis"),
        "{stderr}"
    );

    // Two instances, a channel on each master: every event crosses TLS to its master, and
    // back, sharded, to the other instance.
    let a = Server::spawn(over_tls(&url, Some(ca)), Input::Null);
    let b = Server::spawn(over_tls(&url, Some(ca)), Input::Null);
    let channels = cluster.channels_on_each_master("sse-broadcast");
    let mut readers = Vec::new();
    for channel in &channels {
        readers.push(b.events(&format!("/events/{channel}")).await);
    }
    for channel in &channels {
        post(&a, channel, &format!("{channel} over tls")).await;
    }
    for (channel, reader) in channels.iter().zip(&mut readers) {
        let got = reader.take(1).await;
        assert_eq!(ids(&got), ["1"]);
        assert_eq!(data(&got), [format!("{channel} over tls")]);
    }
    let shard_channels = cluster.shard_channels();
    assert_eq!(shard_channels.len(), channels.len(), "{shard_channels:?}");
    assert_eq!(wait_for_readyz(&b, 200).await, "ready\n");
}
