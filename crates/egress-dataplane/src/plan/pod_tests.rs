//! Unit tests of the pod tunnel plan, applied to the stateful fake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use crate::fake::FakeNode;
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::NftTable;
use crate::op::Op;
use crate::plan::{observe_request_for_pod, plan_pod};
use crate::spec::{AddressSpec, FwMark, NextHop, RouteSpec, RuleSpec, SysctlKey};
use crate::state::{IngressReturnPath, PodIpv6Routing, PodRouting, PodTunnelState, StateError};
use crate::{Dataplane, PrivateKey};

fn name(s: &str) -> InterfaceName {
    s.parse().unwrap()
}

fn pod_ns() -> NetnsRef {
    NetnsRef::Named("cni-1234".parse().unwrap())
}

fn desired(routing: PodRouting) -> PodTunnelState {
    PodTunnelState {
        netns: pod_ns(),
        socket_netns: NetnsRef::Current,
        interface: name("wg0"),
        eth: name("eth0"),
        eth_gateway: "10.244.1.1".parse().unwrap(),
        private_key: PrivateKey::generate(),
        addresses: ["fe80::1234/64".parse().unwrap()].into(),
        mtu: 1420,
        gateway_peer: PodTunnelState::gateway_peer(
            PrivateKey::generate().public_key(),
            "10.0.0.100:6000".parse().unwrap(),
        ),
        routing,
        ipv6: None,
        ingress: Some(IngressReturnPath {
            mark: FwMark::new(8738).unwrap(),
            table: 8738,
            rule_priority: 32765,
        }),
        loose_rp_filter: true,
    }
}

/// A pod namespace as the main CNI plugin leaves it.
fn fake_pod() -> FakeNode {
    let fake = FakeNode::new();
    fake.add_netns(pod_ns());
    fake.add_link(
        &pod_ns(),
        &name("eth0"),
        &[AddressSpec::plain("10.244.1.10/24".parse().unwrap())],
    );
    fake.add_route(
        &pod_ns(),
        RouteSpec::on_link("10.244.1.0/24".parse().unwrap(), name("eth0")),
    );
    fake.add_route(
        &pod_ns(),
        RouteSpec::via(
            "0.0.0.0/0".parse().unwrap(),
            "10.244.1.1".parse().unwrap(),
            name("eth0"),
        ),
    );
    fake
}

async fn converge(dp: &Dataplane, d: &PodTunnelState) -> Vec<Op> {
    let observed = dp.observe(&observe_request_for_pod(d)).await.unwrap();
    let ops = plan_pod(d, &observed);
    dp.apply(&ops).await.unwrap();
    let again = plan_pod(d, &dp.observe(&observe_request_for_pod(d)).await.unwrap());
    assert!(again.is_empty(), "not idempotent: {again:?}");
    ops
}

/// The pod's routes of both families.
fn routes(fake: &FakeNode) -> BTreeSet<String> {
    let ns = &fake.snapshot().namespaces[&pod_ns()];
    ns.routes
        .iter()
        .chain(&ns.ipv6_routes)
        .map(|r| r.to_string())
        .collect()
}

