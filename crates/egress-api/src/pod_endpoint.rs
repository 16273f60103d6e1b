//! PodEndpoint: one per annotated pod (same name and namespace, owned by the pod), written by
//! the CNI manager; gateway daemons turn it into a WireGuard peer.

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
    /// The pod's IP as a host CIDR (`10.244.1.5/32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = crate::rules::cidr())]
    pub pod_ip_address: Option<String>,
    /// The pod's base64 WireGuard public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 44))]
    #[x_kube(validation = crate::rules::wireguard_key())]
    pub pod_public_key: Option<String>,
}

/// PodEndpoint has no observed state; the empty status keeps the original's shape.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct PodEndpointStatus {}
