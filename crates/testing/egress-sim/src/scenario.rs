//! The scenario file: what cluster to simulate (workers, gateway pools, BYO prefixes,
//! manifests), strict parsing and the checks that make a scenario runnable.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// Subscription every simulated resource lives in (the emulator serves only this one).
pub const SUBSCRIPTION_ID: &str = "00000000-0000-0000-0000-000000000000";
/// Most worker nodes a scenario may ask for (each is a namespace and a cni-manager process).
pub const MAX_WORKERS: u32 = 16;
/// Most instances per gateway pool.
pub const MAX_INSTANCES: u32 = 8;

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Number of worker nodes (pods run here).
    pub workers: u32,
    /// Gateway node pools; each becomes a VMSS in the emulator and gateway nodes.
    #[serde(default)]
    pub gateway_pools: Vec<GatewayPool>,
    /// Pre-existing (bring-your-own) public IP prefixes.
    #[serde(default)]
    pub public_ip_prefixes: Vec<ByoPrefix>,
    /// Interval of the internal load balancer's health probes, in seconds (Azure: 5).
    #[serde(default = "default_probe_interval")]
    pub probe_interval_seconds: u32,
    /// How long `run` waits for every SGC and pod to become ready, in seconds.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_seconds: u32,
    /// Multi-document YAML applied once everything runs.
    #[serde(default)]
    pub manifests: String,
    /// Dual-stack cluster: the subnet, nodes, pods and the internet also have IPv6 (private
    /// `fd00::/8`, public `2001:db8::/32`), so an SGC with `ipFamilies: [IPv4, IPv6]` can be run.
    #[serde(default)]
    pub dual_stack: bool,
}

fn default_probe_interval() -> u32 {
    5
}

fn default_ready_timeout() -> u32 {
    180
}

/// One gateway node pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayPool {
    /// AKS node pool name (tag `aks-managed-poolName`).
    pub name: String,
    /// Scale-set name; also the prefix of the gateway nodes' computer names.
    pub vmss_name: String,
    /// Resource group of the scale set.
    pub resource_group: String,
    /// Number of gateway nodes.
    pub instances: u32,
    /// Tag `aks-managed-gatewayIPPrefixSize` (28–31).
    #[serde(default)]
    pub prefix_size: Option<u32>,
}

/// A bring-your-own public IP prefix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ByoPrefix {
    /// Full ARM ID of the prefix.
    pub id: String,
    /// Its length (28–31); the simulator picks the addresses.
    pub prefix_length: u32,
}

