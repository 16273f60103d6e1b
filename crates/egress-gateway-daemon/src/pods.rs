//! The few facts about a Pod that decide whether a PodEndpoint may speak for it: its UID, node,
//! annotation, labels (what `podSelector`s match), IPs, creation time and whether it is being
//! deleted. Only these are kept (the watch converts each Pod on arrival), so the cluster-wide
//! pod watch costs a few hundred bytes per pod plus its labels. Every field here is written by the API server, the scheduler or the kubelet, never
//! by whoever writes PodEndpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use egress_api::constants::POD_ANNOTATION;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::translate::ObjectKey;

/// Field selector of the pod watch: pods that finished no longer hold their IP (the kubelet
/// tore their sandbox down), so they are never a PodEndpoint's legitimate owner; leaving the
/// selector arrives as a deletion.
pub const POD_WATCH_FIELDS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// What the daemon knows about one Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// `namespace/name`.
    pub key: ObjectKey,
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.nodeName` (set by the scheduler), if scheduled.
    pub node_name: Option<String>,
    /// The value of the `kubernetes.azure.com/static-gateway-configuration` annotation.
    pub annotation: Option<String>,
    /// `metadata.labels` (written by whoever may update the Pod, never by a PodEndpoint's
    /// writer as such).
    pub labels: BTreeMap<String, String>,
    /// `status.podIPs` (or `status.podIP`), as the kubelet reports them; empty until the
    /// sandbox's network is up.
    pub ips: BTreeSet<IpAddr>,
    /// `metadata.creationTimestamp`, set by the API server when the Pod was created.
    pub created: Option<Timestamp>,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `status.phase` is Succeeded or Failed.
    pub finished: bool,
}

impl PodFacts {
    /// The facts of a Pod.
    pub fn of(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let mut ips: BTreeSet<IpAddr> = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|v| v.iter().filter_map(|p| p.ip.parse().ok()).collect())
            .unwrap_or_default();
        if let Some(ip) = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|s| s.parse().ok())
        {
            ips.insert(ip);
        }
        Self {
            key: ObjectKey::of(pod),
            uid: pod.uid().unwrap_or_default(),
            node_name: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            annotation: pod
                .annotations()
                .get(POD_ANNOTATION)
                .filter(|v| !v.is_empty())
                .cloned(),
            labels: pod.labels().clone(),
            ips,
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            finished: matches!(
                status.and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_come_from_metadata_spec_and_status() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1",
                         "creationTimestamp": "2024-01-02T03:04:05Z",
                         "annotations": {POD_ANNOTATION: "gw"}, "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": []},
            "status": {"phase": "Running", "podIP": "10.244.1.5",
                       "podIPs": [{"ip": "10.244.1.5"}, {"ip": "fd00::5"}]}
        }))
        .unwrap();
        let f = PodFacts::of(&pod);
        assert_eq!(f.key, ObjectKey::new("ns", "web"));
        assert_eq!(f.uid, "u1");
        assert_eq!(f.node_name.as_deref(), Some("node-a"));
        assert_eq!(f.annotation.as_deref(), Some("gw"));
        assert_eq!(f.labels["app"], "web");
        assert_eq!(f.ips.len(), 2);
        assert_eq!(f.created.unwrap().to_string(), "2024-01-02T03:04:05Z");
        assert!(!f.terminating && !f.finished);

        let pending: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "annotations": {POD_ANNOTATION: ""}},
            "spec": {"nodeName": "", "containers": []},
            "status": {"phase": "Failed"}
        }))
        .unwrap();
        let f = PodFacts::of(&pending);
        assert!(f.ips.is_empty() && f.node_name.is_none() && f.annotation.is_none() && f.finished);
    }
}
