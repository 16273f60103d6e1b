//! Plan for a whole gateway node: gateway namespace, veth, ILB addresses, one WireGuard
//! device per gateway with its secondary IP, routes, SNAT tables and peers; plus removal of
//! what belongs to gateways that are gone.
//!
//! Order: namespace and sysctls, removals (stale devices, addresses, routes), host
//! addresses, veth, per-gateway devices and addresses, namespace routes, nftables, then
//! peers and their routes: removals, stale routes, new routes, new peers (a peer never
//! handshakes before its route exists). Everything is derived from the two inputs alone.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::{address, link_up, peer_changes, sysctl, wireguard_device};
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::NftTable;
use crate::observed::{NetnsRequest, ObserveRequest, ObservedState, WgDeviceId};
use crate::op::Op;
use crate::spec::{AddressSpec, RouteSpec, SnatRule, SysctlKey};
use crate::state::{GatewayNodeState, TUNNEL_LINK_LOCAL};

/// Prefix of the gateway tunnel interfaces; links with it that no gateway wants are removed.
const TUNNEL_PREFIX: &str = "wg-";

fn host_route(ip: Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::from(ip))
}

fn tunnel_address() -> AddressSpec {
    // fe80::1/64 is always a valid prefix.
    AddressSpec::plain(IpNet::V6(
        ipnet::Ipv6Net::new(TUNNEL_LINK_LOCAL, 64).unwrap_or_default(),
    ))
}

fn lo() -> Option<InterfaceName> {
    "lo".parse().ok()
}

/// What [`plan_gateway_node`] needs observed.
pub fn observe_request_for_gateway_node(desired: &GatewayNodeState) -> ObserveRequest {
    let mut req = ObserveRequest::default();
    req.namespaces.insert(
        desired.host_netns.clone(),
        NetnsRequest {
            sysctls: [SysctlKey::ipv4_forwarding()].into(),
            nft: [NftTable::HostNoMasquerade {
                sources: BTreeSet::new(),
            }
            .id()]
            .into(),
        },
    );
    req.namespaces.insert(
        desired.gateway_netns_ref(),
        NetnsRequest {
            sysctls: [SysctlKey::ipv4_forwarding()].into(),
            nft: [NftTable::GatewayNat {
                egress: desired.veth.gateway.clone(),
                rules: BTreeSet::new(),
            }
            .id()]
            .into(),
        },
    );
    for gw in desired.gateways().values() {
        req.wireguard.insert(WgDeviceId {
            netns: desired.gateway_netns_ref(),
            name: gw.interface.clone(),
        });
    }
    req
}

/// Plans a gateway node. See the module docs for the order.
pub fn plan_gateway_node(desired: &GatewayNodeState, observed: &ObservedState) -> Vec<Op> {
    let mut ops = Vec::new();
    let host = &desired.host_netns;
    let gw = desired.gateway_netns_ref();
    let o_host = observed.netns(host);
    let o_gw = observed.netns(&gw);
    let gateways = desired.gateways();

    if o_gw.is_none() {
        ops.push(Op::CreateNetns {
            name: desired.gateway_netns.clone(),
        });
    }
    sysctl(&mut ops, host, o_host, SysctlKey::ipv4_forwarding(), "1");
    sysctl(&mut ops, &gw, o_gw, SysctlKey::ipv4_forwarding(), "1");
    if let Some(lo) = lo() {
        link_up(&mut ops, &gw, o_gw, &lo);
    }

    remove_stale(&mut ops, desired, observed);

    for ilb in &desired.ilb_addresses {
        address(
            &mut ops,
            host,
            o_host,
            &desired.host_interface,
            AddressSpec {
                addr: host_route(*ilb),
                label: Some(desired.ilb_label()),
            },
        );
    }

    veth(&mut ops, desired, observed);

    let mut created = BTreeSet::new();
    for g in gateways.values() {
        let device = WgDeviceId {
            netns: gw.clone(),
            name: g.interface.clone(),
        };
        let outcome = wireguard_device(
            &mut ops,
            observed,
            &device,
            host,
            &g.private_key,
            Some(g.listen_port),
        );
        let link = if outcome.created {
            created.insert(g.interface.clone());
            None
        } else {
            o_gw.and_then(|ns| ns.links.get(&g.interface))
        };
        if link.and_then(|l| l.mtu) != Some(g.mtu) {
            ops.push(Op::SetMtu {
                netns: gw.clone(),
                link: g.interface.clone(),
                mtu: g.mtu,
            });
        }
        let has_ll =
            link.is_some_and(|l| l.addresses.iter().any(|a| a.addr == tunnel_address().addr));
        if !has_ll {
            ops.push(Op::AddAddress {
                netns: gw.clone(),
                link: g.interface.clone(),
                address: tunnel_address(),
            });
        }
        if !link.is_some_and(|l| l.up) {
            ops.push(Op::SetLinkUp {
                netns: gw.clone(),
                link: g.interface.clone(),
            });
        }
        address(
            &mut ops,
            &gw,
            o_gw,
            &desired.veth.gateway,
            AddressSpec::plain(host_route(g.secondary_ip)),
        );
        route(
            &mut ops,
            host,
            observed,
            RouteSpec::on_link(host_route(g.secondary_ip), desired.veth.host.clone()),
        );
    }

    if !gateways.is_empty() {
        let primary = host_route(desired.host_primary_ip);
        route(
            &mut ops,
            &gw,
            observed,
            RouteSpec::on_link(primary, desired.veth.gateway.clone()),
        );
        route(
            &mut ops,
            &gw,
            observed,
            RouteSpec::via(
                IpNet::V4(Ipv4Net::default()),
                IpAddr::V4(desired.host_primary_ip),
                desired.veth.gateway.clone(),
            ),
        );
    }

    nft_tables(&mut ops, desired, observed);
    peers_and_routes(&mut ops, desired, observed, &created);
    ops
}

