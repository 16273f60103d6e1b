//! The programmer: owns the inventory and the node's desired state, and turns changes into
//! data-plane work. Gateway-level changes (SGC, VM configuration, Secret) that alter the
//! active gateways, the start-up, a retry and the periodic resync run the full cycle
//! (`full`: observe, plan, apply); a PodEndpoint event only emits the peer ops it causes
//! (`peers`: one peer and its route added or removed), never reading or rewriting the rest.
//!
//! It publishes what it programmed to the probe, the status book and the metrics, and queues
//! Events for rejected objects (each message once until it changes). A full cycle also tells
//! drift (`drift`: what changed outside the daemon since it last programmed the node) and
//! publishes its repairs (`repairs`).

pub mod drift;
mod full;
mod peers;
mod repairs;
pub mod scope;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use egress_dataplane::{Dataplane, InterfaceName};
use k8s_openapi::api::core::v1::ObjectReference;

use crate::desired::{Desired, HostConfig, Quarantine};
use crate::inventory::{Change, Inventory};
use crate::metrics::Metrics;
use crate::node::NodeIdentity;
use crate::probe::ProbeState;
use crate::report::{Report, ReportSender, reference};
use crate::status::StatusBook;
use crate::translate::{GatewayError, ObjectKey, PeerError};

/// Where the programmer publishes its results.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// LB probe answers.
    pub probe: ProbeState,
    /// GatewayStatus content.
    pub status: StatusBook,
    /// Metrics.
    pub metrics: Metrics,
    /// Event queue (none in unit tests).
    pub reports: Option<ReportSender>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ReportKind {
    Gateway,
    PodEndpoint,
    /// A PodEndpoint's IPv6 address left out of its peer (the peer itself is programmed).
    PodEndpointIpv6,
}

/// The node's programmer. See the module docs.
pub struct Programmer {
    dataplane: Dataplane,
    node: NodeIdentity,
    host: HostConfig,
    inventory: Inventory,
    desired: Option<Desired>,
    /// `desired` is known to be what the kernel holds (the last apply succeeded wholly), so
    /// the next full cycle may read differences as drift.
    in_kernel: bool,
    quarantine: Quarantine,
    programmed: BTreeSet<u16>,
    pending_peers: BTreeMap<ObjectKey, Instant>,
    gateways_touched: bool,
    needs_full: bool,
    reported: BTreeMap<(ReportKind, ObjectKey), String>,
    out: Outputs,
}

impl std::fmt::Debug for Programmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programmer")
            .field("node", &self.node)
            .field("programmed", &self.programmed)
            .finish_non_exhaustive()
    }
}

impl Programmer {
    /// A programmer for this node; nothing happens until the inventory is listed.
    pub fn new(dataplane: Dataplane, node: NodeIdentity, host: HostConfig, out: Outputs) -> Self {
        Self {
            dataplane,
            node,
            host,
            inventory: Inventory::default(),
            desired: None,
            in_kernel: false,
            quarantine: Quarantine::new(),
            programmed: BTreeSet::new(),
            pending_peers: BTreeMap::new(),
            gateways_touched: false,
            needs_full: false,
            reported: BTreeMap::new(),
            out,
        }
    }

    /// Records one watch change; the work happens in [`Programmer::flush`].
    pub fn apply_change(&mut self, change: Change) {
        let touched = self.inventory.apply(change);
        self.gateways_touched |= touched.gateways;
        let now = Instant::now();
        for key in touched.pod_endpoints {
            self.pending_peers.entry(key).or_insert(now);
        }
    }

    /// Programs what the recorded changes require.
    pub async fn flush(&mut self) {
        if !self.inventory.synced() {
            return;
        }
        let Some(current) = self.desired.as_ref() else {
            return self.full_cycle().await;
        };
        if self.needs_full {
            return self.full_cycle().await;
        }
        if self.gateways_touched {
            self.gateways_touched = false;
            match Desired::gateways(&self.inventory, &self.node, &self.host, &self.quarantine) {
                Ok(next) if next.same_gateways(current) => {}
                _ => return self.full_cycle().await,
            }
        }
        if !self.pending_peers.is_empty() {
            self.apply_peer_events().await;
        }
    }

    /// The periodic resync: gateways held back after failures get another try, and the
    /// whole node is observed and repaired.
    pub async fn resync(&mut self) {
        if !self.inventory.synced() {
            return;
        }
        self.quarantine.clear();
        self.full_cycle().await;
    }

    /// True while a failed step waits for a retry of the full cycle.
    pub fn needs_retry(&self) -> bool {
        self.needs_full
    }

    /// True once the node has been programmed once.
    pub fn started(&self) -> bool {
        self.desired.is_some()
    }

    /// Ports of the gateways fully programmed.
    pub fn programmed(&self) -> &BTreeSet<u16> {
        &self.programmed
    }

    /// The current desired state (after the first full cycle).
    pub fn desired(&self) -> Option<&Desired> {
        self.desired.as_ref()
    }

    fn gateway_netns(&self) -> egress_dataplane::NetnsRef {
        egress_dataplane::NetnsRef::Named(self.host.gateway_netns.clone())
    }

    fn interface(port: u16) -> InterfaceName {
        InterfaceName::for_gateway_port(port)
    }

