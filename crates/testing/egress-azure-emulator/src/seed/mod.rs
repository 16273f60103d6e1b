//! The seed: the inventory the emulator starts with (YAML or JSON, schema in
//! docs/azure-emulator.md), and the default inventory used without `--seed`.

mod apply;

pub(crate) use apply::apply;

use crate::error::EmulatorError;
use crate::forms::ResponseForm;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Subscription of the default inventory.
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
/// Tenant of the default inventory.
pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-000000000001";

fn default_subscription() -> String {
    DEFAULT_SUBSCRIPTION.into()
}
fn default_tenant() -> String {
    DEFAULT_TENANT.into()
}
fn default_location() -> String {
    "eastus".into()
}
fn default_vm_size() -> String {
    "Standard_D2s_v3".into()
}
fn default_prefix_pools() -> Vec<Ipv4Net> {
    vec![Ipv4Net::new(Ipv4Addr::new(203, 0, 113, 0), 24).unwrap_or_default()]
}
fn default_address_pools() -> Vec<Ipv4Net> {
    vec![Ipv4Net::new(Ipv4Addr::new(198, 51, 100, 0), 24).unwrap_or_default()]
}
/// 2001:db8:fffe::/48, inside the IPv6 documentation range 2001:db8::/32.
fn default_ipv6_prefix_pools() -> Vec<Ipv6Net> {
    vec![Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0xfffe, 0, 0, 0, 0, 0), 48).unwrap_or_default()]
}
/// 2001:db8:ffff::/64, inside the IPv6 documentation range 2001:db8::/32.
fn default_ipv6_address_pools() -> Vec<Ipv6Net> {
    vec![Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0), 64).unwrap_or_default()]
}

/// The whole seed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Subscription ID every resource lives in.
    #[serde(default = "default_subscription")]
    pub subscription_id: String,
    /// Tenant ID (answered by the token endpoint and IMDS).
    #[serde(default = "default_tenant")]
    pub tenant_id: String,
    /// Default location of everything.
    #[serde(default = "default_location")]
    pub location: String,
    /// Resource groups (groups referenced elsewhere are created implicitly).
    #[serde(default)]
    pub resource_groups: Vec<SeedResourceGroup>,
    /// Virtual networks with their subnets.
    #[serde(default)]
    pub virtual_networks: Vec<SeedVirtualNetwork>,
    /// Scale sets (gateway pools), with their instances and NICs.
    #[serde(default)]
    pub scale_sets: Vec<SeedScaleSet>,
    /// Pre-existing (BYO) public IP prefixes.
    #[serde(default)]
    pub public_ip_prefixes: Vec<SeedPublicIpPrefix>,
    /// Standalone NICs (AKS pre-creates them for VirtualMachines pools).
    #[serde(default)]
    pub network_interfaces: Vec<SeedNetworkInterface>,
    /// Standalone VMs (AKS VirtualMachines pools).
    #[serde(default)]
    pub virtual_machines: Vec<SeedVirtualMachine>,
    /// Where new public IP prefixes and standalone public IPs come from.
    #[serde(default)]
    pub public_ip_pools: SeedPublicIpPools,
    /// Response forms of long-running operations: operation name or glob → form
    /// (`async`, `location`, `both`, `accepted`, `polled`, `done`).
    #[serde(default, with = "forms_map")]
    pub response_forms: Vec<(String, ResponseForm)>,
}

