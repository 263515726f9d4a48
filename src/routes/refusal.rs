//! One answer for every refusal for capacity or shutdown, whichever route meets it, logged at
//! warn. An EventSource takes any status but 200 as final (WHATWG: "fail the connection"): a
//! tab refused with 503 during a reconnect storm would never come back. So a stream request that
//! accepts `text/event-stream` gets `200 text/event-stream` holding a comment that says why and
//! `retry:` (the Retry-After, spread per client as `--retry` is), then the end, and the browser
//! reconnects after that wait. Every other request gets 503 with `Retry-After` and the reason.
//! The warning is rate-limited: a full server meets many refusals a second.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use super::sse_reply;
use crate::access::{Peer, peer_key};
use crate::control::{Client, Control, PeerSlot, Refusal};
use crate::event;
use crate::presence::Present;
use crate::refused::Refused;
use crate::stream::spread;
use crate::throttle::{SharedThrottle, WARNING_PERIOD};

/// What a full or stopping server tells a client to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// `RETRY_AFTER` as a `Retry-After` header value.
fn retry_after() -> HeaderValue {
    HeaderValue::from(RETRY_AFTER.as_secs())
}

/// The line a refused client reads, naming the limit it met.
pub fn reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Full => "too many clients (--max-clients); try again later",
        Refusal::PeerFull => {
            "too many streams from your address (--max-streams-per-peer); try again later"
        }
        Refusal::TooManyChannels => "too many channels (--max-channels); try again later",
        Refusal::Closed => "shutting down; try again later",
    }
}

/// Whether an `Accept` header names `text/event-stream` (with a `q` above 0), as every
/// EventSource's does. A wildcard is not enough: `curl` and most HTTP libraries send `*/*` and
/// read a status, not a stream.
pub fn accepts_event_stream(accept: Option<&HeaderValue>) -> bool {
    let Some(Ok(text)) = accept.map(HeaderValue::to_str) else {
        return false;
    };
    text.split(',').any(|range| {
        range.trim().parse::<mime::Mime>().is_ok_and(|media| {
            media.essence_str() == "text/event-stream"
                && media
                    .get_param("q")
                    .is_none_or(|q| q.as_str().parse::<f32>().is_ok_and(|q| q > 0.0))
        })
    })
}

/// Who asks for a stream: its connection, its client (behind a proxy: `access/forwarded.rs`),
/// whether it is an EventSource (it accepts `text/event-stream`), which decides how a refusal
/// is put to it, and with `--presence` the reader it is.
pub struct Asker {
    pub event_source: bool,
    /// Every served request carries its connection; only unit tests lack one.
    pub connection: Option<Arc<Client>>,
    pub client: Option<Peer>,
    pub present: Option<Present>,
}

impl Asker {
    /// The client, for logs.
    pub fn peer(&self) -> Option<String> {
        self.client.map(|client| client.to_string())
    }

    /// A place for one more stream from this client under `--max-streams-per-peer` (an IPv6
    /// client counts by its /64, as in `access/guessing.rs`).
    pub fn open_peer_stream(&self, control: &Arc<Control>) -> Result<Option<PeerSlot>, Refusal> {
        match self.client {
            Some(client) => control.open_peer_stream(peer_key(client.ip)),
            None => Ok(None),
        }
    }
}

/// The answer to `refusal`: the stream that ends (see the module doc) for an EventSource, 503
/// with `Retry-After` for others; logged with the peer when it is known.
pub fn refuse(refusal: Refusal, peer: Option<String>, event_source: bool) -> Response {
    static FULL: SharedThrottle = SharedThrottle::new(WARNING_PERIOD);
    static PEER_FULL: SharedThrottle = SharedThrottle::new(WARNING_PERIOD);
    let warning = match refusal {
        Refusal::Full => FULL.note(),
        Refusal::PeerFull => PEER_FULL.note(),
        // A stream never needs a channel slot (only a publish does); shutting down is no news.
        Refusal::TooManyChannels | Refusal::Closed => None,
    };
    if let Some(refused) = warning {
        tracing::warn!(
            peer,
            event_source,
            refused,
            "refusing streams: {}",
            reason(refusal)
        );
    }
    if event_source {
        ending_stream(reason(refusal))
    } else {
        unavailable(reason(refusal)).into_response()
    }
}

/// The answer when the authorization backend gave no decision (`access::Denied::Unanswered`):
/// as a full server's, so an EventSource comes back and a POST is told when to try again.
pub fn unanswered(event_source: bool) -> Response {
    const WHY: &str = "the authorization backend (--authorize-url) did not decide; try again later";
    if event_source {
        ending_stream(WHY)
    } else {
        unavailable(WHY).into_response()
    }
}

/// `200 text/event-stream`: `message` as a comment, then `retry:`, then the end of the stream.
fn ending_stream(message: &str) -> Response {
    let mut response = Vec::from(last_words(message)).into_response();
    sse_reply::set_headers(response.headers_mut());
    response
}

/// What a refused EventSource reads before its stream ends: `message` as a comment, then
/// `retry:` (`RETRY_AFTER` spread per client).
pub fn last_words(message: &str) -> Bytes {
    [event::comment(message), event::retry(spread(RETRY_AFTER))]
        .concat()
        .into()
}

/// 503 with `Retry-After` and `message` (one line) as the body.
pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Refused {
    Refused::new(StatusCode::SERVICE_UNAVAILABLE, message).with(header::RETRY_AFTER, retry_after())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn only_an_explicit_event_stream_accept_counts() {
        let accepts =
            |value: &'static str| accepts_event_stream(Some(&HeaderValue::from_static(value)));
        assert!(accepts("text/event-stream"));
        assert!(accepts("Text/Event-Stream"));
        assert!(accepts("text/html, text/event-stream;q=0.5"));
        assert!(!accepts("*/*"));
        assert!(!accepts("text/*"));
        assert!(!accepts("text/event-stream;q=0"));
        assert!(!accepts("application/json"));
        assert!(!accepts_event_stream(None));
    }

    #[tokio::test]
    async fn an_event_source_is_told_why_and_when_to_come_back() {
        let response = refuse(Refusal::Full, None, true);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        let retry = text
            .strip_prefix(": too many clients (--max-clients); try again later\n\nretry: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .and_then(|ms| ms.parse::<u64>().ok());
        assert!(
            retry.is_some_and(|ms| (5000..=7500).contains(&ms)),
            "{text:?}"
        );

        let response = refuse(Refusal::TooManyChannels, None, false);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }
}