/// Peers and their `/32` routes, in four steps over all gateways: peer removals, stale route
/// deletions, route additions, then peer additions. A peer is added only after its route:
/// the pod's ADD returns at its first handshake, and a reply arriving before the route
/// would leave through the default route and the pod's first connection would fail.
/// (Routes are added with replace, and every stale route is gone before any is added, so
/// an address moving between tunnels never meets its old route.)
fn peers_and_routes(
    ops: &mut Vec<Op>,
    desired: &GatewayNodeState,
    observed: &ObservedState,
    created: &BTreeSet<InterfaceName>,
) {
    let gw = desired.gateway_netns_ref();
    let o_gw = observed.netns(&gw);
    let (mut removals, mut stale, mut routes, mut adds) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for g in desired.gateways().values() {
        let device = WgDeviceId {
            netns: gw.clone(),
            name: g.interface.clone(),
        };
        let is_new = created.contains(&g.interface);
        let current = if is_new {
            None
        } else {
            observed.wireguard.get(&device)
        };
        let (r, a) = peer_changes(&device, g.peers(), current);
        removals.extend(r);
        adds.extend(a);

        let wanted: BTreeSet<RouteSpec> = g
            .peers()
            .values()
            .flat_map(|p| p.allowed_ips.iter())
            .filter(|ip| matches!(ip, IpNet::V4(_)))
            .map(|ip| RouteSpec::on_link(*ip, g.interface.clone()))
            .collect();
        let existing = o_gw.filter(|_| !is_new).map(|ns| &ns.routes);
        if let Some(existing) = existing {
            stale.extend(
                existing
                    .iter()
                    .filter(|r| r.device == g.interface && !wanted.contains(*r))
                    .map(|r| Op::DelRoute {
                        netns: gw.clone(),
                        route: r.clone(),
                    }),
            );
        }
        routes.extend(
            wanted
                .into_iter()
                .filter(|r| !existing.is_some_and(|e| e.contains(r)))
                .map(|route| Op::AddRoute {
                    netns: gw.clone(),
                    route,
                }),
        );
    }
    ops.extend(removals);
    ops.extend(stale);
    ops.extend(routes);
    ops.extend(adds);
}

fn route(ops: &mut Vec<Op>, netns: &NetnsRef, observed: &ObservedState, route: RouteSpec) {
    if !observed
        .netns(netns)
        .is_some_and(|ns| ns.routes.contains(&route))
    {
        ops.push(Op::AddRoute {
            netns: netns.clone(),
            route,
        });
    }
}

