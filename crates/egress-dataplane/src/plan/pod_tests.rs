//! Unit tests of the pod tunnel plan, applied to the stateful fake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use crate::fake::FakeNode;
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::NftTable;
use crate::op::Op;
use crate::plan::{observe_request_for_pod, plan_pod};
use crate::spec::{AddressSpec, FwMark, NextHop, RouteSpec, RuleSpec, SysctlKey};
use crate::state::{IngressReturnPath, PodRouting, PodTunnelState, StateError};
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

fn routes(fake: &FakeNode) -> BTreeSet<String> {
    fake.snapshot().namespaces[&pod_ns()]
        .routes
        .iter()
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
