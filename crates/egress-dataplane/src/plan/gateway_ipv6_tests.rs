//! IPv6 (dual-stack) tests of the gateway-node plan, applied to the stateful fake; and the
//! guarantee that IPv4-only gateways plan exactly what they planned before dual-stack.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::fake::FakeNode;
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::{GATEWAY_TABLE, HOST_TABLE, NftTable, NftTableId};
use crate::op::Op;
use crate::plan::{observe_request_for_gateway_node, plan_gateway_node};
use crate::spec::{AddressSpec, Peer, RouteSpec, SnatRule};
use crate::state::{GatewayNodeState, GatewayTunnel};
use crate::{Dataplane, PrivateKey};

/// A fixed key (32 times `byte`, base64), so op lines are comparable across runs.
fn key(byte: u8) -> PrivateKey {
    const KEYS: [&str; 6] = [
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
        "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=",
        "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=",
        "BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY=",
    ];
    PrivateKey::from_base64(KEYS[usize::from(byte) - 1]).unwrap()
}

fn peer(byte: u8, ips: &[&str]) -> Peer {
    Peer {
        public_key: key(byte).public_key(),
        allowed_ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        endpoint: None,
    }
}

fn eth0() -> InterfaceName {
    "eth0".parse().unwrap()
}

fn v4_node(with_6001: bool) -> GatewayNodeState {
    let mut n =
        GatewayNodeState::new(NetnsRef::Current, eth0(), "10.0.0.4".parse().unwrap()).unwrap();
    n.ilb_addresses.insert("10.0.0.100".parse().unwrap());
    let mut g = GatewayTunnel::new(6000, key(1), "10.0.0.10".parse().unwrap()).unwrap();
    g.upsert_peer(peer(3, &["10.244.0.3/32"])).unwrap();
    g.upsert_peer(peer(4, &["10.244.0.4/32"])).unwrap();
    n.add_gateway(g).unwrap();
    if with_6001 {
        let mut g = GatewayTunnel::new(6001, key(2), "10.0.0.11".parse().unwrap()).unwrap();
        g.upsert_peer(peer(5, &["10.244.0.5/32"])).unwrap();
        n.add_gateway(g).unwrap();
    }
    n
}

fn fake_host() -> FakeNode {
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &eth0(),
        &[
            AddressSpec::plain("10.0.0.4/24".parse().unwrap()),
            // What the OS put there, and a stale ILB address.
            AddressSpec::plain("10.0.0.11/24".parse().unwrap()),
            AddressSpec {
                addr: "10.0.0.99/32".parse().unwrap(),
                label: Some("eth0:egress".into()),
            },
        ],
    );
    fake
}

async fn plan_apply(dp: &Dataplane, desired: &GatewayNodeState) -> Vec<String> {
    let observed = dp
        .observe(&observe_request_for_gateway_node(desired))
        .await
        .unwrap();
    let ops = plan_gateway_node(desired, &observed);
    dp.apply(&ops).await.unwrap();
    ops.iter().map(Op::to_string).collect()
}