/// Parts of a BYO prefix ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixId {
    /// Resource group.
    pub resource_group: String,
    /// Prefix name.
    pub name: String,
}

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("failed to read scenario {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not valid YAML, unknown key, wrong type.
    #[error("failed to parse scenario {path}: {source}")]
    Parse {
        /// File.
        path: String,
        /// Cause (with line and column).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid scenario {path}: {field}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// Field path, e.g. `gatewayPools[0].instances`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario =
            serde_saphyr::from_str(text).map_err(|source| ScenarioError::Parse {
                path: origin.to_string(),
                source: Box::new(source),
            })?;
        scenario
            .check()
            .map_err(|(field, message)| ScenarioError::Invalid {
                path: origin.to_string(),
                field,
                message,
            })?;
        Ok(scenario)
    }

    /// The manifests as JSON documents (empty documents skipped).
    pub fn manifest_documents(&self) -> Result<Vec<Value>, (String, String)> {
        parse_manifests(&self.manifests)
    }

    fn check(&self) -> Result<(), (String, String)> {
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return Err((
                "workers".into(),
                format!("must be between 1 and {MAX_WORKERS}, got {}", self.workers),
            ));
        }
        if self.probe_interval_seconds == 0 || self.probe_interval_seconds > 60 {
            return Err((
                "probeIntervalSeconds".into(),
                format!(
                    "must be between 1 and 60, got {}",
                    self.probe_interval_seconds
                ),
            ));
        }
        if self.ready_timeout_seconds == 0 {
            return Err(("readyTimeoutSeconds".into(), "must be at least 1".into()));
        }
        let mut seen_vmss = Vec::new();
        let mut seen_pools = Vec::new();
        for (i, pool) in self.gateway_pools.iter().enumerate() {
            let at = |f: &str| format!("gatewayPools[{i}].{f}");
            check_name(&pool.name, 12, true).map_err(|m| (at("name"), m))?;
            check_name(&pool.vmss_name, 40, false).map_err(|m| (at("vmssName"), m))?;
            check_name(&pool.resource_group, 60, false).map_err(|m| (at("resourceGroup"), m))?;
            if pool.instances == 0 || pool.instances > MAX_INSTANCES {
                return Err((
                    at("instances"),
                    format!(
                        "must be between 1 and {MAX_INSTANCES}, got {}",
                        pool.instances
                    ),
                ));
            }
            if let Some(size) = pool.prefix_size {
                check_prefix_len(size).map_err(|m| (at("prefixSize"), m))?;
            }
            let vmss = pool.vmss_name.to_ascii_lowercase();
            if seen_vmss.contains(&vmss) || vmss == crate::seed::WORKER_VMSS {
                return Err((at("vmssName"), format!("{} is used twice", pool.vmss_name)));
            }
            seen_vmss.push(vmss);
            if seen_pools.contains(&pool.name) || pool.name == crate::seed::WORKER_POOL {
                return Err((at("name"), format!("node pool {} is used twice", pool.name)));
            }
            seen_pools.push(pool.name.clone());
        }
        let mut seen_ids = Vec::new();
        for (i, prefix) in self.public_ip_prefixes.iter().enumerate() {
            let at = |f: &str| format!("publicIpPrefixes[{i}].{f}");
            parse_prefix_id(&prefix.id).map_err(|m| (at("id"), m))?;
            check_prefix_len(prefix.prefix_length).map_err(|m| (at("prefixLength"), m))?;
            let id = prefix.id.to_ascii_lowercase();
            if seen_ids.contains(&id) {
                return Err((at("id"), "the same prefix is listed twice".into()));
            }
            seen_ids.push(id);
        }
        let docs = self.manifest_documents()?;
        for (i, doc) in docs.iter().enumerate() {
            check_document(doc).map_err(|m| (format!("manifests[{i}]"), m))?;
        }
        Ok(())
    }
}

/// Splits a BYO prefix ID into resource group and name.
pub fn parse_prefix_id(id: &str) -> Result<PrefixId, String> {
    let parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    let shape_ok = parts.len() == 8
        && parts[0].eq_ignore_ascii_case("subscriptions")
        && parts[2].eq_ignore_ascii_case("resourceGroups")
        && parts[4].eq_ignore_ascii_case("providers")
        && parts[5].eq_ignore_ascii_case("Microsoft.Network")
        && parts[6].eq_ignore_ascii_case("publicIPPrefixes")
        && parts.iter().all(|p| !p.is_empty());
    if !id.starts_with('/') || !shape_ok {
        return Err(format!(
            "{id:?} is not a public IP prefix ID \
             (/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Network/publicIPPrefixes/NAME)"
        ));
    }
    if !parts[1].eq_ignore_ascii_case(SUBSCRIPTION_ID) {
        return Err(format!(
            "subscription {} is not the simulated subscription {SUBSCRIPTION_ID}",
            parts[1]
        ));
    }
    Ok(PrefixId {
        resource_group: parts[3].to_string(),
        name: parts[7].to_string(),
    })
}

fn check_prefix_len(len: u32) -> Result<(), String> {
    if (28..=31).contains(&len) {
        Ok(())
    } else {
        Err(format!(
            "must be between 28 and 31 (Azure's public IP prefix limits), got {len}"
        ))
    }
}

fn check_name(name: &str, max: usize, lower_alnum: bool) -> Result<(), String> {
    let ok_char = |c: char| {
        if lower_alnum {
            c.is_ascii_lowercase() || c.is_ascii_digit()
        } else {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        }
    };
    if name.is_empty() || name.len() > max || !name.chars().all(ok_char) {
        let allowed = if lower_alnum {
            "lower-case letters and digits"
        } else {
            "letters, digits, '-' and '_'"
        };
        return Err(format!(
            "{name:?} must be 1 to {max} characters of {allowed}"
        ));
    }
    Ok(())
}

