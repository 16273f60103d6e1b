//! Names shared by every component and by the original project: API group, annotation, node
//! labels and taints, finalizers, Secret naming, field managers. Changing any of these breaks
//! compatibility with clusters running Azure/kube-egress-gateway.

/// API group of every kind.
pub const GROUP: &str = "egressgateway.kubernetes.azure.com";
/// The only API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` value of every kind.
pub const API_VERSION: &str = "egressgateway.kubernetes.azure.com/v1alpha1";

/// Pod annotation naming the StaticGatewayConfiguration (same namespace) a pod egresses through.
pub const POD_ANNOTATION: &str = "kubernetes.azure.com/static-gateway-configuration";

/// Label (value `"true"`) and taint key marking gateway nodes in self-managed clusters.
pub const GATEWAY_NODE_LABEL: &str = "kubeegressgateway.azure.com/mode";
/// Value of [`GATEWAY_NODE_LABEL`] and of the gateway taint.
pub const GATEWAY_NODE_LABEL_VALUE: &str = "true";
/// Taint effect of the gateway taint (`kubeegressgateway.azure.com/mode=true:NoSchedule`).
pub const GATEWAY_NODE_TAINT_EFFECT: &str = "NoSchedule";
/// Label AKS sets on gateway-mode nodes (`kubernetes.azure.com/mode=gateway`).
pub const AKS_MODE_LABEL: &str = "kubernetes.azure.com/mode";
/// Value of [`AKS_MODE_LABEL`] on gateway nodes.
pub const AKS_MODE_GATEWAY: &str = "gateway";
/// Label AKS sets to a node's pool name.
pub const AKS_AGENTPOOL_LABEL: &str = "kubernetes.azure.com/agentpool";
/// Start-up taint AKS puts on nodes; the CNI manager removes it once the CNI config is installed.
pub const CNI_NOT_READY_TAINT: &str = "egressgateway.kubernetes.azure.com/cni-not-ready";

/// Finalizer of the StaticGatewayConfiguration controller.
pub const SGC_FINALIZER: &str = "static-gateway-configuration-controller.microsoft.com";
/// Finalizer of the GatewayLBConfiguration controller.
pub const LB_CONFIG_FINALIZER: &str = "gateway-lb-configuration-controller.microsoft.com";
/// Finalizer of the GatewayVMConfiguration controller.
pub const VM_CONFIG_FINALIZER: &str = "gateway-vm-configuration-controller.microsoft.com";
/// Finalizer holding an SGC's deletion while pods use it (as `kubernetes.io/pvc-protection`
/// does for PersistentVolumeClaims). Ours only, not the original's: the operator adds it to
/// every SGC and removes it once a deleted SGC has no PodEndpoint left.
pub const IN_USE_FINALIZER: &str = "egressgateway.kubernetes.azure.com/in-use-protection";

/// Prefix of the Secret holding an SGC's gateway WireGuard key pair: `sgw-<SGC UID>`.
pub const KEY_SECRET_PREFIX: &str = "sgw-";
/// Secret data key of the base64 WireGuard private key.
pub const KEY_SECRET_PRIVATE_KEY: &str = "PrivateKey";
/// Secret data key of the base64 WireGuard public key.
pub const KEY_SECRET_PUBLIC_KEY: &str = "PublicKey";
/// Label on the key Secret: namespace of the owning SGC.
pub const OWNING_SGC_NAMESPACE_LABEL: &str =
    "egressgateway.kubernetes.azure.com/owning-gateway-config-namespace";
/// Label on the key Secret: name of the owning SGC.
pub const OWNING_SGC_NAME_LABEL: &str =
    "egressgateway.kubernetes.azure.com/owning-gateway-config-name";

/// Name of the Secret holding the gateway key pair of the SGC with this UID.
pub fn key_secret_name(sgc_uid: &str) -> String {
    format!("{KEY_SECRET_PREFIX}{sgc_uid}")
}

/// Prefix of every Azure sub-resource we manage: `egressgateway-<GatewayVMConfiguration UID>`.
pub const AZURE_RESOURCE_PREFIX: &str = "egressgateway-";
/// Default name of the internal load balancer in front of the gateway pools.
pub const DEFAULT_ILB_NAME: &str = "kubeegressgateway-ilb";
/// First WireGuard/LB port handed to a gateway (inclusive).
pub const GATEWAY_PORT_MIN: i32 = 6000;
/// End of the gateway port range (exclusive).
pub const GATEWAY_PORT_MAX: i32 = 7000;
/// Port of the gateway daemon's LB health-probe server; the probe path is `/gw/<SGC UID>`.
pub const HEALTH_PROBE_PORT: u16 = 8082;

/// Name of the Azure sub-resources (ipConfig, prefix, LB rule) owned by a configuration UID.
pub fn azure_resource_name(uid: &str) -> String {
    format!("{AZURE_RESOURCE_PREFIX}{uid}")
}

/// Path of the load-balancer health probe for the SGC with this UID.
pub fn health_probe_path(sgc_uid: &str) -> String {
    format!("/gw/{sgc_uid}")
}

/// Field manager of the operator's StaticGatewayConfiguration controller (server-side apply).
pub const FIELD_MANAGER_SGC: &str = "egress-operator/static-gateway-configuration";
/// Field manager of the operator's GatewayLBConfiguration controller.
pub const FIELD_MANAGER_LB: &str = "egress-operator/gateway-lb-configuration";
/// Field manager of the operator's GatewayVMConfiguration controller.
pub const FIELD_MANAGER_VM: &str = "egress-operator/gateway-vm-configuration";
/// Field manager of the operator's PodEndpoint status controller.
pub const FIELD_MANAGER_POD_ENDPOINT_STATUS: &str = "egress-operator/pod-endpoint-status";
/// Field manager of the operator's in-use protection (`status.podCount`, condition `InUse`).
pub const FIELD_MANAGER_IN_USE: &str = "egress-operator/in-use-protection";
/// Field manager of the operator's selector conflicts (condition `SelectorConflict`).
pub const FIELD_MANAGER_SELECTORS: &str = "egress-operator/selector-conflicts";
/// Field manager of the gateway daemon.
pub const FIELD_MANAGER_GATEWAY_DAEMON: &str = "egress-gateway-daemon";
/// Field manager of the CNI manager.
pub const FIELD_MANAGER_CNI_MANAGER: &str = "egress-cni-manager";

/// Label on every PodEndpoint naming the node whose CNI manager wrote it. Admission (the
/// chart's ValidatingAdmissionPolicy) binds it to the writer's node; gateway daemons use a
/// PodEndpoint only when it equals its pod's `spec.nodeName`.
pub const POD_ENDPOINT_NODE_LABEL: &str = "egressgateway.kubernetes.azure.com/node";

/// CNI `type` of the chained plugin.
pub const CNI_TYPE: &str = "kube-egress-cni";
/// File the CNI manager writes into the CNI config directory.
pub const CNI_CONFLIST_FILE: &str = "01-egressgateway.conflist";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_original_project() {
        assert_eq!(key_secret_name("1234"), "sgw-1234");
        assert_eq!(azure_resource_name("ab-cd"), "egressgateway-ab-cd");
        assert_eq!(health_probe_path("u1"), "/gw/u1");
        assert_eq!(API_VERSION, format!("{GROUP}/{VERSION}"));
    }
}