/// What an IPv4-only node planned before dual-stack existed (captured from that code): a cold
/// start on a host with an OS-added secondary and a stale ILB address, then one gateway and
/// one peer removed and a peer added.
const IPV4_COLD_START: &[&str] = &[
    "create netns ns-static-egress-gateway",
    "host netns: sysctl net.ipv4.ip_forward=1",
    "netns ns-static-egress-gateway: sysctl net.ipv4.ip_forward=1",
    "netns ns-static-egress-gateway: set lo up",
    "host netns: delete address 10.0.0.11/24 dev eth0",
    "host netns: delete address 10.0.0.99/32 label eth0:egress dev eth0",
    "host netns: add address 10.0.0.100/32 label eth0:egress dev eth0",
    "host netns: create veth host-gateway peer host0 in netns ns-static-egress-gateway",
    "host netns: set host-gateway up",
    "netns ns-static-egress-gateway: set host0 up",
    "create wireguard wg-6000 in netns ns-static-egress-gateway (socket in host netns, key pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=, port 6000)",
    "netns ns-static-egress-gateway: set wg-6000 mtu 1420",
    "netns ns-static-egress-gateway: add address fe80::1/64 dev wg-6000",
    "netns ns-static-egress-gateway: set wg-6000 up",
    "netns ns-static-egress-gateway: add address 10.0.0.10/32 dev host0",
    "host netns: replace route 10.0.0.10/32 dev host-gateway scope link",
    "create wireguard wg-6001 in netns ns-static-egress-gateway (socket in host netns, key zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=, port 6001)",
    "netns ns-static-egress-gateway: set wg-6001 mtu 1420",
    "netns ns-static-egress-gateway: add address fe80::1/64 dev wg-6001",
    "netns ns-static-egress-gateway: set wg-6001 up",
    "netns ns-static-egress-gateway: add address 10.0.0.11/32 dev host0",
    "host netns: replace route 10.0.0.11/32 dev host-gateway scope link",
    "netns ns-static-egress-gateway: replace route 10.0.0.4/32 dev host0 scope link",
    "netns ns-static-egress-gateway: replace route default via 10.0.0.4 dev host0",
    "netns ns-static-egress-gateway: replace table ip egress_gateway { snat out host0: iif wg-6000 -> ct mark 0x1770 -> snat to 10.0.0.10,iif wg-6001 -> ct mark 0x1771 -> snat to 10.0.0.11 }",
    "host netns: replace table ip egress_gateway_host { no masquerade for 10.0.0.10,10.0.0.11 }",
    "netns ns-static-egress-gateway: replace route 10.244.0.3/32 dev wg-6000 scope link",
    "netns ns-static-egress-gateway: replace route 10.244.0.4/32 dev wg-6000 scope link",
    "netns ns-static-egress-gateway: replace route 10.244.0.5/32 dev wg-6001 scope link",
    "wireguard wg-6000 in netns ns-static-egress-gateway: set peer Xf7dO2vUf2+ijuFdlp1bsOpTd01Ii9r53xxuASSz7yI= allowed-ips 10.244.0.3/32",
    "wireguard wg-6000 in netns ns-static-egress-gateway: set peer rAGyIJ6GNU+4UyN7XeD0+rE8f8v0M6YcAZNpYX/s8Qs= allowed-ips 10.244.0.4/32",
    "wireguard wg-6001 in netns ns-static-egress-gateway: set peer UKYUCbHd0DJemxa3AOcZ6XcsBwALG9d4bpB8ZT0gSV0= allowed-ips 10.244.0.5/32",
];

const IPV4_CHANGE: &[&str] = &[
    "delete wireguard wg-6001 in netns ns-static-egress-gateway",
    "netns ns-static-egress-gateway: delete address 10.0.0.11/32 dev host0",
    "host netns: delete route 10.0.0.11/32 dev host-gateway scope link",
    "netns ns-static-egress-gateway: replace table ip egress_gateway { snat out host0: iif wg-6000 -> ct mark 0x1770 -> snat to 10.0.0.10 }",
    "host netns: replace table ip egress_gateway_host { no masquerade for 10.0.0.10 }",
    "wireguard wg-6000 in netns ns-static-egress-gateway: remove peer Xf7dO2vUf2+ijuFdlp1bsOpTd01Ii9r53xxuASSz7yI=",
    "netns ns-static-egress-gateway: delete route 10.244.0.3/32 dev wg-6000 scope link",
    "netns ns-static-egress-gateway: replace route 10.244.0.6/32 dev wg-6000 scope link",
    "wireguard wg-6000 in netns ns-static-egress-gateway: set peer 9bLW5g+Ud+MQwpgtqqbJE2wQihd3xZR+RI+jfWgXRVc= allowed-ips 10.244.0.6/32",
];

#[tokio::test]
async fn ipv4_only_gateways_plan_exactly_what_they_planned_before_dual_stack() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let first = v4_node(true);
    assert_eq!(plan_apply(&dp, &first).await, IPV4_COLD_START);
    let mut second = v4_node(false);
    let g = second.gateway_mut(6000).unwrap();
    g.remove_peer(&key(3).public_key());
    g.upsert_peer(peer(6, &["10.244.0.6/32"])).unwrap();
    assert_eq!(plan_apply(&dp, &second).await, IPV4_CHANGE);
    assert!(plan_apply(&dp, &second).await.is_empty());
    // Only the ip6 tables are looked at (to remove ones left behind); no IPv6 sysctl is.
    let req = observe_request_for_gateway_node(&second);
    for ns in req.namespaces.values() {
        assert!(
            ns.sysctls.iter().all(|k| !k.to_string().contains("ipv6")),
            "{req:?}"
        );
    }
}