/// Devices, addresses and routes of gateways that are gone; ILB addresses no longer wanted;
/// a secondary IP the OS put on the host interface.
fn remove_stale(ops: &mut Vec<Op>, desired: &GatewayNodeState, observed: &ObservedState) {
    let host = &desired.host_netns;
    let gw = desired.gateway_netns_ref();
    let wanted_links: BTreeSet<&InterfaceName> =
        desired.gateways().values().map(|g| &g.interface).collect();
    let secondary: BTreeSet<Ipv4Addr> = desired
        .gateways()
        .values()
        .map(|g| g.secondary_ip)
        .collect();

    if let Some(ns) = observed.netns(&gw) {
        for name in ns.links.keys() {
            if name.as_str().starts_with(TUNNEL_PREFIX) && !wanted_links.contains(name) {
                ops.push(Op::DeleteWireGuard {
                    device: WgDeviceId {
                        netns: gw.clone(),
                        name: name.clone(),
                    },
                });
            }
        }
        if let Some(link) = ns.links.get(&desired.veth.gateway) {
            for a in &link.addresses {
                let IpNet::V4(v4) = a.addr else { continue };
                if v4.prefix_len() == 32 && !secondary.contains(&v4.addr()) {
                    ops.push(Op::DelAddress {
                        netns: gw.clone(),
                        link: desired.veth.gateway.clone(),
                        address: a.clone(),
                    });
                    let stale_route = RouteSpec::on_link(a.addr, desired.veth.host.clone());
                    if observed
                        .netns(host)
                        .is_some_and(|h| h.routes.contains(&stale_route))
                    {
                        ops.push(Op::DelRoute {
                            netns: host.clone(),
                            route: stale_route,
                        });
                    }
                }
            }
        }
    }

    if let Some(eth) = observed.link(host, &desired.host_interface) {
        let label = desired.ilb_label();
        for a in &eth.addresses {
            let IpNet::V4(v4) = a.addr else { continue };
            let stale_ilb = a.label.as_deref() == Some(label.as_str())
                && !(v4.prefix_len() == 32 && desired.ilb_addresses.contains(&v4.addr()));
            let os_secondary = secondary.contains(&v4.addr());
            if stale_ilb || os_secondary {
                ops.push(Op::DelAddress {
                    netns: host.clone(),
                    link: desired.host_interface.clone(),
                    address: a.clone(),
                });
            }
        }
    }
}

/// The veth pair: created with each end in place, or the gateway end moved if it was left
/// in the host namespace.
fn veth(ops: &mut Vec<Op>, desired: &GatewayNodeState, observed: &ObservedState) {
    let host = &desired.host_netns;
    let gw = desired.gateway_netns_ref();
    let gw_end_in_gw = observed.link(&gw, &desired.veth.gateway).is_some();
    let gw_end_in_host = observed.link(host, &desired.veth.gateway).is_some();
    let mut host_end = observed.link(host, &desired.veth.host).is_some();
    if host_end && !gw_end_in_gw && !gw_end_in_host {
        // Its peer is gone (say, the gateway namespace was deleted): not a usable pair.
        ops.push(Op::DeleteLink {
            netns: host.clone(),
            link: desired.veth.host.clone(),
        });
        host_end = false;
    }
    if !host_end {
        // Without its host end, whatever carries the gateway end's name is not our veth.
        if gw_end_in_gw {
            ops.push(Op::DeleteLink {
                netns: gw.clone(),
                link: desired.veth.gateway.clone(),
            });
        }
        if gw_end_in_host {
            ops.push(Op::DeleteLink {
                netns: host.clone(),
                link: desired.veth.gateway.clone(),
            });
        }
        ops.push(Op::CreateVeth {
            netns: host.clone(),
            name: desired.veth.host.clone(),
            peer_netns: gw.clone(),
            peer: desired.veth.gateway.clone(),
        });
        ops.push(Op::SetLinkUp {
            netns: host.clone(),
            link: desired.veth.host.clone(),
        });
        ops.push(Op::SetLinkUp {
            netns: gw,
            link: desired.veth.gateway.clone(),
        });
        return;
    }
    if !gw_end_in_gw && gw_end_in_host {
        ops.push(Op::MoveLink {
            netns: host.clone(),
            link: desired.veth.gateway.clone(),
            to: gw.clone(),
        });
        link_up(ops, host, observed.netns(host), &desired.veth.host);
        ops.push(Op::SetLinkUp {
            netns: gw,
            link: desired.veth.gateway.clone(),
        });
        return;
    }
    link_up(ops, host, observed.netns(host), &desired.veth.host);
    link_up(ops, &gw, observed.netns(&gw), &desired.veth.gateway);
}

fn nft_tables(ops: &mut Vec<Op>, desired: &GatewayNodeState, observed: &ObservedState) {
    let host = &desired.host_netns;
    let gw = desired.gateway_netns_ref();
    let gateway_table = NftTable::GatewayNat {
        egress: desired.veth.gateway.clone(),
        rules: desired
            .gateways()
            .values()
            .map(|g| SnatRule {
                tunnel: g.interface.clone(),
                mark: g.mark(),
                to: g.secondary_ip,
            })
            .collect(),
    };
    let host_table = NftTable::HostNoMasquerade {
        sources: desired
            .gateways()
            .values()
            .map(|g| g.secondary_ip)
            .collect(),
    };
    for (netns, table) in [(gw, gateway_table), (host.clone(), host_table)] {
        let current = observed
            .netns(&netns)
            .and_then(|ns| ns.nft.get(&table.id()));
        if desired.gateways().is_empty() {
            if current.is_some() {
                ops.push(Op::DeleteNftTable {
                    netns,
                    id: table.id(),
                });
            }
        } else if current != Some(&table) {
            ops.push(Op::ReplaceNftTable { netns, table });
        }
    }
}
