//! Writing the GatewayStatus: one server-side apply (field manager `egress-gateway-daemon`,
//! owner reference to the Node) at most every `interval`, carrying whatever changed meanwhile;
//! a change that only moves handshake times on waits for the heartbeat, which rewrites the
//! object every `heartbeat` even when nothing changed (so a stopped daemon shows as an old
//! `heartbeatTime`). A failed write is retried after the interval. Write cost: one write per
//! `interval` while peers churn, else one per `heartbeat` — never one per pod.

use std::time::Duration;

use egress_api::GatewayStatus;
use egress_api::constants::{API_VERSION, FIELD_MANAGER_GATEWAY_DAEMON};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::status::{Limits, PEERS_TOTAL_ANNOTATION, StatusBook};

/// Where and how often the GatewayStatus is written.
#[derive(Debug, Clone)]
pub struct StatusTarget {
    /// Namespace of the object (the daemon's).
    pub namespace: String,
    /// Name of the object (the node's).
    pub node_name: String,
    /// Least time between two writes.
    pub interval: Duration,
    /// Longest time between two writes (the heartbeat).
    pub heartbeat: Duration,
    /// Size limits.
    pub limits: Limits,
}

async fn node_owner(client: &kube::Client, node: &str) -> Option<serde_json::Value> {
    let api: Api<Node> = Api::all(client.clone());
    let node = api.get_opt(node).await.ok().flatten()?;
    Some(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "name": node.name_any(),
        "uid": node.uid()?,
    }))
}

/// The apply body stamped with the heartbeat time, and the book's change count it reflects.
fn body(
    book: &StatusBook,
    target: &StatusTarget,
    owner: Option<&serde_json::Value>,
) -> (serde_json::Value, u64) {
    let (mut spec, total, version) = book.document(target.limits);
    spec.heartbeat_seconds = Some(i64::try_from(target.heartbeat.as_secs()).unwrap_or(i64::MAX));
    spec.heartbeat_time = Some(Time(Timestamp::now()));
    let mut metadata = serde_json::json!({
        "name": target.node_name,
        "namespace": target.namespace,
    });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = serde_json::json!([owner]);
    }
    if total > target.limits.max_peers {
        metadata["annotations"] = serde_json::json!({ PEERS_TOTAL_ANNOTATION: total.to_string() });
    }
    let body = serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "GatewayStatus",
        "metadata": metadata,
        "spec": spec,
    });
    (body, version)
}

/// Writes the GatewayStatus at start, whenever the book changes (at most once per
/// `interval`) and at least every `heartbeat`, until the task is dropped.
pub async fn write_status(
    client: kube::Client,
    book: StatusBook,
    target: StatusTarget,
    metrics: Metrics,
) {
    let api: Api<GatewayStatus> = Api::namespaced(client.clone(), &target.namespace);
    let params = PatchParams::apply(FIELD_MANAGER_GATEWAY_DAEMON).force();
    let mut owner = None;
    let mut written: Option<u64> = None;
    let mut last_write = Instant::now();
    loop {
        if owner.is_none() {
            owner = node_owner(&client, &target.node_name).await;
        }
        let heartbeat_due = written.is_none() || last_write.elapsed() >= target.heartbeat;
        if heartbeat_due || written != Some(book.version()) {
            let (stamped, version) = body(&book, &target, owner.as_ref());
            match api
                .patch(&target.node_name, &params, &Patch::Apply(&stamped))
                .await
            {
                Ok(_) => {
                    written = Some(version);
                    last_write = Instant::now();
                }
                Err(e) => {
                    metrics.error("status_write");
                    tracing::warn!(error = %e, "failed to write the GatewayStatus");
                }
            }
            tokio::time::sleep(target.interval).await;
            continue;
        }
        tokio::select! {
            () = book.wait_changed() => {}
            () = tokio::time::sleep_until(last_write + target.heartbeat) => {}
        }
    }
}

/// What the daemon publishes beyond programming (GatewayStatus heartbeat and size, the IMDS
/// address map), with the flags' defaults.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Longest time between two GatewayStatus writes (`--status-heartbeat-seconds`).
    pub heartbeat: Duration,
    /// Most bytes of a GatewayStatus spec (`--status-max-bytes`).
    pub max_bytes: usize,
    /// IMDS base URL to read the node's public IPs from (`None`: not published).
    pub imds_url: Option<String>,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(60),
            max_bytes: 1_000_000,
            imds_url: None,
        }
    }
}
