//! Plan for a whole gateway node: gateway namespace, veth, ILB addresses, one WireGuard
//! device per gateway with its secondary IP, routes, SNAT tables and peers; plus removal of
//! what belongs to gateways that are gone.
//!
//! Dual-stack gateways (a secondary IPv6) add the IPv6 mirror of their IPv4 state: forwarding,
//! the secondary IPv6 on the gateway end of the veth and a host route to it, the host end's
//! link-local as the gateway namespace's IPv6 next hop, `ip6` SNAT and no-masquerade tables,
//! and their peers' IPv6 `/128` routes. A node without dual-stack gateways plans exactly what
//! an IPv4-only node always did, apart from removing IPv6 state left by one.
//!
//! Order: namespace and sysctls, removals (stale devices, addresses, routes), host
//! addresses, veth, per-gateway devices and addresses, namespace routes, nftables, then
//! peers and their routes: removals, stale routes, new routes, new peers (a peer never
//! handshakes before its route exists). Everything is derived from the two inputs alone.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{address, link_up, peer_changes, sysctl, wireguard_device};
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::{GATEWAY_TABLE, HOST_TABLE, NftTable, NftTableId};
use crate::observed::{NetnsRequest, ObserveRequest, ObservedState, WgDeviceId};
use crate::op::Op;
use crate::spec::{AddressSpec, RouteSpec, SnatRule, SysctlKey};
use crate::state::{GatewayNodeState, HOST_VETH_LINK_LOCAL, TUNNEL_LINK_LOCAL};

/// Prefix of the gateway tunnel interfaces; links with it that no gateway wants are removed.
const TUNNEL_PREFIX: &str = "wg-";

fn host_route(ip: Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::from(ip))
}

fn host_route6(ip: Ipv6Addr) -> IpNet {
    IpNet::V6(Ipv6Net::from(ip))
}

/// `accept_ra` that lets an interface keep learning its routers while forwarding.
const ACCEPT_RA_WHILE_FORWARDING: &str = "2";

fn accept_ra(desired: &GatewayNodeState) -> Option<SysctlKey> {
    SysctlKey::ipv6_conf(desired.host_interface.as_str(), "accept_ra").ok()
}

/// A link-local address as `<ip>/64`.
fn link_local_64(ip: std::net::Ipv6Addr) -> AddressSpec {
    // A /64 is always a valid prefix.
    AddressSpec::plain(IpNet::V6(Ipv6Net::new(ip, 64).unwrap_or_default()))
}

/// The host end's link-local (`fe80::1/64`), next hop of the gateway namespace's IPv6.
fn host_veth_link_local() -> AddressSpec {
    link_local_64(HOST_VETH_LINK_LOCAL)
}

/// `default via fe80::1 dev host0` for IPv6 in the gateway namespace.
fn gateway_default6(desired: &GatewayNodeState) -> RouteSpec {
    RouteSpec::via(
        IpNet::V6(Ipv6Net::default()),
        IpAddr::V6(HOST_VETH_LINK_LOCAL),
        desired.veth.gateway.clone(),
    )
}

/// The tunnel device's link-local (`fe80::1/64`), the pods' next hop.
fn tunnel_address() -> AddressSpec {
    link_local_64(TUNNEL_LINK_LOCAL)
}

fn lo() -> Option<InterfaceName> {
    "lo".parse().ok()
}

