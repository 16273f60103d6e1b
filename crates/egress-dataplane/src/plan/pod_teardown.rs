//! Plan removing one pod's tunnel (CNI DEL, or undoing a failed ADD): the WireGuard device
//! with its wireguard-go daemon, a device left under its node-side name by an interrupted
//! ADD, the ingress return path (nftables table, fwmark rule, every route of its table) and
//! the exclusion routes (IPv4 and IPv6) the tunnel plan adds on `eth0`. Planning against a clean pod yields
//! nothing, so it is idempotent. Routes of the main table that the tunnel plan deleted are
//! not put back on DEL (the namespace is about to go); undo sets
//! [`PodTeardown::restore_routes`].

use std::collections::BTreeSet;

use crate::names::{InterfaceName, NetnsRef};
use crate::nft::NftTable;
use crate::observed::{NetnsRequest, ObserveRequest, ObservedState, WgDeviceId};
use crate::op::Op;
use crate::spec::{MAIN_TABLE, NextHop, RouteSpec};
use crate::state::{IngressReturnPath, PodTunnelState};

/// What to remove for one pod. Built from the pod's [`PodTunnelState`] when it is known
/// ([`PodTunnelState::teardown`]), or from names alone when the plugin lost its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTeardown {
    /// The pod's namespace (may be gone already: then only the socket side is cleaned).
    pub netns: NetnsRef,
    /// The pod's tunnel interface (`wg0`).
    pub interface: InterfaceName,
    /// The pod's primary interface (`eth0`).
    pub eth: InterfaceName,
    /// Namespace holding the tunnel's UDP socket (the node's).
    pub socket_netns: NetnsRef,
    /// The device's name in `socket_netns` before it was moved, if known: a link still
    /// carrying it there (an ADD interrupted between create and move) is deleted too.
    pub socket_name: Option<InterfaceName>,
    /// The ingress return path whose nft table, rule and routing table go.
    pub ingress: Option<IngressReturnPath>,
    /// Routes the tunnel plan added on `eth` (removed when present).
    pub eth_routes: BTreeSet<RouteSpec>,
    /// Routes to put back (the `eth` routes the tunnel plan deleted, when undoing a failed
    /// ADD); empty for DEL.
    pub restore_routes: BTreeSet<RouteSpec>,
}

impl PodTunnelState {
    /// Everything [`crate::plan_pod`] creates for this pod, as a teardown.
    pub fn teardown(&self, socket_name: Option<InterfaceName>) -> PodTeardown {
        // The exclusions (via eth0's gateway, of either family). Not the on-link route to the
        // gateway: it may be the main plugin's own (the tunnel plan's replaced it), and
        // removing it would cut the pod off its gateway.
        let eth_routes = super::pod::wanted_routes(self)
            .into_iter()
            .filter(|r| r.device == self.eth && matches!(r.next_hop, NextHop::Gateway(_)))
            .collect();
        PodTeardown {
            netns: self.netns.clone(),
            interface: self.interface.clone(),
            eth: self.eth.clone(),
            socket_netns: self.socket_netns.clone(),
            socket_name,
            ingress: self.ingress,
            eth_routes,
            restore_routes: BTreeSet::new(),
        }
    }
}

impl PodTeardown {
    fn device(&self) -> WgDeviceId {
        WgDeviceId {
            netns: self.netns.clone(),
            name: self.interface.clone(),
        }
    }
}

/// What [`plan_pod_teardown`] needs observed: the pod namespace with its device and nft
/// table, and the socket namespace's links when a node-side name is known.
pub fn observe_request_for_pod_teardown(teardown: &PodTeardown) -> ObserveRequest {
    let mut ns = NetnsRequest::default();
    if let Some(ingress) = teardown.ingress {
        // Both families: a dual-stack pod's IPv6 table may be there (DEL does not know).
        ns.nft
            .extend(ingress_tables(teardown, ingress).iter().map(NftTable::id));
    }
    let mut req = ObserveRequest::default();
    req.namespaces.insert(teardown.netns.clone(), ns);
    if teardown.socket_name.is_some() {
        req.namespaces
            .entry(teardown.socket_netns.clone())
            .or_default();
    }
    req.wireguard.insert(teardown.device());
    req
}

/// The ingress-mark tables a pod may have, IPv4 and IPv6.
fn ingress_tables(teardown: &PodTeardown, ingress: IngressReturnPath) -> [NftTable; 2] {
    [
        NftTable::PodIngressMark {
            eth: teardown.eth.clone(),
            mark: ingress.mark,
        },
        NftTable::PodIngressMark6 {
            eth: teardown.eth.clone(),
            mark: ingress.mark,
        },
    ]
}

/// Plans removing one pod's tunnel; nothing when it is already gone.
pub fn plan_pod_teardown(teardown: &PodTeardown, observed: &ObservedState) -> Vec<Op> {
    let mut ops = Vec::new();
    let device = teardown.device();
    if let Some(name) = &teardown.socket_name
        && teardown.socket_netns != teardown.netns
        && observed.link(&teardown.socket_netns, name).is_some()
    {
        // Created but never moved: deleting the link also ends a wireguard-go daemon,
        // which exits when its TUN disappears.
        ops.push(Op::DeleteLink {
            netns: teardown.socket_netns.clone(),
            link: name.clone(),
        });
    }
    let Some(ns) = observed.netns(&teardown.netns) else {
        // The namespace is gone, and with it the device (and a wireguard-go daemon exits
        // when its TUN goes), the rule, the routes and the nft table.
        return ops;
    };
    if ns.links.contains_key(&teardown.interface) || observed.wireguard.contains_key(&device) {
        // Routes through the device vanish with it.
        ops.push(Op::DeleteWireGuard { device });
    }
    if let Some(ingress) = teardown.ingress {
        for table in ingress_tables(teardown, ingress) {
            if ns.nft.contains_key(&table.id()) {
                ops.push(Op::DeleteNftTable {
                    netns: teardown.netns.clone(),
                    id: table.id(),
                });
            }
        }
        // Any priority and either family: a rule of ours is recognised by its mark and table.
        for rule in ns
            .rules
            .iter()
            .filter(|r| r.fwmark == Some(ingress.mark) && r.table == ingress.table)
        {
            ops.push(Op::DelRule {
                netns: teardown.netns.clone(),
                rule: rule.clone(),
            });
        }
        for route in ns
            .routes
            .iter()
            .chain(&ns.ipv6_routes)
            .filter(|r| r.table == ingress.table)
        {
            ops.push(Op::DelRoute {
                netns: teardown.netns.clone(),
                route: route.clone(),
            });
        }
    }
    for route in &teardown.restore_routes {
        if !ns.has_route(route) {
            ops.push(Op::AddRoute {
                netns: teardown.netns.clone(),
                route: route.clone(),
            });
        }
    }
    for route in teardown
        .eth_routes
        .iter()
        .filter(|r| r.table == MAIN_TABLE && ns.has_route(r))
        .filter(|r| !teardown.restore_routes.contains(*r))
    {
        ops.push(Op::DelRoute {
            netns: teardown.netns.clone(),
            route: route.clone(),
        });
    }
    ops
}
