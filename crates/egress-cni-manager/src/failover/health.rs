//! Pure: which gateway nodes of each StaticGatewayConfiguration answer their load-balancer
//! health probe, as this node's own probes see it, and when that set changes (the first
//! complete view counts as a change when a node is down in it). The load
//! balancer moves a pod's WireGuard flow only when the healthy set of its rule changes, so a
//! change of the set is exactly when a pod tunnel may have lost its session.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// A StaticGatewayConfiguration, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SgcRef {
    /// Namespace (the pods' namespace).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl SgcRef {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for SgcRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Where the load balancer probes one gateway: the SGC's UID (the probe path `/gw/<uid>`)
/// on each gateway node's primary IP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    /// The SGC's UID.
    pub uid: String,
    /// Primary IPs of the gateway nodes (the load balancer's backends).
    pub nodes: BTreeSet<IpAddr>,
}

/// The healthy set of an SGC's gateways changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// The SGC.
    pub sgc: SgcRef,
    /// Healthy gateway nodes before.
    pub before: BTreeSet<IpAddr>,
    /// Healthy gateway nodes now.
    pub after: BTreeSet<IpAddr>,
}

impl HealthChange {
    /// Nodes that stopped answering 200.
    pub fn lost(&self) -> BTreeSet<IpAddr> {
        self.before.difference(&self.after).copied().collect()
    }

    /// Nodes that started answering 200.
    pub fn gained(&self) -> BTreeSet<IpAddr> {
        self.after.difference(&self.before).copied().collect()
    }
}

#[derive(Debug, Default)]
struct Gateway {
    uid: String,
    /// Latest probe result per node; `None` until the node was probed once.
    nodes: BTreeMap<IpAddr, Option<bool>>,
    /// The healthy set last published; `None` until every node answered once.
    stable: Option<BTreeSet<IpAddr>>,
}

impl Gateway {
    fn settle(&mut self, sgc: &SgcRef) -> Option<HealthChange> {
        if self.nodes.values().any(Option::is_none) {
            return None;
        }
        let healthy: BTreeSet<IpAddr> = self
            .nodes
            .iter()
            .filter(|(_, up)| **up == Some(true))
            .map(|(ip, _)| *ip)
            .collect();
        // Before the first complete view the tunnels may have sessions with any node: a node
        // already down then may have taken some with it (a tunnel made moments before it
        // died, or a manager that restarted meanwhile), so that view counts as a change from
        // "all healthy". It costs one handshake per busy tunnel when it was not needed.
        let before = self
            .stable
            .replace(healthy.clone())
            .unwrap_or_else(|| self.nodes.keys().copied().collect());
        (before != healthy).then(|| HealthChange {
            sgc: sgc.clone(),
            before,
            after: healthy,
        })
    }
}

/// The probe view of every SGC this node's tunnels use.
#[derive(Debug, Default)]
pub struct HealthBook {
    gateways: BTreeMap<SgcRef, Gateway>,
}

impl HealthBook {
    /// Sets the SGCs to watch and their targets. A new UID (the SGC was re-created) starts a
    /// new baseline; nodes added start unprobed; nodes removed leave the healthy set, which
    /// is a change when they were healthy (the load balancer drops the backend too).
    pub fn set_targets(&mut self, wanted: &BTreeMap<SgcRef, Targets>) -> Vec<HealthChange> {
        self.gateways.retain(|sgc, _| wanted.contains_key(sgc));
        let mut changes = Vec::new();
        for (sgc, targets) in wanted {
            let g = self.gateways.entry(sgc.clone()).or_default();
            if g.uid != targets.uid {
                *g = Gateway {
                    uid: targets.uid.clone(),
                    ..Gateway::default()
                };
            }
            g.nodes.retain(|ip, _| targets.nodes.contains(ip));
            for ip in &targets.nodes {
                g.nodes.entry(*ip).or_insert(None);
            }
            changes.extend(g.settle(sgc));
        }
        changes
    }

    /// Records one probe result (ignored for targets no longer wanted or of an old UID).
    pub fn record(
        &mut self,
        sgc: &SgcRef,
        uid: &str,
        node: IpAddr,
        up: bool,
    ) -> Option<HealthChange> {
        let g = self.gateways.get_mut(sgc)?;
        if g.uid != uid {
            return None;
        }
        *g.nodes.get_mut(&node)? = Some(up);
        g.settle(sgc)
    }

    /// The healthy set of an SGC, once known.
    pub fn healthy(&self, sgc: &SgcRef) -> Option<&BTreeSet<IpAddr>> {
        self.gateways.get(sgc)?.stable.as_ref()
    }

