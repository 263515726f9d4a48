//! What every `text/event-stream` answer shares, a stream's (`events.rs`) or a refused
//! EventSource's (`refusal.rs`): its headers, and the reconnection delay (`retry:`) spread per
//! client.

use std::time::Duration;

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

/// A delay in [base, 1.5 base], drawn per client so a restart's reconnects don't all arrive at once.
pub fn spread(base: Duration) -> Duration {
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
