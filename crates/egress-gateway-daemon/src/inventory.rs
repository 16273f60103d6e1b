//! The daemon's view of the cluster: the objects it watches, kept by key, and the changes the
//! watches deliver. Applying a change says what it touched (gateway-level objects, or the
//! PodEndpoints whose object or pod changed), so the programmer knows whether a peer op is
//! enough.

use std::collections::{BTreeMap, BTreeSet};

use egress_api::selection::Selectors;
use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use k8s_openapi::api::core::v1::Secret;

use crate::pods::PodFacts;
use crate::translate::ObjectKey;

/// One change of one kind, as a watch delivers it.
#[derive(Debug, Clone)]
pub enum Delta<K> {
    /// Added or modified.
    Apply(K),
    /// Deleted.
    Delete(K),
    /// The complete current list (start-up or after a re-list).
    Relisted(Vec<K>),
}

/// A change of any watched kind.
#[derive(Debug, Clone)]
pub enum Change {
    /// StaticGatewayConfiguration (boxed: by far the largest object).
    Sgc(Box<Delta<StaticGatewayConfiguration>>),
    /// GatewayVMConfiguration.
    VmConfig(Delta<GatewayVMConfiguration>),
    /// Secret in the key namespace.
    Secret(Delta<Secret>),
    /// PodEndpoint.
    PodEndpoint(Delta<PodEndpoint>),
    /// Pod (only the facts the daemon keeps).
    Pod(Delta<PodFacts>),
}

/// The watched kinds, for "has it been listed yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// StaticGatewayConfiguration.
    Sgc,
    /// GatewayVMConfiguration.
    VmConfig,
    /// Secret.
    Secret,
    /// PodEndpoint.
    PodEndpoint,
    /// Pod.
    Pod,
}

/// What applying a change touched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Gateway-level objects changed (SGC, VM configuration, Secret).
    pub gateways: bool,
    /// PodEndpoints whose object or pod changed, or that appeared or went.
    pub pod_endpoints: BTreeSet<ObjectKey>,
}

/// All watched objects by key.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// StaticGatewayConfigurations.
    pub sgcs: BTreeMap<ObjectKey, StaticGatewayConfiguration>,
    /// GatewayVMConfigurations (same key as their SGC).
    pub vm_configs: BTreeMap<ObjectKey, GatewayVMConfiguration>,
    /// Secrets of the key namespace.
    pub secrets: BTreeMap<ObjectKey, Secret>,
    /// PodEndpoints.
    pub pod_endpoints: BTreeMap<ObjectKey, PodEndpoint>,
    /// Pods that have not finished, cluster-wide.
    pub pods: BTreeMap<ObjectKey, PodFacts>,
    /// The `podSelector`s of `sgcs` (re-derived when an SGC changes).
    pub selectors: Selectors,
    listed: BTreeSet<Kind>,
}

fn merge<K: Clone>(
    map: &mut BTreeMap<ObjectKey, K>,
    delta: Delta<K>,
    key_of: impl Fn(&K) -> ObjectKey,
    same: impl Fn(&K, &K) -> bool,
    touched: &mut BTreeSet<ObjectKey>,
) {
    match delta {
        Delta::Apply(obj) => {
            let key = key_of(&obj);
            if !map.get(&key).is_some_and(|old| same(old, &obj)) {
                touched.insert(key.clone());
            }
            map.insert(key, obj);
        }
        Delta::Delete(obj) => {
            let key = key_of(&obj);
            if map.remove(&key).is_some() {
                touched.insert(key);
            }
        }
        Delta::Relisted(list) => {
            let fresh: BTreeMap<ObjectKey, K> = list.into_iter().map(|o| (key_of(&o), o)).collect();
            for key in map.keys().filter(|k| !fresh.contains_key(*k)) {
                touched.insert(key.clone());
            }
            for (key, obj) in &fresh {
                if !map.get(key).is_some_and(|old| same(old, obj)) {
                    touched.insert(key.clone());
                }
            }
            *map = fresh;
        }
    }
}

/// The parts of an SGC's status a gateway is built from: conditions and `podCount` change with
/// every pod the operator counts, and must not make every gateway node re-plan its gateways.
fn gateway_fields(
    sgc: &StaticGatewayConfiguration,
) -> Option<(&Option<String>, &Option<egress_api::GatewayServerProfile>)> {
    sgc.status
        .as_ref()
        .map(|s| (&s.egress_ip_prefix, &s.gateway_server_profile))
}

