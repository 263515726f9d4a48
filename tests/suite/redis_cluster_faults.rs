//! A Redis Cluster's own faults while events flow (DESIGN.md §18), on six real redis-server
//! nodes (`common::cluster`), three instances, a channel on each master and a reader of every
//! channel on every instance: a master `kill -9`ed (its replica promoted by the cluster) and a
//! slot moved to another master, each during a steady publish from every instance. Streams stay
//! open; every POST that got 200 reaches every reader, or (failover only: a move loses nothing)
//! the reader gets the missed-events comment; ids never go backwards; the other masters'
//! channels keep flowing; /stats counts the failover, the moved subscriptions and the commands
//! answered MOVED or ASK.

use crate::common;

use std::sync::Arc;
use std::time::Instant;

use common::cluster::Cluster;
use common::redis::{AUTH, delivered_or_told, instance_at};
use common::{RawClient, Server, WAIT};

/// Three instances, a channel on each master, a raw reader of each channel on each instance.
struct Setup {
    cluster: Arc<Cluster>,
    instances: Vec<Server>,
    channels: Vec<String>,
    readers: Vec<(usize, RawClient)>,
    /// What got 200, per channel, in order.
    stored: Vec<Vec<String>>,
    sent: usize,
}

impl Setup {
    async fn start() -> Setup {
        let cluster = Arc::new(Cluster::start(None));
        let url = cluster.url();
        let instances: Vec<Server> = (0..3).map(|_| instance_at(&url, &[])).collect();
        let channels = cluster.channels_on_each_master("sse-broadcast");
        let mut readers = Vec::new();
        for server in &instances {
            for (index, channel) in channels.iter().enumerate() {
                readers.push((index, server.raw(&format!("/events/{channel}"), &[]).await));
            }
        }
        Setup {
            cluster,
            instances,
            stored: vec![Vec::new(); channels.len()],
            channels,
            readers,
            sent: 0,
        }
    }

    /// One POST to `channel` (by index) from the next instance in turn; true on 200.
    async fn post(&mut self, channel: usize) -> bool {
        self.sent += 1;
        let server = &self.instances[self.sent % self.instances.len()];
        let line = format!("{} event {}", self.channels[channel], self.sent);
        let path = format!("/events/{}", self.channels[channel]);
        let answer = server.post(&path, &[AUTH], line.clone()).await;
        if answer.status == 200 {
            self.stored[channel].push(line);
        } else {
            assert_eq!(answer.status, 503, "{answer:?}");
        }
        answer.status == 200
    }

