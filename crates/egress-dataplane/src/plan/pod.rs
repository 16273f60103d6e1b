//! Plan for one pod's tunnel (used by the CNI plugin): `wg0` with its socket in the node
//! namespace, the single gateway peer, routes for the chosen mode (IPv4, and IPv6 when the
//! pod's gateway carries it), the ingress return path (of each family routed into the
//! tunnel) and loose reverse-path filtering.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

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
    ns.nft
        .extend(ingress_parts(desired).into_iter().map(|p| p.table.id()));
    let mut req = ObserveRequest::default();
    req.namespaces.insert(desired.netns.clone(), ns);
    req.wireguard.insert(device(desired));
    req
}

/// An IPv4 destination into the tunnel: `via inet6 fe80::1 dev wg0`, as the original (wg0
/// has no IPv4 address, and WireGuard picks the peer by allowed IPs, not by next hop).
fn tunnel_route(destination: Ipv4Net, desired: &PodTunnelState) -> RouteSpec {
    RouteSpec {
        table: MAIN_TABLE,
        destination: IpNet::V4(destination),
        device: desired.interface.clone(),
        next_hop: NextHop::ViaInet6(TUNNEL_LINK_LOCAL),
    }
}

/// An IPv6 destination into the tunnel: `via fe80::1 dev wg0`, the same link-local next hop
/// as IPv4's. A gateway rather than an on-link route because the kernel keeps one neighbour
/// entry per next hop: an on-link `::/0` on wg0 would create one per destination (wg0 is
/// NOARP, so they cost nothing to resolve but still fill the neighbour table up to its
/// garbage-collection thresholds), while `via fe80::1` needs exactly one.
fn tunnel_route_v6(destination: Ipv6Net, desired: &PodTunnelState) -> RouteSpec {
    RouteSpec::via(
        IpNet::V6(destination),
        IpAddr::V6(TUNNEL_LINK_LOCAL),
        desired.interface.clone(),
    )
}

/// The IPv6 link-local prefix: its route on `eth0` stays (neighbour discovery and a
/// link-local gateway use it).
const LINK_LOCAL_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64);

/// The routes the pod's main table must hold, in the order they are added: the gateway
/// stays reachable before the routes that made it so go away.
pub(super) fn wanted_routes(desired: &PodTunnelState) -> Vec<RouteSpec> {
    let eth = &desired.eth;
    let gateway = IpAddr::V4(desired.eth_gateway);
    let mut wanted = Vec::new();
    match &desired.routing {
        PodRouting::StaticEgressGateway { exclude } => {
            wanted.push(RouteSpec::on_link(
                IpNet::V4(Ipv4Net::from(desired.eth_gateway)),
                eth.clone(),
            ));
            wanted.push(tunnel_route(Ipv4Net::default(), desired));
            for cidr in exclude {
                wanted.push(RouteSpec::via(IpNet::V4(*cidr), gateway, eth.clone()));
            }
        }
        PodRouting::AzureNetworking { through_tunnel } => {
            for cidr in through_tunnel {
                wanted.push(tunnel_route(*cidr, desired));
            }
        }
    }
    let Some(v6) = &desired.ipv6 else {
        return wanted;
    };
    match &desired.routing {
        PodRouting::StaticEgressGateway { .. } => {
            if let Some(gw) = v6.eth_gateway
                && !gw.is_unicast_link_local()
            {
                // A global gateway is reachable through the connected prefix route, which
                // goes; a link-local one through fe80::/64, which stays.
                wanted.push(RouteSpec::on_link(
                    IpNet::V6(Ipv6Net::from(gw)),
                    eth.clone(),
                ));
            }
            wanted.push(tunnel_route_v6(Ipv6Net::default(), desired));
            if let Some(gw) = v6.eth_gateway {
                for cidr in &v6.cidrs {
                    wanted.push(RouteSpec::via(
                        IpNet::V6(*cidr),
                        IpAddr::V6(gw),
                        eth.clone(),
                    ));
                }
            }
        }
        PodRouting::AzureNetworking { .. } => {
            for cidr in &v6.cidrs {
                wanted.push(tunnel_route_v6(*cidr, desired));
            }
        }
    }
    wanted
}

