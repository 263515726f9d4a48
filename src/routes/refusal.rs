//! One answer for every refusal for capacity or shutdown, whichever route meets it: 503 with
//! `Retry-After` and a line that says why, logged at warn (streams and POSTs alike).

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::control::Refusal;

/// What a full or stopping server tells a client to wait before trying again.
pub const RETRY_AFTER_SECS: &str = "5";

/// The line a refused client reads, naming the limit it met.
pub fn reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Full => "too many clients (--max-clients); try again later",
        Refusal::TooManyChannels => "too many channels (--max-channels); try again later",
        Refusal::Closed => "shutting down; try again later",
    }
}

/// 503 with `Retry-After` for `refusal`, logged with the peer when it is known.
pub fn refuse(refusal: Refusal, peer: Option<String>) -> Response {
    if refusal != Refusal::Closed {
        tracing::warn!(peer, "refusing a request with 503: {}", reason(refusal));
    }
    unavailable(reason(refusal))
}

/// 503 with `Retry-After` and `message` (one line) as the body.
pub fn unavailable(message: &str) -> Response {
    let mut response =
        warp::reply::with_status(format!("{message}\n"), StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}
