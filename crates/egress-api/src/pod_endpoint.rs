//! PodEndpoint: one per annotated pod (same name and namespace, owned by the pod), written by
//! the CNI manager; gateway daemons turn it into a WireGuard peer. Its status says what
//! became of it: the operator sums up what every gateway node published in its GatewayStatus
//! (programmed, missing, refused with the reason), the CNI manager adds what the plugin did in
//! the pod (tunnel, first handshake, routes). The status is informational: nothing decides
//! from it (the daemons check every PodEndpoint against its Pod themselves).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A pod's end of the tunnel.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[kube(
    group = "egressgateway.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "PodEndpoint",
    namespaced,
    status = "PodEndpointStatus",
    category = "egressgateway",
    doc = "PodEndpoint is internal: the WireGuard peer of one pod that egresses through a StaticGatewayConfiguration.",
    printcolumn(
        name = "Gateway",
        type_ = "string",
        json_path = ".spec.staticGatewayConfiguration"
    ),
    printcolumn(name = "Pod IP", type_ = "string", json_path = ".spec.podIpAddress"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.programmed"
    ),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PodEndpointSpec {
    /// Name of the StaticGatewayConfiguration (same namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_gateway_configuration: Option<String>,
    /// The pod's IP as a host CIDR (`10.244.1.5/32`). Gateway daemons refuse anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip_address: Option<String>,
    /// A dual-stack pod of a gateway with IPv6 egress: its IPv6 address as a host CIDR
    /// (`fd00:10:244:1::5/128`), which must be one of the pod's `status.podIPs` as the IPv4
    /// one must. Not in the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ipv6_address: Option<String>,
    /// The pod's base64 WireGuard public key. Gateway daemons refuse anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_public_key: Option<String>,
}

/// `status.phase` values (written by the operator).
pub mod phase {
    /// Every gateway node of the SGC has the peer.
    pub const PROGRAMMED: &str = "Programmed";
    /// Some gateway nodes have it, others do not (yet).
    pub const PARTIAL: &str = "Partial";
    /// At least one gateway node refused it (`reason` says why).
    pub const REFUSED: &str = "Refused";
    /// No gateway node has published it yet.
    pub const PENDING: &str = "Pending";
}

/// `status.gateways[].state` values.
pub mod gateway_state {
    /// The peer is on this node's tunnel.
    pub const PROGRAMMED: &str = "Programmed";
    /// The daemon wants it but the device lacked it at the last sample (removed by hand?).
    pub const MISSING: &str = "Missing";
    /// The daemon refused it (`reason`, `message`).
    pub const REFUSED: &str = "Refused";
    /// Not published by this node (yet).
    pub const PENDING: &str = "Pending";
}

/// What became of a PodEndpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodEndpointStatus {
    /// `Programmed`, `Partial`, `Refused` or `Pending` (operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Gateway nodes that programmed it, of those that serve its gateway, e.g. `2/2` (operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programmed: Option<String>,
    /// Why it is refused or missing somewhere (the refusal reason, e.g. `ip_taken`) (operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The refusal message of the first node that refused it (operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per gateway node serving its gateway (operator).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["node".into()]))]
    pub gateways: Vec<PodEndpointGateway>,
    /// What the CNI plugin did in the pod, as it reported to the CNI manager (manager).
    /// Boxed: most readers (the gateway daemons) never look at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Box<PodTunnel>>,
}

/// One gateway node's view of a PodEndpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodEndpointGateway {
    /// Gateway node (its GatewayStatus name).
    pub node: String,
    /// `Programmed`, `Missing`, `Refused` or `Pending`.
    pub state: String,
    /// Refusal reason (`not_owned`, `ip_taken`, ..., or `invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Refusal message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The pod side of the tunnel, reported by the plugin after ADD.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTunnel {
    /// Sandbox (`CNI_CONTAINERID`) the report is about.
    #[serde(
        rename = "containerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id: Option<String>,
    /// `Ready` (tunnel, first handshake and routes done) or `Failed` (ADD failed in `failedPhase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The phase that failed: `tunnel`, `handshake` or `routes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<String>,
    /// Milliseconds of each ADD phase: register, tunnel, handshake, routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_ms: Option<i64>,
    /// Building `wg0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_ms: Option<i64>,
    /// Waiting for the first handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<i64>,
    /// Routes, ingress path and sysctls in the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_ms: Option<i64>,
    /// The default route the plugin set: `staticEgressGateway` or `azureNetworking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_route: Option<String>,
    /// The SGC's `excludeCidrs` the plugin routed (as of the pod's ADD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_cidrs: Vec<String>,
    /// The node exception CIDRs (CNI manager `--exception-cidrs`) that always bypass the tunnel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_exclude_cidrs: Vec<String>,
    /// When the manager received the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_time: Option<Time>,
}
