//! Removes the `egressgateway.kubernetes.azure.com/cni-not-ready` start-up taint from this
//! node once our conflist is installed, so pods are scheduled here only when ADD can work.
//! Watches only its own Node object.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Config};
use tokio_util::sync::CancellationToken;

use egress_api::constants::{CNI_NOT_READY_TAINT, FIELD_MANAGER_CNI_MANAGER};

use crate::metrics::Metrics;
use crate::state::NodeState;

const RETRY: Duration = Duration::from_secs(5);

/// Index of the not-ready taint, if present.
pub fn taint_index(node: &Node) -> Option<usize> {
    node.spec
        .as_ref()?
        .taints
        .as_ref()?
        .iter()
        .position(|t| t.key == CNI_NOT_READY_TAINT)
}

async fn remove(api: &Api<Node>, node: &Node, index: usize) -> Result<(), kube::Error> {
    // A replace carries the resourceVersion we read, so a concurrent taint change makes it
    // fail with a conflict (and we retry) instead of overwriting someone else's update.
    let mut updated = node.clone();
    if let Some(taints) = updated.spec.as_mut().and_then(|s| s.taints.as_mut()) {
        taints.remove(index);
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER_CNI_MANAGER.into()),
        ..PostParams::default()
    };
    api.replace(&name, &params, &updated).await.map(|_| ())
}

/// Runs until cancelled.
pub async fn run(
    client: kube::Client,
    node: String,
    state: NodeState,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let api: Api<Node> = Api::all(client);
    let config = Config::default().fields(&format!("metadata.name={node}"));
    let mut nodes = watcher::watcher(api.clone(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut conflist = state.watch_conflist();
    let mut latest: Option<Node> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            ev = nodes.next() => match ev {
                Some(Ok(n)) => latest = Some(n),
                Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying"),
                None => return,
            },
            changed = conflist.changed() => if changed.is_err() { cancel.cancelled().await; return },
            () = retry => {
                retry_at = None;
                match api.get_opt(&node).await {
                    Ok(n) => latest = n,
                    Err(e) => tracing::warn!(error = %e, "failed to get node {node}"),
                }
            }
        }
        let Some(n) = latest.as_ref() else { continue };
        let Some(index) = taint_index(n) else {
            continue;
        };
        if !state.conflist_installed() {
            continue;
        }
        match remove(&api, n, index).await {
            Ok(()) => {
                metrics.taint_removals.inc();
                tracing::info!(%node, "removed taint {CNI_NOT_READY_TAINT}");
            }
            Err(e) => {
                tracing::warn!(error = %e, %node, "failed to remove taint {CNI_NOT_READY_TAINT}; retrying");
                retry_at = Some(tokio::time::Instant::now() + RETRY);
            }
        }
    }
}