/// Parses multi-document YAML into JSON values, skipping empty documents.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, (String, String)> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| ("manifests".to_string(), format!("not valid YAML: {e}")))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn check_document(doc: &Value) -> Result<(), String> {
    let Some(obj) = doc.as_object() else {
        return Err("a document must be a mapping".into());
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = doc.pointer("/metadata/name").and_then(Value::as_str);
    if api_version.is_empty() || kind.is_empty() {
        return Err("apiVersion and kind are required".into());
    }
    if name.is_none_or(str::is_empty) {
        return Err(format!("{kind} has no metadata.name"));
    }
    if kind == "Deployment" {
        let replicas = doc
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if replicas > 64 {
            return Err(format!(
                "Deployment replicas must be at most 64, got {replicas}"
            ));
        }
        if doc.pointer("/spec/template/spec").is_none() {
            return Err("Deployment has no spec.template.spec".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const GOOD: &str = r#"
workers: 2
gatewayPools:
  - name: gwpool
    vmssName: gw-vmss
    resourceGroup: rg-nodes
    instances: 2
    prefixSize: 31
publicIpPrefixes:
  - id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-egress/providers/Microsoft.Network/publicIPPrefixes/byo
    prefixLength: 30
manifests: |
  apiVersion: v1
  kind: Namespace
  metadata: {name: demo}
  ---
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: demo}
  spec:
    replicas: 2
    template:
      spec: {containers: [{name: c, image: x}]}
"#;

    fn err(text: &str) -> String {
        Scenario::parse(text, "s.yaml").unwrap_err().to_string()
    }

    #[test]
    fn parses_the_issue_schema_with_defaults() {
        let s = Scenario::parse(GOOD, "s.yaml").unwrap();
        assert_eq!(s.workers, 2);
        assert_eq!(s.gateway_pools[0].prefix_size, Some(31));
        assert_eq!(s.public_ip_prefixes[0].prefix_length, 30);
        assert_eq!(s.probe_interval_seconds, 5);
        let docs = s.manifest_documents().unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["kind"], "Deployment");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err("workers: 1\nworkerz: 2\n");
        assert!(e.contains("workerz"), "{e}");
        let e = err(
            "workers: 1\ngatewayPools: [{name: a, vmssName: b, resourceGroup: c, instances: 1, size: 3}]\n",
        );
        assert!(e.contains("size"), "{e}");
    }

    #[test]
    fn bad_counts_name_the_field() {
        assert!(err("workers: 0\n").contains("workers: must be between 1 and 16, got 0"));
        let e = err(
            "workers: 1\ngatewayPools: [{name: a, vmssName: b, resourceGroup: c, instances: 0}]\n",
        );
        assert!(e.contains("gatewayPools[0].instances"), "{e}");
        let e = err(
            "workers: 1\ngatewayPools: [{name: a, vmssName: b, resourceGroup: c, instances: 1, prefixSize: 27}]\n",
        );
        assert!(
            e.contains("gatewayPools[0].prefixSize: must be between 28 and 31"),
            "{e}"
        );
        assert!(err("workers: -1\n").contains("s.yaml"));
    }

    #[test]
    fn prefix_ids_are_checked() {
        let e =
            err("workers: 1\npublicIpPrefixes: [{id: /subscriptions/x/foo, prefixLength: 31}]\n");
        assert!(
            e.contains("publicIpPrefixes[0].id") && e.contains("not a public IP prefix ID"),
            "{e}"
        );
        let e = err(
            "workers: 1\npublicIpPrefixes: [{id: /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Network/publicIPPrefixes/N, prefixLength: 31}]\n",
        );
        assert!(e.contains("not the simulated subscription"), "{e}");
        let id = parse_prefix_id("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/RG/providers/Microsoft.Network/publicIPPrefixes/N").unwrap();
        assert_eq!((id.resource_group.as_str(), id.name.as_str()), ("RG", "N"));
    }

    #[test]
    fn duplicate_pools_and_bad_manifests_are_refused() {
        let e = err(
            "workers: 1\ngatewayPools: [{name: a, vmssName: v, resourceGroup: c, instances: 1}, {name: b, vmssName: V, resourceGroup: c, instances: 1}]\n",
        );
        assert!(
            e.contains("gatewayPools[1].vmssName: V is used twice"),
            "{e}"
        );
        let e = err("workers: 1\nmanifests: |\n  apiVersion: v1\n  kind: Pod\n");
        assert!(e.contains("manifests[0]: Pod has no metadata.name"), "{e}");
        let e = err("workers: 1\nmanifests: \"a: [\"\n");
        assert!(e.contains("not valid YAML"), "{e}");
    }
}
