//! `Microsoft.Network/loadBalancers` and its children (frontends, backend pools, probes, rules).

use serde::{Deserialize, Serialize};

use super::common::{Child, Extra, Resource, SubResource, null_default};

/// A load balancer.
pub type LoadBalancer = Resource<LoadBalancerProperties>;

/// Load balancer properties. Collections are always sent (a PUT replaces them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerProperties {
    /// Frontend IP configurations.
    #[serde(
        rename = "frontendIPConfigurations",
        default,
        deserialize_with = "null_default"
    )]
    pub frontend_ip_configurations: Vec<FrontendIpConfiguration>,
    /// Backend address pools.
    #[serde(default, deserialize_with = "null_default")]
    pub backend_address_pools: Vec<BackendAddressPool>,
    /// Load balancing rules.
    #[serde(default, deserialize_with = "null_default")]
    pub load_balancing_rules: Vec<LoadBalancingRule>,
    /// Health probes.
    #[serde(default, deserialize_with = "null_default")]
    pub probes: Vec<Probe>,
    /// Provisioning state (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A frontend IP configuration.
pub type FrontendIpConfiguration = Child<FrontendIpConfigurationProperties>;

/// Frontend IP configuration properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrontendIpConfigurationProperties {
    /// Allocated private IP.
    #[serde(rename = "privateIPAddress", skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    /// `Dynamic` or `Static`.
    #[serde(
        rename = "privateIPAllocationMethod",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_allocation_method: Option<String>,
    /// `IPv4` or `IPv6`.
    #[serde(
        rename = "privateIPAddressVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_address_version: Option<String>,
    /// Subnet of a private frontend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubResource>,
    /// Public IP of a public frontend.
    #[serde(rename = "publicIPAddress", skip_serializing_if = "Option::is_none")]
    pub public_ip_address: Option<SubResource>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A backend address pool (membership is set on NIC ip configurations, not here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendAddressPool {
    /// Resource ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Properties (not modelled).
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub properties: Extra,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A health probe.
pub type Probe = Child<ProbeProperties>;

/// Probe properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeProperties {
    /// `Http`, `Https` or `Tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Probed port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// HTTP path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_path: Option<String>,
    /// Interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_in_seconds: Option<u32>,
    /// Consecutive results to change state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_threshold: Option<u32>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A load-balancing rule.
pub type LoadBalancingRule = Child<LoadBalancingRuleProperties>;

/// Load balancing rule properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancingRuleProperties {
    /// `Udp`, `Tcp` or `All`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Frontend port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontend_port: Option<u16>,
    /// Backend port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_port: Option<u16>,
    /// Floating IP (direct server return).
    #[serde(rename = "enableFloatingIP", skip_serializing_if = "Option::is_none")]
    pub enable_floating_ip: Option<bool>,
    /// Frontend.
    #[serde(
        rename = "frontendIPConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub frontend_ip_configuration: Option<SubResource>,
    /// Backend pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_address_pool: Option<SubResource>,
    /// Probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<SubResource>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl LoadBalancer {
    /// Frontend by name (ARM names compare case-insensitively).
    pub fn frontend(&self, name: &str) -> Option<&FrontendIpConfiguration> {
        self.properties.frontend_ip_configurations.iter().find(|f| {
            f.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// Rule by name.
    pub fn rule(&self, name: &str) -> Option<&LoadBalancingRule> {
        self.properties.load_balancing_rules.iter().find(|r| {
            r.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}
