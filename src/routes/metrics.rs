//! `/metrics` in the Prometheus text format, written by the `prometheus-client` crate. Channel
//! figures are read from the registry at each scrape (a reclaimed channel leaves no stale
//! series), labelled only once a channel holds events; the publish route's answers are
//! counted here as they happen.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::probes::Readiness;
use crate::access::Gate;
use crate::bus::Bus;
use crate::channel::DEFAULT_NAME;
use crate::channels::Channels;

/// The `Content-Type` of the exposition.
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every series is named `sse_broadcast_…`.
const PREFIX: &str = "sse_broadcast";

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// POST answers by status code.
    publish_requests: Family<[(&'static str, String); 1], Counter>,
}

impl Metrics {
    pub fn new(channels: Arc<Channels>, bus: &Bus, readiness: Arc<Readiness>, gate: &Gate) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let publish_requests = Family::default();
        registry.register(
            "publish_requests",
            "POST publish requests answered, by HTTP status code",
            publish_requests.clone(),
        );
        registry.register_collector(Box::new(Live {
            channels,
            readiness,
        }));
        if let Bus::Redis(redis) = bus {
            redis.register_metrics(&mut registry);
        }
        gate.register_metrics(&mut registry);
        Metrics {
            registry,
            publish_requests,
        }
    }

    /// Counts one answer of the publish route.
    pub fn count_publish(&self, code: u16) {
        self.publish_requests
            .get_or_create(&[("code", code.to_string())])
            .inc();
    }

    /// The exposition as of now.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// The figures read at scrape time: per-channel gauges and counters, and the control's counters.
#[derive(Debug)]
struct Live {
    channels: Arc<Channels>,
    readiness: Arc<Readiness>,
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.channels.all();
        // Labels only for channels that received events (and the default one): anyone may
        // open a stream on a made-up name, and each would be a series the scraper keeps. The
        // count of channels alive below still counts every one.
        let channels: Vec<_> = all
            .iter()
            .map(|channel| (channel.name().to_owned(), channel.stats()))
            .filter(|(name, stats)| name == DEFAULT_NAME || stats.events_sent > 0)
            .collect();

        let consumers = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "consumers",
            "Streams open, by channel",
            None,
            consumers.metric_type(),
        )?;
        for (name, stats) in &channels {
            let gauge = ConstGauge::new(i64::try_from(stats.consumers).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&[("channel", name.as_str())])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "events",
            "Events sent, by channel (a reclaimed channel starts again at 0)",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (name, stats) in &channels {
            let counter = ConstCounter::new(stats.events_sent);
            counter.encode(family.encode_family(&[("channel", name.as_str())])?)?;
        }

        let named = i64::try_from(all.len() - 1).unwrap_or(i64::MAX);
        let gauge = ConstGauge::new(named);
        gauge.encode(encoder.encode_descriptor(
            "channels",
            "Named channels alive (the default one not counted)",
            None,
            gauge.metric_type(),
        )?)?;
        let slots = ConstGauge::new(i64::try_from(self.channels.slots()).unwrap_or(i64::MAX));
        slots.encode(encoder.encode_descriptor(
            "channel_slots",
            "Named channels that hold events or that a publisher asked for (--max-channels bounds them)",
            None,
            slots.metric_type(),
        )?)?;

        let control = self.channels.control();
        for (name, help, value) in [
            (
                "clients_dropped_stalled",
                "Clients disconnected for holding input back past --stall-timeout",
                control.clients_dropped_stalled(),
            ),
            (
                "requests_refused",
                "Streams refused for --max-clients",
                control.requests_refused(),
            ),
            (
                "publishes_refused",
                "Publishes (a POST, a stdin line) refused: no channel slot free (--max-channels)",
                control.publishes_refused(),
            ),
            (
                "connection_panics",
                "Connections (or HTTP/2 streams) ended by a panic in their task; the server went on",
                crate::panics::connection_panics(),
            ),
            (
                "log_lines_dropped",
                "Log lines dropped because stderr was not read as fast as they came",
                crate::logging::lines_dropped(),
            ),
            (
                "connections_refused",
                "Connections closed at once for --max-connections",
                control.connections_refused(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }

        let ready = ConstGauge::new(i64::from(self.readiness.not_ready().is_none()));
        ready.encode(encoder.encode_descriptor(
            "ready",
            "Whether /readyz answers 200 (1) or 503 (0): new streams are taken",
            None,
            ready.metric_type(),
        )?)?;

        let info = ConstGauge::new(1i64);
        let mut family = encoder.encode_descriptor(
            "build_info",
            "Always 1; the version is in the label",
            None,
            info.metric_type(),
        )?;
        info.encode(family.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Role;

    #[tokio::test]
    async fn names_and_labels_follow_the_contract() {
        let channels = super::super::tests::test_channels();
        let open = |name: &str, role| channels.get_or_create(&name.parse().unwrap(), role);
        let build = open("build", Role::Publisher).unwrap();
        build
            .publish(|_| crate::event::Event::new("x"))
            .await
            .unwrap();
        // Read, but no event yet: counted, not labelled.
        let _reader = open("made-up", Role::Reader).unwrap().subscribe(None);
        let readiness = Readiness::new(channels.control().clone(), Bus::Local);
        let gate = crate::access::Gate::new(None, Arc::default(), None);
        let metrics = Metrics::new(channels, &Bus::Local, Arc::new(readiness), &gate);
        metrics.count_publish(200);
        let text = metrics.encode();
        for line in [
            "# TYPE sse_broadcast_events_total counter",
            "sse_broadcast_events_total{channel=\"build\"} 1",
            "sse_broadcast_events_total{channel=\"default\"} 0",
            "sse_broadcast_consumers{channel=\"default\"} 0",
            "sse_broadcast_channels 2",
            "sse_broadcast_channel_slots 1",
            "sse_broadcast_publishes_refused_total 0",
            "sse_broadcast_publish_requests_total{code=\"200\"} 1",
            "sse_broadcast_clients_dropped_stalled_total 0",
            "sse_broadcast_requests_refused_total 0",
            "sse_broadcast_log_lines_dropped_total 0",
            "sse_broadcast_connection_panics_total 0",
            "sse_broadcast_connections_refused_total 0",
            "sse_broadcast_ready 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("made-up"), "{text}");
        assert!(
            text.contains("sse_broadcast_build_info{version=\""),
            "{text}"
        );
    }
}