/// Gateway 6000 dual-stack (fd00::10) with a dual-stack and an IPv4-only peer; gateway 6001
/// IPv4-only.
fn dual_node(secondary6: &str) -> GatewayNodeState {
    let mut n = v4_node(true);
    let g = n.remove_gateway(6000).unwrap();
    let mut g = GatewayTunnel::new(6000, g.private_key, g.secondary_ip)
        .unwrap()
        .with_secondary_ipv6(secondary6.parse().unwrap())
        .unwrap();
    g.upsert_peer(peer(3, &["10.244.0.3/32", "fd00:10:244::3/128"]))
        .unwrap();
    g.upsert_peer(peer(4, &["10.244.0.4/32"])).unwrap();
    n.add_gateway(g).unwrap();
    n
}

fn position(ops: &[String], text: &str) -> usize {
    ops.iter()
        .position(|o| o.contains(text))
        .unwrap_or_else(|| panic!("no op with {text:?} in {ops:#?}"))
}

fn v6(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

const GW: &str = "ns-static-egress-gateway";

#[tokio::test]
async fn a_dual_stack_gateway_mirrors_its_ipv4_state_for_ipv6_in_order_and_converges() {
    let fake = fake_host();
    let dp = fake.dataplane();
    // The host learns its IPv6 routers from advertisements.
    let accept_ra = crate::SysctlKey::ipv6_conf("eth0", "accept_ra").unwrap();
    dp.sysctl
        .write(&NetnsRef::Current, &accept_ra, "1")
        .await
        .unwrap();
    let desired = dual_node("fd00::10");
    let ops = plan_apply(&dp, &desired).await;

    let ra = position(&ops, "host netns: sysctl net.ipv6.conf.eth0.accept_ra=2");
    let host_fwd = position(&ops, "host netns: sysctl net.ipv6.conf.all.forwarding=1");
    let gw_fwd = position(
        &ops,
        &format!("netns {GW}: sysctl net.ipv6.conf.all.forwarding=1"),
    );
    let veth = position(&ops, "create veth");
    let addr6 = position(&ops, "add address fd00::10/128 dev host0");
    let host_route6 = position(
        &ops,
        "host netns: replace route fd00::10/128 dev host-gateway",
    );
    let ll = position(&ops, "host netns: add address fe80::1/64 dev host-gateway");
    let default6 = position(&ops, "replace route default via fe80::1 dev host0");
    let nat6 = position(&ops, "replace table ip6 egress_gateway {");
    let host6 = position(&ops, "replace table ip6 egress_gateway_host");
    let pod_route6 = position(&ops, "replace route fd00:10:244::3/128 dev wg-6000");
    let peer6 = position(&ops, "allowed-ips 10.244.0.3/32,fd00:10:244::3/128");
    // Routers stay learned: accept_ra=2 before forwarding purges learned default routes.
    assert!(ra < host_fwd && host_fwd < gw_fwd, "{ops:#?}");
    assert!(veth < addr6 && addr6 < host_route6 && veth < ll, "{ops:#?}");
    assert!(ll < default6 && default6 < nat6, "{ops:#?}");
    // As for IPv4: the peer's route before the peer.
    assert!(nat6 < pod_route6 && pod_route6 < peer6, "{ops:#?}");
    assert!(host6 > veth, "{ops:#?}");
    assert!(plan_apply(&dp, &desired).await.is_empty(), "converged");

    let state = fake.snapshot();
    let gw = desired.gateway_netns_ref();
    let host = &state.namespaces[&NetnsRef::Current];
    let gwns = &state.namespaces[&gw];
    assert!(
        gwns.links[&desired.veth.gateway]
            .addresses
            .contains(&AddressSpec::plain(v6("fd00::10/128")))
    );
    assert!(
        host.links[&desired.veth.host]
            .addresses
            .contains(&AddressSpec::plain(v6("fe80::1/64")))
    );
    assert!(host.has_route(&RouteSpec::on_link(
        v6("fd00::10/128"),
        desired.veth.host.clone()
    )));
    assert!(gwns.has_route(&RouteSpec::via(
        v6("::/0"),
        "fe80::1".parse().unwrap(),
        desired.veth.gateway.clone()
    )));
    // Only the dual-stack gateway is in the ip6 tables; the IPv4 tables are unchanged.
    assert_eq!(
        gwns.nft[&NftTableId::ip6(GATEWAY_TABLE)],
        NftTable::GatewayNat6 {
            egress: desired.veth.gateway.clone(),
            rules: [SnatRule {
                tunnel: InterfaceName::for_gateway_port(6000),
                mark: crate::FwMark::new(6000).unwrap(),
                to: "fd00::10".parse().unwrap(),
            }]
            .into(),
        }
    );
    assert_eq!(
        host.nft[&NftTableId::ip6(HOST_TABLE)],
        NftTable::HostNoMasquerade6 {
            sources: ["fd00::10".parse().unwrap()].into()
        }
    );
    assert_eq!(
        host.nft[&NftTableId::ip(HOST_TABLE)],
        NftTable::HostNoMasquerade {
            sources: ["10.0.0.10".parse().unwrap(), "10.0.0.11".parse().unwrap()].into()
        }
    );
    assert_eq!(
        gwns.ipv6_routes
            .iter()
            .filter(|r| r.device.as_str().starts_with("wg-"))
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["fd00:10:244::3/128 dev wg-6000"]
    );
    for ns in [host, gwns] {
        assert_eq!(ns.sysctls[&crate::SysctlKey::ipv6_forwarding()], "1");
    }
    assert_eq!(host.sysctls[&accept_ra], "2");
}

#[tokio::test]
async fn statically_configured_host_interfaces_keep_their_accept_ra() {
    let fake = fake_host();
    let dp = fake.dataplane();
    // The fake reads every unset sysctl as 0: no router advertisements accepted.
    let ops = plan_apply(&dp, &dual_node("fd00::10")).await;
    assert!(ops.iter().all(|o| !o.contains("accept_ra")), "{ops:#?}");
    assert!(ops.iter().any(|o| o.contains("ipv6.conf.all.forwarding=1")));
}

#[tokio::test]
async fn a_changed_secondary_ipv6_replaces_the_old_one_everywhere() {
    let fake = fake_host();
    let dp = fake.dataplane();
    plan_apply(&dp, &dual_node("fd00::10")).await;
    let ops = plan_apply(&dp, &dual_node("fd00::20")).await;
    for text in [
        "delete address fd00::10/128 dev host0",
        "host netns: delete route fd00::10/128 dev host-gateway",
        "add address fd00::20/128 dev host0",
        "host netns: replace route fd00::20/128 dev host-gateway",
        "snat to fd00::20 }",
        "no masquerade for fd00::20 }",
    ] {
        position(&ops, text);
    }
    assert!(plan_apply(&dp, &dual_node("fd00::20")).await.is_empty());
}

#[tokio::test]
async fn dropping_ipv6_removes_every_ipv6_item_and_leaves_ipv4_as_it_was() {
    let fake = fake_host();
    let dp = fake.dataplane();
    plan_apply(&dp, &v4_node(true)).await;
    let v4_only = fake.snapshot();
    plan_apply(&dp, &dual_node("fd00::10")).await;
    // The SGC drops IPv6: the pod's IPv6 leaves its peer, the gateway its secondary IPv6.
    let ops = plan_apply(&dp, &v4_node(true)).await;
    for text in [
        "delete address fd00::10/128 dev host0",
        "host netns: delete route fd00::10/128 dev host-gateway",
        "delete route default via fe80::1 dev host0",
        "host netns: delete address fe80::1/64 dev host-gateway",
        "delete table ip6 egress_gateway",
        "host netns: delete table ip6 egress_gateway_host",
        "delete route fd00:10:244::3/128 dev wg-6000",
        "allowed-ips 10.244.0.3/32",
    ] {
        position(&ops, text);
    }
    assert!(plan_apply(&dp, &v4_node(true)).await.is_empty());
    let mut after = fake.snapshot();
    // Forwarding stays on, as IPv4's does; everything else is as if IPv6 never was.
    for ns in after.namespaces.values_mut() {
        ns.sysctls.remove(&crate::SysctlKey::ipv6_forwarding());
    }
    assert_eq!(after.namespaces, v4_only.namespaces);
}

#[tokio::test]
async fn an_os_added_secondary_ipv6_on_the_host_interface_is_removed() {
    let fake = fake_host();
    fake.add_link(
        &NetnsRef::Current,
        &eth0(),
        &[
            AddressSpec::plain("10.0.0.4/24".parse().unwrap()),
            AddressSpec::plain(v6("fd00::4/64")),
            AddressSpec::plain(v6("fd00::10/64")),
        ],
    );
    let dp = fake.dataplane();
    let ops = plan_apply(&dp, &dual_node("fd00::10")).await;
    position(&ops, "host netns: delete address fd00::10/64 dev eth0");
    assert!(
        ops.iter().all(|o| !o.contains("fd00::4/64")),
        "the node's own IPv6 stays: {ops:#?}"
    );
}
