//! What every `text/event-stream` answer shares, a stream's (`events.rs`, `multi_stream.rs`)
//! or a refused EventSource's (`refusal.rs`): its headers.

use warp::http::{HeaderMap, HeaderValue, header};

/// The headers of an event stream.
pub fn set_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers proxied responses unless told not to, which would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
