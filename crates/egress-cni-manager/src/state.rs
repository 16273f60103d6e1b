//! Readiness state shared by the manager's tasks (conflist installed, pod and SGC caches
//! synced, socket listening) and the node-local pod cache the request handler reads. Memory is
//! bounded by the pods of this node: nothing cluster-wide is kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use egress_api::selection::{Choice, Selectors};
use tokio::sync::watch;

/// Readiness flags with change notification.
#[derive(Debug, Clone)]
pub struct NodeState {
    conflist: watch::Sender<bool>,
    pods_synced: watch::Sender<bool>,
    gateways_synced: watch::Sender<bool>,
    listening: watch::Sender<bool>,
}

impl Default for NodeState {
    fn default() -> Self {
        Self {
            conflist: watch::Sender::new(false),
            pods_synced: watch::Sender::new(false),
            gateways_synced: watch::Sender::new(false),
            listening: watch::Sender::new(false),
        }
    }
}

impl NodeState {
    /// Records whether our conflist is in place.
    pub fn set_conflist_installed(&self, v: bool) {
        self.conflist
            .send_if_modified(|old| std::mem::replace(old, v) != v);
    }
    /// Records that the pod cache finished its initial list.
    pub fn set_pods_synced(&self, v: bool) {
        self.pods_synced
            .send_if_modified(|old| std::mem::replace(old, v) != v);
    }
    /// Records that the SGC cache finished its initial list (pods are resolved against the
    /// `podSelector`s without asking the API from then on).
    pub fn set_gateways_synced(&self, v: bool) {
        self.gateways_synced
            .send_if_modified(|old| std::mem::replace(old, v) != v);
    }
    /// Records whether the plugin socket accepts connections.
    pub fn set_listening(&self, v: bool) {
        self.listening
            .send_if_modified(|old| std::mem::replace(old, v) != v);
    }
    /// Whether our conflist is in place.
    pub fn conflist_installed(&self) -> bool {
        *self.conflist.borrow()
    }
    /// Subscribes to conflist changes.
    pub fn watch_conflist(&self) -> watch::Receiver<bool> {
        self.conflist.subscribe()
    }
    /// Whether the pod cache is synced.
    pub fn pods_synced(&self) -> bool {
        *self.pods_synced.borrow()
    }
    /// Ready to serve pods: all four flags set.
    pub fn ready(&self) -> bool {
        self.conflist_installed()
            && self.pods_synced()
            && *self.gateways_synced.borrow()
            && *self.listening.borrow()
    }
    /// Human-readable list of what is not ready yet.
    pub fn not_ready_reasons(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if !self.conflist_installed() {
            r.push("CNI conflist not installed");
        }
        if !self.pods_synced() {
            r.push("pod cache not synced");
        }
        if !*self.gateways_synced.borrow() {
            r.push("StaticGatewayConfiguration cache not synced");
        }
        if !*self.listening.borrow() {
            r.push("plugin socket not listening");
        }
        r
    }
}

/// What the manager keeps of one pod of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// Value of the gateway annotation (empty counts as none).
    pub annotation: Option<String>,
    /// `metadata.labels` (what `podSelector`s match).
    pub labels: BTreeMap<String, String>,
    /// `status.podIPs` (or `status.podIP`).
    pub ips: Vec<IpAddr>,
    /// Phase is Succeeded or Failed: its IP is free for reuse.
    pub finished: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl PodFacts {
    /// The gateway this pod of `namespace` uses by the one rule (`egress_api::selection`).
    pub fn choice(&self, namespace: &str, selectors: &Selectors) -> Choice {
        selectors.choose(namespace, &self.labels, self.annotation.as_deref())
    }
}

/// `namespace/name`.
pub type PodKey = (String, String);

#[derive(Debug, Default)]
struct CacheInner {
    pods: HashMap<PodKey, PodFacts>,
    // Pods whose sandbox was torn down (CNI DEL) since the API last reported their IPs: the
    // recorded IP is stale, so a new sandbox may claim another one.
    released: HashSet<(PodKey, String)>,
}

/// This node's pods, fed by the pod watch.
#[derive(Debug, Clone, Default)]
pub struct PodCache {
    inner: Arc<RwLock<CacheInner>>,
    // Woken on every change (one stored permit): the attachment of running pods re-plans.
    changes: Arc<tokio::sync::Notify>,
}

impl PodCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheInner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheInner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole cache (after a (re)list).
    pub fn replace(&self, pods: HashMap<PodKey, PodFacts>) {
        let mut w = self.write();
        w.released
            .retain(|(k, uid)| pods.get(k).is_some_and(|p| &p.uid == uid));
        w.pods = pods;
        self.changes.notify_one();
    }
    /// Waits for the next change (returns at once if one happened since the last wait).
    pub async fn changed(&self) {
        self.changes.notified().await;
    }
    /// A copy of every cached pod.
    pub fn snapshot(&self) -> HashMap<PodKey, PodFacts> {
        self.read().pods.clone()
    }
    /// Inserts or updates one pod.
    pub fn upsert(&self, key: PodKey, facts: PodFacts) {
        let mut w = self.write();
        let ips_changed = w.pods.get(&key).is_none_or(|old| old.ips != facts.ips);
        if ips_changed {
            w.released.remove(&(key.clone(), facts.uid.clone()));
        }
        w.pods.insert(key, facts);
        self.changes.notify_one();
    }
    /// Removes one pod.
    pub fn remove(&self, key: &PodKey) {
        let mut w = self.write();
        w.pods.remove(key);
        w.released.retain(|(k, _)| k != key);
        self.changes.notify_one();
    }
    /// The pod, if cached.
    pub fn get(&self, key: &PodKey) -> Option<PodFacts> {
        self.read().pods.get(key).cloned()
    }
    /// Number of cached pods.
    pub fn len(&self) -> usize {
        self.read().pods.len()
    }
    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Marks the pod's recorded IPs as stale (its sandbox was torn down).
    pub fn release(&self, key: &PodKey, uid: &str) {
        self.write().released.insert((key.clone(), uid.to_string()));
    }
    /// Whether the pod's recorded IPs are stale.
    pub fn is_released(&self, key: &PodKey, uid: &str) -> bool {
        self.read()
            .released
            .contains(&(key.clone(), uid.to_string()))
    }
    /// Another live pod of this node that holds `ip`, if any.
    pub fn ip_holder(&self, ip: IpAddr, except: &PodKey) -> Option<PodKey> {
        let r = self.read();
        r.pods
            .iter()
            .find(|(k, p)| {
                *k != except
                    && !p.finished
                    && p.ips.contains(&ip)
                    && !r.released.contains(&((*k).clone(), p.uid.clone()))
            })
            .map(|(k, _)| k.clone())
    }
}
