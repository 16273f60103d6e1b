//! StaticGatewayConfiguration: the user-facing kind. Pods annotated with its name (or, not
//! annotated, selected by its `podSelector` alone; see `selection`) egress through its gateway
//! pool from its egress IP prefix.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::target::GatewayTarget;

/// Desired state of a static egress gateway.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "egressgateway.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "StaticGatewayConfiguration",
    namespaced,
    status = "StaticGatewayConfigurationStatus",
    shortname = "sgc",
    category = "egressgateway",
    doc = "StaticGatewayConfiguration gives the pods that name it in the annotation kubernetes.azure.com/static-gateway-configuration (or that only its podSelector selects) a fixed egress IP: their traffic is tunnelled to a gateway node pool and leaves from a public IP prefix (or the pool's private IPs).",
    printcolumn(
        name = "Egress Prefix",
        type_ = "string",
        json_path = ".status.egressIpPrefix"
    ),
    printcolumn(
        name = "Egress IPv6 Prefix",
        type_ = "string",
        json_path = ".status.egressIpv6Prefix",
        priority = 1
    ),
    printcolumn(
        name = "Gateway IP",
        type_ = "string",
        json_path = ".status.gatewayServerProfile.ip"
    ),
    printcolumn(
        name = "Port",
        type_ = "integer",
        json_path = ".status.gatewayServerProfile.port"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Pods", type_ = "integer", json_path = ".status.podCount"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StaticGatewayConfigurationSpec {
    /// The gateway pool and egress mode.
    #[serde(flatten)]
    pub target: GatewayTarget,

    /// Where the pod's default route points: `staticEgressGateway` (all traffic through the
    /// gateway except `excludeCidrs`) or `azureNetworking` (only `excludeCidrs` through the gateway).
    #[serde(default)]
    pub default_route: DefaultRoute,

    /// With `staticEgressGateway`: destinations that bypass the gateway. With `azureNetworking`:
    /// the only destinations routed through the gateway. Each entry should be an IPv4 or IPv6
    /// CIDR (admission warns otherwise; pods cannot use a gateway with an invalid entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_cidrs: Option<Vec<CidrText>>,

    /// Pods of this SGC's namespace (never another's) whose labels match use this gateway
    /// without the annotation. The `kubernetes.azure.com/static-gateway-configuration`
    /// annotation wins over any selector; a pod matched by two or more SGCs' selectors (and not
    /// annotated) uses none of them until resolved, and each of those SGCs has the condition
    /// `SelectorConflict`. `{}` selects every pod of the namespace. Not in the original: an SGC
    /// without it serves annotated pods only, as there. A selector that does not parse selects
    /// no pod (admission warns, the condition says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

/// A CIDR as written in a manifest (kept verbatim so a round trip changes nothing). The schema
/// takes any string, as the original's does; admission warns about one that does not parse,
/// the operator reports it as a condition and the CNI manager refuses pods of that gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(transparent)]
pub struct CidrText(pub String);

impl CidrText {
    /// The network, if the text parses (host bits are kept: `10.0.0.1/8` stays as written).
    pub fn parse(&self) -> Option<ipnet::IpNet> {
        self.0.parse().ok()
    }
}

impl std::fmt::Display for CidrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Target of the pod's default route.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DefaultRoute {
    /// Pod traffic goes through the gateway, except `excludeCidrs`.
    #[default]
    #[serde(rename = "staticEgressGateway")]
    StaticEgressGateway,
    /// Pod traffic keeps the cluster's routing; only `excludeCidrs` go through the gateway.
    #[serde(rename = "azureNetworking")]
    AzureNetworking,
}

/// Observed state of a static egress gateway, as the operator last provisioned it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticGatewayConfigurationStatus {
    /// Public mode: the egress public IP prefix CIDR. Private mode: the gateway nodes' secondary
    /// private IPs, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_ip_prefix: Option<String>,

    /// With `IPv6` in `spec.ipFamilies`: the IPv6 egress prefix (public mode) or the gateway
    /// nodes' IPv6 secondary private IPs, comma-separated (private mode). Not in the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_ipv6_prefix: Option<String>,

    /// Where pods connect their WireGuard tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_server_profile: Option<GatewayServerProfile>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// How many pods use this gateway: its PodEndpoints (one per pod whose tunnel is
    /// registered). Not in the original; written by the operator's in-use protection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_count: Option<i32>,

    /// Conditions: `Ready`, plus `KeyReady`, `LoadBalancerReady`, `PrefixReady`,
    /// `GatewayVMsReady`, `InUse` and (with a `podSelector`) `SelectorConflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The gateway side of the WireGuard tunnel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServerProfile {
    /// Frontend IP of the internal load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Load-balancer rule port (6000-6999) of this gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Base64 WireGuard public key of the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The Secret holding the gateway private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = kube::core::MapMerge::Atomic)]
    pub private_key_secret_ref: Option<ObjectReference>,
}

impl StaticGatewayConfigurationStatus {
    /// Ready as the original's daemon defines it: prefix, endpoint, key and secret all known.
    pub fn is_provisioned(&self) -> bool {
        let p = self.gateway_server_profile.as_ref();
        self.egress_ip_prefix
            .as_deref()
            .is_some_and(|s| !s.is_empty())
            && p.and_then(|p| p.ip.as_deref())
                .is_some_and(|s| !s.is_empty())
            && p.and_then(|p| p.port).is_some_and(|port| port != 0)
            && p.and_then(|p| p.public_key.as_deref())
                .is_some_and(|s| !s.is_empty())
            && p.and_then(|p| p.private_key_secret_ref.as_ref()).is_some()
    }
}
