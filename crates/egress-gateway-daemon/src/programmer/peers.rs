//! Incremental peers: each touched PodEndpoint (its object or its pod changed) is re-placed in
//! the desired state, with the claims it contends with, and only the ops that change causes
//! are applied (remove/add one peer, delete/add its `/32` route). A burst of events goes out
//! together: peer removals, route deletions, route additions, then peer additions (batched
//! into WireGuard transactions by the data plane), so a new peer can only handshake once its
//! route exists. Nothing is observed; the resync repairs drift.

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

/// The ops a set of PodEndpoint changes needs, in a safe order: peer removals, route
/// deletions, route additions, peer adds. A peer comes after its route because the pod's
/// ADD returns at the first handshake: a reply that reached the gateway before the route
/// would leave by the default route and the pod's first connection would fail. Routes are
/// diffed over the whole set, so an IP passing from one PodEndpoint to another on the same
/// tunnel keeps its route throughout.
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
    removals.extend(before.difference(&after).map(|r| Op::DelRoute {
        netns: netns.clone(),
        route: route(r),
    }));
    removals.extend(after.difference(&before).map(|r| Op::AddRoute {
        netns: netns.clone(),
        route: route(r),
    }));
    removals.append(&mut adds);
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
                Ok(report) => {
                    // A refused peer may be half there: not a state to read drift against.
                    self.in_kernel &= report.peer_failures.is_empty();
                    self.peer_failures(&mut desired, report.peer_failures);
                }
                Err(e) => {
                    self.in_kernel = false;
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
            let ipv6 = desired.ipv6_refusals.get(key);
            self.report(
                ReportKind::PodEndpointIpv6,
                key,
                ipv6.map(|r| Problem::of_ipv6(key, r)),
            );
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::desired::PeerSlot;
    use egress_dataplane::PrivateKey;

    fn slot(port: u16, ip: &str) -> PeerSlot {
        PeerSlot {
            port,
            public_key: PrivateKey::generate().public_key(),
            allowed_ips: [ip.parse().unwrap()].into(),
        }
    }

    fn kinds(ops: &[Op]) -> Vec<&'static str> {
        ops.iter()
            .map(|op| match op {
                Op::RemovePeer { .. } => "remove peer",
                Op::DelRoute { .. } => "delete route",
                Op::AddRoute { .. } => "add route",
                Op::AddPeer { .. } => "add peer",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn a_new_peer_comes_after_its_route() {
        let change = SlotChange {
            old: None,
            new: Some(slot(6000, "10.244.0.7/32")),
        };
        let ops = change_ops(&NetnsRef::Current, [&change]);
        assert_eq!(kinds(&ops), ["add route", "add peer"]);
    }

    #[test]
    fn an_address_moving_between_tunnels_loses_its_old_route_before_the_new_one() {
        // The same pod IP leaves wg-6000 (its peer removed) for wg-6001 (a new peer): the
        // old route goes before the new one is added, and the new peer comes last.
        let (old, new) = (slot(6000, "10.244.0.7/32"), slot(6001, "10.244.0.7/32"));
        let changes = [
            SlotChange {
                old: Some(old),
                new: None,
            },
            SlotChange {
                old: None,
                new: Some(new),
            },
        ];
        let ops = change_ops(&NetnsRef::Current, changes.iter());
        assert_eq!(
            kinds(&ops),
            ["remove peer", "delete route", "add route", "add peer"]
        );
    }
}