    /// The UID of an SGC's gateway (its probe and sessions paths name it).
    pub fn uid(&self, sgc: &SgcRef) -> Option<&str> {
        self.gateways.get(sgc).map(|g| g.uid.as_str())
    }

    /// Every (SGC, UID, node) to probe.
    pub fn probes(&self) -> BTreeSet<(SgcRef, String, IpAddr)> {
        self.gateways
            .iter()
            .flat_map(|(sgc, g)| {
                g.nodes
                    .keys()
                    .map(move |ip| (sgc.clone(), g.uid.clone(), *ip))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn book(nodes: &[&str]) -> (HealthBook, SgcRef) {
        let sgc = SgcRef::new("ns", "gw");
        let mut b = HealthBook::default();
        let wanted = [(
            sgc.clone(),
            Targets {
                uid: "u1".into(),
                nodes: nodes.iter().map(|n| ip(n)).collect(),
            },
        )]
        .into();
        assert!(b.set_targets(&wanted).is_empty());
        (b, sgc)
    }

    #[test]
    fn the_first_complete_view_counts_from_all_healthy_and_later_flips_are_changes() {
        let (mut b, sgc) = book(&["10.0.0.6", "10.0.0.7"]);
        assert_eq!(b.record(&sgc, "u1", ip("10.0.0.6"), true), None);
        assert_eq!(b.healthy(&sgc), None, "one node not probed yet");
        // A node already down when first seen may hold sessions of existing tunnels.
        let first = b.record(&sgc, "u1", ip("10.0.0.7"), false).unwrap();
        assert_eq!(first.lost(), [ip("10.0.0.7")].into());
        assert_eq!(b.healthy(&sgc).unwrap().len(), 1);
        // Same answers again: nothing.
        assert_eq!(b.record(&sgc, "u1", ip("10.0.0.6"), true), None);
        // The second gateway turns healthy: a change (the LB may move flows to it).
        let up = b.record(&sgc, "u1", ip("10.0.0.7"), true).unwrap();
        assert_eq!(up.gained(), [ip("10.0.0.7")].into());
        assert!(up.lost().is_empty());
        // The first dies.
        let down = b.record(&sgc, "u1", ip("10.0.0.6"), false).unwrap();
        assert_eq!(down.lost(), [ip("10.0.0.6")].into());
        assert_eq!(down.after, [ip("10.0.0.7")].into());
    }

    #[test]
    fn stale_uids_and_unknown_nodes_are_ignored() {
        let (mut b, sgc) = book(&["10.0.0.6"]);
        assert_eq!(b.record(&sgc, "old", ip("10.0.0.6"), true), None);
        assert_eq!(b.healthy(&sgc), None);
        assert_eq!(b.record(&sgc, "u1", ip("10.9.9.9"), true), None);
        assert_eq!(
            b.record(&SgcRef::new("x", "y"), "u1", ip("10.0.0.6"), true),
            None
        );
    }

    #[test]
    fn removing_a_healthy_node_is_a_change_and_a_new_uid_a_new_baseline() {
        let (mut b, sgc) = book(&["10.0.0.6", "10.0.0.7"]);
        b.record(&sgc, "u1", ip("10.0.0.6"), true);
        b.record(&sgc, "u1", ip("10.0.0.7"), true);
        let one = [(
            sgc.clone(),
            Targets {
                uid: "u1".into(),
                nodes: [ip("10.0.0.6")].into(),
            },
        )]
        .into();
        let changes = b.set_targets(&one);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].lost(), [ip("10.0.0.7")].into());
        // A scaled-out node is unprobed: the view waits for it, then reports the gain.
        let two = [(
            sgc.clone(),
            Targets {
                uid: "u1".into(),
                nodes: [ip("10.0.0.6"), ip("10.0.0.8")].into(),
            },
        )]
        .into();
        assert!(b.set_targets(&two).is_empty());
        let gained = b.record(&sgc, "u1", ip("10.0.0.8"), true).unwrap();
        assert_eq!(gained.gained(), [ip("10.0.0.8")].into());
        // The SGC re-created under the same name: a fresh view; all healthy is no change.
        let renewed = [(
            sgc.clone(),
            Targets {
                uid: "u2".into(),
                nodes: [ip("10.0.0.6")].into(),
            },
        )]
        .into();
        assert!(b.set_targets(&renewed).is_empty());
        assert_eq!(b.record(&sgc, "u2", ip("10.0.0.6"), true), None);
        assert_eq!(b.probes().len(), 1);
    }
}
