//! Each client's event stream, the body of its response: what it sends first (the `retry:`
//! frame, replay notices, replayed frames), then the live frames of one channel (`one.rs`) or
//! of several merged in arrival order, each with the stream's cursor as its id (`several.rs`),
//! until it ends of itself (`deadline.rs`: a token's expiry, `--max-stream-age`, `--drain`).
//! What every body does (batching the prelude, the last words, the connection's records) is
//! `body.rs`'s. A body forwards the bytes its channels encoded and never formats an event;
//! which body a request gets, and every refusal, are `routes/`'s.

mod body;
mod deadline;
mod one;
mod several;

use std::time::Duration;

pub use deadline::Deadline;
pub use one::{age_limit, client_stream, token_deadline};
pub use several::{several_stream, starts};

/// A delay in [base, 1.5 base], drawn per client so a restart's reconnects don't all arrive at
/// once: every `retry:` a stream or a refused EventSource is told.
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
