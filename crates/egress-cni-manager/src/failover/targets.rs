//! Where the load balancer probes each gateway: the gateway nodes of an SGC are the primary
//! IPs its GatewayVMConfiguration status lists (the operator puts exactly those nodes in
//! the load balancer's backend pool), and the probe path is `/gw/<SGC UID>`. The
//! GatewayVMConfigurations are watched cluster-wide (one small object per SGC); the SGC's UID
//! is read with one GET, only for SGCs this node's tunnels use, and again when the
//! configuration chain was re-created (its owner changed).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use egress_api::{GatewayVMConfiguration, StaticGatewayConfiguration};

use super::health::{SgcRef, Targets};

/// What a GatewayVMConfiguration says about its gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayNodes {
    /// UID of its controlling owner (the GatewayLBConfiguration): changes when the chain is
    /// re-created, and with it the SGC's UID.
    pub owner_uid: String,
    /// Primary IPs of the gateway nodes.
    pub nodes: BTreeSet<IpAddr>,
}

/// The gateway nodes of every GatewayVMConfiguration, by SGC.
pub type GatewayMap = BTreeMap<SgcRef, GatewayNodes>;

fn nodes_of(vm: &GatewayVMConfiguration) -> GatewayNodes {
    GatewayNodes {
        owner_uid: vm
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone())
            .unwrap_or_default(),
        nodes: vm
            .status
            .as_ref()
            .and_then(|s| s.gateway_vm_profiles.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|p| p.primary_ip.as_deref()?.parse().ok())
            .collect(),
    }
}

fn key(vm: &GatewayVMConfiguration) -> SgcRef {
    SgcRef::new(vm.namespace().unwrap_or_default(), vm.name_any())
}

/// Watches every GatewayVMConfiguration until cancelled, publishing the map.
pub async fn watch_gateways(
    api: Api<GatewayVMConfiguration>,
    out: watch::Sender<GatewayMap>,
    cancel: CancellationToken,
) {
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut initial = GatewayMap::new();
    while let Some(next) = crate::pod_watch::next_or_cancelled(&mut stream, &cancel).await {
        match next {
            Err(e) => {
                tracing::warn!(error = %e, "GatewayVMConfiguration watch failed; retrying with backoff");
            }
            Ok(Event::Init) => initial.clear(),
            Ok(Event::InitApply(vm)) => {
                initial.insert(key(&vm), nodes_of(&vm));
            }
            Ok(Event::InitDone) => {
                let map = std::mem::take(&mut initial);
                out.send_if_modified(|m| std::mem::replace(m, map.clone()) != map);
            }
            Ok(Event::Apply(vm)) => {
                let (k, v) = (key(&vm), nodes_of(&vm));
                out.send_if_modified(|m| m.insert(k, v.clone()).as_ref() != Some(&v));
            }
            Ok(Event::Delete(vm)) => {
                let k = key(&vm);
                out.send_if_modified(|m| m.remove(&k).is_some());
            }
        }
    }
}

/// SGC UIDs read so far, by SGC and the owner UID they were read under.
#[derive(Debug, Default)]
pub struct UidCache {
    uids: BTreeMap<SgcRef, (String, String)>,
}

impl UidCache {
    /// The probe targets of the `wanted` SGCs that have gateway nodes, reading the UID of
    /// any not known under its current owner. An SGC that cannot be read is left out (its
    /// tunnels fall back to WireGuard's own timers) and asked again next time.
    pub async fn targets(
        &mut self,
        client: &kube::Client,
        gateways: &GatewayMap,
        wanted: &BTreeSet<SgcRef>,
    ) -> BTreeMap<SgcRef, Targets> {
        self.uids.retain(|sgc, _| wanted.contains(sgc));
        let mut out = BTreeMap::new();
        for sgc in wanted {
            let Some(g) = gateways.get(sgc).filter(|g| !g.nodes.is_empty()) else {
                continue;
            };
            let known = self
                .uids
                .get(sgc)
                .filter(|(owner, _)| *owner == g.owner_uid)
                .map(|(_, uid)| uid.clone());
            let uid = match known {
                Some(uid) => uid,
                None => {
                    let api: Api<StaticGatewayConfiguration> =
                        Api::namespaced(client.clone(), &sgc.namespace);
                    match api.get_opt(&sgc.name).await {
                        Ok(Some(s)) => {
                            let uid = s.uid().unwrap_or_default();
                            self.uids
                                .insert(sgc.clone(), (g.owner_uid.clone(), uid.clone()));
                            uid
                        }
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(%sgc, error = %e, "failed to read the StaticGatewayConfiguration for its probe path");
                            continue;
                        }
                    }
                }
            };
            out.insert(
                sgc.clone(),
                Targets {
                    uid,
                    nodes: g.nodes.clone(),
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn nodes_come_from_the_status_profiles() {
        let vm: GatewayVMConfiguration = serde_json::from_value(serde_json::json!({
            "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
            "kind": "GatewayVMConfiguration",
            "metadata": {"name": "gw", "namespace": "ns",
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "gw", "uid": "lb1", "controller": true}]},
            "spec": {"gatewayNodepoolName": "pool"},
            "status": {"gatewayVMProfiles": [
                {"nodeName": "a", "primaryIP": "10.224.0.6"},
                {"nodeName": "b", "primaryIP": "not-an-ip"},
                {"nodeName": "c"}]}
        }))
        .unwrap();
        assert_eq!(key(&vm), SgcRef::new("ns", "gw"));
        let n = nodes_of(&vm);
        assert_eq!(n.owner_uid, "lb1");
        assert_eq!(n.nodes, ["10.224.0.6".parse().unwrap()].into());
    }
}
