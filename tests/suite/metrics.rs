//! `/metrics` on the real binary, read by a Prometheus text-format parser (prometheus-parse):
//! the names of DESIGN §6 with the values that known activity must have produced.

use crate::common;

use common::Server;
use prometheus_parse::{Sample, Scrape, Value};

async fn scrape(server: &Server) -> Vec<Sample> {
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    Scrape::parse(lines)
        .expect("Prometheus text format")
        .samples
}

/// The value of `metric` with `label` (if any), as its declared type.
fn value(samples: &[Sample], metric: &str, label: Option<(&str, &str)>) -> (f64, &'static str) {
    let sample = samples
        .iter()
        .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no {metric} {label:?} in {samples:#?}"));
    match sample.value {
        Value::Counter(v) => (v, "counter"),
        Value::Gauge(v) => (v, "gauge"),
        _ => panic!("{metric} is neither a counter nor a gauge: {sample:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_happened() {
    let server = Server::start(&["-i", "1h", "--publish-token", "t", "--max-clients", "3"]);
    let before = scrape(&server).await;
    assert_eq!(
        value(&before, "sse_broadcast_channels", None),
        (0.0, "gauge")
    );
    assert_eq!(
        value(
            &before,
            "sse_broadcast_consumers",
            Some(("channel", "default"))
        ),
        (0.0, "gauge")
    );

    let _build = [
        server.events("/events/build").await,
        server.events("/events/build").await,
    ];
    let _default = server.events("/events").await;
    server.wait_for_consumers(3).await;
    assert_eq!(
        reqwest::get(server.url("/events")).await.unwrap().status(),
        503
    );
    let auth = [("Authorization", "Bearer t")];
    assert_eq!(
        server.post("/events/build", &auth, "a\nb\nc").await.status,
        200
    );
    assert_eq!(server.post("/events", &auth, "d").await.status, 200);
    assert_eq!(server.post("/events", &[], "no").await.status, 401);
    assert_eq!(server.post("/events", &auth, "").await.status, 400);

    let samples = scrape(&server).await;
    let build = Some(("channel", "build"));
    let default = Some(("channel", "default"));
    assert_eq!(
        value(&samples, "sse_broadcast_consumers", build),
        (2.0, "gauge")
    );
    assert_eq!(
        value(&samples, "sse_broadcast_consumers", default),
        (1.0, "gauge")
    );
    assert_eq!(
        value(&samples, "sse_broadcast_events_total", build),
        (3.0, "counter")
    );
    assert_eq!(
        value(&samples, "sse_broadcast_events_total", default),
        (1.0, "counter")
    );
    assert_eq!(
        value(&samples, "sse_broadcast_channels", None),
        (1.0, "gauge")
    );
    assert_eq!(
        value(&samples, "sse_broadcast_requests_refused_total", None),
        (1.0, "counter")
    );
    assert_eq!(
        value(
            &samples,
            "sse_broadcast_clients_dropped_stalled_total",
            None
        ),
        (0.0, "counter")
    );
    for (code, count) in [("200", 2.0), ("401", 1.0), ("400", 1.0)] {
        assert_eq!(
            value(
                &samples,
                "sse_broadcast_publish_requests_total",
                Some(("code", code))
            ),
            (count, "counter"),
            "code {code}"
        );
    }
    let version = Some(("version", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        value(&samples, "sse_broadcast_build_info", version),
        (1.0, "gauge")
    );
}
