//! Incremental peers: each touched PodEndpoint is re-placed in the desired state and only the
//! ops that change causes are applied (remove/add one peer, delete/add its `/32` route). A
//! burst of events goes out together: peer ops first (batched into WireGuard transactions by
//! the data plane), then routes. Nothing is observed; the resync repairs drift.

use std::collections::BTreeSet;
use std::time::Instant;

use egress_dataplane::{NetnsRef, Op, RouteSpec, WgDeviceId};
use ipnet::IpNet;

use super::{Programmer, ReportKind, error_chain};
use crate::desired::{PeerSlot, SlotChange};
use crate::translate::ObjectKey;

fn device(netns: &NetnsRef, port: u16) -> WgDeviceId {
    WgDeviceId {
        netns: netns.clone(),
        name: Programmer::interface(port),
    }
}

fn routes(slot: Option<&PeerSlot>) -> BTreeSet<(u16, IpNet)> {
    slot.map(|s| {
        s.allowed_ips
            .iter()
            .filter(|ip| matches!(ip, IpNet::V4(_)))
            .map(|ip| (s.port, *ip))
            .collect()
    })
    .unwrap_or_default()
}

/// The ops one PodEndpoint change needs: peer ops into `peer_ops`, route ops into `route_ops`.
pub fn slot_ops(
    netns: &NetnsRef,
    change: &SlotChange,
    peer_ops: &mut Vec<Op>,
    route_ops: &mut Vec<Op>,
) {
    let (old, new) = (change.old.as_ref(), change.new.as_ref());
    if old == new {
        return;
    }
    if let Some(old) = old
        && new.is_none_or(|n| n.port != old.port || n.public_key != old.public_key)
    {
        peer_ops.push(Op::RemovePeer {
            device: device(netns, old.port),
            public_key: old.public_key.clone(),
        });
    }
    if let Some(new) = new {
        // Also covers an IP change: the peer's allowed IPs are replaced, not added to.
        peer_ops.push(Op::AddPeer {
            device: device(netns, new.port),
            peer: new.peer(),
        });
    }
    let (before, after) = (routes(old), routes(new));
    for (port, ip) in before.difference(&after) {
        route_ops.push(Op::DelRoute {
            netns: netns.clone(),
            route: RouteSpec::on_link(*ip, Programmer::interface(*port)),
        });
    }
    for (port, ip) in after.difference(&before) {
        route_ops.push(Op::AddRoute {
            netns: netns.clone(),
            route: RouteSpec::on_link(*ip, Programmer::interface(*port)),
        });
    }
}

impl Programmer {
    pub(super) async fn apply_peer_events(&mut self) {
        let pending = std::mem::take(&mut self.pending_peers);
        let netns = self.gateway_netns();
        let Some(mut desired) = self.desired.take() else {
            return;
        };
        let (mut peer_ops, mut route_ops) = (Vec::new(), Vec::new());
        let mut touched: Vec<ObjectKey> = Vec::new();
        let mut removed_any = false;
        for key in pending.keys() {
            let change = desired.place_peer(key, self.inventory.pod_endpoints.get(key));
            removed_any |= change.old.is_some();
            slot_ops(&netns, &change, &mut peer_ops, &mut route_ops);
            touched.push(key.clone());
        }
        if removed_any {
            // A PodEndpoint that clashed with one that is now gone may fit.
            let waiting: Vec<ObjectKey> = desired
                .peer_errors
                .iter()
                .filter(|(k, e)| e.is_conflict() && !pending.contains_key(*k))
                .map(|(k, _)| k.clone())
                .collect();
            for key in waiting {
                let change = desired.place_peer(&key, self.inventory.pod_endpoints.get(&key));
                slot_ops(&netns, &change, &mut peer_ops, &mut route_ops);
                touched.push(key);
            }
        }
        peer_ops.append(&mut route_ops);
        let ops = peer_ops;
        if !ops.is_empty() {
            match self.dataplane.apply(&ops).await {
                Ok(report) => self.peer_failures(&mut desired, report.peer_failures),
                Err(e) => {
                    // A route op failed: the kernel and the desired state may differ now.
                    self.out.metrics.error(e.source.category());
                    tracing::error!(error = %error_chain(&e), "failed to apply peer changes; the node will be re-programmed");
                    self.needs_full = true;
                }
            }
        }
        for key in &touched {
            let entry = desired
                .peers
                .get(key)
                .filter(|s| self.programmed.contains(&s.port))
                .map(|s| {
                    (
                        Self::interface(s.port).to_string(),
                        s.public_key.to_base64(),
                    )
                });
            self.out.status.set_peer(key, entry);
            let problem = desired
                .peer_errors
                .get(key)
                .map(|e| (e.reason(), e.kind(), error_chain(e)));
            self.report(ReportKind::PodEndpoint, key, problem);
        }
        self.desired = Some(desired);
        let now = Instant::now();
        for since in pending.values() {
            self.out
                .metrics
                .programming("peer", now.saturating_duration_since(*since));
        }
    }
}
