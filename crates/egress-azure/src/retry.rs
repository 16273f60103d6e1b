//! Retry policy of single ARM requests: which responses are retried (429 always; 408/5xx and
//! connection failures only for idempotent methods), how long to wait (Retry-After, else bounded
//! exponential backoff with jitter) and the per-request budget. The loop itself is in `client`.

use azure_core::http::headers::{Headers, RETRY_AFTER, RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS};
use azure_core::http::policies::get_retry_after;
use std::time::Duration;

/// How hard one ARM request is retried before its error is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff before the first retry when the server gives no `Retry-After`.
    pub initial_backoff: Duration,
    /// Cap of the exponential backoff.
    pub max_backoff: Duration,
    /// Longest `Retry-After` the client sleeps itself; a longer one is returned as
    /// [`ArmError::Throttled`](crate::ArmError::Throttled) so the reconciler requeues instead.
    pub max_retry_after: Duration,
    /// Total time one request may take including all waits; no retry starts beyond it.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    /// 1 s doubling to 30 s, 8 retries, 2 min budget: the original's `wrapRetry` bounds, with
    /// the HTTP-level retries of azclient folded in.
    fn default() -> Self {
        Self {
            max_retries: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            budget: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Backoff before retry `attempt` (0-based): `initial * 2^attempt` capped at `max_backoff`,
    /// with "equal jitter" (half fixed, half random) so that clients spread out but never hammer.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = base / 2;
        let jitter_nanos = fastrand::u64(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_nanos)
    }

    /// The wait before retry `attempt`, or `None` to stop: retries used up, `Retry-After` longer
    /// than `max_retry_after`, or the wait would cross the budget (`elapsed` so far).
    pub fn next_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        let delay = match retry_after {
            Some(ra) if ra > self.max_retry_after => return None,
            Some(ra) => ra,
            None => self.backoff(attempt),
        };
        (elapsed.saturating_add(delay) < self.budget).then_some(delay)
    }
}

/// Whether a response status is worth retrying. 429 means the request was not processed, so it
/// is safe for any method; 408 and 5xx may have been processed, so only idempotent methods.
pub fn is_retryable_status(status: u16, idempotent: bool) -> bool {
    match status {
        429 => true,
        408 | 500 | 502 | 503 | 504 => idempotent,
        _ => false,
    }
}

/// The server's requested wait: `retry-after-ms`, `x-ms-retry-after-ms`, then `Retry-After`
/// (seconds or an HTTP date).
pub fn retry_after(headers: &Headers) -> Option<Duration> {
    get_retry_after(
        headers,
        azure_core::time::OffsetDateTime::now_utc,
        &[RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS, RETRY_AFTER],
    )
    .map(|d| Duration::from_secs_f64(d.as_seconds_f64().max(0.0)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use azure_core::http::headers::HeaderName;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
            budget: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let p = policy();
        for _ in 0..200 {
            let d0 = p.backoff(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d5 = p.backoff(5);
            assert!(d5 >= Duration::from_millis(150) && d5 <= Duration::from_millis(300));
        }
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(2)).collect();
        assert!(distinct.len() > 1, "jitter must vary the delay");
        assert!(p.backoff(u32::MAX) <= p.max_backoff);
    }

    #[test]
    fn next_delay_honours_retry_after_count_and_budget() {
        let p = policy();
        assert_eq!(
            p.next_delay(0, Some(Duration::from_secs(2)), Duration::ZERO),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.next_delay(0, Some(Duration::from_secs(6)), Duration::ZERO),
            None
        );
        assert_eq!(p.next_delay(3, None, Duration::ZERO), None);
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(2)), Duration::from_secs(9)),
            None
        );
        assert_eq!(
            RetryPolicy::none().next_delay(0, None, Duration::ZERO),
            None
        );
    }

    #[test]
    fn only_429_is_retried_for_non_idempotent_requests() {
        assert!(is_retryable_status(429, false));
        assert!(!is_retryable_status(500, false));
        assert!(is_retryable_status(500, true));
        assert!(is_retryable_status(503, true));
        assert!(!is_retryable_status(501, true));
        assert!(!is_retryable_status(409, true));
        assert!(!is_retryable_status(404, true));
    }

    #[test]
    fn parses_retry_after_forms() {
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "3");
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(HeaderName::from_static("retry-after-ms"), "250");
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after(&Headers::new()), None);
    }
}