/// What [`plan_gateway_node`] needs observed.
pub fn observe_request_for_gateway_node(desired: &GatewayNodeState) -> ObserveRequest {
    let mut req = ObserveRequest::default();
    // The ip6 tables are read even without IPv6 gateways, so ones left behind are removed.
    let mut host = NetnsRequest {
        sysctls: [SysctlKey::ipv4_forwarding()].into(),
        nft: [NftTableId::ip(HOST_TABLE), NftTableId::ip6(HOST_TABLE)].into(),
    };
    let mut gateway = NetnsRequest {
        sysctls: [SysctlKey::ipv4_forwarding()].into(),
        nft: [
            NftTableId::ip(GATEWAY_TABLE),
            NftTableId::ip6(GATEWAY_TABLE),
        ]
        .into(),
    };
    if desired.has_ipv6() {
        host.sysctls.insert(SysctlKey::ipv6_forwarding());
        host.sysctls.extend(accept_ra(desired));
        gateway.sysctls.insert(SysctlKey::ipv6_forwarding());
    }
    req.namespaces.insert(desired.host_netns.clone(), host);
    req.namespaces.insert(desired.gateway_netns_ref(), gateway);
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
    if desired.has_ipv6() {
        ipv6_forwarding(&mut ops, desired, observed);
    }
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
        if let Some(v6) = g.secondary_ipv6() {
            address(
                &mut ops,
                &gw,
                o_gw,
                &desired.veth.gateway,
                AddressSpec::plain(host_route6(v6)),
            );
            route(
                &mut ops,
                host,
                observed,
                RouteSpec::on_link(host_route6(v6), desired.veth.host.clone()),
            );
        }
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

    if desired.has_ipv6() {
        address(
            &mut ops,
            host,
            o_host,
            &desired.veth.host,
            host_veth_link_local(),
        );
        route(&mut ops, &gw, observed, gateway_default6(desired));
    }

    nft_tables(&mut ops, desired, observed);
    peers_and_routes(&mut ops, desired, observed, &created);
    ops
}

