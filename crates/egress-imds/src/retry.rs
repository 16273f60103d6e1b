//! How hard one IMDS read is retried: exponential backoff with jitter (backon), the server's
//! `Retry-After` honoured up to a cap, and a bound on the total wait.

use backon::ExponentialBuilder;
use std::time::{Duration, SystemTime};

/// Retry bounds of an IMDS read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsRetry {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff when the server gives no `Retry-After`.
    pub min_delay: Duration,
    /// Cap of the exponential backoff.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited on; a longer one ends the read with its error.
    pub max_retry_after: Duration,
    /// Sum of all backoff waits of one read.
    pub total_delay: Duration,
}

impl Default for ImdsRetry {
    /// 3 retries from 200 ms to 2 s, `Retry-After` up to 5 s, 30 s in total: IMDS is local, so
    /// a node that cannot read it within that is better restarted by its supervisor.
    fn default() -> Self {
        Self {
            max_retries: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            total_delay: Duration::from_secs(30),
        }
    }
}

impl ImdsRetry {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.total_delay))
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
