//! `Microsoft.Compute` resources: scale sets (model network profile), scale-set instances
//! (instance network profile configuration, NIC references, computer name) and plain VMs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::common::{Child, Extra, Resource, SubResource, null_default};

/// A virtual machine scale set (tags such as `aks-managed-poolName`, `aks-managed-gatewayIPPrefixSize`).
pub type VirtualMachineScaleSet = Resource<VirtualMachineScaleSetProperties>;

/// Scale set properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineScaleSetProperties {
    /// Stable unique ID (read-only): names the gateway's LB frontend and backend pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    /// Instance model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_machine_profile: Option<VmProfile>,
    /// Provisioning state (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The instance model of a scale set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmProfile {
    /// Network profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<VmssNetworkProfile>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Scale set model network profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssNetworkProfile {
    /// NIC configurations.
    #[serde(default, deserialize_with = "null_default")]
    pub network_interface_configurations: Vec<VmssNetworkInterfaceConfiguration>,
    /// Unmodelled fields (`healthProbe`, `networkApiVersion`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A NIC configuration of a scale set model or instance.
pub type VmssNetworkInterfaceConfiguration = Child<VmssNetworkInterfaceConfigurationProperties>;

/// NIC configuration properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssNetworkInterfaceConfigurationProperties {
    /// Primary NIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// IP configurations.
    #[serde(default, deserialize_with = "null_default")]
    pub ip_configurations: Vec<VmssIpConfiguration>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An IP configuration of a scale set NIC configuration (ours are `egressgateway-<uid>`).
pub type VmssIpConfiguration = Child<VmssIpConfigurationProperties>;

/// Scale set IP configuration properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssIpConfigurationProperties {
    /// Primary ipconfig of the NIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// `IPv4` or `IPv6`.
    #[serde(
        rename = "privateIPAddressVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_address_version: Option<String>,
    /// Subnet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubResource>,
    /// Per-instance public IP from a prefix.
    #[serde(
        rename = "publicIPAddressConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_address_configuration: Option<VmssPublicIpAddressConfiguration>,
    /// Load balancer backend pools.
    #[serde(default, deserialize_with = "null_default")]
    pub load_balancer_backend_address_pools: Vec<SubResource>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The public IP configuration of a scale set IP configuration.
pub type VmssPublicIpAddressConfiguration = Child<VmssPublicIpAddressConfigurationProperties>;

/// Per-instance public IP configuration properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmssPublicIpAddressConfigurationProperties {
    /// Prefix the instance IPs come from.
    #[serde(rename = "publicIPPrefix", skip_serializing_if = "Option::is_none")]
    pub public_ip_prefix: Option<SubResource>,
    /// `IPv4` (the default) or `IPv6`; must match the ipConfiguration's and the prefix's.
    #[serde(
        rename = "publicIPAddressVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_address_version: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A scale set instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssVm {
    /// Resource ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name, e.g. `vmss_0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Instance ID, e.g. `0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Etag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Properties.
    #[serde(default)]
    pub properties: VmssVmProperties,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Scale set instance properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssVmProperties {
    /// Provisioning state (`Failed` forces a re-update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// OS profile (computer name = Kubernetes node name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_profile: Option<OsProfile>,
    /// The instance's NICs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<VmNetworkProfile>,
    /// The instance's own NIC configurations (what an instance update changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_profile_configuration: Option<VmssVmNetworkProfileConfiguration>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// OS profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsProfile {
    /// Host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// NIC references of a VM or instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmNetworkProfile {
    /// NICs.
    #[serde(default, deserialize_with = "null_default")]
    pub network_interfaces: Vec<NetworkInterfaceReference>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A NIC reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterfaceReference {
    /// NIC resource ID.
    #[serde(default)]
    pub id: String,
    /// Properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<NetworkInterfaceReferenceProperties>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// NIC reference properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterfaceReferenceProperties {
    /// Primary NIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An instance's NIC configurations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssVmNetworkProfileConfiguration {
    /// NIC configurations.
    #[serde(default, deserialize_with = "null_default")]
    pub network_interface_configurations: Vec<VmssNetworkInterfaceConfiguration>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A virtual machine (VirtualMachines node pools).
pub type VirtualMachine = Resource<VirtualMachineProperties>;

/// VM properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineProperties {
    /// OS profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_profile: Option<OsProfile>,
    /// NICs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<VmNetworkProfile>,
    /// Provisioning state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl VirtualMachineScaleSet {
    /// The model's network profile, if any.
    pub fn network_profile(&self) -> Option<&VmssNetworkProfile> {
        self.properties
            .virtual_machine_profile
            .as_ref()?
            .network_profile
            .as_ref()
    }

    /// Tag value by key.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.as_ref()?.get(key).map(String::as_str)
    }
}

impl VmssVm {
    /// The instance's primary NIC reference (flagged primary, or the only one).
    pub fn primary_nic_id(&self) -> Option<&str> {
        let nics = &self.properties.network_profile.as_ref()?.network_interfaces;
        nics.iter()
            .find(|n| n.properties.as_ref().and_then(|p| p.primary) == Some(true))
            .or_else(|| (nics.len() == 1).then(|| &nics[0]))
            .map(|n| n.id.as_str())
    }

    /// Host name (`osProfile.computerName`), the Kubernetes node name.
    pub fn computer_name(&self) -> Option<&str> {
        self.properties
            .os_profile
            .as_ref()?
            .computer_name
            .as_deref()
    }
}
