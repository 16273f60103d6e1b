//! Pure: the status every PodEndpoint should have, from the gateway nodes of its gateway (the
//! GatewayVMConfiguration's profiles) and what each node's GatewayStatus says about it
//! (`egress_api::observed`), and each gateway's node health for the metrics. Only statuses that
//! differ from the stored one are planned as writes.

use egress_api::observed::{self, Heartbeat};
use egress_api::{GatewayStatus, GatewayVMConfiguration, PodEndpoint, PodEndpointStatus};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

/// One status to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The operator's part of the status.
    pub status: PodEndpointStatus,
}

/// A gateway's nodes and how many are healthy (daemon alive, gateway ready there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayHealth {
    /// `namespace/name`.
    pub gateway: String,
    /// Gateway nodes the operator lists.
    pub nodes: usize,
    /// Of those, with a fresh heartbeat and the gateway programmed.
    pub healthy: usize,
}

/// What one pass writes and exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Statuses that changed.
    pub writes: Vec<Write>,
    /// Health of every gateway with a VM configuration.
    pub health: Vec<GatewayHealth>,
}

fn nodes_of<'a>(
    vm: Option<&GatewayVMConfiguration>,
    statuses: &'a [GatewayStatus],
) -> Vec<(String, Option<&'a GatewayStatus>)> {
    vm.and_then(|v| v.status.as_ref())
        .and_then(|s| s.gateway_vm_profiles.as_ref())
        .into_iter()
        .flatten()
        .map(|p| {
            let status = observed::status_of_profile(statuses, p);
            let name =
                status.map_or_else(|| p.node_name.clone().unwrap_or_default(), |s| s.name_any());
            (name, status)
        })
        .collect()
}

/// The operator's fields of a stored status (the CNI manager's `tunnel` left out).
fn ours(s: Option<&PodEndpointStatus>) -> PodEndpointStatus {
    let mut s = s.cloned().unwrap_or_default();
    s.tunnel = None;
    s
}

/// Plans one pass at `now`.
pub fn plan(
    pod_endpoints: &[&PodEndpoint],
    vms: &[&GatewayVMConfiguration],
    statuses: &[GatewayStatus],
    now: Timestamp,
) -> Plan {
    let find_vm = |ns: &str, name: &str| {
        vms.iter()
            .copied()
            .find(|v| v.name_any() == name && v.namespace().as_deref() == Some(ns))
    };
    let mut out = Plan::default();
    for pe in pod_endpoints {
        let ns = pe.namespace().unwrap_or_default();
        let Some(sgc) = pe.spec.static_gateway_configuration.as_deref() else {
            continue;
        };
        let nodes = nodes_of(find_vm(&ns, sgc), statuses);
        let desired = observed::pod_endpoint_status(pe, &format!("{ns}/{sgc}"), &nodes);
        if desired != ours(pe.status.as_ref()) {
            out.writes.push(Write {
                namespace: ns,
                name: pe.name_any(),
                status: desired,
            });
        }
    }
    for vm in vms {
        let key = observed::object_key(*vm);
        let nodes = nodes_of(Some(vm), statuses);
        let healthy = nodes
            .iter()
            .filter(|(_, s)| {
                s.is_some_and(|s| {
                    !matches!(observed::heartbeat(s, now), Heartbeat::Stale(_))
                        && observed::ready_interface(s, &key).is_some()
                })
            })
            .count();
        out.health.push(GatewayHealth {
            gateway: key,
            nodes: nodes.len(),
            healthy,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
        serde_saphyr::from_str(s).unwrap()
    }

    const KEY: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdE=";

    fn pe(status: &str) -> PodEndpoint {
        yaml(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: PodEndpoint\nmetadata: {{name: web, namespace: ns}}\nspec: {{staticGatewayConfiguration: gw, podIpAddress: 10.244.1.5/32, podPublicKey: '{KEY}'}}\nstatus: {status}\n"
        ))
    }

    fn vm() -> GatewayVMConfiguration {
        yaml(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: GatewayVMConfiguration\nmetadata: {name: gw, namespace: ns}\nspec: {gatewayNodepoolName: pool}\nstatus: {gatewayVMProfiles: [{nodeName: gw-0, secondaryIP: 10.0.1.5}, {nodeName: gw-1, secondaryIP: 10.0.1.6}]}\n",
        )
    }

    fn node(name: &str, heartbeat: &str, peers: &str) -> GatewayStatus {
        yaml(&format!(
            "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\nkind: GatewayStatus\nmetadata: {{name: {name}, namespace: sys}}\nspec:\n  heartbeatTime: '{heartbeat}'\n  heartbeatSeconds: 60\n  readyGatewayConfigurations: [{{staticGatewayConfiguration: ns/gw, interfaceName: wg-6000}}]\n  gateways: [{{staticGatewayConfiguration: ns/gw, interfaceName: wg-6000, peersTotal: 1, peers: {peers}}}]\n"
        ))
    }

    #[test]
    fn statuses_follow_the_nodes_and_only_changes_are_written() {
        let now = Timestamp::from_second(1_767_225_630).unwrap();
        let t = "2026-01-01T00:00:00Z";
        let statuses = vec![
            node("gw-0", t, "[{name: web, key: AbCdEfGh}]"),
            node("gw-1", "2025-12-31T00:00:00Z", "[]"),
        ];
        let (p, v) = (pe("{}"), vm());
        let out = plan(&[&p], &[&v], &statuses, now);
        assert_eq!(out.writes.len(), 1);
        let st = &out.writes[0].status;
        assert_eq!(st.phase.as_deref(), Some("Partial"));
        assert_eq!(st.programmed.as_deref(), Some("1/2"));
        assert_eq!(st.gateways[0].node, "gw-0");
        assert_eq!(
            out.health,
            [GatewayHealth {
                gateway: "ns/gw".into(),
                nodes: 2,
                healthy: 1
            }]
        );
        // The stored status already says so (with the manager's tunnel part): nothing to write.
        let stored = serde_json::to_string(st).unwrap();
        let mut with_tunnel: serde_json::Value = serde_json::from_str(&stored).unwrap();
        with_tunnel["tunnel"] = serde_json::json!({"state": "Ready"});
        let p = pe(&with_tunnel.to_string());
        assert!(plan(&[&p], &[&v], &statuses, now).writes.is_empty());
    }
}
