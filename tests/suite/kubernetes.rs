//! `contrib/kubernetes/sse-broadcast.yaml` checked without a cluster (none runs here): the
//! manifest parsed as YAML, its invariants (the grace period above preStop plus `--drain`,
//! `maxUnavailable: 0`, probe paths and ports that match the container's args, the Service on
//! that port and the pods' labels, each secret from the Secret through the environment), then
//! the real binary started with exactly the container's args and environment (only its port, and
//! the Redis address inside the Secret, changed to local ones), asked the probe paths the
//! manifest names, and stopped as the kubelet stops it: SIGTERM, the drain, exit 0 within the
//! grace period.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::redis::{Redis, free_port};
use common::{BIN, Input, Server, WAIT};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::Value;

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/kubernetes/sse-broadcast.yaml"
);

/// The manifest's documents by kind: Secret, Deployment, Service.
fn documents() -> (Value, Value, Value) {
    let text = std::fs::read_to_string(MANIFEST).unwrap();
    let mut docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .collect();
    let mut take = |kind: &str| {
        let at = docs
            .iter()
            .position(|doc| doc["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the manifest"));
        docs.remove(at)
    };
    (take("Secret"), take("Deployment"), take("Service"))
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    args.windows(2)
        .find_map(|pair| (pair[0] == flag).then_some(pair[1].as_str()))
        .unwrap_or_else(|| panic!("the container's args have no {flag}: {args:?}"))
}

/// The container's args and its environment, each variable's value read from the Secret.
fn container(secret: &Value, deployment: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<String> = serde_json::from_value(container["args"].clone()).unwrap();
    let env = container["env"].as_array().expect("env").iter().map(|var| {
        let name = var["name"].as_str().unwrap().to_owned();
        let reference = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], secret["metadata"]["name"], "{var}");
        let key = reference["key"]
            .as_str()
            .expect("each variable from the Secret");
        let value = secret["stringData"][key].as_str();
        (
            name,
            value
                .unwrap_or_else(|| panic!("no {key} in the Secret"))
                .to_owned(),
        )
    });
    (args, env.collect())
}

#[test]
fn the_manifest_holds_its_invariants() {
    let (secret, deployment, service) = documents();
    let (args, env) = container(&secret, &deployment);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    // The kubelet counts the grace period from preStop: it must cover the sleep and the drain,
    // with room for the last streams to close.
    let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let drain = humantime::parse_duration(flag(&args, "--drain")).unwrap();
    assert!(
        grace >= Duration::from_secs(pre_stop) + drain + Duration::from_secs(5),
        "grace {grace:?}, preStop {pre_stop} s, --drain {drain:?}"
    );
    // The probes ask the port the program listens on, under the paths it answers.
    let port: u64 = flag(&args, "--port").parse().unwrap();
    assert_eq!(
        flag(&args, "--bind"),
        "0.0.0.0",
        "the kubelet probes the pod's address"
    );
    let named = &container["ports"][0];
    assert_eq!(named["containerPort"], port);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert!(
            get["port"] == named["name"] || get["port"] == port,
            "{probe}: {get}"
        );
    }
    // The Service reaches those pods on that port.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let target = &service["spec"]["ports"][0]["targetPort"];
    assert!(*target == named["name"] || *target == port, "{target}");
    // Secrets only through the environment: none in the args.
    for (name, value) in &env {
        assert!(name.starts_with("SSE_BROADCAST_"), "{name}");
        assert!(
            !args.iter().any(|arg| arg.contains(value.as_str())),
            "{name} in args"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_container_serves_its_probes_and_drains_within_the_grace_period() {
    let (secret, deployment, _) = documents();
    let (mut args, env) = container(&secret, &deployment);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let redis = Redis::start();
    let local = reqwest::Url::parse(&redis.url()).unwrap();
    let at = args.iter().position(|arg| arg == "--port").unwrap() + 1;
    args[at] = free_port().to_string();
    let mut command = Command::new(BIN);
    command.args(&args);
    for (name, value) in &env {
        let mut value = value.clone();
        if name == "SSE_BROADCAST_REDIS" {
            // The cluster's Redis is this machine's: only its address changes.
            let mut url = reqwest::Url::parse(&value).unwrap();
            url.set_host(local.host_str()).unwrap();
            url.set_port(local.port()).unwrap();
            value = url.to_string();
        }
        command.env(name, value);
    }
    let mut server = Server::spawn(command, Input::Null);
    let http = reqwest::Client::new();
    let probe = |kind: &str| {
        let path = container[kind]["httpGet"]["path"].as_str().unwrap();
        let asked = http.get(server.url(path)).send();
        async move { asked.await.unwrap().status().as_u16() }
    };
    assert_eq!(probe("livenessProbe").await, 200);
    assert_eq!(probe("readinessProbe").await, 200);
    let open = |_| async {
        let mut response = http.get(server.url("/events")).send().await.unwrap();
        let first = tokio::time::timeout(WAIT, response.chunk()).await.unwrap();
        assert!(first.unwrap().unwrap().starts_with(b"retry: "));
        response
    };
    let streams = join_all((0..4).map(open)).await;
    // As the kubelet does once preStop is over: SIGTERM, and the rest of the grace period.
    let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let left = grace - Duration::from_secs(pre_stop);
    let signalled = Instant::now();
    server.terminate();
    // The signal is handled a moment after `kill` returns.
    let asked = Instant::now();
    while probe("readinessProbe").await != 503 {
        assert!(asked.elapsed() < WAIT, "readiness never turned 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(probe("livenessProbe").await, 200);
    let bodies = join_all(streams.into_iter().map(|response| async move {
        let body = tokio::time::timeout(left, response.bytes()).await;
        body.expect("ended within the grace period").unwrap()
    }))
    .await;
    for body in bodies {
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("shutting down (--drain); reconnect"),
            "{text:?}"
        );
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}\n{}", server.stderr());
    assert!(signalled.elapsed() < left, "{:?}", signalled.elapsed());
}