    /// Every reader reads up to its channel's last stored event; returns whether any reader
    /// was told of lost events. Fails on ids going backwards, or a stored event neither
    /// delivered nor told.
    async fn check_readers(&mut self) -> bool {
        let mut told_any = false;
        for (channel, reader) in &mut self.readers {
            let stored = &self.stored[*channel];
            let told = delivered_or_told(reader, stored).await;
            told_any |= told;
        }
        told_any
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_master_killed_during_a_steady_publish() {
    let mut setup = Setup::start().await;
    for _ in 0..10 {
        for channel in 0..3 {
            assert!(setup.post(channel).await);
        }
    }
    let slot = setup
        .cluster
        .slot_of(&format!("sse-broadcast:{{{}}}:seq", setup.channels[0]));
    let old = setup.cluster.master_of_slot(slot).unwrap();
    Arc::get_mut(&mut setup.cluster).unwrap().kill(old);
    let killed = Instant::now();
    // Every instance goes on publishing to every channel until the dead master's channel is
    // stored again through each instance; the other channels keep flowing meanwhile.
    let mut back = [false; 3];
    let mut others_while_down = 0;
    while !back.iter().all(|back| *back) {
        assert!(
            killed.elapsed() < 2 * WAIT,
            "not back within {:?}",
            2 * WAIT
        );
        let through = setup.sent % 3 + 1;
        let stored = setup.post(0).await;
        back[through % 3] |= stored;
        if !back.iter().any(|back| *back) {
            for channel in 1..3 {
                if setup.post(channel).await {
                    others_while_down += 1;
                }
            }
        }
    }
    assert!(
        others_while_down > 0,
        "the other masters' channels stopped too"
    );
    let new = setup.cluster.wait_for_new_master(slot, old);
    assert_ne!(new, old);
    for _ in 0..5 {
        for channel in 0..3 {
            assert!(setup.post(channel).await);
        }
    }
    setup.check_readers().await;
    wait_for_count(&setup.instances, "failovers", 1).await;
    for server in &setup.instances {
        let stats = server.stats().await;
        let redis = &stats["redis"];
        assert_eq!(redis["up"], true, "{stats}");
        let nodes = redis["nodes"].to_string();
        assert!(!nodes.contains(&format!(":{old}\"")), "{nodes}");
        assert!(
            nodes.contains(&format!(":{new}\",\"role\":\"master")),
            "{nodes}"
        );
    }
    eprintln!("a master's death followed in {:?}", killed.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_moved_during_a_steady_publish() {
    let mut setup = Setup::start().await;
    for channel in 0..3 {
        assert!(setup.post(channel).await);
    }
    let slot = setup
        .cluster
        .slot_of(&format!("sse-broadcast:{{{}}}:seq", setup.channels[0]));
    let to = setup
        .cluster
        .master_of_slot(
            setup
                .cluster
                .slot_of(&format!("sse-broadcast:{{{}}}:seq", setup.channels[1])),
        )
        .unwrap();
    // The move runs beside a steady publish to every channel from every instance.
    let cluster = setup.cluster.clone();
    let moving = tokio::task::spawn_blocking(move || cluster.move_slot(slot, to));
    while !moving.is_finished() {
        for channel in 0..3 {
            setup.post(channel).await;
        }
    }
    moving.await.unwrap();
    for _ in 0..10 {
        for channel in 0..3 {
            assert!(setup.post(channel).await);
        }
    }
    let told = setup.check_readers().await;
    assert!(!told, "a slot move loses nothing: no missed-events comment");
    wait_for_count(&setup.instances, "redirections", 1).await;
    // Commands sent to the old owner after the move (a POST, a catch-up) were answered MOVED
    // (or ASK during it), followed, and counted.
    let mut command_redirections = 0;
    for server in &setup.instances {
        let stats = server.stats().await;
        command_redirections += stats["redis"]["command_redirections"].as_u64().unwrap();
        let metrics = server.metrics().await;
        assert!(
            metrics.contains("sse_broadcast_redis_command_redirections_total "),
            "{metrics}"
        );
    }
    assert!(command_redirections >= 1, "no MOVED or ASK counted");
    // Every instance subscribed again, on the slot's new owner, and nowhere else.
    let shard = format!("sse-broadcast:{{{}}}:events", setup.channels[0]);
    setup
        .cluster
        .wait_until("every instance subscribes on the new owner", |cluster| {
            let count = cluster.cli(to, &["PUBSUB", "SHARDNUMSUB", &shard]);
            count.lines().nth(1) == Some("3")
        });
    let from_others: Vec<String> = setup
        .cluster
        .live_ports()
        .into_iter()
        .filter(|port| *port != to)
        .map(|port| setup.cluster.cli(port, &["PUBSUB", "SHARDNUMSUB", &shard]))
        .filter(|count| count.lines().nth(1) != Some("0"))
        .collect();
    assert!(from_others.is_empty(), "{from_others:?}");
}

/// Waits until every instance's /stats counts `key` at least `count` times.
async fn wait_for_count(instances: &[Server], key: &str, count: u64) {
    let deadline = Instant::now() + WAIT;
    for server in instances {
        loop {
            let stats = server.stats().await;
            if stats["redis"][key].as_u64().unwrap_or(0) >= count {
                break;
            }
            assert!(Instant::now() < deadline, "{key} not counted: {stats}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
