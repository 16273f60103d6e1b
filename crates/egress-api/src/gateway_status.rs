//! GatewayStatus: one per gateway node, written by its gateway daemon, listing what is
//! configured there. The original's two lists (`readyGatewayConfigurations`,
//! `readyPeerConfigurations`) are kept; additions (all optional) say per gateway which peers
//! the node holds with their latest handshake, which PodEndpoints it refused and why, which
//! public IP each secondary IP maps to, when the daemon last wrote (a heartbeat), and the
//! latest changes made to the node's data plane outside the daemon that its resync found
//! (drift) and whether it repaired them.
//! Informational: nothing makes data-plane decisions from it; `egressctl` and the operator's
//! PodEndpoint status read it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    doc = "GatewayStatus is internal: what one gateway node has configured (gateways and pod peers).",
    printcolumn(
        name = "Gateways",
        type_ = "string",
        json_path = ".spec.readyGatewayConfigurations[*].staticGatewayConfiguration"
    ),
    printcolumn(name = "Heartbeat", type_ = "date", json_path = ".spec.heartbeatTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatusSpec {
    /// Gateways whose interface is configured on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_gateway_configurations: Option<Vec<GatewayConfiguration>>,
    /// Pod peers configured on this node (the first `--status-max-peers`, original shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_peer_configurations: Option<Vec<PeerConfiguration>>,
    /// When the daemon last wrote this object; it writes at least every `heartbeatSeconds`, so
    /// an older time means the daemon is not running (or cannot reach the API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_time: Option<Time>,
    /// The daemon's heartbeat period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_seconds: Option<i64>,
    /// Per ready gateway: every peer (compact), with its latest handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<GatewayPeers>>,
    /// The node's private IPs and the public IP Azure maps each to (from IMDS).
    #[serde(rename = "egressIPs", default, skip_serializing_if = "Option::is_none")]
    pub egress_ips: Option<Vec<EgressIp>>,
    /// PodEndpoints this node refuses or cannot use, with the reason (at most 100 listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<RefusedPeer>>,
    /// Number of refused PodEndpoints (also those not listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_total: Option<i64>,
    /// The latest changes made outside the daemon that its resync found and repaired (or
    /// failed to repair), oldest first; at most 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Vec<Drift>>,
    /// Drift found since the daemon started (also entries no longer listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_total: Option<i64>,
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

/// The peers of one gateway on a node. Compact, so 10,000 pods fit one object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayPeers {
    /// `<namespace>/<name>` of the StaticGatewayConfiguration.
    pub static_gateway_configuration: String,
    /// `wg-<port>`.
    pub interface_name: String,
    /// Peers of this gateway on the node (also those not listed when the object hit its size
    /// budget).
    pub peers_total: i64,
    /// The peers, by PodEndpoint name (their namespace is the gateway's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerState>,
}

/// One peer of a gateway on a node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct PeerState {
    /// PodEndpoint name.
    pub name: String,
    /// The first 8 characters of the peer's base64 public key (enough to tell sandboxes apart).
    pub key: String,
    /// Unix time (seconds) of the latest handshake, as of the daemon's last sample; absent
    /// before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<i64>,
    /// The daemon programmed it but the device did not have it at the last sample.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

/// A private IP of the node and the public IP Azure maps it to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct EgressIp {
    /// Private IP (a gateway's secondary IP).
    #[serde(rename = "privateIP")]
    pub private_ip: String,
    /// Public IP; absent in private mode.
    #[serde(rename = "publicIP", default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
}

/// A PodEndpoint the node does not use.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedPeer {
    /// `<namespace>/<name>`.
    pub pod_endpoint: String,
    /// The refusal reason (`not_owned`, `ip_taken`, ...) or `invalid` (unusable spec).
    pub reason: String,
    /// The message (as in the Warning Event), cut to 256 characters.
    pub message: String,
}

/// One change to a gateway node's data plane made outside the daemon: something it had
/// programmed found missing or different (or something unexpected found) by its periodic
/// resync, which puts back what it wants.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// What drifted: `peer`, `route`, `rule`, `address`, `link`, `wireguard`, `nftables`,
    /// `sysctl` or `netns`.
    pub kind: String,
    /// `missing` (the daemon had programmed it; gone), `changed` (present but different) or
    /// `unexpected` (present although the daemon never programmed it; removed).
    pub change: String,
    /// `<namespace>/<name>` of the PodEndpoint whose peer or route it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_endpoint: Option<String>,
    /// The gateway interface (`wg-<port>`) it belongs to; absent for node-wide items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// The repair the daemon applied (one line, at most 256 characters).
    pub repair: String,
    /// When the resync found it.
    pub detected_time: Time,
    /// The repair was applied; false: it failed (see `error`), the next resync tries again.
    pub repaired: bool,
    /// Why the repair failed (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// GatewayStatus has no observed state; the empty status keeps the original's shape.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct GatewayStatusStatus {}
