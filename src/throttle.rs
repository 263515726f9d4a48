//! For a warning that can repeat many times a second (refused accepts, wrong credentials): let
//! one through per period, saying how many occurrences it stands for.

use std::time::{Duration, Instant};

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
}
