//! The event streams: `GET <events-path>[/<channel>]`, replay from `Last-Event-ID` (header or
//! `?lastEventId=`), the stream's headers, and the reconnection delay spread per client. The
//! body forwards the channel's bytes (`stream.rs`); refusals are answered by `refusal.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::ServeConfig;
use super::filters::{channel_path, optional_header, with_channels};
use super::refusal::refuse;
use super::stream::client_stream;
use crate::bus::Bus;
use crate::channel::Channel;
use crate::channels::{ChannelName, Channels};
use crate::control::Client;
use crate::event;

/// `?lastEventId=K`, for clients that can't set the `Last-Event-ID` header.
#[derive(Debug, Deserialize)]
struct ReplayQuery {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

pub fn route(channels: Arc<Channels>, bus: Bus, config: &ServeConfig) -> BoxedFilter<(Response,)> {
    let retry = config.retry;
    channel_path(config.events_path.clone())
        .and(warp::get())
        .and(optional_header("last-event-id"))
        .and(warp::query::<ReplayQuery>())
        .and(warp::ext::optional::<Arc<Client>>())
        .and(with_channels(channels))
        .then(
            move |name: ChannelName,
                  header: Option<HeaderValue>,
                  query: ReplayQuery,
                  connection: Option<Arc<Client>>,
                  channels: Arc<Channels>| {
                let bus = bus.clone();
                async move {
                    // The header wins: a reconnecting EventSource sends the id it last saw
                    // there, while the query still holds what the page first asked for.
                    let header =
                        header.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
                    let last_event_id = header.or(query.last_event_id);
                    let peer = connection.as_ref().map(|c| c.peer.to_string());
                    match channels.get_or_create(&name) {
                        Ok(channel) => {
                            // With --redis: what another instance published is here first.
                            bus.catch_up(&channel).await;
                            open_stream(channel, last_event_id.as_deref(), retry, connection)
                        }
                        Err(refusal) => refuse(refusal, peer),
                    }
                }
            },
        )
        .boxed()
}

fn open_stream(
    channel: Arc<Channel>,
    last_event_id: Option<&str>,
    retry: Option<Duration>,
    connection: Option<Arc<Client>>,
) -> Response {
    let peer = connection.as_ref().map(|c| c.peer.to_string());
    let subscription = match channel.subscribe(last_event_id) {
        Ok(subscription) => subscription,
        Err(refusal) => return refuse(refusal, peer),
    };
    tracing::debug!(
        peer,
        channel = channel.name(),
        last_event_id,
        "stream opened"
    );
    let prelude = retry.map(|base| event::retry(spread(base)));
    let mut response =
        warp::reply::stream(client_stream(channel, subscription, prelude, connection))
            .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers proxied responses unless told not to, which would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A delay in [base, 1.5 base], drawn per client so a restart's reconnects don't all arrive at once.
fn spread(base: Duration) -> Duration {
    base.mul_f64(1.0 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_spread_stays_within_one_and_a_half() {
        let base = Duration::from_millis(1000);
        for _ in 0..1000 {
            let delay = spread(base);
            assert!(delay >= base && delay <= base.mul_f64(1.5), "{delay:?}");
        }
    }
}
