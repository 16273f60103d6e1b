//! The per-node GatewayStatus (original shape: `readyGatewayConfigurations`,
//! `readyPeerConfigurations`), kept in a [`StatusBook`] the programmer updates in O(log n)
//! per change, and written by [`write_status`] in batches: at most one server-side apply per
//! interval, carrying whatever changed meanwhile, skipped when nothing changed, with at most
//! `max_peers` peer entries (the total is in an annotation when cut).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egress_api::constants::{API_VERSION, FIELD_MANAGER_GATEWAY_DAEMON};
use egress_api::{GatewayConfiguration, GatewayStatus, GatewayStatusSpec, PeerConfiguration};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::translate::ObjectKey;

/// Annotation with the number of peers when the list was cut to `max_peers`.
pub const PEERS_TOTAL_ANNOTATION: &str = "egressgateway.kubernetes.azure.com/ready-peers-total";

#[derive(Debug, Default)]
struct Book {
    gateways: BTreeMap<ObjectKey, String>,
    peers: BTreeMap<ObjectKey, (String, String)>,
}

/// What is programmed, for the GatewayStatus. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct StatusBook {
    book: Arc<Mutex<Book>>,
    changed: Arc<Notify>,
}

impl StatusBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the ready gateways (`sgc` → `wg-<port>`) and every peer.
    pub fn replace(
        &self,
        gateways: BTreeMap<ObjectKey, String>,
        peers: BTreeMap<ObjectKey, (String, String)>,
    ) {
        let mut book = self.lock();
        if book.gateways != gateways || book.peers != peers {
            book.gateways = gateways;
            book.peers = peers;
            self.changed.notify_one();
        }
    }

    /// Sets (`Some((interface, public key))`) or clears one peer.
    pub fn set_peer(&self, pod_endpoint: &ObjectKey, entry: Option<(String, String)>) {
        let mut book = self.lock();
        let changed = match entry {
            Some(e) => book.peers.insert(pod_endpoint.clone(), e.clone()) != Some(e),
            None => book.peers.remove(pod_endpoint).is_some(),
        };
        if changed {
            self.changed.notify_one();
        }
    }

    /// The spec to write, with at most `max_peers` peers, and the total number of peers.
    pub fn spec(&self, max_peers: usize) -> (GatewayStatusSpec, usize) {
        let book = self.lock();
        let gateways = book
            .gateways
            .iter()
            .map(|(sgc, interface)| GatewayConfiguration {
                static_gateway_configuration: Some(sgc.to_string()),
                interface_name: Some(interface.clone()),
            })
            .collect::<Vec<_>>();
        let peers = book
            .peers
            .iter()
            .take(max_peers)
            .map(|(pe, (interface, key))| PeerConfiguration {
                pod_endpoint: Some(pe.to_string()),
                interface_name: Some(interface.clone()),
                public_key: Some(key.clone()),
            })
            .collect::<Vec<_>>();
        (
            GatewayStatusSpec {
                ready_gateway_configurations: (!gateways.is_empty()).then_some(gateways),
                ready_peer_configurations: (!peers.is_empty()).then_some(peers),
                ..GatewayStatusSpec::default()
            },
            book.peers.len(),
        )
    }

    /// The ready gateways (`sgc` → `wg-<port>`).
    pub fn gateways(&self) -> BTreeMap<ObjectKey, String> {
        self.lock().gateways.clone()
    }

    /// Number of peers listed as ready.
    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    async fn wait_changed(&self) {
        self.changed.notified().await;
    }
}

/// Where and how often the GatewayStatus is written.
#[derive(Debug, Clone)]
pub struct StatusTarget {
    /// Namespace of the object (the daemon's).
    pub namespace: String,
    /// Name of the object (the node's).
    pub node_name: String,
    /// Least time between two writes.
    pub interval: Duration,
    /// Most peer entries written.
    pub max_peers: usize,
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

/// Writes the GatewayStatus whenever the book changes, at most once per `interval`, until
/// the task is dropped. A failed write is retried after the interval.
pub async fn write_status(
    client: kube::Client,
    book: StatusBook,
    target: StatusTarget,
    metrics: Metrics,
) {
    let api: Api<GatewayStatus> = Api::namespaced(client.clone(), &target.namespace);
    let params = PatchParams::apply(FIELD_MANAGER_GATEWAY_DAEMON).force();
    let mut owner = None;
    let mut last: Option<serde_json::Value> = None;
    loop {
        book.wait_changed().await;
        loop {
            if owner.is_none() {
                owner = node_owner(&client, &target.node_name).await;
            }
            let (spec, total) = book.spec(target.max_peers);
            let mut metadata = serde_json::json!({
                "name": target.node_name,
                "namespace": target.namespace,
            });
            if let Some(owner) = &owner {
                metadata["ownerReferences"] = serde_json::json!([owner]);
            }
            if total > target.max_peers {
                metadata["annotations"] =
                    serde_json::json!({ PEERS_TOTAL_ANNOTATION: total.to_string() });
            }
            let body = serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": "GatewayStatus",
                "metadata": metadata,
                "spec": spec,
            });
            if last.as_ref() == Some(&body) {
                break;
            }
            match api
                .patch(&target.node_name, &params, &Patch::Apply(&body))
                .await
            {
                Ok(_) => {
                    last = Some(body);
                    tokio::time::sleep(target.interval).await;
                    break;
                }
                Err(e) => {
                    metrics.error("status_write");
                    tracing::warn!(error = %e, "failed to write the GatewayStatus");
                    tokio::time::sleep(target.interval).await;
                }
            }
        }
    }
}
