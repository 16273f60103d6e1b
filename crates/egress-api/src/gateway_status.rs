//! GatewayStatus: one per gateway node, written by its gateway daemon, listing what is
//! configured there. Informational (nothing makes decisions from it).

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Gateways and peers ready on one gateway node.
#[derive(
    CustomResource,
    Serialize,
    Deserialize,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    schemars::JsonSchema,
)]
#[kube(
    group = "egressgateway.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "GatewayStatus",
    namespaced,
    status = "GatewayStatusStatus",
    category = "egressgateway",
    doc = "GatewayStatus is internal: what one gateway node has configured (gateways and pod peers)."
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatusSpec {
    /// Gateways whose interface is configured on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_gateway_configurations: Option<Vec<GatewayConfiguration>>,
    /// Pod peers configured on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_peer_configurations: Option<Vec<PeerConfiguration>>,
}

/// One gateway ready on a node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfiguration {
    /// `<namespace>/<name>` of the StaticGatewayConfiguration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_gateway_configuration: Option<String>,
    /// WireGuard interface serving it (`wg-<port>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
}

/// One pod peer configured on a node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerConfiguration {
    /// `<namespace>/<name>` of the PodEndpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_endpoint: Option<String>,
    /// WireGuard interface the peer is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// The peer's public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// GatewayStatus has no observed state; the empty status keeps the original's shape.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct GatewayStatusStatus {}