/// Whether an observed route is one the tunnel replaces: in staticEgressGateway mode every
/// other main-table route on `eth0` of a family the tunnel carries, except IPv6's link-local
/// prefix. IPv6 routes are never touched without an IPv6 part.
fn replaced(desired: &PodTunnelState, wanted: &[RouteSpec], route: &RouteSpec) -> bool {
    if !matches!(desired.routing, PodRouting::StaticEgressGateway { .. })
        || route.table != MAIN_TABLE
        || route.device != desired.eth
        || wanted.contains(route)
    {
        return false;
    }
    match route.destination {
        IpNet::V4(_) => true,
        IpNet::V6(dst) => desired.ipv6.is_some() && dst != LINK_LOCAL_V6,
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
        o_ns.is_some_and(|n| n.has_route(r)) && !(outcome.created && r.device == desired.interface)
    };
    let wanted = wanted_routes(desired);
    for r in wanted.iter().filter(|r| !has(r)) {
        ops.push(Op::AddRoute {
            netns: ns.clone(),
            route: r.clone(),
        });
    }
    if let Some(o) = o_ns {
        // IPv6 routes are looked at only when the tunnel carries IPv6.
        let ipv6 = desired.ipv6.iter().flat_map(|_| o.ipv6_routes.iter());
        for r in o
            .routes
            .iter()
            .chain(ipv6)
            .filter(|r| replaced(desired, &wanted, r))
        {
            // Includes the old default via eth0: replacing it with the tunnel's default only
            // removes it when both have the same metric; deleting an absent route is a no-op.
            ops.push(Op::DelRoute {
                netns: ns.clone(),
                route: r.clone(),
            });
        }
    }

    for part in ingress_parts(desired) {
        if o_ns.and_then(|n| n.nft.get(&part.table.id())) != Some(&part.table) {
            ops.push(Op::ReplaceNftTable {
                netns: ns.clone(),
                table: part.table,
            });
        }
        if !o_ns.is_some_and(|n| n.rules.contains(&part.rule)) {
            ops.push(Op::AddRule {
                netns: ns.clone(),
                rule: part.rule,
            });
        }
        if !o_ns.is_some_and(|n| n.has_route(&part.back)) {
            ops.push(Op::AddRoute {
                netns: ns.clone(),
                route: part.back,
            });
        }
    }
    ops
}

/// One family's ingress return path: the table marking connections that arrive on `eth0`,
/// the rule sending marked replies to the ingress table, and that table's default via
/// `eth0`'s gateway.
struct IngressPart {
    table: NftTable,
    rule: RuleSpec,
    back: RouteSpec,
}

/// The ingress return path of each family the tunnel carries: IPv4 always (with an ingress
/// path at all), IPv6 when the pod's IPv6 goes into the tunnel and `eth0` has an IPv6
/// gateway to send replies to (without one, replies to IPv6 connections that arrived on
/// `eth0` follow the tunnel's routes, as they would in the original).
fn ingress_parts(desired: &PodTunnelState) -> Vec<IngressPart> {
    let Some(ingress) = desired.ingress else {
        return Vec::new();
    };
    let eth = desired.eth.clone();
    let rule = |ipv6| RuleSpec {
        ipv6,
        priority: ingress.rule_priority,
        fwmark: Some(ingress.mark),
        source: None,
        table: ingress.table,
    };
    let back = |default: IpNet, gateway: IpAddr| RouteSpec {
        table: ingress.table,
        ..RouteSpec::via(default, gateway, eth.clone())
    };
    let mut parts = vec![IngressPart {
        table: NftTable::PodIngressMark {
            eth: eth.clone(),
            mark: ingress.mark,
        },
        rule: rule(false),
        back: back(
            IpNet::V4(Ipv4Net::default()),
            IpAddr::V4(desired.eth_gateway),
        ),
    }];
    if let Some(gw6) = desired.ipv6.as_ref().and_then(|v6| v6.eth_gateway) {
        parts.push(IngressPart {
            table: NftTable::PodIngressMark6 {
                eth: eth.clone(),
                mark: ingress.mark,
            },
            rule: rule(true),
            back: back(IpNet::V6(Ipv6Net::default()), IpAddr::V6(gw6)),
        });
    }
    parts
}
