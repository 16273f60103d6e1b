//! Rate limit for log lines that a storm could repeat thousands of times a second (accept
//! failures, busy answers, refused peers): the first occurrence is written at once, later
//! ones at most once per interval, each carrying how many were left out since the last line.
//! Counting continues in the metrics, which are never limited.
//!
//! Kept here rather than as a global `tracing` filter layer: the few call sites that need it
//! are known, their summaries must say what was suppressed in their own words, and every other
//! log line of the manager must stay unfiltered.

use std::time::{Duration, Instant};

/// How often a throttled line may be written.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// One throttled log site.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// A site that writes at most once per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Records one occurrence at `now`. `Some(n)` when a line should be written, `n` being
    /// the occurrences left out since the previous line; `None` when this one is left out.
    pub fn check(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(LOG_EVERY)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn first_line_at_once_then_one_per_interval_with_the_count_left_out() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.check(t0), Some(0));
        let written = (1..100_000u64)
            .filter(|i| t.check(t0 + Duration::from_micros(*i * 50)).is_some())
            .count();
        assert_eq!(written, 0, "5 s of a storm write nothing more");
        assert_eq!(t.check(t0 + Duration::from_secs(10)), Some(99_999));
        assert_eq!(t.check(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.check(t0 + Duration::from_secs(25)), Some(1));
    }
}
