//! [`ArmClient`]: the azure_core pipeline (user agent, request id, auth, transport) plus our
//! retry loop, metrics and JSON helpers (get, list with `nextLink`, PUT/PATCH/DELETE with LRO).
//! Resource-specific operations live in `ops`; LRO polling in `lro`.

mod builder;

use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{Context, Method, Pipeline, PipelineSendOptions, Request, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{ArmError, ArmErrorBody};
use crate::lro::LroPolicy;
use crate::metrics::ArmMetrics;
use crate::retry::{RetryPolicy, is_retryable_status, retry_after};

pub use builder::{ArmClientBuilder, ClientBuildError};

/// Typed access to Azure Resource Manager. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pipeline: Pipeline,
    endpoint: Url,
    retry: RetryPolicy,
    lro: LroPolicy,
    metrics: ArmMetrics,
}

/// One ARM HTTP request, re-sendable by the retry loop.
#[derive(Debug, Clone)]
pub(crate) struct ArmRequest {
    pub operation: &'static str,
    pub method: Method,
    pub url: Url,
    pub body: Option<Vec<u8>>,
    pub if_match: Option<String>,
    /// PUT/DELETE/GET (and our absolute-value PATCHes) may be re-sent after a 5xx or a lost
    /// response; POST may not.
    pub idempotent: bool,
}

/// A response with the body read.
#[derive(Debug)]
pub(crate) struct ArmResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl ArmResponse {
    pub(crate) fn header(&self, name: &'static str) -> Option<&str> {
        self.headers
            .get_optional_str(&HeaderName::from_static(name))
    }
}

impl ArmClient {
    /// The client's metrics.
    pub fn metrics(&self) -> &ArmMetrics {
        &self.inner.metrics
    }

    pub(crate) fn lro_policy(&self) -> &LroPolicy {
        &self.inner.lro
    }

