//! Redis Cluster (`--redis redis-cluster://...`, DESIGN.md §18) on six real redis-server nodes
//! (3 masters, 3 replicas, `common::cluster`), with channels on every master: three instances
//! deliver every event with the same ids, over sharded Pub/Sub (seen on the nodes with `PUBSUB
//! SHARDCHANNELS`; no classic channel); a multi-channel cursor means the same on every
//! instance; a channel nobody reads any more is unsubscribed; the password shows nowhere; bad
//! URLs are usage errors without the password; and the Cluster recipe of `docs/scale-out.md`
//! runs as written (`common::recipe`).

use crate::common;

use std::net::TcpListener;

use common::cluster::Cluster;
use common::recipe::{Recipe, Script};
use common::redis::{assert_bad_url_masked, free_port, instance_at, post, unreachable_at_start};
use common::{Client, data, ids};

const PASSWORD: &str = "cluster-pw-5e1d";

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_deliver_the_same_ids_over_sharded_pubsub() {
    let cluster = Cluster::start(Some(PASSWORD));
    let url = cluster.url();
    let instances = [
        instance_at(&url, &[]),
        instance_at(&url, &[]),
        instance_at(&url, &[]),
    ];
    let channels = cluster.channels_on_each_master("sse-broadcast");
    let mut readers = Vec::new();
    for server in &instances {
        for channel in &channels {
            readers.push((channel, server.events(&format!("/events/{channel}")).await));
        }
    }
    // Each instance subscribed to each channel, sharded, on the channel's master.
    let mut shard_channels: Vec<String> = channels
        .iter()
        .map(|channel| format!("sse-broadcast:{{{channel}}}:events"))
        .collect();
    shard_channels.sort();
    assert_eq!(cluster.shard_channels(), shard_channels);
    for channel in &shard_channels {
        let slot = cluster.slot_of(channel);
        let master = cluster.master_of_slot(slot).unwrap();
        let count = cluster.cli(master, &["PUBSUB", "SHARDNUMSUB", channel]);
        assert_eq!(count.lines().nth(1), Some("3"), "{channel}: {count}");
    }
    assert!(cluster.classic_channels().is_empty());

    // Every instance publishes to every channel.
    for round in 0..4 {
        for (index, server) in instances.iter().enumerate() {
            for channel in &channels {
                post(server, channel, &format!("{channel} {round} from {index}")).await;
            }
        }
    }
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for (channel, reader) in &mut readers {
        let got = reader.take(12).await;
        let expected: Vec<String> = (1..=12).map(|id| id.to_string()).collect();
        assert_eq!(ids(&got), expected, "{channel}");
        seen.push((channel.to_string(), data(&got)));
    }
    for (channel, got) in &seen {
        let first = seen.iter().find(|(name, _)| name == channel).unwrap();
        assert_eq!(
            got, &first.1,
            "every instance saw {channel}'s events in one order"
        );
    }

    // Keys stay under the prefix, each channel's on its own master.
    for (channel, port) in channels.iter().zip(
        channels
            .iter()
            .map(|channel| cluster.master_of_slot(cluster.slot_of(channel)).unwrap()),
    ) {
        let keys = cluster.cli(port, &["KEYS", &format!("sse-broadcast:{{{channel}}}:*")]);
        assert!(
            keys.contains(&format!("sse-broadcast:{{{channel}}}:stream")),
            "{keys}"
        );
    }
    for server in &instances {
        let stats = server.stats().await;
        let nodes = stats["redis"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let masters = nodes.iter().filter(|node| node["role"] == "master").count();
        assert_eq!((nodes.len(), masters), (6, 3), "{stats}");
        let metrics = server.metrics().await;
        assert!(
            metrics.contains("redis_master{address=\"127.0.0.1:"),
            "{metrics}"
        );
        for text in [stats.to_string(), metrics, server.stderr()] {
            assert!(!text.contains(PASSWORD), "the password shown: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_over_channels_on_different_masters_resumes_on_another_instance() {
    let cluster = Cluster::start(None);
    let url = cluster.url();
    let [one, two, three] = [
        instance_at(&url, &[]),
        instance_at(&url, &[]),
        instance_at(&url, &[]),
    ];
    let channels = cluster.channels_on_each_master("sse-broadcast");
    let [a, b, c] = [&channels[0], &channels[1], &channels[2]];
    let path = format!("/events/{a},{b},{c}");
    post(&three, a, "a1").await;
    let mut stream = one.events(&format!("{path}?lastEventId=earliest")).await;
    assert_eq!(stream.next_is("a1").await.id, format!("{a}:1,{b}:0,{c}:0"));
    post(&two, b, "b1").await;
    let last = stream.next_is("b1").await.id;
    assert_eq!(last, format!("{b}:1,{a}:1,{c}:0"));
    drop(stream);

    // Away; every instance publishes on every master; back on instance two.
    post(&three, c, "c1").await;
    post(&one, a, "a2").await;
    post(&two, b, "b2").await;
    let mut stream = two.events_with(&path, &[("last-event-id", &last)]).await;
    let mut got = data(&stream.take(3).await);
    got.sort();
    assert_eq!(got, ["a2", "b2", "c1"], "neither a duplicate nor a gap");
    post(&one, c, "c2").await;
    let last = stream.next_is("c2").await.id;
    assert!(last.starts_with(&format!("{c}:2,")), "{last}");
    drop(stream);

    // On to instance three, which never served this stream.
    post(&two, a, "a3").await;
    let mut stream = three.events_with(&path, &[("last-event-id", &last)]).await;
    assert_eq!(stream.next_is("a3").await.id, format!("{a}:3,{b}:2,{c}:2"));
    post(&one, b, "b3").await;
    assert_eq!(stream.next_is("b3").await.id, format!("{b}:3,{a}:3,{c}:2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_nobody_reads_any_more_is_unsubscribed_and_followed_again_when_read() {
    let cluster = Cluster::start(None);
    let x = instance_at(&cluster.url(), &["--keep-alive", "300ms"]);
    let shard = "sse-broadcast:{passing}:events".to_owned();
    let reader = x.events("/events/passing").await;
    assert_eq!(cluster.shard_channels(), std::slice::from_ref(&shard));
    // Its last reader gone, the channel (it never got an event) leaves the registry at the
    // next heartbeat, and its subscription goes with it.
    drop(reader);
    cluster.wait_until("the channel is unsubscribed", |cluster| {
        cluster.shard_channels().is_empty()
    });
    let mut reader = x.events("/events/passing").await;
    assert_eq!(cluster.shard_channels(), [shard]);
    let y = instance_at(&cluster.url(), &[]);
    post(&y, "passing", "back").await;
    assert_eq!(reader.next_is("back").await.id, "1");
}

#[test]
fn bad_cluster_urls_are_usage_errors_with_the_password_masked() {
    for url in [
        "redis-cluster://:hunter2-secret@127.0.0.1:notaport",
        "redis-cluster://:hunter2-secret@127.0.0.1:7000/3",
        "rediss-cluster://:hunter2-secret@127.0.0.1:7000,",
    ] {
        assert_bad_url_masked(url, "-cluster://…@127.0.0.1");
    }
}

#[test]
fn no_cluster_node_reachable_at_start_exits_1_naming_the_flag() {
    let port = common::redis::free_port();
    let url = format!("redis-cluster://:hunter2-secret@127.0.0.1:{port}");
    let stderr = unreachable_at_start(&url);
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A free port whose cluster bus port (+10000, as the recipe leaves it) is free too.
fn node_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_recipe_runs_as_written() {
    let mut nodes: Vec<u16> = Vec::new();
    while nodes.len() < 6 {
        let port = node_port();
        if !nodes
            .iter()
            .any(|n| n.abs_diff(port) == 10_000 || *n == port)
        {
            nodes.push(port);
        }
    }
    let instances = [free_port(), free_port(), free_port()];
    let mut recipe = Recipe::containing("docs/scale-out.md", "sh", "--cluster create");
    for (from, to) in (7001..).zip(&nodes) {
        recipe = recipe.port(from, *to);
    }
    for (from, to) in (8081..).zip(instances) {
        recipe = recipe.port(from, to);
    }
    let mut script = Script::start(&recipe, &[]);
    for port in instances {
        script.wait_for_port(port);
    }
    let urls: Vec<String> = instances
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}/events/deploys"))
        .collect();
    let mut readers = Vec::new();
    for url in &urls {
        let reader = Client::connect(url, &[]).await;
        assert_eq!(reader.status, 200, "{}", script.log());
        readers.push(reader);
    }
    let answer = reqwest::Client::new()
        .post(&urls[1])
        .bearer_auth("s3cret")
        .body("v2 is out")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", script.log());
    for reader in &mut readers {
        let event = reader.next_is("v2 is out").await;
        assert_eq!(event.id, "1");
    }
    // Sharded Pub/Sub on the channel's master, one subscription per instance.
    let cli = |port: u16, args: &[&str]| {
        let output = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--no-auth-warning", "-a", "s3cret"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let counts: Vec<String> = nodes
        .iter()
        .map(|port| {
            cli(
                *port,
                &["PUBSUB", "SHARDNUMSUB", "sse-broadcast:{deploys}:events"],
            )
        })
        .collect();
    assert!(
        counts.iter().any(|count| count.ends_with("\n3\n")),
        "{counts:?}"
    );
}
