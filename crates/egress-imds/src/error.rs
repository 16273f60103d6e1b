//! Why metadata could not be read.

/// An IMDS failure, naming the URL it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// The base URL is unusable.
    #[error("failed to use IMDS base URL {url:?}: {reason}")]
    BadUrl {
        /// Given URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No response (connection refused, reset, ...), after retries.
    #[error("failed to reach IMDS at {url}")]
    Request {
        /// Request URL.
        url: String,
        /// hyper's error.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The response body could not be read.
    #[error("failed to read the IMDS response from {url}")]
    Body {
        /// Request URL.
        url: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// No answer within the per-request timeout, after retries.
    #[error("failed to read IMDS {url}: no answer within {timeout:?}")]
    Timeout {
        /// Request URL.
        url: String,
        /// The per-request timeout.
        timeout: std::time::Duration,
    },
    /// A non-success status (after retries for 410, 429 and 5xx).
    #[error("failed to read IMDS {url}: HTTP {status}: {body}")]
    Status {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Response text (truncated).
        body: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<std::time::Duration>,
    },
    /// The body is not the expected JSON.
    #[error("failed to decode IMDS response from {url}")]
    Decode {
        /// Request URL.
        url: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

impl ImdsError {
    /// IMDS answers 410 while a VM boots and 429 when pressed; 5xx, time-outs and lost
    /// connections are passing too. Everything else is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 410 | 429 | 500..=599),
            Self::Request { .. } | Self::Body { .. } | Self::Timeout { .. } => true,
            Self::BadUrl { .. } | Self::Decode { .. } => false,
        }
    }

    /// The wait the server asked for.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
