//! The event streams: `GET <events-path>[/<channel>]` (and `/<a>,<b>,...`, several channels on
//! one stream: `multi_stream.rs`), replay from `Last-Event-ID` (header or
//! `?lastEventId=`), the stream's headers, and the reconnection delay spread per client. With
//! tokens required, the channel must be public or allowed by the request's token (`access/gate/`),
//! checked before the channel is created, and the stream ends when the token expires, at its
//! age (`--max-stream-age`) or at its place in a drain (`--drain`), whichever comes first. The
//! body forwards the channel's bytes (`stream/one.rs`); refusals are answered by `refusal.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::HeaderValue;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::filters::{stream_channels, with_channels};
use super::multi_stream;
use super::refusal::{Asker, accepts_event_stream, refuse, unanswered};
use super::sse_reply;
use crate::access::{Access, Denied, Gate, access};
use crate::bus::Bus;
use crate::channel::Channel;
use crate::channels::{ChannelName, Channels, Role};
use crate::control::{Client, Control};
use crate::event;
use crate::presence::{Presence, Present};
use crate::raw_header::optional_header;
use crate::serve_config::ServeConfig;
use crate::stream::{Deadline, age_limit, client_stream, spread, token_deadline};

/// `?lastEventId=K`, for clients that can't set the `Last-Event-ID` header.
#[derive(Debug, Deserialize)]
struct ReplayQuery {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

pub fn route(
    channels: Arc<Channels>,
    bus: Bus,
    config: &ServeConfig,
    gate: Arc<Gate>,
    presence: Option<Arc<Presence>>,
) -> BoxedFilter<(Response,)> {
    let retry = config.retry;
    let max_age = config.max_stream_age;
    stream_channels(config.events_path.clone())
        .and(warp::get())
        .and(access(gate))
        .and(optional_header("last-event-id"))
        .and(optional_header("accept"))
        .and(warp::query::<ReplayQuery>())
        .and(warp::ext::optional::<Arc<Client>>())
        .and(with_channels(channels))
        .then(
            move |names: Vec<ChannelName>,
                  access: Access,
                  header: Option<HeaderValue>,
                  accept: Option<HeaderValue>,
                  query: ReplayQuery,
                  connection: Option<Arc<Client>>,
                  channels: Arc<Channels>| {
                let bus = bus.clone();
                let presence = presence.clone();
                async move {
                    let event_source = accepts_event_stream(accept.as_ref());
                    let (names, grant) = match access.may_read(names).await {
                        Ok(allowed) => allowed,
                        Err(Denied::Refused(refused)) => return refused.into_response(),
                        Err(Denied::Unanswered) => return unanswered(event_source),
                    };
                    let mut deadline = token_deadline(grant.as_ref());
                    // Who reads is looked up only when someone asked (a token may be verified
                    // a second time on a public channel).
                    let present = presence.map(|presence| Present {
                        user: access.reader(grant.as_ref()),
                        presence,
                    });
                    if let Some(age) = max_age {
                        age_limit(&mut deadline, age, retry);
                    }
                    if let Some(drain) = channels.control().drain() {
                        deadline.in_drain(drain.clone());
                    }
                    // The header wins: a reconnecting EventSource sends the id it last saw
                    // there, while the query still holds what the page first asked for.
                    let header =
                        header.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
                    let last_event_id = header.or(query.last_event_id);
                    let asker = Asker {
                        event_source,
                        connection,
                        client: access.peer(),
                        present,
                    };
                    let [name] = &names[..] else {
                        let last_event_id = last_event_id.as_deref();
                        // Boxed: its state is large, and inline it would enlarge every
                        // single-channel request's routing too.
                        return Box::pin(multi_stream::open(
                            &channels,
                            &bus,
                            names,
                            last_event_id,
                            retry,
                            deadline,
                            asker,
                        ))
                        .await;
                    };
                    match channels.get_or_create(name, Role::Reader) {
                        Ok(channel) => {
                            // With --redis: what another instance published is here first.
                            bus.catch_up(&channel, last_event_id.as_deref()).await;
                            open_stream(
                                channel,
                                channels.control(),
                                last_event_id.as_deref(),
                                retry,
                                deadline,
                                asker,
                            )
                            .await
                        }
                        Err(refusal) => refuse(refusal, asker.peer(), asker.event_source),
                    }
                }
            },
        )
        .boxed()
}

async fn open_stream(
    channel: Arc<Channel>,
    control: &Arc<Control>,
    last_event_id: Option<&str>,
    retry: Option<Duration>,
    deadline: Deadline,
    mut asker: Asker,
) -> Response {
    // The client's place first: a subscription has effects (`--wait-clients` counts it).
    let opened = asker
        .open_peer_stream(control)
        .and_then(|peer| Ok((peer, channel.subscribe(last_event_id)?)));
    let subscription = match opened {
        Ok((peer, mut subscription)) => {
            subscription.slot.hold(peer);
            if let Some(present) = asker.present.take() {
                // After its place in the channel: the stream reads its own join.
                let seat = present
                    .presence
                    .enter(vec![channel.clone()], present.user)
                    .await;
                subscription.slot.seat(seat);
            }
            subscription
        }
        Err(refusal) => return refuse(refusal, asker.peer(), asker.event_source),
    };
    tracing::debug!(
        peer = asker.peer(),
        channel = channel.name(),
        last_event_id,
        "stream opened"
    );
    let prelude = retry.map(|base| event::retry(spread(base)));
    let mut response = warp::reply::stream(client_stream(
        channel,
        subscription,
        prelude,
        deadline,
        asker.connection,
    ))
    .into_response();
    sse_reply::set_headers(response.headers_mut());
    response
}