    /// Pushes the probe set, the gateway list of the status and the gateway metrics.
    fn publish_gateways(&self) {
        let Some(desired) = &self.desired else { return };
        let ready: Vec<_> = desired
            .gateways
            .values()
            .filter(|g| self.programmed.contains(&g.port))
            .collect();
        self.out
            .probe
            .set_programmed(ready.iter().map(|g| g.uid.clone()).collect());
        self.out.probe.set_interfaces(
            ready
                .iter()
                .map(|g| (g.uid.clone(), Self::interface(g.port).to_string()))
                .collect(),
        );
        self.out.metrics.set_gateways(ready.len());
        let gateways = ready
            .iter()
            .map(|g| (g.sgc.clone(), Self::interface(g.port).to_string()))
            .collect();
        let peers = desired
            .peers
            .iter()
            .filter(|(_, s)| self.programmed.contains(&s.port))
            .map(|(k, s)| {
                (
                    k.clone(),
                    (
                        Self::interface(s.port).to_string(),
                        s.public_key.to_base64(),
                    ),
                )
            })
            .collect();
        self.out.status.replace(gateways, peers);
    }

    /// Queues an Event for a rejected object unless the same message was already reported;
    /// `None` forgets a previous rejection.
    fn report(&mut self, kind: ReportKind, key: &ObjectKey, problem: Option<Problem>) {
        let slot = (kind, key.clone());
        if kind == ReportKind::PodEndpoint {
            // Published in the GatewayStatus too (egressctl, PodEndpoint status).
            let refusal = problem
                .as_ref()
                .map(|p| (p.refused.unwrap_or("invalid"), p.note.as_str()));
            self.out.status.set_refused(key, refusal);
        }
        let Some(problem) = problem else {
            self.reported.remove(&slot);
            return;
        };
        if self.reported.get(&slot) == Some(&problem.note) {
            return;
        }
        match problem.refused {
            Some(reason) => self.out.metrics.refused(reason),
            None => self.out.metrics.error(problem.metric),
        }
        tracing::warn!(object = %key, reason = problem.reason, "{}", problem.note);
        let object = self.object_ref(kind, key);
        self.reported.insert(slot, problem.note.clone());
        if let (Some(tx), Some(object)) = (&self.out.reports, object) {
            let _ = tx.send(Report {
                object,
                warning: true,
                reason: problem.reason.to_owned(),
                note: problem.note,
            });
        }
    }

    fn object_ref(&self, kind: ReportKind, key: &ObjectKey) -> Option<ObjectReference> {
        match kind {
            ReportKind::Gateway => self.inventory.sgcs.get(key).map(reference),
            ReportKind::PodEndpoint | ReportKind::PodEndpointIpv6 => {
                self.inventory.pod_endpoints.get(key).map(reference)
            }
        }
    }

    /// Reports every current gateway and peer error, and forgets resolved ones.
    fn report_all(&mut self) {
        let Some(desired) = &self.desired else { return };
        let problems: Vec<_> = desired
            .gateway_errors
            .iter()
            .map(|(k, e)| ((ReportKind::Gateway, k.clone()), Problem::of_gateway(e)))
            .chain(
                desired
                    .peer_errors
                    .iter()
                    .map(|(k, e)| ((ReportKind::PodEndpoint, k.clone()), Problem::of_peer(e))),
            )
            .chain(desired.ipv6_refusals.iter().map(|(k, r)| {
                (
                    (ReportKind::PodEndpointIpv6, k.clone()),
                    Problem::of_ipv6(k, r),
                )
            }))
            .collect();
        let keep: BTreeSet<&(ReportKind, ObjectKey)> = problems.iter().map(|(s, _)| s).collect();
        self.reported.retain(|slot, _| keep.contains(slot));
        self.out
            .status
            .retain_refused(|k| keep.contains(&(ReportKind::PodEndpoint, k.clone())));
        for ((kind, key), problem) in problems {
            self.report(kind, &key, Some(problem));
        }
    }
}

/// One rejected object's Event and metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Event reason.
    reason: &'static str,
    /// `errors_total` kind (when not a refusal).
    metric: &'static str,
    /// `pod_endpoints_refused_total` reason, for refusals.
    refused: Option<&'static str>,
    /// Event message.
    note: String,
}

impl Problem {
    fn of_gateway(e: &GatewayError) -> Self {
        Self {
            reason: e.reason(),
            metric: e.kind(),
            refused: None,
            note: error_chain(e),
        }
    }

    pub(crate) fn of_ipv6(key: &ObjectKey, r: &crate::ipv6::Ipv6Refusal) -> Self {
        Self {
            reason: "PodEndpointIPv6Refused",
            metric: "pod_endpoint_ipv6_refused",
            refused: Some(r.reason()),
            note: format!("PodEndpoint {key}: {r}"),
        }
    }

    pub(crate) fn of_peer(e: &PeerError) -> Self {
        Self {
            reason: e.reason(),
            metric: e.kind(),
            refused: e.refusal().map(|r| r.reason()),
            note: error_chain(e),
        }
    }
}

/// An error and its sources on one line (the workspace's one implementation).
pub use egress_runtime::error_chain;

#[cfg(test)]
mod tests;
