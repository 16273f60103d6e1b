//! `Microsoft.Network` resources other than load balancers: subnets, network interfaces, public
//! IP prefixes and public IP addresses.

use serde::{Deserialize, Serialize};

use super::common::{Child, Extra, Resource, SubResource, null_default};

/// A subnet of a virtual network.
pub type Subnet = Child<SubnetProperties>;

/// Subnet properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProperties {
    /// Address prefix, e.g. `10.0.1.0/24`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_prefix: Option<String>,
    /// Address prefixes (multi-prefix subnets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_prefixes: Option<Vec<String>>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A network interface (also the shape of a scale-set instance NIC; tags such as `aks-managed-static-gateway-nic`).
pub type NetworkInterface = Resource<NetworkInterfaceProperties>;

/// Network interface properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterfaceProperties {
    /// IP configurations.
    #[serde(default, deserialize_with = "null_default")]
    pub ip_configurations: Vec<NetworkInterfaceIpConfiguration>,
    /// Whether this is the VM's primary NIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Attached VM (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_machine: Option<SubResource>,
    /// Provisioning state (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An IP configuration of a network interface.
pub type NetworkInterfaceIpConfiguration = Child<NetworkInterfaceIpConfigurationProperties>;

/// NIC IP configuration properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterfaceIpConfigurationProperties {
    /// Primary IP configuration of the NIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Allocated private IP.
    #[serde(rename = "privateIPAddress", skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    /// `IPv4` or `IPv6`.
    #[serde(
        rename = "privateIPAddressVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_address_version: Option<String>,
    /// `Dynamic` or `Static`.
    #[serde(
        rename = "privateIPAllocationMethod",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_allocation_method: Option<String>,
    /// Subnet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubResource>,
    /// Attached public IP (only `id` is needed on writes).
    #[serde(rename = "publicIPAddress", skip_serializing_if = "Option::is_none")]
    pub public_ip_address: Option<SubResource>,
    /// Load balancer backend pools this ipconfig belongs to.
    #[serde(default, deserialize_with = "null_default")]
    pub load_balancer_backend_address_pools: Vec<SubResource>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A public IP prefix.
pub type PublicIpPrefix = Resource<PublicIpPrefixProperties>;

/// Public IP prefix properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpPrefixProperties {
    /// Prefix length (28..=31 for IPv4 in practice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<u8>,
    /// `IPv4` or `IPv6`.
    #[serde(
        rename = "publicIPAddressVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_address_version: Option<String>,
    /// Allocated CIDR (read-only), e.g. `20.1.2.0/28`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_prefix: Option<String>,
    /// Public IPs allocated from the prefix (read-only).
    #[serde(
        rename = "publicIPAddresses",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub public_ip_addresses: Vec<SubResource>,
    /// Provisioning state (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A public IP address.
pub type PublicIpAddress = Resource<PublicIpAddressProperties>;

/// Public IP address properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicIpAddressProperties {
    /// `Static` or `Dynamic`.
    #[serde(
        rename = "publicIPAllocationMethod",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_allocation_method: Option<String>,
    /// `IPv4` or `IPv6`.
    #[serde(
        rename = "publicIPAddressVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_address_version: Option<String>,
    /// Allocated address (read-only).
    #[serde(rename = "ipAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Prefix to allocate from.
    #[serde(rename = "publicIPPrefix", skip_serializing_if = "Option::is_none")]
    pub public_ip_prefix: Option<SubResource>,
    /// Provisioning state (read-only).
    #[serde(rename = "provisioningState", skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl NetworkInterface {
    /// The primary IP configuration (the one flagged primary, or the only one).
    pub fn primary_ip_configuration(&self) -> Option<&NetworkInterfaceIpConfiguration> {
        let cfgs = &self.properties.ip_configurations;
        cfgs.iter()
            .find(|c| c.properties.primary == Some(true))
            .or_else(|| (cfgs.len() == 1).then(|| &cfgs[0]))
    }

    /// IP configuration by name.
    pub fn ip_configuration(&self, name: &str) -> Option<&NetworkInterfaceIpConfiguration> {
        self.properties.ip_configurations.iter().find(|c| {
            c.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}