#[tokio::test]
async fn static_egress_gateway_sends_everything_but_exclusions_through_the_tunnel() {
    let fake = fake_pod();
    let dp = fake.dataplane();
    let d = desired(PodRouting::StaticEgressGateway {
        exclude: [
            "10.0.0.0/16".parse().unwrap(),
            "169.254.169.254/32".parse().unwrap(),
        ]
        .into(),
    });
    d.validate().unwrap();
    converge(&dp, &d).await;
    let expected: BTreeSet<String> = [
        "10.244.1.1/32 dev eth0 scope link",
        "default via inet6 fe80::1 dev wg0",
        "10.0.0.0/16 via 10.244.1.1 dev eth0",
        "169.254.169.254/32 via 10.244.1.1 dev eth0",
        "default via 10.244.1.1 dev eth0 table 8738",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(routes(&fake), expected);

    let state = fake.snapshot();
    let ns = &state.namespaces[&pod_ns()];
    assert!(ns.links[&name("wg0")].up);
    assert!(
        ns.links[&name("wg0")]
            .addresses
            .contains(&AddressSpec::plain("fe80::1234/64".parse().unwrap()))
    );
    assert_eq!(ns.sysctls[&SysctlKey::rp_filter_all()], "2");
    assert_eq!(ns.sysctls[&SysctlKey::rp_filter(&name("eth0"))], "2");
    assert!(ns.rules.contains(&RuleSpec {
        ipv6: false,
        priority: 32765,
        fwmark: FwMark::new(8738),
        source: None,
        table: 8738
    }));
    assert!(
        ns.nft
            .values()
            .any(|t| matches!(t, NftTable::PodIngressMark { .. }))
    );
    let device = crate::WgDeviceId {
        netns: pod_ns(),
        name: name("wg0"),
    };
    let peers = &state.wireguard[&device].peers;
    assert_eq!(peers.len(), 1);
    assert_eq!(
        peers[&d.gateway_peer.public_key].endpoint,
        d.gateway_peer.endpoint
    );
}

#[tokio::test]
async fn azure_networking_keeps_existing_routes_and_adds_tunnel_cidrs() {
    let fake = fake_pod();
    let dp = fake.dataplane();
    let mut d = desired(PodRouting::AzureNetworking {
        through_tunnel: ["203.0.113.0/24".parse().unwrap()].into(),
    });
    d.ingress = None;
    d.loose_rp_filter = false;
    converge(&dp, &d).await;
    let expected: BTreeSet<String> = [
        "10.244.1.0/24 dev eth0 scope link",
        "default via 10.244.1.1 dev eth0",
        "203.0.113.0/24 via inet6 fe80::1 dev wg0",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(routes(&fake), expected);
}

#[tokio::test]
async fn a_new_gateway_endpoint_updates_the_one_peer() {
    let fake = fake_pod();
    let dp = fake.dataplane();
    let mut d = desired(PodRouting::StaticEgressGateway {
        exclude: BTreeSet::new(),
    });
    converge(&dp, &d).await;
    d.gateway_peer.endpoint = Some("10.0.0.101:6000".parse().unwrap());
    let ops = converge(&dp, &d).await;
    assert_eq!(ops.len(), 1);
    assert!(
        matches!(&ops[0], Op::AddPeer { peer, .. } if peer.endpoint == d.gateway_peer.endpoint)
    );
    assert!(matches!(&d.routing, PodRouting::StaticEgressGateway { .. }));
    let route = fake.snapshot().namespaces[&pod_ns()]
        .routes
        .iter()
        .find(|r| r.destination.prefix_len() == 0 && r.table == crate::spec::MAIN_TABLE)
        .cloned()
        .unwrap();
    assert_eq!(
        route.next_hop,
        NextHop::ViaInet6(crate::state::TUNNEL_LINK_LOCAL)
    );
}

#[test]
fn a_pod_tunnel_needs_an_endpoint() {
    let mut d = desired(PodRouting::StaticEgressGateway {
        exclude: BTreeSet::new(),
    });
    d.gateway_peer.endpoint = None;
    assert!(matches!(d.validate(), Err(StateError::NoEndpoint { .. })));
}

async fn teardown(dp: &Dataplane, t: &crate::PodTeardown) -> Vec<Op> {
    let req = crate::observe_request_for_pod_teardown(t);
    let ops = crate::plan_pod_teardown(t, &dp.observe(&req).await.unwrap());
    dp.apply(&ops).await.unwrap();
    let again = crate::plan_pod_teardown(t, &dp.observe(&req).await.unwrap());
    assert!(again.is_empty(), "teardown not idempotent: {again:?}");
    ops
}

#[tokio::test]
async fn teardown_removes_everything_the_tunnel_plan_added_and_is_idempotent() {
    let fake = fake_pod();
    let dp = fake.dataplane();
    let before = routes(&fake);
    // A pod exactly as the main plugin made it: nothing to remove.
    let d = desired(PodRouting::StaticEgressGateway {
        exclude: ["169.254.169.254/32".parse().unwrap()].into(),
    });
    assert!(teardown(&dp, &d.teardown(None)).await.is_empty());
    converge(&dp, &d).await;
    let ops = teardown(&dp, &d.teardown(None)).await;
    assert!(
        matches!(&ops[0], Op::DeleteWireGuard { device } if device.name == name("wg0")),
        "{ops:?}"
    );
    let state = fake.snapshot();
    let ns = &state.namespaces[&pod_ns()];
    assert!(!ns.links.contains_key(&name("wg0")));
    assert!(ns.nft.is_empty(), "{:?}", ns.nft);
    assert!(ns.rules.is_empty(), "{:?}", ns.rules);
    assert!(state.wireguard.is_empty());
    // Our exclusion routes and table 8738 are gone; the on-link route to the gateway stays
    // (it may be the main plugin's own); the main plugin's routes that the tunnel plan
    // deleted are not restored on DEL.
    assert_eq!(
        routes(&fake),
        BTreeSet::from(["10.244.1.1/32 dev eth0 scope link".to_owned()])
    );

    // Undoing a failed ADD puts the deleted routes back (restored before the on-link
    // gateway route they need would be removed, and that one is kept when restored).
    converge(&dp, &d).await;
    let mut undo = d.teardown(None);
    // Undo knows what the main plugin had: the on-link gateway route goes unless restored.
    undo.eth_routes.insert(RouteSpec::on_link(
        "10.244.1.1/32".parse().unwrap(),
        name("eth0"),
    ));
    undo.restore_routes = fake_pod().snapshot().namespaces[&pod_ns()].routes.clone();
    teardown(&dp, &undo).await;
    assert_eq!(routes(&fake), before);
}

#[tokio::test]
async fn teardown_without_the_namespace_only_cleans_the_socket_side() {
    let fake = fake_pod();
    let dp = fake.dataplane();
    fake.add_netns(NetnsRef::Current);
    let leftover = InterfaceName::for_pod_socket("ctr-1");
    fake.add_link(&NetnsRef::Current, &leftover, &[]);
    let mut t = desired(PodRouting::AzureNetworking {
        through_tunnel: BTreeSet::new(),
    })
    .teardown(Some(leftover.clone()));
    t.netns = NetnsRef::Named("cni-gone".parse().unwrap());
    let ops = teardown(&dp, &t).await;
    assert_eq!(
        ops,
        vec![Op::DeleteLink {
            netns: NetnsRef::Current,
            link: leftover
        }]
    );
}

#[tokio::test]
async fn a_handshake_trigger_sets_the_gateway_peer_keepalive() {
    let fake = fake_pod();
    let dp = fake.dataplane();
    let d = desired(PodRouting::StaticEgressGateway {
        exclude: BTreeSet::new(),
    });
    converge(&dp, &d).await;
    let device = crate::WgDeviceId {
        netns: pod_ns(),
        name: name("wg0"),
    };
    dp.wireguard
        .set_peer_keepalive(&device, &d.gateway_peer, 1, true)
        .await
        .unwrap();
    assert_eq!(fake.keepalive(&device, &d.gateway_peer.public_key), Some(1));
    dp.wireguard
        .set_peer_keepalive(&device, &d.gateway_peer, 0, false)
        .await
        .unwrap();
    assert_eq!(fake.keepalive(&device, &d.gateway_peer.public_key), Some(0));
    // The peer is still exactly what the plan wants.
    assert!(plan_pod(&d, &dp.observe(&observe_request_for_pod(&d)).await.unwrap()).is_empty());
}

/// The IPv6 routes a dual-stack main plugin leaves in the pod (global gateway).
const POD_V6_ROUTES: [&str; 3] = [
    "fd00:10:244:1::/64 dev eth0",
    "fe80::/64 dev eth0",
    "default via fd00:10:244:1::1 dev eth0",
];

/// A dual-stack pod namespace: [`fake_pod`] plus IPv6 on `eth0`.
fn fake_dual_stack_pod() -> FakeNode {
    let fake = fake_pod();
    fake.add_link(
        &pod_ns(),
        &name("eth0"),
        &[
            AddressSpec::plain("10.244.1.10/24".parse().unwrap()),
            AddressSpec::plain("fd00:10:244:1::a/64".parse().unwrap()),
        ],
    );
    let eth = name("eth0");
    fake.add_route(
        &pod_ns(),
        RouteSpec::on_link("fd00:10:244:1::/64".parse().unwrap(), eth.clone()),
    );
    fake.add_route(
        &pod_ns(),
        RouteSpec::on_link("fe80::/64".parse().unwrap(), eth.clone()),
    );
    fake.add_route(
        &pod_ns(),
        RouteSpec::via(
            "::/0".parse().unwrap(),
            "fd00:10:244:1::1".parse().unwrap(),
            eth,
        ),
    );
    fake
}

fn v6_routes(fake: &FakeNode) -> BTreeSet<String> {
    fake.snapshot().namespaces[&pod_ns()]
        .ipv6_routes
        .iter()
        .map(|r| r.to_string())
        .collect()
}

/// Converges `d` on a fresh dual-stack pod; its IPv6 routes afterwards.
async fn converged_v6_routes(d: &PodTunnelState) -> BTreeSet<String> {
    let fake = fake_dual_stack_pod();
    converge(&fake.dataplane(), d).await;
    v6_routes(&fake)
}

fn strings<const N: usize>(s: [&str; N]) -> BTreeSet<String> {
    s.into_iter().map(String::from).collect()
}

fn ipv6(gateway: Option<&str>, cidrs: &[&str]) -> Option<PodIpv6Routing> {
    Some(PodIpv6Routing {
        eth_gateway: gateway.map(|g| g.parse().unwrap()),
        cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
    })
}

fn static_egress(exclude: &[&str]) -> PodRouting {
    PodRouting::StaticEgressGateway {
        exclude: exclude.iter().map(|c| c.parse().unwrap()).collect(),
    }
}

#[tokio::test]
async fn without_an_ipv6_part_ipv6_routes_are_untouched_in_both_modes() {
    for routing in [
        static_egress(&["169.254.169.254/32"]),
        PodRouting::AzureNetworking {
            through_tunnel: ["203.0.113.0/24".parse().unwrap()].into(),
        },
    ] {
        let fake = fake_dual_stack_pod();
        let dp = fake.dataplane();
        let before = v6_routes(&fake);
        assert_eq!(before, strings(POD_V6_ROUTES));
        let ops = converge(&dp, &desired(routing)).await;
        assert!(
            !ops.iter().any(|op| matches!(op,
                Op::AddRoute { route, .. } | Op::DelRoute { route, .. }
                    if route.destination.addr().is_ipv6())),
            "{ops:?}"
        );
        assert_eq!(v6_routes(&fake), before);
    }
}

#[tokio::test]
async fn static_egress_sends_ipv6_into_the_tunnel_and_exclusions_via_the_ipv6_gateway() {
    let fake = fake_dual_stack_pod();
    let dp = fake.dataplane();
    let mut d = desired(static_egress(&["169.254.169.254/32"]));
    d.ipv6 = ipv6(
        Some("fd00:10:244:1::1"),
        &["2001:db8:e::/48", "fd00:10:96::/112"],
    );
    d.validate().unwrap();
    converge(&dp, &d).await;
    assert_eq!(
        v6_routes(&fake),
        strings([
            // The connected prefix and the old default are gone; the gateway stays reachable
            // on-link, and the link-local prefix stays.
            "fd00:10:244:1::1/128 dev eth0",
            "fe80::/64 dev eth0",
            "default via fe80::1 dev wg0",
            "2001:db8:e::/48 via fd00:10:244:1::1 dev eth0",
            "fd00:10:96::/112 via fd00:10:244:1::1 dev eth0",
            // The IPv6 ingress return path.
            "default via fd00:10:244:1::1 dev eth0 table 8738",
        ])
    );
    // The IPv4 half is exactly what it is without IPv6.
    let v4: BTreeSet<String> = routes(&fake)
        .difference(&v6_routes(&fake))
        .cloned()
        .collect();
    assert_eq!(
        v4,
        strings([
            "10.244.1.1/32 dev eth0 scope link",
            "default via inet6 fe80::1 dev wg0",
            "169.254.169.254/32 via 10.244.1.1 dev eth0",
            "default via 10.244.1.1 dev eth0 table 8738",
        ])
    );
}

#[tokio::test]
async fn a_link_local_ipv6_gateway_needs_no_on_link_route() {
    let mut d = desired(static_egress(&[]));
    d.ipv6 = ipv6(Some("fe80::1234:5678:9abc"), &["2001:db8:e::/48"]);
    assert_eq!(
        converged_v6_routes(&d).await,
        strings([
            "fe80::/64 dev eth0",
            "default via fe80::1 dev wg0",
            "2001:db8:e::/48 via fe80::1234:5678:9abc dev eth0",
            "default via fe80::1234:5678:9abc dev eth0 table 8738",
        ])
    );
}

#[tokio::test]
async fn static_egress_without_an_ipv6_gateway_takes_all_ipv6_but_cannot_exclude() {
    let mut d = desired(static_egress(&[]));
    d.ipv6 = ipv6(None, &[]);
    d.validate().unwrap();
    assert_eq!(
        converged_v6_routes(&d).await,
        strings(["fe80::/64 dev eth0", "default via fe80::1 dev wg0"])
    );
    d.ipv6 = ipv6(None, &["2001:db8:e::/48"]);
    let err = d.validate().unwrap_err();
    assert!(matches!(err, StateError::NoIpv6Gateway { .. }));
    assert!(
        err.to_string()
            .contains("IPv6 exclusions (such as 2001:db8:e::/48) need an IPv6 gateway on eth0"),
        "{err}"
    );
    // In azureNetworking mode the CIDRs go into the tunnel: no gateway needed.
    d.routing = PodRouting::AzureNetworking {
        through_tunnel: BTreeSet::new(),
    };
    d.validate().unwrap();
    for bad in ["::", "::1", "ff02::1"] {
        d.ipv6 = ipv6(Some(bad), &[]);
        assert!(
            matches!(d.validate(), Err(StateError::BadIpv6Gateway { .. })),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn azure_networking_sends_only_the_ipv6_cidrs_into_the_tunnel() {
    let mut d = desired(PodRouting::AzureNetworking {
        through_tunnel: ["203.0.113.0/24".parse().unwrap()].into(),
    });
    d.ingress = None;
    d.loose_rp_filter = false;
    d.ipv6 = ipv6(None, &["2001:db8:e::/48"]);
    let mut expected = strings(POD_V6_ROUTES);
    expected.insert("2001:db8:e::/48 via fe80::1 dev wg0".into());
    assert_eq!(converged_v6_routes(&d).await, expected);
}

#[tokio::test]
async fn teardown_removes_the_ipv6_exclusions_and_undo_restores_the_ipv6_routes() {
    let fake = fake_dual_stack_pod();
    let dp = fake.dataplane();
    let before = routes(&fake);
    let mut d = desired(static_egress(&[]));
    d.ipv6 = ipv6(Some("fd00:10:244:1::1"), &["2001:db8:e::/48"]);
    converge(&dp, &d).await;
    teardown(&dp, &d.teardown(None)).await;
    // DEL: our exclusion goes with the tunnel's default; the on-link gateway routes stay.
    assert_eq!(
        v6_routes(&fake),
        strings(["fd00:10:244:1::1/128 dev eth0", "fe80::/64 dev eth0",])
    );

    converge(&dp, &d).await;
    let mut undo = d.teardown(None);
    let main_plugins = &fake_dual_stack_pod().snapshot().namespaces[&pod_ns()];
    undo.restore_routes = main_plugins
        .routes
        .union(&main_plugins.ipv6_routes)
        .cloned()
        .collect();
    for gw in ["10.244.1.1/32", "fd00:10:244:1::1/128"] {
        undo.eth_routes
            .insert(RouteSpec::on_link(gw.parse().unwrap(), name("eth0")));
    }
    teardown(&dp, &undo).await;
    assert_eq!(routes(&fake), before);
}

/// The ingress-return-path pieces of the pod: (nft tables, rules) as strings.
fn ingress_state(fake: &FakeNode) -> (BTreeSet<String>, BTreeSet<String>) {
    let snap = fake.snapshot();
    let ns = &snap.namespaces[&pod_ns()];
    (
        ns.nft.keys().map(|id| id.to_string()).collect(),
        ns.rules.iter().map(|r| r.to_string()).collect(),
    )
}

#[tokio::test]
async fn replies_to_ipv6_connections_from_eth0_leave_through_eth0_and_teardown_removes_them() {
    let fake = fake_dual_stack_pod();
    let dp = fake.dataplane();
    let mut d = desired(static_egress(&[]));
    d.ipv6 = ipv6(Some("fd00:10:244:1::1"), &[]);
    converge(&dp, &d).await;
    let (tables, rules) = ingress_state(&fake);
    assert_eq!(
        tables,
        strings(["table ip egress_pod", "table ip6 egress_pod"])
    );
    assert_eq!(
        rules,
        strings([
            "32765: from all fwmark 0x2222 lookup 8738",
            "inet6 32765: from all fwmark 0x2222 lookup 8738",
        ])
    );
    assert!(v6_routes(&fake).contains("default via fd00:10:244:1::1 dev eth0 table 8738"));

    teardown(&dp, &d.teardown(None)).await;
    let (tables, rules) = ingress_state(&fake);
    assert!(
        tables.is_empty() && rules.is_empty(),
        "{tables:?} {rules:?}"
    );
    assert!(
        !v6_routes(&fake).iter().any(|r| r.contains("table 8738")),
        "{:?}",
        v6_routes(&fake)
    );
}

#[tokio::test]
async fn ipv4_only_pods_and_ipv6_without_a_gateway_get_no_ipv6_ingress_path() {
    for v6 in [None, ipv6(None, &[])] {
        let fake = fake_dual_stack_pod();
        let mut d = desired(static_egress(&[]));
        d.ipv6 = v6.clone();
        converge(&fake.dataplane(), &d).await;
        let (tables, rules) = ingress_state(&fake);
        assert_eq!(tables, strings(["table ip egress_pod"]), "{v6:?}");
        assert!(!rules.iter().any(|r| r.starts_with("inet6")), "{rules:?}");
    }
}
