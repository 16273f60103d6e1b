//! Errors of ARM calls, classified for reconcilers (what to do next: treat as gone, re-read and
//! retry, wait for Retry-After, back off, or give up), keeping the ARM error code and message.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// The ARM error body `{"error": {"code": "...", "message": "..."}}` (or without the envelope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArmErrorBody {
    /// ARM error code, e.g. `ResourceNotFound`, `InUsePublicIpPrefixCannotBeDeleted`.
    pub code: String,
    /// Human-readable message from the service.
    pub message: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<Inner>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Inner {
    code: Option<String>,
    message: Option<String>,
}

impl ArmErrorBody {
    /// Parses an error body; a body that is not ARM JSON becomes the message (truncated).
    pub fn parse(bytes: &[u8]) -> Self {
        match serde_json::from_slice::<Envelope>(bytes) {
            Ok(Envelope {
                error: Some(inner), ..
            }) => Self {
                code: inner.code.unwrap_or_default(),
                message: inner.message.unwrap_or_default(),
            },
            Ok(Envelope { code, message, .. }) if code.is_some() || message.is_some() => Self {
                code: code.unwrap_or_default(),
                message: message.unwrap_or_default(),
            },
            _ => Self {
                code: String::new(),
                message: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            },
        }
    }

    /// A body made up by the client (timeouts, transport failures).
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ArmErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code.is_empty(), self.message.is_empty()) {
            (true, true) => write!(f, "no error details"),
            (false, true) => write!(f, "{}", self.code),
            (true, false) => write!(f, "{}", self.message),
            (false, false) => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

/// What a reconciler should do with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The resource (or its parent) does not exist.
    NotFound,
    /// Concurrent change (409, or 412 on a stale etag): re-read and retry.
    Conflict,
    /// Throttled (429) beyond what the client waits for itself: requeue after `retry_after`.
    Throttled,
    /// Server or network failure that may heal: back off and retry.
    Transient,
    /// The request is wrong (validation, authorization, quota): retrying will not help.
    Permanent,
}

impl ErrorCategory {
    /// Stable lowercase name, for metric labels and Event reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Throttled => "throttled",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// A failed ARM call. `operation` names the call (e.g. `load_balancers.create_or_update`).
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// HTTP 404.
    #[error("failed to {operation}: not found ({body})")]
    NotFound {
        /// Operation name.
        operation: &'static str,
        /// ARM error details.
        body: ArmErrorBody,
    },
    /// HTTP 409 Conflict or 412 Precondition Failed (`If-Match` etag mismatch).
    #[error("failed to {operation}: conflict, HTTP {status} ({body})")]
    Conflict {
        /// Operation name.
        operation: &'static str,
        /// 409 or 412.
        status: u16,
        /// ARM error details.
        body: ArmErrorBody,
    },
    /// HTTP 429 that the retry policy did not absorb.
    #[error("failed to {operation}: throttled, retry after {retry_after:?} ({body})")]
    Throttled {
        /// Operation name.
        operation: &'static str,
        /// Server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// ARM error details.
        body: ArmErrorBody,
    },
    /// 5xx, network failure, LRO time-out or a retryable LRO failure, after retries.
    #[error("failed to {operation}: transient failure{} ({body})", status_suffix(*.status))]
    Transient {
        /// Operation name.
        operation: &'static str,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// ARM error details.
        body: ArmErrorBody,
        /// Underlying transport or credential error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Any other failure: 4xx validation/authorization, failed LRO, undecodable response.
    #[error("failed to {operation}: permanent failure{} ({body})", status_suffix(*.status))]
    Permanent {
        /// Operation name.
        operation: &'static str,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// ARM error details.
        body: ArmErrorBody,
        /// Underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
}

impl ArmError {
    /// Classifies a non-success HTTP response.
    pub fn from_status(
        operation: &'static str,
        status: u16,
        body: ArmErrorBody,
        retry_after: Option<Duration>,
    ) -> Self {
        match status {
            404 => Self::NotFound { operation, body },
            409 | 412 => Self::Conflict {
                operation,
                status,
                body,
            },
            429 => Self::Throttled {
                operation,
                retry_after,
                body,
            },
            408 | 500..=599 => Self::Transient {
                operation,
                status: Some(status),
                body,
                source: None,
            },
            _ => Self::Permanent {
                operation,
                status: Some(status),
                body,
                source: None,
            },
        }
    }

    /// Which kind of failure this is.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::NotFound { .. } => ErrorCategory::NotFound,
            Self::Conflict { .. } => ErrorCategory::Conflict,
            Self::Throttled { .. } => ErrorCategory::Throttled,
            Self::Transient { .. } => ErrorCategory::Transient,
            Self::Permanent { .. } => ErrorCategory::Permanent,
        }
    }

