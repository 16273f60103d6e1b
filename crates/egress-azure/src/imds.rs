//! Azure Instance Metadata Service client (what a gateway node learns about itself): compute
//! metadata (names, resource group, subscription, location, tags) and load balancer metadata.
//! The base URL is configurable so tests and the simulator can serve it from an emulator.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::api_versions::{IMDS_INSTANCE, IMDS_LOAD_BALANCER};
use crate::retry::RetryPolicy;

/// The link-local IMDS endpoint.
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254/";

/// Why metadata could not be read.
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
    /// The HTTP client could not be built.
    #[error("failed to build the IMDS HTTP client")]
    Transport(#[source] crate::TransportError),
    /// No response (after retries).
    #[error("failed to reach IMDS at {url}")]
    Request {
        /// Request URL.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// A non-success status (after retries for 410/429/5xx).
    #[error("failed to read IMDS {url}: HTTP {status}: {body}")]
    Status {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Response text (truncated).
        body: String,
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

/// Compute metadata of this VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceMetadata {
    /// VM name (`compute.name`), e.g. `aks-gw-12345-vmss_0`.
    pub name: String,
    /// Host name (`compute.osProfile.computerName`), the Kubernetes node name.
    pub computer_name: String,
    /// Scale set name; empty for a standalone VM.
    pub vm_scale_set_name: String,
    /// Resource group.
    pub resource_group_name: String,
    /// Subscription.
    pub subscription_id: String,
    /// Region.
    pub location: String,
    /// VM tags (from `tagsList`, else the `k:v;k:v` string).
    pub tags: BTreeMap<String, String>,
}

/// One frontend of the load balancer metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerIp {
    /// Frontend address.
    pub frontend_ip_address: String,
    /// This VM's address behind it.
    pub private_ip_address: String,
}

/// Load balancer metadata of this VM (`/metadata/loadbalancer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerMetadata {
    /// Public frontends.
    pub public_ip_addresses: Vec<LoadBalancerIp>,
    /// Outbound rules' frontends.
    pub outbound_rules: Vec<LoadBalancerIp>,
    /// Inbound rules, kept raw (not used by the gateway).
    pub inbound_rules: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Instance {
    compute: Compute,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Compute {
    name: String,
    vm_scale_set_name: String,
    resource_group_name: String,
    subscription_id: String,
    location: String,
    tags: String,
    tags_list: Option<Vec<Tag>>,
    os_profile: OsProfile,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct OsProfile {
    computer_name: String,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct LbEnvelope {
    loadbalancer: Option<LoadBalancerMetadata>,
}

/// Parses the legacy `tags` string `k1:v1;k2:v2` (values may contain `:`).
fn parse_tag_string(s: &str) -> BTreeMap<String, String> {
    s.split(';')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// IMDS client.
#[derive(Debug, Clone)]
pub struct ImdsClient {
    base: url::Url,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl ImdsClient {
    /// A client for `base` (e.g. [`DEFAULT_IMDS_URL`] or an emulator's per-VM URL).
    pub fn new(base: &str) -> Result<Self, ImdsError> {
        let bad = |reason: String| ImdsError::BadUrl {
            url: base.to_string(),
            reason,
        };
        let mut url = url::Url::parse(base).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must be http(s)".into()));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Self {
            base: url,
            http: crate::transport::imds_http_client(Duration::from_secs(10))
                .map_err(ImdsError::Transport)?,
            retry: RetryPolicy {
                max_retries: 3,
                initial_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(2),
                max_retry_after: Duration::from_secs(5),
                budget: Duration::from_secs(30),
            },
        })
    }

    /// Overrides the retry policy (IMDS answers 410 while a VM boots, 429 when pressed).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Compute metadata.
    pub async fn instance(&self) -> Result<InstanceMetadata, ImdsError> {
        let (url, body) = self.get("metadata/instance", IMDS_INSTANCE).await?;
        let parsed: Instance =
            serde_json::from_slice(&body).map_err(|source| ImdsError::Decode { url, source })?;
        let c = parsed.compute;
        let tags = match c.tags_list {
            Some(list) => list.into_iter().map(|t| (t.name, t.value)).collect(),
            None => parse_tag_string(&c.tags),
        };
        Ok(InstanceMetadata {
            name: c.name,
            computer_name: c.os_profile.computer_name,
            vm_scale_set_name: c.vm_scale_set_name,
            resource_group_name: c.resource_group_name,
            subscription_id: c.subscription_id,
            location: c.location,
            tags,
        })
    }

    /// Load balancer metadata (empty when the VM is behind no load balancer).
    pub async fn load_balancer(&self) -> Result<LoadBalancerMetadata, ImdsError> {
        let (url, body) = self
            .get("metadata/loadbalancer", IMDS_LOAD_BALANCER)
            .await?;
        let parsed: LbEnvelope =
            serde_json::from_slice(&body).map_err(|source| ImdsError::Decode { url, source })?;
        Ok(parsed.loadbalancer.unwrap_or_default())
    }

    async fn get(&self, path: &str, api_version: &str) -> Result<(String, Vec<u8>), ImdsError> {
        let mut url = self.base.join(path).map_err(|e| ImdsError::BadUrl {
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .append_pair("format", "json");
        let text = url.to_string();
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let result = self
                .http
                .get(url.clone())
                .header("Metadata", "true")
                .send()
                .await;
            let (err, hint) = match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let hint = crate::retry::retry_after(&to_headers(resp.headers()));
                    let body = resp.bytes().await.map_err(|source| ImdsError::Request {
                        url: text.clone(),
                        source,
                    })?;
                    if (200..300).contains(&status) {
                        return Ok((text, body.to_vec()));
                    }
                    let err = ImdsError::Status {
                        url: text.clone(),
                        status,
                        body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
                    };
                    if !matches!(status, 410 | 429 | 500..=599) {
                        return Err(err);
                    }
                    (err, hint)
                }
                Err(source) => (
                    ImdsError::Request {
                        url: text.clone(),
                        source,
                    },
                    None,
                ),
            };
            match self.retry.next_delay(attempt, hint, started.elapsed()) {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
                None => return Err(err),
            }
        }
    }
}

fn to_headers(map: &reqwest::header::HeaderMap) -> azure_core::http::headers::Headers {
    let mut h = azure_core::http::headers::Headers::new();
    for (k, v) in map {
        if let Ok(v) = v.to_str() {
            h.insert(k.as_str().to_string(), v.to_string());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tag_string_parsing_keeps_colons_in_values() {
        let t = parse_tag_string("aks-managed-poolName:gw;url:http://x;empty");
        assert_eq!(t["aks-managed-poolName"], "gw");
        assert_eq!(t["url"], "http://x");
        assert_eq!(t["empty"], "");
        assert!(parse_tag_string("").is_empty());
    }

    #[test]
    fn rejects_bad_base_urls() {
        assert!(matches!(
            ImdsClient::new("not a url"),
            Err(ImdsError::BadUrl { .. })
        ));
        assert!(matches!(
            ImdsClient::new("ftp://x/"),
            Err(ImdsError::BadUrl { .. })
        ));
    }
}
