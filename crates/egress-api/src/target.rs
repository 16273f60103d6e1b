//! Which gateway pool a configuration egresses through: an AKS node pool name or an explicit
//! VMSS. Shared by StaticGatewayConfiguration and the internal LB/VM configurations. The schema
//! accepts what the original's published CRD accepts (its schema is the floor); the checks it
//! lacks are admission warnings (`crate::warnings`) and operator conditions.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// An existing gateway VMSS (virtual machine scale set).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayVmssProfile {
    /// Resource group of the VMSS. Must be in the cluster's subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmss_resource_group: Option<String>,

    /// Name of the VMSS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmss_name: Option<String>,

    /// Length of the public IP prefix the pool egresses from. Azure accepts 28-31; it is needed
    /// with `provisionPublicIps: true` and bounds the pool size (a /31 serves 2 nodes). The
    /// schema accepts 0-31 as the original's does (0 = unset; ignored in private mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31))]
    pub public_ip_prefix_size: Option<i32>,
}

impl GatewayVmssProfile {
    /// True for the `{}` the original writes when no profile is used (its Go type is an
    /// embedded struct that is always serialised, and writes 0 for an unset prefix size).
    pub fn is_empty(&self) -> bool {
        self.vmss_resource_group
            .as_deref()
            .is_none_or(str::is_empty)
            && self.vmss_name.as_deref().is_none_or(str::is_empty)
            && self.public_ip_prefix_size.is_none_or(|s| s == 0)
    }
}

/// The gateway pool and egress mode of one gateway configuration (the four spec fields the
/// internal LB and VM configurations copy from the StaticGatewayConfiguration).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTarget {
    /// Name of the AKS gateway node pool (matched against the VMSS/VM tag `aks-managed-poolName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_nodepool_name: Option<String>,

    /// The gateway VMSS, for clusters that are not AKS-managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_vmss_profile: Option<GatewayVmssProfile>,

    /// `true`: egress from a public IP prefix; `false`: egress from the nodes' private secondary IPs.
    #[serde(default = "default_true")]
    pub provision_public_ips: bool,

    /// Resource ID of a public IP prefix you own (BYO) to egress from instead of a managed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip_prefix_id: Option<String>,

    /// The IP families pods egress in: `[IPv4]` (the default, as in the original) or
    /// `[IPv4, IPv6]` (dual-stack: each gateway node also egresses IPv6, from an IPv6 public IP
    /// prefix, or its private IPv6 secondary IPs with `provisionPublicIps: false`). IPv4 is
    /// always included: the tunnel and the pool's primary addresses are IPv4. Not in the
    /// original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2))]
    #[x_kube(
        merge_strategy = kube::core::ListMerge::Set,
        validation = kube::core::Rule::new("'IPv4' in self")
            .message("must include IPv4: IPv6 egress is offered alongside IPv4 only (the tunnel and the gateway nodes' primary addresses are IPv4)")
    )]
    pub ip_families: Option<Vec<IpFamily>>,

    /// Resource ID of an IPv6 public IP prefix you own (BYO) to egress IPv6 from instead of a
    /// managed one; only with `IPv6` in `ipFamilies` and `provisionPublicIps: true`. Not in the
    /// original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ipv6_prefix_id: Option<String>,
}

/// An IP family, spelled as Kubernetes Services spell it.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub enum IpFamily {
    /// IPv4.
    #[serde(rename = "IPv4")]
    IPv4,
    /// IPv6.
    #[serde(rename = "IPv6")]
    IPv6,
}

/// The smallest IPv6 public IP prefix length Azure offers (the largest prefix, 16 addresses).
pub const MIN_IPV6_PREFIX_LEN: u8 = 124;
/// The largest IPv6 public IP prefix length Azure offers (2 addresses).
pub const MAX_IPV6_PREFIX_LEN: u8 = 127;

/// The managed IPv6 prefix length that gives as many addresses as an IPv4 prefix of
/// `ipv4_len` (a /31 gives 2 as a /127 does), bounded by what Azure offers (/124-/127): a pool
/// larger than 16 nodes gets IPv6 egress on 16 of them (the operator's condition says which).
pub fn ipv6_prefix_len_for(ipv4_len: u8) -> u8 {
    ipv4_len
        .saturating_add(96)
        .clamp(MIN_IPV6_PREFIX_LEN, MAX_IPV6_PREFIX_LEN)
}

impl GatewayTarget {
    /// The VMSS profile, if one is used (an empty `{}` counts as none).
    pub fn vmss_profile(&self) -> Option<&GatewayVmssProfile> {
        self.gateway_vmss_profile.as_ref().filter(|p| !p.is_empty())
    }

    /// The BYO public IP prefix ID, if one is set (an empty string counts as none).
    pub fn byo_prefix_id(&self) -> Option<&str> {
        self.public_ip_prefix_id
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// True when the pool egresses IPv6 as well (`IPv6` in `ipFamilies`).
    pub fn ipv6(&self) -> bool {
        self.ip_families
            .as_deref()
            .is_some_and(|f| f.contains(&IpFamily::IPv6))
    }

    /// The BYO IPv6 public IP prefix ID, if one is set (an empty string counts as none).
    pub fn byo_ipv6_prefix_id(&self) -> Option<&str> {
        self.public_ipv6_prefix_id
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}

pub(crate) fn default_true() -> bool {
    true
}