    /// `{endpoint}{path}?api-version=..`; `path` is a resource ID or a collection path under one.
    pub(crate) fn url(&self, path: &str, api_version: &str) -> Url {
        let mut url = self.inner.endpoint.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}{path}"));
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        url
    }

    /// Sends with retries; returns the 2xx response or the classified error.
    pub(crate) async fn execute(&self, req: &ArmRequest) -> Result<ArmResponse, ArmError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let outcome = self.send_once(req).await;
            let (error, wait_hint) = match outcome {
                Ok(resp) if (200..300).contains(&resp.status) => return Ok(resp),
                Ok(resp) => {
                    let ra = retry_after(&resp.headers);
                    let err = ArmError::from_status(
                        req.operation,
                        resp.status,
                        ArmErrorBody::parse(&resp.body),
                        ra,
                    );
                    if !is_retryable_status(resp.status, req.idempotent) {
                        return Err(err);
                    }
                    (err, ra)
                }
                Err(e) => {
                    use azure_core::error::ErrorKind;
                    // Connection: never sent, safe for any method. Io: may have been processed.
                    let retryable = match e.kind() {
                        ErrorKind::Connection | ErrorKind::Credential => true,
                        ErrorKind::Io => req.idempotent,
                        _ => false,
                    };
                    if !retryable {
                        return Err(ArmError::request_failed(req.operation, e));
                    }
                    (ArmError::transport(req.operation, e), None)
                }
            };
            match self
                .inner
                .retry
                .next_delay(attempt, wait_hint, started.elapsed())
            {
                Some(delay) => {
                    tracing::debug!(operation = req.operation, attempt, ?delay, error = %error, "retrying ARM request");
                    self.inner.metrics.record_retry(req.operation);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => return Err(error),
            }
        }
    }

    async fn send_once(&self, req: &ArmRequest) -> azure_core::Result<ArmResponse> {
        let mut request = Request::new(req.url.clone(), req.method);
        request.insert_header("accept", "application/json");
        if let Some(body) = &req.body {
            request.insert_header("content-type", "application/json");
            request.set_body(body.clone());
        }
        if let Some(etag) = &req.if_match {
            request.insert_header("if-match", etag.clone());
        }
        let result = self
            .inner
            .pipeline
            .send(
                &Context::new(),
                &mut request,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await;
        let method = req.method.as_str();
        match result {
            Ok(raw) => {
                let (status, headers, body) = raw.deconstruct();
                let status = u16::from(status);
                self.inner
                    .metrics
                    .record_request(req.operation, method, Some(status));
                Ok(ArmResponse {
                    status,
                    headers,
                    body: body.to_vec(),
                })
            }
            Err(e) => {
                self.inner
                    .metrics
                    .record_request(req.operation, method, None);
                Err(e)
            }
        }
    }

    /// GET a resource.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        api_version: &str,
    ) -> Result<T, ArmError> {
        let resp = self
            .execute(&ArmRequest {
                operation,
                method: Method::Get,
                url: self.url(path, api_version),
                body: None,
                if_match: None,
                idempotent: true,
            })
            .await?;
        decode(operation, &resp.body)
    }

    /// GET a collection, following `nextLink` pages.
    pub(crate) async fn list_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        api_version: &str,
    ) -> Result<Vec<T>, ArmError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            next_link: Option<String>,
        }
        let mut out = Vec::new();
        let mut url = self.url(path, api_version);
        loop {
            let resp = self
                .execute(&ArmRequest {
                    operation,
                    method: Method::Get,
                    url: url.clone(),
                    body: None,
                    if_match: None,
                    idempotent: true,
                })
                .await?;
            let page: Page<T> = decode(operation, &resp.body)?;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) => {
                    url = Url::parse(&next).map_err(|e| {
                        ArmError::from_status(
                            operation,
                            502,
                            ArmErrorBody::new("InvalidNextLink", format!("{next:?}: {e}")),
                            None,
                        )
                    })?;
                }
                None => return Ok(out),
            }
        }
    }

    /// PUT (create or replace) and wait for the long-running operation; returns the final GET.
    pub(crate) async fn put_json<B: Serialize, T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        api_version: &str,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<T, ArmError> {
        self.write_json(operation, Method::Put, path, api_version, body, if_match)
            .await
    }

    /// PATCH (partial update with absolute values, so re-sending is safe) and wait.
    pub(crate) async fn patch_json<B: Serialize, T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        api_version: &str,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<T, ArmError> {
        self.write_json(operation, Method::Patch, path, api_version, body, if_match)
            .await
    }

    async fn write_json<B: Serialize, T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        api_version: &str,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<T, ArmError> {
        let body = serde_json::to_vec(body).map_err(|e| ArmError::decode(operation, e))?;
        let url = self.url(path, api_version);
        let req = ArmRequest {
            operation,
            method,
            url: url.clone(),
            body: Some(body),
            if_match: if_match.map(str::to_string),
            idempotent: true,
        };
        let started = Instant::now();
        let resp = self.execute(&req).await?;
        let final_body = crate::lro::complete(self, operation, &url, resp, started).await?;
        match final_body {
            Some(bytes) => decode(operation, &bytes),
            None => self.get_json(operation, path, api_version).await,
        }
    }

    /// DELETE and wait. A resource that is already gone (204/404) counts as deleted.
    pub(crate) async fn delete(
        &self,
        operation: &'static str,
        path: &str,
        api_version: &str,
    ) -> Result<(), ArmError> {
        let url = self.url(path, api_version);
        let req = ArmRequest {
            operation,
            method: Method::Delete,
            url: url.clone(),
            body: None,
            if_match: None,
            idempotent: true,
        };
        let started = Instant::now();
        match self.execute(&req).await {
            Ok(resp) => crate::lro::complete_delete(self, operation, &url, resp, started).await,
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(
    operation: &'static str,
    body: &[u8],
) -> Result<T, ArmError> {
    serde_json::from_slice(body).map_err(|e| ArmError::decode(operation, e))
}

#[cfg(test)]
mod tests;
