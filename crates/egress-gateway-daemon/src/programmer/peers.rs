//! Incremental peers: each touched PodEndpoint (its object or its pod changed) is re-placed in
//! the desired state, with the claims it contends with, and only the ops that change causes
//! are applied (remove/add one peer, delete/add its `/32` route). A burst of events goes out
//! together: peer ops first (batched into WireGuard transactions by the data plane), then
//! routes. Nothing is observed; the resync repairs drift.

use std::collections::BTreeSet;
use std::time::Instant;

use egress_dataplane::{NetnsRef, Op, RouteSpec, WgDeviceId};
use ipnet::IpNet;

use super::{Problem, Programmer, ReportKind, error_chain};
use crate::desired::{PeerSlot, SlotChange};
use crate::translate::{ObjectKey, PeerError};
use crate::trust::Refusal;

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

/// The ops a set of PodEndpoint changes needs, in a safe order: peer removals, peer adds,
/// route deletions, route additions. Routes are diffed over the whole set, so an IP passing
/// from one PodEndpoint to another on the same tunnel keeps its route throughout.
pub fn change_ops<'a>(
    netns: &NetnsRef,
    changes: impl IntoIterator<Item = &'a SlotChange>,
) -> Vec<Op> {
    let (mut removals, mut adds) = (Vec::new(), Vec::new());
    let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
    for change in changes {
        let (old, new) = (change.old.as_ref(), change.new.as_ref());
        if old == new {
            continue;
        }
        if let Some(old) = old
            && new.is_none_or(|n| n.port != old.port || n.public_key != old.public_key)
        {
            removals.push(Op::RemovePeer {
                device: device(netns, old.port),
                public_key: old.public_key.clone(),
            });
        }
        if let Some(new) = new {
            // Also covers an IP change: the peer's allowed IPs are replaced, not added to.
            adds.push(Op::AddPeer {
                device: device(netns, new.port),
                peer: new.peer(),
            });
        }
        before.extend(routes(old));
        after.extend(routes(new));
    }
    let route = |(port, ip): &(u16, IpNet)| RouteSpec::on_link(*ip, Programmer::interface(*port));
    removals.append(&mut adds);
    removals.extend(before.difference(&after).map(|r| Op::DelRoute {
        netns: netns.clone(),
        route: route(r),
    }));
    removals.extend(after.difference(&before).map(|r| Op::AddRoute {
        netns: netns.clone(),
        route: route(r),
    }));
    removals
}

impl Programmer {
    pub(super) async fn apply_peer_events(&mut self) {
        let pending = std::mem::take(&mut self.pending_peers);
        let netns = self.gateway_netns();
        let Some(mut desired) = self.desired.take() else {
            return;
        };
        let touched: BTreeSet<ObjectKey> = pending.keys().cloned().collect();
        let changes = desired.replace_peers(&self.inventory, &touched);
        let ops = change_ops(&netns, changes.values());
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
        for key in touched.iter().chain(changes.keys()) {
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
            let error = desired.peer_errors.get(key);
            if error
                .and_then(PeerError::refusal)
                .is_some_and(Refusal::may_be_watch_lag)
            {
                continue;
            }
            self.report(ReportKind::PodEndpoint, key, error.map(Problem::of_peer));
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