    /// The ARM error code and message.
    pub fn body(&self) -> &ArmErrorBody {
        match self {
            Self::NotFound { body, .. }
            | Self::Conflict { body, .. }
            | Self::Throttled { body, .. }
            | Self::Transient { body, .. }
            | Self::Permanent { body, .. } => body,
        }
    }

    /// The ARM error code (empty if the service sent none).
    pub fn code(&self) -> &str {
        &self.body().code
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::NotFound { operation, .. }
            | Self::Conflict { operation, .. }
            | Self::Throttled { operation, .. }
            | Self::Transient { operation, .. }
            | Self::Permanent { operation, .. } => operation,
        }
    }

    /// For throttling: how long the service asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Shorthand for `category() == NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.category() == ErrorCategory::NotFound
    }

    pub(crate) fn decode(operation: &'static str, source: serde_json::Error) -> Self {
        Self::Permanent {
            operation,
            status: None,
            body: ArmErrorBody::new(
                "InvalidResponse",
                format!("failed to decode response: {source}"),
            ),
            source: Some(Box::new(source)),
        }
    }

    /// A request that failed before reaching the service for a reason retrying cannot fix
    /// (e.g. a bearer token refused over plain http).
    pub(crate) fn request_failed(operation: &'static str, source: azure_core::Error) -> Self {
        if matches!(source.kind(), azure_core::error::ErrorKind::Io) {
            return Self::transport(operation, source);
        }
        Self::Permanent {
            operation,
            status: None,
            body: ArmErrorBody::new("RequestFailed", source.to_string()),
            source: Some(Box::new(source)),
        }
    }

    pub(crate) fn transport(operation: &'static str, source: azure_core::Error) -> Self {
        Self::Transient {
            operation,
            status: None,
            body: ArmErrorBody::new("TransportError", source.to_string()),
            source: Some(Box::new(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_arm_envelope_bare_and_garbage() {
        let b = ArmErrorBody::parse(br#"{"error":{"code":"ResourceNotFound","message":"gone"}}"#);
        assert_eq!(b, ArmErrorBody::new("ResourceNotFound", "gone"));
        let b = ArmErrorBody::parse(br#"{"code":"Conflict","message":"busy"}"#);
        assert_eq!(b.code, "Conflict");
        let b = ArmErrorBody::parse(b"<html>bad gateway</html>");
        assert_eq!(b.code, "");
        assert!(b.message.contains("bad gateway"));
    }

    #[test]
    fn classifies_statuses_for_reconcilers() {
        let body = || ArmErrorBody::new("C", "m");
        let cat = |s| ArmError::from_status("op", s, body(), None).category();
        assert_eq!(cat(404), ErrorCategory::NotFound);
        assert_eq!(cat(409), ErrorCategory::Conflict);
        assert_eq!(cat(412), ErrorCategory::Conflict);
        assert_eq!(cat(429), ErrorCategory::Throttled);
        assert_eq!(cat(500), ErrorCategory::Transient);
        assert_eq!(cat(503), ErrorCategory::Transient);
        assert_eq!(cat(400), ErrorCategory::Permanent);
        assert_eq!(cat(403), ErrorCategory::Permanent);
        let e = ArmError::from_status("lb.get", 429, body(), Some(Duration::from_secs(7)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.code(), "C");
        assert!(e.to_string().starts_with("failed to lb.get: throttled"));
    }
}
