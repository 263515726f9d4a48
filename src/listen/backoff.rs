//! How long to wait before reconnecting: the server's `retry:` (at least `MIN_RETRY`, so
//! `retry: 0` is no busy loop), doubled for each further attempt in a row that failed, up to
//! `MAX_BACKOFF`, plus up to a quarter more at random so that listeners cut at once do not all
//! come back at once.

use std::time::Duration;

/// Before the server sent a `retry:` (browsers wait 3 to 5 s).
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);
pub const MIN_RETRY: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The wait before the next attempt, after `failures` failed attempts in a row.
pub fn delay(retry: Duration, failures: u32) -> Duration {
    let retry = retry.max(MIN_RETRY);
    let backed_off = retry
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
        .max(retry); // a server asking for more than MAX_BACKOFF gets what it asked
    let jitter = fastrand::u64(0..=backed_off.as_millis() as u64 / 4);
    backed_off + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamped_doubled_capped_and_jittered() {
        for _ in 0..100 {
            let zero = delay(Duration::ZERO, 0);
            assert!(zero >= MIN_RETRY && zero <= MIN_RETRY * 5 / 4, "{zero:?}");
            let first = delay(Duration::from_millis(200), 1);
            assert!(first >= Duration::from_millis(200) && first <= Duration::from_millis(250));
            let third = delay(Duration::from_millis(200), 4);
            assert!(third >= Duration::from_millis(1600) && third <= Duration::from_millis(2000));
            let long = delay(Duration::from_secs(1), 40);
            assert!(long >= MAX_BACKOFF && long <= MAX_BACKOFF * 5 / 4);
            let asked = delay(Duration::from_secs(60), 0);
            assert!(asked >= Duration::from_secs(60));
        }
    }
}
