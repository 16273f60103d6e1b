//! The full cycle: build the node's gateways from the inventory, observe the kernel, place
//! every PodEndpoint (the peers the kernel and the previous desired state already have are
//! incumbents, so neither a resync nor a restart hands a slot to a later claimant), plan,
//! apply. A gateway whose own step fails (busy port, refused device) is held back and the rest
//! of the node is planned again without it, so one bad gateway never blocks the others and
//! leaves nothing half-configured. A node-level failure keeps what is known to be programmed
//! and asks for a retry. What the plan repairs of the previous cycle's work is drift
//! (`drift`), published with its outcome (`repairs`).

use std::collections::BTreeSet;
use std::time::Instant;

use egress_dataplane::control::PeerFailure;
use egress_dataplane::{
    ObservedState, WgDeviceId, observe_request_for_gateway_node, plan_gateway_node,
};

use super::repairs::Repairs;
use super::scope::{Scope, incomplete, scope};
use super::{Programmer, error_chain};
use crate::desired::Desired;
use crate::placement::Incumbents;
use crate::translate::{GatewayError, PeerError};

/// Most gateways held back in one cycle before giving up until the retry.
const MAX_HOLDS: usize = 16;

/// How a full cycle ended: applied (and whether every peer was taken, so the state is known
/// to be in the kernel), or failed (with the desired state when it got that far).
type Outcome = Result<(Desired, bool), Option<Desired>>;

impl Programmer {
    pub(super) async fn full_cycle(&mut self) {
        let started = Instant::now();
        self.gateways_touched = false;
        let pending = std::mem::take(&mut self.pending_peers);
        let inventory = &self.inventory;
        self.quarantine
            .retain(|k, _| inventory.sgcs.contains_key(k));
        let mut holds = 0;
        let trusted = self.in_kernel;
        self.in_kernel = false;
        let mut repairs = Repairs::default();
        let outcome: Outcome = loop {
            let mut desired = match Desired::gateways(
                &self.inventory,
                &self.node,
                &self.host,
                &self.quarantine,
            ) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "failed to build the desired node state");
                    break Err(None);
                }
            };
            let mut incumbents = self
                .desired
                .as_ref()
                .map(Desired::placed)
                .unwrap_or_default();
            let observed = match self
                .dataplane
                .observe(&observe_request_for_gateway_node(&desired.state))
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    self.out.metrics.error(e.source.category());
                    tracing::error!(error = %error_chain(&e), "failed to observe the node");
                    // Placed all the same, so later events contend with every claim.
                    desired.place_all_peers(&self.inventory, &incumbents);
                    break Err(Some(desired));
                }
            };
            incumbents.extend(self.kernel_peers(&desired, &observed));
            desired.place_all_peers(&self.inventory, &incumbents);
            let ops = plan_gateway_node(&desired.state, &observed);
            let found = self.drift(trusted, &observed, &ops);
            tracing::info!(
                ops = ops.len(),
                gateways = desired.gateways.len(),
                peers = desired.peers.len(),
                "programming the node"
            );
            let result = self.dataplane.apply(&ops).await;
            repairs.note(found, &result);
            match result {
                Ok(report) => {
                    let clean = report.peer_failures.is_empty();
                    self.peer_failures(&mut desired, report.peer_failures);
                    break Ok((desired, clean));
                }
                Err(e) => {
                    self.out.metrics.error(e.source.category());
                    let failed_scope = ops.get(e.index).map(|op| scope(op, &desired.state));
                    if let Some(Scope::Gateway(port)) = failed_scope
                        && holds < MAX_HOLDS
                        && let Some(spec) = desired.gateways.get(&port).cloned()
                    {
                        holds += 1;
                        let error = GatewayError::Programming(error_chain(&e));
                        tracing::warn!(gateway = %spec.sgc, error = %error, "holding the gateway back");
                        self.quarantine.insert(spec.sgc.clone(), (spec, error));
                        continue;
                    }
                    tracing::error!(error = %error_chain(&e), "failed to program the node");
                    break Err(Some(desired));
                }
            }
        };
        self.conclude(outcome, repairs).await;
        self.out.metrics.programming("full", started.elapsed());
        for since in pending.values() {
            self.out.metrics.programming("peer", since.elapsed());
        }
    }

    /// Keeps what the cycle programmed (all of it, or after a node-level failure what the
    /// kernel has completely) and publishes it, with the drift it repaired and the errors.
    async fn conclude(&mut self, outcome: Outcome, repairs: Repairs) {
        match outcome {
            Ok((desired, clean)) => {
                self.programmed = desired.gateways.keys().copied().collect();
                self.desired = Some(desired);
                self.needs_full = false;
                self.in_kernel = clean;
            }
            Err(desired) => {
                self.needs_full = true;
                if let Some(desired) = desired {
                    self.programmed = self.complete_gateways(&desired).await;
                    self.desired = Some(desired);
                }
            }
        }
        self.publish_gateways();
        self.publish_drift(repairs);
        self.report_all();
    }

    /// The exact peers (one allowed IP) the kernel has on the tunnels of `desired`.
    fn kernel_peers(&self, desired: &Desired, observed: &ObservedState) -> Incumbents {
        let mut out = Incumbents::new();
        for port in desired.gateways.keys() {
            let device = WgDeviceId {
                netns: self.gateway_netns(),
                name: Self::interface(*port),
            };
            let Some(dev) = observed.wireguard.get(&device) else {
                continue;
            };
            for (key, peer) in &dev.peers {
                if let [ip] = peer.allowed_ips.iter().collect::<Vec<_>>()[..] {
                    out.insert((*port, key.clone(), *ip));
                }
            }
        }
        out
    }

    /// After a node-level failure: the gateways the kernel has completely (peers aside).
    async fn complete_gateways(&self, desired: &Desired) -> BTreeSet<u16> {
        let Ok(observed) = self
            .dataplane
            .observe(&observe_request_for_gateway_node(&desired.state))
            .await
        else {
            return BTreeSet::new();
        };
        let ops = plan_gateway_node(&desired.state, &observed);
        match incomplete(&ops, &desired.state) {
            None => BTreeSet::new(),
            Some(missing) => desired
                .gateways
                .keys()
                .filter(|p| !missing.contains(p))
                .copied()
                .collect(),
        }
    }

    /// Peers the data plane refused: taken out of the desired state (so they are neither
    /// reported ready nor assumed present) and reported; the next full cycle retries them.
    pub(super) fn peer_failures(&mut self, desired: &mut Desired, failures: Vec<PeerFailure>) {
        for failure in failures {
            self.out.metrics.error("peer_programming");
            let owner = desired
                .peers
                .iter()
                .find(|(_, slot)| failure.op.contains(&slot.public_key.to_base64()))
                .map(|(k, _)| k.clone());
            tracing::warn!(op = %failure.op, error = %error_chain(&failure.error), "peer refused");
            if let Some(key) = owner {
                desired.remove_peer(&key);
                desired.peer_errors.insert(
                    key.clone(),
                    PeerError::Programming {
                        pod_endpoint: key,
                        reason: error_chain(&failure.error),
                    },
                );
            }
        }
    }
}
