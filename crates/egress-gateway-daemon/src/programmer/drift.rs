//! Drift, pure: what changed in the node's data plane outside the daemon since it last
//! programmed it (a peer removed with `wg set … remove`, a route deleted, a table flushed).
//!
//! The full cycle plans the new desired state against what it observes. Drift is the part of
//! that plan that the *previous* desired state (what the daemon knows it left in the kernel)
//! also needs against the same observation: something the daemon had programmed and still
//! wants is missing or different, or something it never programmed appeared where it does
//! not belong. Ops only the new state needs are ordinary changes (a new pod, a new gateway);
//! ops only the previous state needs are moot (its object is gone). Comparing two plans of
//! the one planner, rather than a second diff of our own, means drift is exactly what the
//! resync repairs, for every kind of item, with nothing to keep in step.
//!
//! It must not be used when the previous state is not known to be in the kernel (before the
//! first successful cycle, after a failed apply): its leftovers would read as drift.

use std::collections::{BTreeMap, HashMap};

use egress_dataplane::{ObservedState, Op, PublicKey, plan_gateway_node};
use ipnet::IpNet;

use super::scope::{Scope, scope};
use crate::desired::Desired;
use crate::translate::ObjectKey;

/// Every `kind` a drift can have (metric labels, created at zero at start).
pub const KINDS: [&str; 9] = [
    "peer",
    "route",
    "rule",
    "address",
    "link",
    "wireguard",
    "nftables",
    "sysctl",
    "netns",
];

/// How an item drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// The daemon had programmed it and it is gone.
    Missing,
    /// It is there but differs from what the daemon programmed.
    Changed,
    /// It is there although the daemon never programmed it.
    Unexpected,
}

impl Change {
    /// The word in the GatewayStatus.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Missing => "missing",
            Change::Changed => "changed",
            Change::Unexpected => "unexpected",
        }
    }
}

/// One drifted item, and the op of the cycle's plan that repairs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Position of the repairing op in the plan.
    pub index: usize,
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// How it drifted.
    pub change: Change,
    /// The PodEndpoint whose peer or route it was.
    pub pod_endpoint: Option<ObjectKey>,
    /// The gateway interface (`wg-<port>`) it belongs to, if one.
    pub interface: Option<String>,
    /// The repairing op, as displayed.
    pub repair: String,
}

/// The drift among `ops`, the plan of the new desired state against `observed`, given the
/// `previous` desired state the daemon knows it left in the kernel. See the module docs.
pub fn find(previous: &Desired, observed: &ObservedState, ops: &[Op]) -> Vec<Found> {
    // Drift is what both plans contain: nothing to repair, nothing to find (and no second
    // plan of the whole node on every quiet resync).
    if ops.is_empty() {
        return Vec::new();
    }
    let earlier = plan_gateway_node(&previous.state, observed);
    if earlier.is_empty() {
        return Vec::new();
    }
    // Ops are compared by their one-line form first (cheap to hash), then exactly.
    let mut by_text: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_text.entry(op.to_string()).or_default().push(i);
    }
    let owners = Owners::of(previous);
    earlier
        .iter()
        .filter_map(|op| {
            let text = op.to_string();
            let index = *by_text.get(&text)?.iter().find(|i| ops[**i] == *op)?;
            let (kind, change) = classify(op, observed);
            Some(Found {
                index,
                kind,
                change,
                pod_endpoint: owners.of_op(op),
                interface: interface(op, previous),
                repair: text,
            })
        })
        .collect()
}

/// Which PodEndpoint each programmed peer and `/32` route belongs to.
struct Owners<'a> {
    peers: BTreeMap<(String, &'a PublicKey), &'a ObjectKey>,
    routes: BTreeMap<(String, IpNet), &'a ObjectKey>,
}

impl<'a> Owners<'a> {
    fn of(desired: &'a Desired) -> Self {
        let mut owners = Owners {
            peers: BTreeMap::new(),
            routes: BTreeMap::new(),
        };
        for (key, slot) in &desired.peers {
            let iface = super::Programmer::interface(slot.port).to_string();
            owners.peers.insert((iface.clone(), &slot.public_key), key);
            for ip in &slot.allowed_ips {
                owners.routes.insert((iface.clone(), *ip), key);
            }
        }
        owners
    }

    fn of_op(&self, op: &Op) -> Option<ObjectKey> {
        let owner = match op {
            Op::AddPeer { device, peer } => {
                self.peers.get(&(device.name.to_string(), &peer.public_key))
            }
            Op::RemovePeer { device, public_key } => {
                self.peers.get(&(device.name.to_string(), public_key))
            }
            Op::AddRoute { route, .. } | Op::DelRoute { route, .. } => self
                .routes
                .get(&(route.device.to_string(), route.destination)),
            _ => None,
        };
        owner.map(|k| (*k).clone())
    }
}

/// The gateway interface an op concerns, if it concerns one gateway.
fn interface(op: &Op, previous: &Desired) -> Option<String> {
    match (op, scope(op, &previous.state)) {
        (_, Scope::Gateway(port)) => Some(super::Programmer::interface(port).to_string()),
        (Op::AddPeer { device, .. } | Op::RemovePeer { device, .. }, _) => {
            Some(device.name.to_string())
        }
        (Op::AddRoute { route, .. } | Op::DelRoute { route, .. }, Scope::Peer) => {
            Some(route.device.to_string())
        }
        _ => None,
    }
}

/// The kind of item an op repairs and how it had drifted.
fn classify(op: &Op, observed: &ObservedState) -> (&'static str, Change) {
    let present = |found: bool| {
        if found {
            Change::Changed
        } else {
            Change::Missing
        }
    };
    match op {
        Op::AddPeer { device, peer } => (
            "peer",
            present(
                observed
                    .wireguard
                    .get(device)
                    .is_some_and(|d| d.peers.contains_key(&peer.public_key)),
            ),
        ),
        Op::RemovePeer { .. } => ("peer", Change::Unexpected),
        Op::AddRoute { netns, route } => (
            "route",
            present(observed.netns(netns).is_some_and(|ns| {
                ns.routes_of(&route.destination)
                    .iter()
                    .any(|r| r.destination == route.destination)
            })),
        ),
        Op::DelRoute { .. } => ("route", Change::Unexpected),
        Op::AddRule { .. } => ("rule", Change::Missing),
        Op::DelRule { .. } => ("rule", Change::Unexpected),
        Op::AddAddress { .. } => ("address", Change::Missing),
        Op::DelAddress { .. } => ("address", Change::Unexpected),
        Op::CreateVeth { .. } => ("link", Change::Missing),
        Op::MoveLink { .. } | Op::SetLinkUp { .. } | Op::SetMtu { .. } => ("link", Change::Changed),
        Op::DeleteLink { .. } => ("link", Change::Unexpected),
        Op::CreateWireGuard { .. } => ("wireguard", Change::Missing),
        Op::ConfigureWireGuard { .. } => ("wireguard", Change::Changed),
        Op::DeleteWireGuard { .. } => ("wireguard", Change::Unexpected),
        Op::ReplaceNftTable { netns, table } => (
            "nftables",
            present(
                observed
                    .netns(netns)
                    .is_some_and(|ns| ns.nft.contains_key(&table.id())),
            ),
        ),
        Op::DeleteNftTable { .. } => ("nftables", Change::Unexpected),
        Op::SetSysctl { .. } => ("sysctl", Change::Changed),
        Op::CreateNetns { .. } => ("netns", Change::Missing),
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
