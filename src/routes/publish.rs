//! `POST <events-path>[/<channel>]`: publishing over HTTP, with `--publish-token` or a token
//! whose `publish` claim allows the channel (`access/gate/` decides). The body's lines become
//! events exactly as stdin lines do (text, or JSON lines as `-f json`), all or nothing; the
//! request waits for room as stdin does, and answers with the ids it got.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::filters::{channel_path, with_channels};
use super::metrics::Metrics;
use super::refusal::{reason, unanswered, unavailable};
use crate::access::{Access, Denied, Gate, Guesses, Penalty, access, forbidden, too_many};
use crate::bus::{Bus, NotSent};
use crate::channels::{ChannelName, Channels, Role};
use crate::control::Refusal;
use crate::event::{Event, EventName};
use crate::lines::{Format, LineDecoder, Routed};
use crate::raw_header::optional_header;
use crate::refused::Refused;
use crate::serve_config::PublishConfig;

/// `?event=NAME`: the event type of the body's events (JSON lines may name their own).
#[derive(Debug, Deserialize)]
struct PublishQuery {
    event: Option<String>,
}

/// The answer to a successful POST.
#[derive(Debug, Serialize)]
struct Published {
    channel: String,
    events: usize,
    /// Strings, as `/stats` and the streams give ids: a number past 2^53 would lose digits in
    /// JavaScript, and a line's own id may be any text.
    first_id: String,
    last_id: String,
    /// Streams the last event was queued for.
    consumers: usize,
}

pub fn route(
    channels: Arc<Channels>,
    bus: Bus,
    config: Option<PublishConfig>,
    events_path: &str,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    guesses: Arc<Guesses>,
) -> BoxedFilter<(Response,)> {
    let config = Arc::new(config);
    channel_path(events_path.to_owned())
        .and(warp::post())
        .and(access(gate))
        .and(optional_header("content-type"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::query::<PublishQuery>())
        .and(warp::body::stream())
        .and(with_channels(channels))
        .then(
            move |name: ChannelName,
                  access: Access,
                  content_type: Option<HeaderValue>,
                  length: Option<u64>,
                  query: PublishQuery,
                  body,
                  channels: Arc<Channels>| {
                let config = config.clone();
                let metrics = metrics.clone();
                let guesses = guesses.clone();
                let bus = bus.clone();
                async move {
                    let request = Request {
                        name,
                        content_type,
                        length,
                        event: query.event,
                    };
                    let admitted = admit(config.as_ref().as_ref(), &access, &request.name).await;
                    let response = match admitted {
                        Err(Denied::Unanswered) => unanswered(false),
                        Err(Denied::Refused(refused)) => slowed(refused, &access, &guesses).await,
                        Ok(config) => match publish(config, &channels, &bus, request, body).await {
                            Ok(published) => warp::reply::json(&published).into_response(),
                            Err(refused) => refused.into_response(),
                        },
                    };
                    metrics.count_publish(response.status().as_u16());
                    response
                }
            },
        )
        .boxed()
}

/// A refused bearer token is a guess: paced as wrong `--auth` passwords are (`access/guessing.rs`),
/// so a short `--publish-token` cannot be found by trying thousands a second.
async fn slowed(refused: Refused, access: &Access, guesses: &Guesses) -> Response {
    if refused.status() != StatusCode::UNAUTHORIZED {
        return refused.into_response();
    }
    let Some(peer) = access.bearer_peer() else {
        return refused.into_response(); // no token sent: nothing was guessed
    };
    match guesses.failed(Some(peer)) {
        Penalty::None => refused.into_response(),
        Penalty::Delay(delay) => {
            tokio::time::sleep(delay).await;
            refused.into_response()
        }
        Penalty::TooMany(wait) => too_many(wait),
    }
}

struct Request {
    name: ChannelName,
    content_type: Option<HeaderValue>,
    length: Option<u64>,
    event: Option<String>,
}

/// The publishing setup, when publishing is on and the request may publish to `channel`.
async fn admit<'a>(
    config: Option<&'a PublishConfig>,
    access: &Access,
    channel: &ChannelName,
) -> Result<&'a PublishConfig, Denied> {
    let Some(config) = config else {
        return Err(Denied::Refused(forbidden(
            "publishing is off: start the server with --publish-token, --jwt-secret/--jwt-key or --authorize-url",
        )));
    };
    access.may_publish(channel, config.token.as_ref()).await?;
    Ok(config)
}

async fn publish<B: Buf>(
    config: &PublishConfig,
    channels: &Channels,
    bus: &Bus,
    request: Request,
    body: impl Stream<Item = Result<B, warp::Error>>,
) -> Result<Published, Refused> {
    let format = body_format(request.content_type.as_ref())?;
    let event = request
        .event
        .map(|name| name.parse::<EventName>())
        .transpose()
        .map_err(|err| Refused::new(StatusCode::BAD_REQUEST, format!("?event: {err}")))?;
    let body = read_body(body, request.length, config.max_body).await?;
    let count = check(&body, format, event.clone(), &request.name)?;
    let channel = channels
        .get_or_create(&request.name, Role::Publisher)
        .map_err(|refusal| unavailable(reason(refusal)))?;
    // Decoded again as they are published: only the body is held while the request waits for
    // room, never every event of it at once. The check above found every line good.
    let events = decode(&body, format, event, &request.name).filter_map(Result::ok);
    let (first, last) = bus
        .publish(&channel, events)
        .await
        .map_err(|not_sent| match not_sent {
            NotSent::Closed => unavailable(reason(Refusal::Closed)),
            NotSent::Unavailable(why) => unavailable(why),
        })?;
    Ok(Published {
        channel: request.name.to_string(),
        events: count,
        first_id: first.id.to_string(),
        last_id: last.id.to_string(),
        consumers: last.consumers,
    })
}

