//! Error categories shared by every controller: the `category` metric label, the Event reason,
//! and what the error policy does next (wait for a spec change, requeue after Retry-After, back
//! off). Each phase has its own error enum elsewhere; they all map to a [`Category`] here.

use std::time::Duration;

use egress_azure::{ArmError, ErrorCategory};

use crate::controller::ReconcileError;

/// What kind of failure an error is, and so what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// The spec (or what it points at) is wrong: wait for a change, do not retry in a loop.
    InvalidSpec,
    /// Azure or Kubernetes throttled us: requeue after Retry-After.
    Throttled,
    /// A concurrent change (etag / resourceVersion conflict): re-read and retry soon.
    Conflict,
    /// Server or network failure that may heal: exponential backoff.
    Transient,
    /// The request is wrong in a way retrying will not fix (authorization, quota): long backoff.
    Permanent,
}

impl Category {
    /// Stable lowercase name, the `category` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSpec => "invalid_spec",
            Self::Throttled => "throttled",
            Self::Conflict => "conflict",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }

    /// PascalCase Event reason.
    pub fn event_reason(self) -> &'static str {
        match self {
            Self::InvalidSpec => "InvalidSpec",
            Self::Throttled => "Throttled",
            Self::Conflict => "Conflict",
            Self::Transient => "TransientError",
            Self::Permanent => "PermanentError",
        }
    }

    /// Category of an ARM failure. `NotFound` reaching a reconciler means something the spec
    /// names does not exist, which only a change can fix.
    pub fn of_arm(e: &ArmError) -> Self {
        match e.category() {
            ErrorCategory::NotFound => Self::InvalidSpec,
            ErrorCategory::Conflict => Self::Conflict,
            ErrorCategory::Throttled => Self::Throttled,
            ErrorCategory::Transient => Self::Transient,
            ErrorCategory::Permanent => Self::Permanent,
        }
    }

    /// Category of a Kubernetes API failure.
    pub fn of_kube(e: &kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => match s.code {
                429 => Self::Throttled,
                409 => Self::Conflict,
                500..=599 => Self::Transient,
                400..=499 => Self::Permanent,
                _ => Self::Transient,
            },
            _ => Self::Transient,
        }
    }
}

/// A failed Kubernetes API call, named for what it was doing. The SGC and LB configuration
/// controllers only call Kubernetes, so this is their whole error; the pool controller wraps it.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action}")]
pub struct KubeError {
    /// What was being done (`read Secret ns/name`).
    pub action: String,
    /// The API failure.
    #[source]
    pub source: kube::Error,
}

impl KubeError {
    /// The failed `action` and why.
    pub fn new(action: impl Into<String>, source: kube::Error) -> Self {
        Self {
            action: action.into(),
            source,
        }
    }
}

impl ReconcileError for KubeError {
    fn category(&self) -> Category {
        Category::of_kube(&self.source)
    }

    fn retry_after(&self) -> Option<Duration> {
        kube_retry_after(&self.source)
    }
}

/// Retry-After a Kubernetes 429 asked for, if any.
pub fn kube_retry_after(e: &kube::Error) -> Option<Duration> {
    match e {
        kube::Error::Api(s) => s
            .details
            .as_ref()
            .map(|d| Duration::from_secs(u64::from(d.retry_after_seconds)))
            .filter(|d| !d.is_zero()),
        _ => None,
    }
}

/// How long to wait before the next attempt of something that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub base: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Wait after a throttled request that gave no Retry-After.
    pub throttled_default: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            throttled_default: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based) of an error of `category`.
    /// `InvalidSpec` returns `None`: wait for a change instead.
    pub fn delay(
        &self,
        category: Category,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        match category {
            Category::InvalidSpec => None,
            Category::Throttled => Some(retry_after.unwrap_or(self.throttled_default)),
            Category::Permanent => Some(self.max),
            Category::Conflict | Category::Transient => {
                let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
                let base = self.base.saturating_mul(factor).min(self.max);
                // Equal jitter: replicas and pools do not retry in lock-step.
                let half = base / 2;
                let jitter = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
                Some(half + Duration::from_millis(fastrand::u64(0..=jitter)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn invalid_specs_wait_for_a_change_and_throttling_honours_retry_after() {
        let b = Backoff::default();
        assert_eq!(b.delay(Category::InvalidSpec, 3, None), None);
        assert_eq!(
            b.delay(Category::Throttled, 0, Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            b.delay(Category::Throttled, 0, None),
            Some(b.throttled_default)
        );
    }

    #[test]
    fn transient_backoff_grows_and_is_capped() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
            throttled_default: Duration::from_secs(1),
        };
        let d0 = b.delay(Category::Transient, 0, None).unwrap();
        assert!(d0 >= Duration::from_millis(500) && d0 <= Duration::from_secs(1));
        let d3 = b.delay(Category::Transient, 3, None).unwrap();
        assert!(d3 >= Duration::from_secs(4) && d3 <= Duration::from_secs(8));
        let d30 = b.delay(Category::Conflict, 30, None).unwrap();
        assert!(d30 <= Duration::from_secs(8));
    }

    #[test]
    fn arm_categories_map_to_policies() {
        use egress_azure::ArmErrorBody;
        let e = |s| ArmError::from_status("x", s, ArmErrorBody::new("C", "m"), None);
        assert_eq!(Category::of_arm(&e(429)), Category::Throttled);
        assert_eq!(Category::of_arm(&e(412)), Category::Conflict);
        assert_eq!(Category::of_arm(&e(503)), Category::Transient);
        assert_eq!(Category::of_arm(&e(403)), Category::Permanent);
        assert_eq!(Category::of_arm(&e(404)), Category::InvalidSpec);
    }
}