/// `responseForms` is a YAML map in the file and an ordered list in the struct.
mod forms_map {
    use super::ResponseForm;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(v: &[(String, ResponseForm)], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .cloned()
            .collect::<BTreeMap<String, ResponseForm>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, ResponseForm)>, D::Error> {
        Ok(BTreeMap::<String, ResponseForm>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// A resource group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedResourceGroup {
    /// Name.
    pub name: String,
    /// Location (default: the seed's).
    #[serde(default)]
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A virtual network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVirtualNetwork {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Address space, IPv4 and IPv6 (default: the subnets' ranges).
    #[serde(default)]
    pub address_space: Vec<IpNet>,
    /// Subnets.
    pub subnets: Vec<SeedSubnet>,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSubnet {
    /// Name.
    pub name: String,
    /// CIDR (Azure reserves the first four and the last address).
    pub address_prefix: Ipv4Net,
    /// IPv6 range of a dual-stack subnet (private, e.g. `fd00:10::/64`); the subnet then has
    /// `addressPrefixes: [addressPrefix, ipv6AddressPrefix]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address_prefix: Option<Ipv6Net>,
}

/// A scale set and its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedScaleSet {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Number of instances (IDs 0..N).
    pub instances: u32,
    /// Computer-name prefix (default: the name); instance i is `<prefix><i as 6 base-36 digits>`.
    #[serde(default)]
    pub computer_name_prefix: Option<String>,
    /// Subnet as `vnet/subnet`, a subnet name, or a full ID (default: the first subnet).
    #[serde(default)]
    pub subnet: Option<String>,
    /// Name of the NIC configuration (default: the scale set name).
    #[serde(default)]
    pub nic_name: Option<String>,
    /// Tags, e.g. `aks-managed-poolName`, `aks-managed-gatewayIPPrefixSize`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// VM size.
    #[serde(default = "default_vm_size")]
    pub vm_size: String,
    /// Fixed `properties.uniqueId` (default: random).
    #[serde(default)]
    pub unique_id: Option<String>,
    /// Dual-stack nodes, as AKS builds them: the NIC configuration gets a secondary IPv6
    /// ipConfiguration `ipconfigv6` (the subnet needs `ipv6AddressPrefix`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dual_stack: bool,
}

/// A pre-existing public IP prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPublicIpPrefix {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// The range (use documentation ranges: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24;
    /// IPv6 2001:db8::/32). Its version follows; lengths as Azure offers (IPv4 /28–/31, IPv6
    /// /124–/127).
    pub ip_prefix: IpNet,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A standalone NIC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedNetworkInterface {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Subnet as for scale sets.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Static primary private IP (default: dynamic).
    #[serde(default)]
    pub private_ip: Option<Ipv4Addr>,
    /// A secondary IPv6 ipConfiguration `ipconfigv6` from the subnet's IPv6 range.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dual_stack: bool,
    /// Tags, e.g. `aks-managed-static-gateway-nic`, `aks-managed-poolName`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A standalone VM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVirtualMachine {
    /// Name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Computer name (default: the name).
    #[serde(default)]
    pub computer_name: Option<String>,
    /// Names of seed NICs (same resource group) attached to it, primary first. Empty: a NIC
    /// `<name>-nic` is created in `subnet`.
    #[serde(default)]
    pub network_interfaces: Vec<String>,
    /// Subnet for the implicit NIC.
    #[serde(default)]
    pub subnet: Option<String>,
    /// The implicit NIC is dual-stack (as `networkInterfaces[].dualStack`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dual_stack: bool,
    /// Tags, e.g. `aks-managed-poolName`, `aks-managed-nic-name`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// VM size.
    #[serde(default = "default_vm_size")]
    pub vm_size: String,
}

/// Public address pools of the emulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPublicIpPools {
    /// Ranges new public IP prefixes are carved from (default 203.0.113.0/24).
    #[serde(default = "default_prefix_pools")]
    pub prefixes: Vec<Ipv4Net>,
    /// Ranges standalone public IPs come from (default 198.51.100.0/24).
    #[serde(default = "default_address_pools")]
    pub addresses: Vec<Ipv4Net>,
    /// Ranges new IPv6 public IP prefixes are carved from (default 2001:db8:fffe::/48).
    #[serde(default = "default_ipv6_prefix_pools")]
    pub ipv6_prefixes: Vec<Ipv6Net>,
    /// Ranges standalone IPv6 public IPs come from (default 2001:db8:ffff::/64).
    #[serde(default = "default_ipv6_address_pools")]
    pub ipv6_addresses: Vec<Ipv6Net>,
}

impl SeedPublicIpPools {
    /// Prefix pools of both families, IPv4 first.
    pub(crate) fn all_prefixes(&self) -> Vec<IpNet> {
        let v4 = self.prefixes.iter().map(|n| IpNet::V4(*n));
        v4.chain(self.ipv6_prefixes.iter().map(|n| IpNet::V6(*n)))
            .collect()
    }

    /// Standalone address pools of both families, IPv4 first.
    pub(crate) fn all_addresses(&self) -> Vec<IpNet> {
        let v4 = self.addresses.iter().map(|n| IpNet::V4(*n));
        v4.chain(self.ipv6_addresses.iter().map(|n| IpNet::V6(*n)))
            .collect()
    }
}

impl Default for SeedPublicIpPools {
    fn default() -> Self {
        Self {
            prefixes: default_prefix_pools(),
            addresses: default_address_pools(),
            ipv6_prefixes: default_ipv6_prefix_pools(),
            ipv6_addresses: default_ipv6_address_pools(),
        }
    }
}

/// The default seed, also shipped as `seeds/default.yaml`.
pub const DEFAULT_SEED_YAML: &str = include_str!("../../seeds/default.yaml");

impl Default for Seed {
    /// The default inventory: subscription `00000000-0000-0000-0000-000000000000`, resource group
    /// `rg-egress` in `eastus`, VNet `aks-vnet` 10.0.0.0/16 with subnet `aks-subnet`
    /// 10.0.0.0/24, scale set `gw-vmss` (pool `gwpool`, prefix size 31) with two instances, and a
    /// BYO prefix `byo-prefix` 192.0.2.0/31.
    fn default() -> Self {
        Self {
            subscription_id: default_subscription(),
            tenant_id: default_tenant(),
            location: default_location(),
            resource_groups: vec![SeedResourceGroup {
                name: "rg-egress".into(),
                location: None,
                tags: BTreeMap::new(),
            }],
            virtual_networks: vec![SeedVirtualNetwork {
                name: "aks-vnet".into(),
                resource_group: "rg-egress".into(),
                address_space: vec![IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 16).unwrap_or_default(),
                )],
                subnets: vec![SeedSubnet {
                    name: "aks-subnet".into(),
                    address_prefix: Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 24)
                        .unwrap_or_default(),
                    ipv6_address_prefix: None,
                }],
            }],
            scale_sets: vec![SeedScaleSet {
                name: "gw-vmss".into(),
                resource_group: "rg-egress".into(),
                instances: 2,
                computer_name_prefix: None,
                subnet: None,
                nic_name: None,
                tags: BTreeMap::from([
                    ("aks-managed-poolName".into(), "gwpool".into()),
                    ("aks-managed-gatewayIPPrefixSize".into(), "31".into()),
                ]),
                vm_size: default_vm_size(),
                unique_id: None,
                dual_stack: false,
            }],
            public_ip_prefixes: vec![SeedPublicIpPrefix {
                name: "byo-prefix".into(),
                resource_group: "rg-egress".into(),
                ip_prefix: IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 0), 31).unwrap_or_default(),
                ),
                tags: BTreeMap::new(),
            }],
            network_interfaces: Vec::new(),
            virtual_machines: Vec::new(),
            public_ip_pools: SeedPublicIpPools::default(),
            response_forms: Vec::new(),
        }
    }
}

impl Seed {
    /// Parses a YAML (or JSON) seed.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, EmulatorError> {
        serde_saphyr::from_str(text).map_err(|source| EmulatorError::ParseSeed {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &Path) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::ReadSeed {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn shipped_default_seed_file_equals_the_built_in_default() {
        let parsed = Seed::from_yaml(DEFAULT_SEED_YAML, Path::new("default.yaml")).unwrap();
        assert_eq!(parsed, Seed::default());
    }

    #[test]
    fn unknown_seed_fields_are_rejected_with_their_name() {
        let err =
            Seed::from_yaml("subscriptionId: x\nscaleSet: []\n", Path::new("s.yaml")).unwrap_err();
        let msg = format!("{:#}", anyhow::Error::from(err));
        assert!(msg.contains("scaleSet"), "{msg}");
    }
}
