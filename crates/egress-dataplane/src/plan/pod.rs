//! Plan for one pod's tunnel (used by the CNI plugin): `wg0` with its socket in the node
//! namespace, the single gateway peer, routes for the chosen mode, the ingress return path
//! and loose reverse-path filtering.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use super::{address, link_up, peers, sysctl, wireguard_device};
use crate::nft::NftTable;
use crate::observed::{NetnsRequest, ObserveRequest, ObservedState, WgDeviceId};
use crate::op::Op;
use crate::spec::{MAIN_TABLE, NextHop, RouteSpec, RuleSpec, SysctlKey};
use crate::state::{PodRouting, PodTunnelState, TUNNEL_LINK_LOCAL};

/// Loose reverse-path filtering, needed when replies and requests use different links.
const RP_FILTER_LOOSE: &str = "2";

fn device(desired: &PodTunnelState) -> WgDeviceId {
    WgDeviceId {
        netns: desired.netns.clone(),
        name: desired.interface.clone(),
    }
}

fn rp_filter_keys(desired: &PodTunnelState) -> [SysctlKey; 2] {
    [
        SysctlKey::rp_filter_all(),
        SysctlKey::rp_filter(&desired.eth),
    ]
}

/// What [`plan_pod`] needs observed.
pub fn observe_request_for_pod(desired: &PodTunnelState) -> ObserveRequest {
    let mut ns = NetnsRequest::default();
    if desired.loose_rp_filter {
        ns.sysctls.extend(rp_filter_keys(desired));
    }
    if let Some(ingress) = desired.ingress {
        ns.nft.insert(
            NftTable::PodIngressMark {
                eth: desired.eth.clone(),
                mark: ingress.mark,
            }
            .id(),
        );
    }
    let mut req = ObserveRequest::default();
    req.namespaces.insert(desired.netns.clone(), ns);
    req.wireguard.insert(device(desired));
    req
}

fn tunnel_route(destination: Ipv4Net, desired: &PodTunnelState) -> RouteSpec {
    RouteSpec {
        table: MAIN_TABLE,
        destination: IpNet::V4(destination),
        device: desired.interface.clone(),
        next_hop: NextHop::ViaInet6(TUNNEL_LINK_LOCAL),
    }
}

/// Plans one pod's tunnel. The pod namespace itself is the runtime's; it is never created.
pub fn plan_pod(desired: &PodTunnelState, observed: &ObservedState) -> Vec<Op> {
    let mut ops = Vec::new();
    let ns = &desired.netns;
    let o_ns = observed.netns(ns);
    let dev = device(desired);

    let outcome = wireguard_device(
        &mut ops,
        observed,
        &dev,
        &desired.socket_netns,
        &desired.private_key,
        None,
    );
    let link = if outcome.created {
        None
    } else {
        o_ns.and_then(|n| n.links.get(&desired.interface))
    };
    let current = if outcome.created {
        None
    } else {
        observed.wireguard.get(&dev)
    };
    let wanted = [(
        desired.gateway_peer.public_key.clone(),
        desired.gateway_peer.clone(),
    )]
    .into();
    peers(&mut ops, &dev, &wanted, current);

    if link.and_then(|l| l.mtu) != Some(desired.mtu) {
        ops.push(Op::SetMtu {
            netns: ns.clone(),
            link: desired.interface.clone(),
            mtu: desired.mtu,
        });
    }
    let link_view = if outcome.created { None } else { o_ns };
    for a in &desired.addresses {
        address(
            &mut ops,
            ns,
            link_view,
            &desired.interface,
            crate::spec::AddressSpec::plain(*a),
        );
    }
    link_up(&mut ops, ns, link_view, &desired.interface);

    if desired.loose_rp_filter {
        for key in rp_filter_keys(desired) {
            sysctl(&mut ops, ns, o_ns, key, RP_FILTER_LOOSE);
        }
    }

    // Routes through a device being (re)created vanish with the old device.
    let has = |r: &RouteSpec| {
        o_ns.is_some_and(|n| n.routes.contains(r))
            && !(outcome.created && r.device == desired.interface)
    };
    let gateway = IpAddr::V4(desired.eth_gateway);
    let mut wanted_routes = Vec::new();
    match &desired.routing {
        PodRouting::StaticEgressGateway { exclude } => {
            // The gateway must stay reachable before the routes that made it so go away.
            wanted_routes.push(RouteSpec::on_link(
                IpNet::V4(Ipv4Net::from(desired.eth_gateway)),
                desired.eth.clone(),
            ));
            wanted_routes.push(tunnel_route(Ipv4Net::default(), desired));
            for cidr in exclude {
                wanted_routes.push(RouteSpec::via(
                    IpNet::V4(*cidr),
                    gateway,
                    desired.eth.clone(),
                ));
            }
        }
        PodRouting::AzureNetworking { through_tunnel } => {
            for cidr in through_tunnel {
                wanted_routes.push(tunnel_route(*cidr, desired));
            }
        }
    }
    for r in &wanted_routes {
        if !has(r) {
            ops.push(Op::AddRoute {
                netns: ns.clone(),
                route: r.clone(),
            });
        }
    }
    if matches!(desired.routing, PodRouting::StaticEgressGateway { .. })
        && let Some(o) = o_ns
    {
        let keep: BTreeSet<&RouteSpec> = wanted_routes.iter().collect();
        for r in o
            .routes
            .iter()
            .filter(|r| r.table == MAIN_TABLE && r.device == desired.eth && !keep.contains(r))
        {
            // Includes the old default via eth0: replacing it with the tunnel's default only
            // removes it when both have the same metric; deleting an absent route is a no-op.
            ops.push(Op::DelRoute {
                netns: ns.clone(),
                route: r.clone(),
            });
        }
    }

    if let Some(ingress) = desired.ingress {
        let table = NftTable::PodIngressMark {
            eth: desired.eth.clone(),
            mark: ingress.mark,
        };
        if o_ns.and_then(|n| n.nft.get(&table.id())) != Some(&table) {
            ops.push(Op::ReplaceNftTable {
                netns: ns.clone(),
                table,
            });
        }
        let rule = RuleSpec {
            priority: ingress.rule_priority,
            fwmark: Some(ingress.mark),
            source: None,
            table: ingress.table,
        };
        if !o_ns.is_some_and(|n| n.rules.contains(&rule)) {
            ops.push(Op::AddRule {
                netns: ns.clone(),
                rule,
            });
        }
        let back = RouteSpec {
            table: ingress.table,
            ..RouteSpec::via(IpNet::V4(Ipv4Net::default()), gateway, desired.eth.clone())
        };
        if !o_ns.is_some_and(|n| n.routes.contains(&back)) {
            ops.push(Op::AddRoute {
                netns: ns.clone(),
                route: back,
            });
        }
    }
    ops
}
