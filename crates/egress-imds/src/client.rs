//! [`ImdsClient`]: GET a metadata document with `Metadata: true`, a per-request timeout and
//! retries. Plain http only (IMDS is link-local), never through a proxy (hyper's client has none).

use backon::Retryable;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

use crate::error::ImdsError;
use crate::metadata::{self, InstanceMetadata, LoadBalancerMetadata};
use crate::retry::{ImdsRetry, parse_retry_after};
use crate::{INSTANCE_API_VERSION, LOAD_BALANCER_API_VERSION};

/// Longest body kept in a status error.
const MAX_ERROR_BODY: usize = 512;

/// IMDS client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ImdsClient {
    base: url::Url,
    http: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    retry: ImdsRetry,
}

impl ImdsClient {
    /// A client for `base` ([`crate::DEFAULT_IMDS_URL`] or an emulator's per-VM URL).
    pub fn new(base: &str) -> Result<Self, ImdsError> {
        let bad = |reason: &str| ImdsError::BadUrl {
            url: base.to_string(),
            reason: reason.to_string(),
        };
        let mut url = url::Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(
                "IMDS is served over plain http (link-local); use an http:// URL",
            ));
        }
        if url.host().is_none() {
            return Err(bad("the URL has no host"));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Ok(Self {
            base: url,
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
            retry: ImdsRetry::default(),
        })
    }

    /// Overrides the retry bounds.
    #[must_use]
    pub fn with_retry(mut self, retry: ImdsRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Overrides the per-request timeout (default 10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Compute metadata.
    pub async fn instance(&self) -> Result<InstanceMetadata, ImdsError> {
        let (url, body) = self.get("metadata/instance", INSTANCE_API_VERSION).await?;
        metadata::instance(&body).map_err(|source| ImdsError::Decode { url, source })
    }

    /// Load balancer metadata (empty when the VM is behind no load balancer).
    pub async fn load_balancer(&self) -> Result<LoadBalancerMetadata, ImdsError> {
        let (url, body) = self
            .get("metadata/loadbalancer", LOAD_BALANCER_API_VERSION)
            .await?;
        metadata::load_balancer(&body).map_err(|source| ImdsError::Decode { url, source })
    }

    /// GET with retries; returns the URL (for errors) and the body.
    async fn get(&self, path: &str, api_version: &str) -> Result<(String, Bytes), ImdsError> {
        let mut url = self.base.join(path).map_err(|e| ImdsError::BadUrl {
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .append_pair("format", "json");
        let url = url.to_string();
        let cap = self.retry.max_retry_after;
        let body = (|| self.get_once(&url))
            .retry(self.retry.backoff())
            .when(|e| e.is_retryable() && e.retry_after().is_none_or(|ra| ra <= cap))
            .adjust(|e, next| next.map(|d| e.retry_after().unwrap_or(d)))
            .await?;
        Ok((url, body))
    }

    async fn get_once(&self, url: &str) -> Result<Bytes, ImdsError> {
        let req = hyper::Request::get(url)
            .header("Metadata", "true")
            .body(Empty::new())
            .map_err(|e| ImdsError::BadUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|source| ImdsError::Request {
                    url: url.to_string(),
                    source,
                })?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|source| ImdsError::Body {
                    url: url.to_string(),
                    source,
                })?
                .to_bytes();
            if (200..300).contains(&status) {
                return Ok(body);
            }
            Err(ImdsError::Status {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned(),
                retry_after,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ImdsError::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            })?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn rejects_bad_base_urls() {
        for bad in [
            "not a url",
            "ftp://x/",
            "https://169.254.169.254/",
            "http://",
        ] {
            assert!(
                matches!(ImdsClient::new(bad), Err(ImdsError::BadUrl { .. })),
                "{bad}"
            );
        }
        assert!(ImdsClient::new("http://127.0.0.1:1/imds/vm").is_ok());
    }
}
