//! GatewayVMConfiguration: internal kind the operator derives from a GatewayLBConfiguration to
//! provision the gateway nodes' secondary ipConfigs and the public IP prefix.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::target::GatewayTarget;

/// The gateway pool whose NICs and prefix this configuration provisions.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "egressgateway.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "GatewayVMConfiguration",
    namespaced,
    status = "GatewayVMConfigurationStatus",
    category = "egressgateway",
    doc = "GatewayVMConfiguration is internal: the operator's gateway-node and prefix view of a StaticGatewayConfiguration.",
    printcolumn(
        name = "Egress Prefix",
        type_ = "string",
        json_path = ".status.egressIpPrefix"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayVMConfigurationSpec {
    /// Copied from the owning GatewayLBConfiguration.
    #[serde(flatten)]
    pub target: GatewayTarget,
}

/// What the operator provisioned on the gateway nodes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayVMConfigurationStatus {
    /// Public mode: prefix CIDR. Private mode: secondary IPs, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_ip_prefix: Option<String>,
    /// With IPv6 egress: the IPv6 prefix CIDR (public mode) or the IPv6 secondary IPs,
    /// comma-separated (private mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_ipv6_prefix: Option<String>,
    /// One entry per gateway node (VMSS instance or NIC).
    #[serde(
        default,
        rename = "gatewayVMProfiles",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_vm_profiles: Option<Vec<GatewayVMProfile>>,
}

/// The addresses of one gateway node for this configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct GatewayVMProfile {
    /// VMSS instance computer name (VMSS pools) or NIC name (VirtualMachines pools).
    #[serde(rename = "nodeName", default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Primary private IP of the node.
    #[serde(rename = "primaryIP", default, skip_serializing_if = "Option::is_none")]
    pub primary_ip: Option<String>,
    /// Secondary private IP this configuration SNATs to on the node.
    #[serde(
        rename = "secondaryIP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secondary_ip: Option<String>,
    /// With IPv6 egress: the IPv6 secondary private IP this configuration SNATs IPv6 to on
    /// the node (absent while it has none, e.g. beyond the 16 addresses of a /124).
    #[serde(
        rename = "secondaryIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secondary_ipv6: Option<String>,
}