/// IPv6 forwarding in both namespaces. On the host, an interface learning its routers from
/// advertisements (`accept_ra=1`) is first told to keep doing so while forwarding (`2`):
/// turning forwarding on would otherwise purge the default routes it learned and ignore new
/// advertisements, cutting the node's own IPv6. Interfaces with `accept_ra=0` (static
/// configuration) are left alone.
fn ipv6_forwarding(ops: &mut Vec<Op>, desired: &GatewayNodeState, observed: &ObservedState) {
    let host = &desired.host_netns;
    let gw = desired.gateway_netns_ref();
    let o_host = observed.netns(host);
    if let Some(key) = accept_ra(desired)
        && o_host
            .and_then(|ns| ns.sysctls.get(&key))
            .is_some_and(|v| v.trim() == "1")
    {
        sysctl(ops, host, o_host, key, ACCEPT_RA_WHILE_FORWARDING);
    }
    sysctl(ops, host, o_host, SysctlKey::ipv6_forwarding(), "1");
    sysctl(
        ops,
        &gw,
        observed.netns(&gw),
        SysctlKey::ipv6_forwarding(),
        "1",
    );
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

        // Both families: a dual-stack pod's /128 is routed like its /32 (the state refuses
        // IPv6 allowed IPs on a gateway without a secondary IPv6).
        let wanted: BTreeSet<RouteSpec> = g
            .peers()
            .values()
            .flat_map(|p| p.allowed_ips.iter())
            .map(|ip| RouteSpec::on_link(*ip, g.interface.clone()))
            .collect();
        let existing = o_gw.filter(|_| !is_new);
        if let Some(ns) = existing {
            stale.extend(
                ns.routes
                    .iter()
                    .chain(&ns.ipv6_routes)
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
                .filter(|r| !existing.is_some_and(|ns| ns.has_route(r)))
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
    if !observed.netns(netns).is_some_and(|ns| ns.has_route(&route)) {
        ops.push(Op::AddRoute {
            netns: netns.clone(),
            route,
        });
    }
}

/// Devices, addresses and routes of gateways that are gone; ILB addresses no longer wanted;
/// a secondary IP (of either family) the OS put on the host interface; the IPv6 next hop and
/// default route once no gateway has IPv6.
fn remove_stale(ops: &mut Vec<Op>, desired: &GatewayNodeState, observed: &ObservedState) {
    let host = &desired.host_netns;
    let gw = desired.gateway_netns_ref();
    let wanted_links: BTreeSet<&InterfaceName> =
        desired.gateways().values().map(|g| &g.interface).collect();
    let secondary: BTreeSet<IpAddr> = desired
        .gateways()
        .values()
        .flat_map(|g| {
            std::iter::once(IpAddr::V4(g.secondary_ip)).chain(g.secondary_ipv6().map(IpAddr::V6))
        })
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
                if !is_host_address(&a.addr) || secondary.contains(&a.addr.addr()) {
                    continue;
                }
                ops.push(Op::DelAddress {
                    netns: gw.clone(),
                    link: desired.veth.gateway.clone(),
                    address: a.clone(),
                });
                let stale_route = RouteSpec::on_link(a.addr, desired.veth.host.clone());
                if observed
                    .netns(host)
                    .is_some_and(|h| h.has_route(&stale_route))
                {
                    ops.push(Op::DelRoute {
                        netns: host.clone(),
                        route: stale_route,
                    });
                }
            }
        }
        let default6 = gateway_default6(desired);
        if !desired.has_ipv6() && ns.has_route(&default6) {
            ops.push(Op::DelRoute {
                netns: gw.clone(),
                route: default6,
            });
        }
    }

    if !desired.has_ipv6()
        && observed
            .link(host, &desired.veth.host)
            .is_some_and(|l| l.addresses.contains(&host_veth_link_local()))
    {
        ops.push(Op::DelAddress {
            netns: host.clone(),
            link: desired.veth.host.clone(),
            address: host_veth_link_local(),
        });
    }

    if let Some(eth) = observed.link(host, &desired.host_interface) {
        let label = desired.ilb_label();
        for a in &eth.addresses {
            let stale_ilb = a.label.as_deref() == Some(label.as_str())
                && !matches!(a.addr, IpNet::V4(v4)
                    if v4.prefix_len() == 32 && desired.ilb_addresses.contains(&v4.addr()));
            let os_secondary = secondary.contains(&a.addr.addr());
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

/// A `/32` or a non-link-local `/128`: the shape of a secondary IP on the gateway end (the
/// kernel's own link-local `/64` is not ours).
fn is_host_address(addr: &IpNet) -> bool {
    match addr {
        IpNet::V4(v4) => v4.prefix_len() == 32,
        IpNet::V6(v6) => v6.prefix_len() == 128 && !v6.addr().is_unicast_link_local(),
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
    let gateways = desired.gateways().values();
    let gateway_table = NftTable::GatewayNat {
        egress: desired.veth.gateway.clone(),
        rules: gateways
            .clone()
            .map(|g| SnatRule {
                tunnel: g.interface.clone(),
                mark: g.mark(),
                to: g.secondary_ip,
            })
            .collect(),
    };
    let host_table = NftTable::HostNoMasquerade {
        sources: gateways.clone().map(|g| g.secondary_ip).collect(),
    };
    let gateway_table6 = NftTable::GatewayNat6 {
        egress: desired.veth.gateway.clone(),
        rules: gateways
            .clone()
            .filter_map(|g| {
                Some(SnatRule {
                    tunnel: g.interface.clone(),
                    mark: g.mark(),
                    to: g.secondary_ipv6()?,
                })
            })
            .collect(),
    };
    let host_table6 = NftTable::HostNoMasquerade6 {
        sources: gateways.filter_map(|g| g.secondary_ipv6()).collect(),
    };
    let v4 = !desired.gateways().is_empty();
    let v6 = desired.has_ipv6();
    for (netns, table, wanted) in [
        (gw.clone(), gateway_table, v4),
        (host.clone(), host_table, v4),
        (gw, gateway_table6, v6),
        (host.clone(), host_table6, v6),
    ] {
        let current = observed
            .netns(&netns)
            .and_then(|ns| ns.nft.get(&table.id()));
        if !wanted {
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
