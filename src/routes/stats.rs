//! `/stats` (JSON: the channels' figures, and the Redis link's with `--redis`) and `/metrics`
//! (the Prometheus text format, written by `metrics.rs`). With tokens required, both need a
//! token that reads every channel: they name them all.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::header;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::filters::with_channels;
use super::metrics::{self, Metrics};
use crate::access::{Access, Gate, access};
use crate::bus::{Bus, RedisStats};
use crate::channels::{Channels, Stats};

/// `/stats`: the channels' figures, and the Redis link's with `--redis`.
#[derive(Serialize)]
struct StatsReply {
    #[serde(flatten)]
    channels: Stats,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<RedisStats>,
    /// With `--presence`.
    #[serde(skip_serializing_if = "Option::is_none")]
    presence: Option<PresenceStats>,
}

/// `--presence`'s figures: with `--redis`, how long an instance that died still counts.
#[derive(Serialize)]
struct PresenceStats {
    /// Seconds after its last renewal (`null` alone: the counts are this instance's, exact).
    lease_seconds: Option<u64>,
    /// How often each instance renews its lease, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    renewed_every_seconds: Option<f64>,
}

/// `presence`: `Some` with `--presence`, holding the lease with `--redis`.
pub fn stats(
    channels: Arc<Channels>,
    bus: Bus,
    gate: Arc<Gate>,
    presence: Option<Option<Duration>>,
) -> BoxedFilter<(Response,)> {
    warp::path!("stats")
        .and(warp::get())
        .and(access(gate))
        .and(with_channels(channels))
        .map(move |access: Access, channels: Arc<Channels>| {
            if let Err(refused) = access.may_read_all() {
                return refused.into_response();
            }
            let reply = StatsReply {
                channels: channels.stats(),
                redis: bus.redis_stats(),
                presence: presence.map(|lease| PresenceStats {
                    lease_seconds: lease.map(|lease| lease.as_secs()),
                    renewed_every_seconds: lease.map(|lease| lease.as_secs_f64() / 4.0),
                }),
            };
            warp::reply::json(&reply).into_response()
        })
        .boxed()
}

pub fn metrics(metrics: Arc<Metrics>, gate: Arc<Gate>) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .and(access(gate))
        .map(move |access: Access| {
            if let Err(refused) = access.may_read_all() {
                return refused.into_response();
            }
            warp::reply::with_header(
                metrics.encode(),
                header::CONTENT_TYPE,
                metrics::CONTENT_TYPE,
            )
            .into_response()
        })
        .boxed()
}
