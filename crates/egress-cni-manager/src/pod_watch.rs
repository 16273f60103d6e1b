//! Watches this node's pods only (field selector `spec.nodeName=<node>`) and keeps the few
//! facts the request handler needs in the [`PodCache`]: annotation, labels, IPs, UID, phase.

use std::collections::HashMap;
use std::net::IpAddr;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use egress_api::constants::POD_ANNOTATION;

use crate::metrics::Metrics;
use crate::state::{NodeState, PodCache, PodFacts, PodKey};

/// The field selector that limits every pod read of the manager to its node.
pub fn node_selector(node: &str) -> String {
    format!("spec.nodeName={node}")
}

/// Extracts the facts kept per pod.
pub fn facts(pod: &Pod) -> PodFacts {
    let status = pod.status.as_ref();
    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|v| v.iter().filter_map(|p| p.ip.parse().ok()).collect())
        .unwrap_or_default();
    if ips.is_empty()
        && let Some(ip) = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|s| s.parse().ok())
    {
        ips.push(ip);
    }
    PodFacts {
        uid: pod.uid().unwrap_or_default(),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        annotation: pod
            .annotations()
            .get(POD_ANNOTATION)
            .filter(|v| !v.is_empty())
            .cloned(),
        labels: pod.labels().clone(),
        ips,
        finished: matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        ),
        deleting: pod.metadata.deletion_timestamp.is_some(),
    }
}

/// Cache key of a pod.
pub fn key(pod: &Pod) -> PodKey {
    (pod.namespace().unwrap_or_default(), pod.name_any())
}

/// The next item of a watch stream; `None` when it ended or `cancel` fired.
pub async fn next_or_cancelled<S: futures::Stream + Unpin>(
    stream: &mut S,
    cancel: &CancellationToken,
) -> Option<S::Item> {
    tokio::select! {
        () = cancel.cancelled() => None,
        next = stream.next() => next,
    }
}

/// Runs the watch until cancelled.
pub async fn run(
    api: Api<Pod>,
    node: String,
    cache: PodCache,
    state: NodeState,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let config = watcher::Config::default().fields(&node_selector(&node));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut initial: HashMap<PodKey, PodFacts> = HashMap::new();
    while let Some(next) = next_or_cancelled(&mut stream, &cancel).await {
        match next {
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying with backoff"),
            Ok(Event::Init) => initial.clear(),
            Ok(Event::InitApply(pod)) => {
                initial.insert(key(&pod), facts(&pod));
            }
            Ok(Event::InitDone) => {
                cache.replace(std::mem::take(&mut initial));
                state.set_pods_synced(true);
                tracing::info!(pods = cache.len(), %node, "pod cache synced");
            }
            Ok(Event::Apply(pod)) => cache.upsert(key(&pod), facts(&pod)),
            Ok(Event::Delete(pod)) => cache.remove(&key(&pod)),
        }
        metrics
            .cached_pods
            .set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
    }
}
