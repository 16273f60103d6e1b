//! The cluster objects the simulator writes: Nodes for every simulated VM (labels, taints and
//! provider IDs as AKS sets them), the scenario's manifests by server-side apply, and a node
//! assigned to pods that have none. Deployments get their pods from the API server's
//! deployment and replicaset controllers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use crate::scenario::SUBSCRIPTION_ID;
use crate::seed::{NodeSpec, Role};

/// Field manager of the simulator's writes.
pub const MANAGER: &str = "egress-sim";
/// Namespace of the operator and the gateway daemons.
pub const SYSTEM_NAMESPACE: &str = "kube-egress-gateway-system";
/// The pod annotation naming an SGC.
pub const POD_ANNOTATION: &str = "kubernetes.azure.com/static-gateway-configuration";

/// A Kubernetes call failed.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// API error.
    #[error("failed to {what}: {source}")]
    Api {
        /// What.
        what: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Bad object.
    #[error("failed to {what}: {reason}")]
    Invalid {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> K8sError {
    let what = what.into();
    move |source| K8sError::Api { what, source }
}

/// The Node object of a simulated VM.
pub fn node_object(node: &NodeSpec) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
        "kubernetes.azure.com/agentpool": node.pool,
        "agentpool": node.pool,
    });
    let mut taints = json!([]);
    if node.role == Role::Gateway {
        labels["kubernetes.azure.com/mode"] = json!("gateway");
        labels["kubeegressgateway.azure.com/mode"] = json!("true");
        taints = json!([{"key": "kubeegressgateway.azure.com/mode", "value": "true", "effect": "NoSchedule"}]);
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": labels},
        "spec": {
            "providerID": format!(
                "azure:///subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}/virtualMachines/{}",
                node.resource_group, node.vmss, node.instance),
            "podCIDR": node.pod_cidr.map(|c| c.to_string()),
            "taints": taints,
        },
    })
}

/// Creates the Nodes (and their Ready status) and the system namespace.
pub async fn create_nodes(client: &Client, nodes: &[(NodeSpec, String)]) -> Result<(), K8sError> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}});
    ns_api
        .patch(
            SYSTEM_NAMESPACE,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&ns),
        )
        .await
        .map_err(api_err("create namespace kube-egress-gateway-system"))?;
    let api: Api<Node> = Api::all(client.clone());
    for (node, ip) in nodes {
        let obj = node_object(node);
        api.patch(
            &node.name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .map_err(api_err(format!("create node {}", node.name)))?;
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": node.name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "simulated node", "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "egress-sim://1", "osImage": "egress-sim simulated node",
                         "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""},
        }});
        api.patch_status(&node.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(api_err(format!("set status of node {}", node.name)))?;
    }
    Ok(())
}

/// RFC 3339 time now.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Round-robin choice of a worker for pods without `spec.nodeName`.
#[derive(Debug, Default)]
pub struct Scheduler {
    workers: Vec<String>,
    next: AtomicUsize,
}

impl Scheduler {
    /// Over these workers.
    pub fn new(workers: Vec<String>) -> Self {
        Self {
            workers,
            next: AtomicUsize::new(0),
        }
    }

    /// The next worker.
    pub fn pick(&self) -> Option<String> {
        if self.workers.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.workers.get(i).cloned()
    }

    /// Whether the node is one of ours.
    pub fn is_worker(&self, node: &str) -> bool {
        self.workers.iter().any(|w| w == node)
    }
}

/// Applies documents in order (Namespaces first), scheduling Pods without a node. Returns the
/// number of Pods that will exist: Pods plus Deployment replicas (the API server's controllers
/// create those).
pub async fn apply_manifests(
    client: &Client,
    docs: &[Value],
    sched: &Scheduler,
) -> Result<usize, K8sError> {
    let mut ordered: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Namespace").collect();
    ordered.extend(docs.iter().filter(|d| d["kind"] != "Namespace"));
    let mut pods = 0;
    for doc in ordered {
        let mut doc = doc.clone();
        if doc["kind"] == "Pod"
            && doc["apiVersion"] == "v1"
            && doc.pointer("/spec/nodeName").is_none_or(Value::is_null)
        {
            doc["spec"]["nodeName"] = json!(sched.pick());
        }
        apply(client, &doc).await?;
        if doc["kind"] == "Pod" {
            pods += 1;
        }
        if doc["kind"] == "Deployment" {
            pods += doc
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1) as usize;
        }
    }
    Ok(pods)
}

/// Deletes the object `doc` names (apiVersion, kind, metadata); a missing one is no error.
pub async fn delete(client: &Client, doc: &Value) -> Result<(), K8sError> {
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let what = format!("delete {} {name}", doc["kind"].as_str().unwrap_or_default());
    let api = api_for(client, doc, &what).await?;
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(api_err(what)(e)),
    }
}

async fn api_for(client: &Client, doc: &Value, what: &str) -> Result<Api<DynamicObject>, K8sError> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(api_err(format!(
            "{what}: look up kind {api_version}/{kind}"
        )))?;
    Ok(if caps.scope == kube::discovery::Scope::Namespaced {
        let ns = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    })
}

/// Server-side applies one object and returns it as stored.
pub async fn apply(client: &Client, doc: &Value) -> Result<DynamicObject, K8sError> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let what = format!("apply {kind} {name}");
    let api = api_for(client, doc, &what).await?;
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(doc),
    )
    .await
    .map_err(api_err(what))
}

/// Pod annotations as a map.
pub fn annotations(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.annotations.clone().unwrap_or_default()
}