impl Inventory {
    /// Applies one change and says what it touched.
    pub fn apply(&mut self, change: Change) -> Touched {
        let mut keys = BTreeSet::new();
        let mut touched = Touched::default();
        match change {
            Change::Sgc(d) => {
                let d = *d;
                self.mark(Kind::Sgc, &d);
                merge(
                    &mut self.sgcs,
                    d,
                    ObjectKey::of,
                    |a, b| {
                        a.metadata.uid == b.metadata.uid
                            && a.metadata.deletion_timestamp == b.metadata.deletion_timestamp
                            && a.metadata.finalizers == b.metadata.finalizers
                            && gateway_fields(a) == gateway_fields(b)
                    },
                    &mut keys,
                );
                touched.gateways = !keys.is_empty();
                touched.pod_endpoints = self.reselect();
            }
            Change::VmConfig(d) => {
                self.mark(Kind::VmConfig, &d);
                merge(
                    &mut self.vm_configs,
                    d,
                    ObjectKey::of,
                    |a, b| a.status == b.status,
                    &mut keys,
                );
                touched.gateways = !keys.is_empty();
            }
            Change::Secret(d) => {
                self.mark(Kind::Secret, &d);
                merge(
                    &mut self.secrets,
                    d,
                    ObjectKey::of,
                    |a, b| a.data == b.data,
                    &mut keys,
                );
                touched.gateways = !keys.is_empty();
            }
            Change::PodEndpoint(d) => {
                self.mark(Kind::PodEndpoint, &d);
                // Owner references and the node label decide trust: compared too.
                merge(
                    &mut self.pod_endpoints,
                    d,
                    ObjectKey::of,
                    |a, b| {
                        a.spec == b.spec
                            && a.metadata.owner_references == b.metadata.owner_references
                            && a.metadata.labels == b.metadata.labels
                    },
                    &mut keys,
                );
                touched.pod_endpoints = keys;
            }
            Change::Pod(d) => {
                self.mark(Kind::Pod, &d);
                merge(
                    &mut self.pods,
                    d,
                    |p| p.key.clone(),
                    |a, b| a == b,
                    &mut keys,
                );
                // A pod speaks only for the PodEndpoint of its own name.
                keys.retain(|k| self.pod_endpoints.contains_key(k));
                touched.pod_endpoints = keys;
            }
        }
        touched
    }

    /// Re-derives the selectors; the PodEndpoints of every namespace whose selectors changed
    /// (their pods may use another SGC now) are touched. The SGC merge above ignores spec
    /// changes, so a selector edit arrives here and only here.
    fn reselect(&mut self) -> BTreeSet<ObjectKey> {
        let now = Selectors::of(self.sgcs.values());
        let changed: BTreeSet<String> = self
            .sgcs
            .keys()
            .map(|k| k.namespace.clone())
            .chain(self.selectors.namespaces().map(str::to_owned))
            .filter(|ns| self.selectors.of_namespace(ns) != now.of_namespace(ns))
            .collect();
        self.selectors = now;
        self.pod_endpoints
            .keys()
            .filter(|k| changed.contains(&k.namespace))
            .cloned()
            .collect()
    }

    fn mark<K>(&mut self, kind: Kind, delta: &Delta<K>) {
        if matches!(delta, Delta::Relisted(_)) {
            self.listed.insert(kind);
        }
    }

    /// True once every kind has been listed completely.
    pub fn synced(&self) -> bool {
        self.listed.len() == 5
    }

    /// The Secret with this key, if watched and present.
    pub fn secret(&self, key: &ObjectKey) -> Option<Secret> {
        self.secrets.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::fixtures::{Gw, pod_endpoint, random_pub};

    #[test]
    fn a_selector_change_touches_the_pod_endpoints_of_its_namespace_only() {
        let gw = Gw::new("gw-a", 6000, "10.0.0.6");
        let mut inv = Inventory::default();
        inv.apply(Change::Sgc(Box::new(Delta::Relisted(vec![gw.sgc()]))));
        let pe = pod_endpoint("web", "gw-a", "10.244.1.5/32", &random_pub());
        let mut elsewhere = pod_endpoint("db", "gw-a", "10.244.1.6/32", &random_pub());
        elsewhere.metadata.namespace = Some("other".into());
        inv.apply(Change::PodEndpoint(Delta::Relisted(vec![pe, elsewhere])));

        // Status-only and unchanged SGCs touch no PodEndpoint.
        let t = inv.apply(Change::Sgc(Box::new(Delta::Apply(gw.sgc()))));
        assert!(t.pod_endpoints.is_empty());

        let mut selecting = gw.sgc();
        selecting.spec.pod_selector = Some(
            serde_json::from_value(serde_json::json!({"matchLabels": {"app": "web"}})).unwrap(),
        );
        let t = inv.apply(Change::Sgc(Box::new(Delta::Apply(selecting.clone()))));
        assert_eq!(
            t.pod_endpoints.into_iter().collect::<Vec<_>>(),
            [ObjectKey::new(crate::fixtures::NS, "web")]
        );
        assert!(inv.selectors.has_namespace(crate::fixtures::NS));
        // Deleting the SGC removes its selector: touched again.
        let t = inv.apply(Change::Sgc(Box::new(Delta::Delete(selecting))));
        assert_eq!(t.pod_endpoints.len(), 1);
        assert!(!inv.selectors.has_namespace(crate::fixtures::NS));
    }
}
