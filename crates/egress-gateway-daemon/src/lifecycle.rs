//! Whether this gateway node is being taken out of service, from its own Node object: that
//! is what tells a real drain (the load balancer must move the flows away before the node
//! goes) from a restart of the daemon (rollout, crash, OOM kill), after which the kernel
//! still forwards and the next instance adopts it, so the flows must stay.
//!
//! A node is being taken out of service when it is cordoned (`spec.unschedulable`, as
//! `kubectl drain`, AKS upgrades and node-image updates do first), being deleted, tainted
//! by a component that is about to remove or stop it (cluster autoscaler, Karpenter, the
//! out-of-service and cloud shutdown taints), shutting down (the kubelet's graceful node
//! shutdown reports it in the Ready condition), or annotated
//! `egressgateway.kubernetes.azure.com/drain=true` by an administrator who wants the traffic
//! elsewhere without cordoning. Nothing else (NotReady alone can be a kubelet hiccup).

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

use crate::probe::ProbeState;

/// Annotation on the Node that drains the gateway explicitly (value `true`).
pub const DRAIN_ANNOTATION: &str = "egressgateway.kubernetes.azure.com/drain";

/// Taints put on a node shortly before it is removed or stopped.
pub const DRAIN_TAINTS: &[&str] = &[
    // kubectl cordon / drain (TaintNodesByCondition mirrors spec.unschedulable).
    "node.kubernetes.io/unschedulable",
    // Cluster autoscaler, right before it deletes the node.
    "ToBeDeletedByClusterAutoscaler",
    // Karpenter (v1, and the v1beta1 key) while it disrupts the node.
    "karpenter.sh/disrupted",
    "karpenter.sh/disruption",
    // Non-graceful node shutdown (an administrator says the node is out of service).
    "node.kubernetes.io/out-of-service",
    // The cloud provider saw the VM shut down.
    "node.cloudprovider.kubernetes.io/shutdown",
];

/// Why the node is being taken out of service, or `None`.
pub fn drain_reason(node: &Node) -> Option<String> {
    if node.metadata.deletion_timestamp.is_some() {
        return Some("the Node is being deleted".into());
    }
    if node.annotations().get(DRAIN_ANNOTATION).map(String::as_str) == Some("true") {
        return Some(format!("the Node is annotated {DRAIN_ANNOTATION}=true"));
    }
    let spec = node.spec.as_ref();
    if spec.and_then(|s| s.unschedulable) == Some(true) {
        return Some("the Node is cordoned (spec.unschedulable)".into());
    }
    if let Some(t) = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .find(|t| DRAIN_TAINTS.contains(&t.key.as_str()))
    {
        return Some(format!("the Node has the taint {}", t.key));
    }
    let shutting_down = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "Ready"
                && c.status != "True"
                && c.message
                    .as_deref()
                    .is_some_and(|m| m.contains("node is shutting down"))
        });
    shutting_down.then(|| "the Node is shutting down (kubelet graceful node shutdown)".into())
}

/// Watches this node's Node object until `stop`, keeping the probe's drain state (and so
/// the load balancer) in step with it. Without a readable Node (not created yet, no
/// permission, API down) the node counts as in service: a wrong "in service" costs a normal
/// failover when the node really goes, a wrong "draining" moves every flow for nothing.
pub async fn watch_node(
    api: Api<Node>,
    node_name: String,
    probe: ProbeState,
    mut stop: watch::Receiver<bool>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    loop {
        let next = tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            next = stream.next() => next,
        };
        let reason = match next {
            None => return,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Node watch failed; retrying with backoff");
                continue;
            }
            Some(Ok(Event::Apply(n) | Event::InitApply(n))) => drain_reason(&n),
            Some(Ok(Event::Delete(_))) => Some("the Node was deleted".into()),
            Some(Ok(Event::Init | Event::InitDone)) => continue,
        };
        if reason != probe.node_drain() {
            match &reason {
                Some(r) => {
                    tracing::warn!(reason = %r, "node taken out of service: the load-balancer probe answers 503 so its flows move to the other gateway nodes")
                }
                None => tracing::info!(
                    "node in service: the load-balancer probe answers for the programmed gateways again"
                ),
            }
            probe.set_node_drain(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn in_service_nodes_are_not_drained() {
        let plain = node(serde_json::json!({"metadata": {"name": "n"}}));
        assert_eq!(drain_reason(&plain), None);
        let not_ready = node(serde_json::json!({"metadata": {"name": "n"},
            "spec": {"taints": [{"key": "kubeegressgateway.azure.com/mode", "value": "true", "effect": "NoSchedule"},
                                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False", "message": "container runtime is down"}]}}));
        assert_eq!(drain_reason(&not_ready), None, "NotReady alone is no drain");
        let annotated_false = node(serde_json::json!({"metadata": {"name": "n",
            "annotations": {DRAIN_ANNOTATION: "false"}}}));
        assert_eq!(drain_reason(&annotated_false), None);
    }

    #[test]
    fn every_sign_of_a_node_going_away_drains() {
        let cases = [
            (
                serde_json::json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
                "cordoned",
            ),
            (
                serde_json::json!({"metadata": {"name": "n", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
                "being deleted",
            ),
            (
                serde_json::json!({"metadata": {"name": "n", "annotations": {DRAIN_ANNOTATION: "true"}}}),
                "annotated",
            ),
            (
                serde_json::json!({"metadata": {"name": "n"}, "spec": {"taints": [
                    {"key": "ToBeDeletedByClusterAutoscaler", "value": "1", "effect": "NoSchedule"}]}}),
                "ToBeDeletedByClusterAutoscaler",
            ),
            (
                serde_json::json!({"metadata": {"name": "n"}, "spec": {"taints": [
                    {"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]}}),
                "out-of-service",
            ),
            (
                serde_json::json!({"metadata": {"name": "n"}, "status": {"conditions": [
                    {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "node is shutting down"}]}}),
                "shutting down",
            ),
        ];
        for (v, want) in cases {
            let got = drain_reason(&node(v.clone())).unwrap_or_default();
            assert!(got.contains(want), "{v}: {got}");
        }
    }
}
