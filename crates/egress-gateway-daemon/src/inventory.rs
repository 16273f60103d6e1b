//! The daemon's view of the cluster: the objects it watches, kept by key, and the changes the
//! watches deliver. Applying a change says what it touched (gateway-level objects or one
//! PodEndpoint), so the programmer knows whether a peer op is enough.

use std::collections::{BTreeMap, BTreeSet};

use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use k8s_openapi::api::core::v1::Secret;

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
}

/// What applying a change touched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Gateway-level objects changed (SGC, VM configuration, Secret).
    pub gateways: bool,
    /// PodEndpoints whose spec changed or that appeared or went.
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
    listed: BTreeSet<Kind>,
}

fn merge<K: kube::Resource + Clone>(
    map: &mut BTreeMap<ObjectKey, K>,
    delta: Delta<K>,
    same: impl Fn(&K, &K) -> bool,
    touched: &mut BTreeSet<ObjectKey>,
) {
    match delta {
        Delta::Apply(obj) => {
            let key = ObjectKey::of(&obj);
            if !map.get(&key).is_some_and(|old| same(old, &obj)) {
                touched.insert(key.clone());
            }
            map.insert(key, obj);
        }
        Delta::Delete(obj) => {
            let key = ObjectKey::of(&obj);
            if map.remove(&key).is_some() {
                touched.insert(key);
            }
        }
        Delta::Relisted(list) => {
            let fresh: BTreeMap<ObjectKey, K> =
                list.into_iter().map(|o| (ObjectKey::of(&o), o)).collect();
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
                    |a, b| {
                        a.metadata.uid == b.metadata.uid
                            && a.metadata.deletion_timestamp == b.metadata.deletion_timestamp
                            && a.status == b.status
                    },
                    &mut keys,
                );
                touched.gateways = !keys.is_empty();
            }
            Change::VmConfig(d) => {
                self.mark(Kind::VmConfig, &d);
                merge(
                    &mut self.vm_configs,
                    d,
                    |a, b| a.status == b.status,
                    &mut keys,
                );
                touched.gateways = !keys.is_empty();
            }
            Change::Secret(d) => {
                self.mark(Kind::Secret, &d);
                merge(&mut self.secrets, d, |a, b| a.data == b.data, &mut keys);
                touched.gateways = !keys.is_empty();
            }
            Change::PodEndpoint(d) => {
                self.mark(Kind::PodEndpoint, &d);
                merge(
                    &mut self.pod_endpoints,
                    d,
                    |a, b| a.spec == b.spec,
                    &mut keys,
                );
                touched.pod_endpoints = keys;
            }
        }
        touched
    }

    fn mark<K>(&mut self, kind: Kind, delta: &Delta<K>) {
        if matches!(delta, Delta::Relisted(_)) {
            self.listed.insert(kind);
        }
    }

    /// True once every kind has been listed completely.
    pub fn synced(&self) -> bool {
        self.listed.len() == 4
    }

    /// The Secret with this key, if watched and present.
    pub fn secret(&self, key: &ObjectKey) -> Option<Secret> {
        self.secrets.get(key).cloned()
    }
}
