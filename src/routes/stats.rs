//! `/stats` (JSON: the channels' figures, and the Redis link's with `--redis`) and `/metrics`
//! (the Prometheus text format, written by `metrics.rs`).

use std::sync::Arc;

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::header;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::filters::with_channels;
use super::metrics::{self, Metrics};
use crate::bus::{Bus, RedisStats};
use crate::channels::{Channels, Stats};

/// `/stats`: the channels' figures, and the Redis link's with `--redis`.
#[derive(Serialize)]
struct StatsReply {
    #[serde(flatten)]
    channels: Stats,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<RedisStats>,
}

pub fn stats(channels: Arc<Channels>, bus: Bus) -> BoxedFilter<(Response,)> {
    warp::path!("stats")
        .and(warp::get())
        .and(with_channels(channels))
        .map(move |channels: Arc<Channels>| {
            let reply = StatsReply {
                channels: channels.stats(),
                redis: bus.redis_stats(),
            };
            warp::reply::json(&reply).into_response()
        })
        .boxed()
}

pub fn metrics(metrics: Arc<Metrics>) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .map(move || {
            warp::reply::with_header(
                metrics.encode(),
                header::CONTENT_TYPE,
                metrics::CONTENT_TYPE,
            )
            .into_response()
        })
        .boxed()
}
