//! Kubernetes API of kube-egress-gateway: the five custom resource kinds of group
//! `egressgateway.kubernetes.azure.com/v1alpha1` (wire-compatible with Azure/kube-egress-gateway),
//! the names every component agrees on (annotation, labels, taints, finalizers, Secret naming),
//! status conditions, and the semantic checks the schema cannot express.
//!
//! This crate has no side effects: no client, no I/O.

// kube's `printcolumn(...)` repeats `type_ = ...` once per column, which this lint misreads.
#![allow(clippy::duplicated_attributes)]

pub mod conditions;
pub mod constants;
pub mod crds;
pub mod gateway_lb_configuration;
pub mod gateway_status;
pub mod gateway_vm_configuration;
pub mod lb_told;
pub mod observed;
pub mod pod_endpoint;
pub mod selection;
pub mod semantics;
pub mod sessions;
pub mod static_gateway_configuration;
pub mod target;
pub mod warnings;

pub use gateway_lb_configuration::{
    GatewayLBConfiguration, GatewayLBConfigurationSpec, GatewayLBConfigurationStatus,
};
pub use gateway_status::{
    Drift, EgressIp, GatewayConfiguration, GatewayPeers, GatewayStatus, GatewayStatusSpec,
    PeerConfiguration, PeerState, RefusedPeer,
};
pub use gateway_vm_configuration::{
    GatewayVMConfiguration, GatewayVMConfigurationSpec, GatewayVMConfigurationStatus,
    GatewayVMProfile,
};
pub use pod_endpoint::{
    PodEndpoint, PodEndpointGateway, PodEndpointSpec, PodEndpointStatus, PodTunnel,
};
pub use static_gateway_configuration::{
    CidrText, DefaultRoute, GatewayServerProfile, StaticGatewayConfiguration,
    StaticGatewayConfigurationSpec, StaticGatewayConfigurationStatus,
};
pub use target::{GatewayVmssProfile, IpFamily};