/// Text for `text/plain`, no type, or a form (what `curl -d` sends; taken as text, not decoded);
/// JSON lines for `application/json` and `application/x-ndjson`.
fn body_format(content_type: Option<&HeaderValue>) -> Result<Format, Refused> {
    let Some(value) = content_type else {
        return Ok(Format::Text);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "text/plain" | "application/x-www-form-urlencoded" => Ok(Format::Text),
        "application/json" | "application/x-ndjson" => Ok(Format::Json),
        _ => Err(Refused::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {essence} is not taken: send text/plain (a line per event) or application/x-ndjson (JSON lines)"
            ),
        )),
    }
}

/// The whole body, refused with 413 as soon as it is known to pass `max`.
async fn read_body<B: Buf>(
    body: impl Stream<Item = Result<B, warp::Error>>,
    length: Option<u64>,
    max: usize,
) -> Result<BytesMut, Refused> {
    // The rest of the body is not read: the connection can't carry another request, and a
    // client that pools connections must not try (HTTP/2 drops the header; a stream ends alone
    // there).
    let too_large = || {
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than --max-body ({max} bytes)"),
        )
        .with(header::CONNECTION, HeaderValue::from_static("close"))
    };
    if length.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    let mut collected = BytesMut::new();
    futures_util::pin_mut!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|err| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                format!("reading the body failed: {err}"),
            )
        })?;
        if collected.len() + chunk.remaining() > max {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            collected.extend_from_slice(piece);
            let taken = piece.len();
            chunk.advance(taken);
        }
    }
    Ok(collected)
}

/// How many events the body holds, or its first bad line: nothing is published unless all
/// are good. The events are dropped as they are decoded (a body of short lines would take many
/// times its size as events).
fn check(
    body: &[u8],
    format: Format,
    event: Option<EventName>,
    channel: &ChannelName,
) -> Result<usize, Refused> {
    let mut count = 0;
    for decoded in decode(body, format, event, channel) {
        decoded?;
        count += 1;
    }
    if count == 0 {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "the body holds no event (empty lines are not sent)",
        ));
    }
    Ok(count)
}

/// Each line's event, one at a time, or why a line is bad (empty lines are skipped).
fn decode<'a>(
    body: &'a [u8],
    format: Format,
    event: Option<EventName>,
    channel: &'a ChannelName,
) -> impl Iterator<Item = Result<Event, Refused>> + Send + 'a {
    // No line is split: the body is already bounded by --max-body.
    let mut decoder = LineDecoder::new(format, event, usize::MAX);
    let lines = body.split_inclusive(|&b| b == b'\n').enumerate();
    lines.filter_map(move |(index, line)| {
        let bad = |reason: String| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                format!("line {}: {reason}", index + 1),
            )
        };
        match decoder.try_decode(line.to_vec()) {
            Err(reason) => Some(Err(bad(reason))),
            Ok(None) => None,
            Ok(Some(Routed {
                channel: Some(named),
                ..
            })) if named != *channel => Some(Err(bad(format!(
                "\"channel\" is {named}, but this request publishes to {channel}"
            )))),
            Ok(Some(Routed { event, .. })) => Some(Ok(event)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_format() {
        let format = |value: &'static str| body_format(Some(&HeaderValue::from_static(value)));
        assert!(matches!(body_format(None), Ok(Format::Text)));
        assert!(matches!(
            format("text/plain; charset=utf-8"),
            Ok(Format::Text)
        ));
        assert!(matches!(
            format("application/x-www-form-urlencoded"),
            Ok(Format::Text)
        ));
        assert!(matches!(format("Application/JSON"), Ok(Format::Json)));
        assert!(matches!(format("application/x-ndjson"), Ok(Format::Json)));
        assert!(matches!(
            format("image/png"),
            Err(refused) if refused.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
        ));
    }

    #[test]
    fn a_bad_line_refuses_the_whole_body() {
        let build: ChannelName = "build".parse().unwrap();
        let good = check(
            b"{\"data\":\"a\"}\n\n{\"data\":\"b\",\"channel\":\"build\"}\n",
            Format::Json,
            None,
            &build,
        );
        assert_eq!(good.ok(), Some(2));
        let Err(refused) = check(b"{\"data\":\"a\"}\n{oops\n", Format::Json, None, &build) else {
            panic!("accepted")
        };
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.why().starts_with("line 2: "), "{}", refused.why());
        let Err(refused) = check(
            b"{\"data\":\"a\",\"channel\":\"other\"}\n",
            Format::Json,
            None,
            &build,
        ) else {
            panic!("accepted")
        };
        assert!(refused.why().contains("other"), "{}", refused.why());
        assert!(check(b"\n\r\n", Format::Text, None, &build).is_err());
        let data: Vec<String> = decode(b"a\n\nb", Format::Text, None, &build)
            .map(|event| event.ok().unwrap().data().to_owned())
            .collect();
        assert_eq!(data, ["a", "b"]);
    }
}
