//! For a warning that can repeat many times a second (refused accepts and requests, wrong
//! credentials, evicted or lagging clients, bad bytes in a body): let one through per period,
//! saying how many occurrences it stands for. A client can cause such a warning at will, and
//! the log must not become the way to flood the disk or fill the log writer's queue.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The period of every per-request warning.
pub const WARNING_PERIOD: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: Option<Instant>,
    unreported: u64,
}

impl Throttle {
    pub const fn new(period: Duration) -> Self {
        Throttle {
            period,
            last: None,
            unreported: 0,
        }
    }

    /// Counts one occurrence; when a warning is due, returns how many occurrences it reports
    /// (this one and those held back since the last).
    pub fn note(&mut self) -> Option<u64> {
        self.unreported += 1;
        if self.last.is_some_and(|last| last.elapsed() < self.period) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.unreported))
    }
}

/// A `Throttle` that every request meeting the same warning shares; it can be a `static`.
#[derive(Debug)]
pub struct SharedThrottle(Mutex<Throttle>);

impl SharedThrottle {
    pub const fn new(period: Duration) -> Self {
        SharedThrottle(Mutex::new(Throttle::new(period)))
    }

    /// As `Throttle::note`.
    pub fn note(&self) -> Option<u64> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).note()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_period_counting_the_held_back() {
        let mut throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.note(), Some(1));
        assert_eq!(throttle.note(), None);
        assert_eq!(throttle.note(), None);
        throttle.last = Some(Instant::now() - Duration::from_secs(3601));
        assert_eq!(throttle.note(), Some(3));
    }

    #[test]
    fn a_shared_one_counts_for_all() {
        static SHARED: SharedThrottle = SharedThrottle::new(Duration::from_secs(3600));
        assert_eq!(SHARED.note(), Some(1));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| assert_eq!(SHARED.note(), None));
            }
        });
        assert_eq!(SHARED.0.lock().unwrap().unreported, 4);
    }
}
