//! GatewayLBConfiguration: internal kind the operator derives from a StaticGatewayConfiguration
//! (same name and namespace, owned by it) to provision the internal load balancer.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::target::GatewayTarget;

/// The gateway pool whose load-balancer rule and probe this configuration provisions.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "egressgateway.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "GatewayLBConfiguration",
    namespaced,
    status = "GatewayLBConfigurationStatus",
    category = "egressgateway",
    doc = "GatewayLBConfiguration is internal: the operator's load-balancer view of a StaticGatewayConfiguration.",
    printcolumn(
        name = "Frontend IP",
        type_ = "string",
        json_path = ".status.frontendIp"
    ),
    printcolumn(name = "Port", type_ = "integer", json_path = ".status.serverPort"),
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
pub struct GatewayLBConfigurationSpec {
    /// Copied from the owning StaticGatewayConfiguration.
    #[serde(flatten)]
    pub target: GatewayTarget,
}

/// What the operator provisioned in the load balancer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayLBConfigurationStatus {
    /// Frontend IP of the internal load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend_ip: Option<String>,
    /// Frontend (= backend) port of this gateway's load-balancing rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_port: Option<i32>,
    /// Copied from the GatewayVMConfiguration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_ip_prefix: Option<String>,
}
