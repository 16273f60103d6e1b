//! Drift found by comparing the plans of the previous and the new desired state, on the data
//! plane's fake: changes made "by hand" through the fake's own executors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_dataplane::fake::FakeNode;
use egress_dataplane::{
    AddressSpec, InterfaceName, NetnsRef, Op, Peer, PrivateKey, RouteSpec, SysctlKey, WgDeviceId,
    observe_request_for_gateway_node, plan_gateway_node,
};

use super::*;
use crate::desired::Quarantine;
use crate::fixtures::*;
use crate::placement::Incumbents;

fn gateway_netns() -> NetnsRef {
    NetnsRef::Named("ns-static-egress-gateway".parse().unwrap())
}

fn device() -> WgDeviceId {
    WgDeviceId {
        netns: gateway_netns(),
        name: InterfaceName::for_gateway_port(6000),
    }
}

fn desired(gw: &Gw, pes: Vec<egress_api::PodEndpoint>) -> Desired {
    let inv = inventory(&[gw], pes);
    let mut d = Desired::gateways(&inv, &node(), &host(), &Quarantine::new()).unwrap();
    d.place_all_peers(&inv, &Incumbents::new());
    d
}

async fn observe(fake: &FakeNode, d: &Desired) -> ObservedState {
    fake.dataplane()
        .observe(&observe_request_for_gateway_node(&d.state))
        .await
        .unwrap()
}

/// A node programmed with gateway gw-a and PodEndpoints p1 (10.244.1.5) and p2 (10.244.1.6).
async fn programmed() -> (FakeNode, Gw, Vec<egress_api::PodEndpoint>, Desired) {
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &"eth0".parse().unwrap(),
        &[AddressSpec::plain("10.0.0.4/24".parse().unwrap())],
    );
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let pes = vec![
        pod_endpoint("p1", "gw-a", "10.244.1.5/32", &random_pub()),
        pod_endpoint("p2", "gw-a", "10.244.1.6/32", &random_pub()),
    ];
    let d = desired(&gw, pes.clone());
    let ops = plan_gateway_node(&d.state, &observe(&fake, &d).await);
    fake.dataplane().apply(&ops).await.unwrap();
    (fake, gw, pes, d)
}

/// The drift a full cycle with `next` finds after `previous` was programmed.
async fn drift(fake: &FakeNode, previous: &Desired, next: &Desired) -> (Vec<Found>, Vec<Op>) {
    let observed = observe(fake, next).await;
    let ops = plan_gateway_node(&next.state, &observed);
    (find(previous, &observed, &ops), ops)
}

fn by_hand(fake: &FakeNode, op: Op) -> impl std::future::Future<Output = ()> {
    let dp = fake.dataplane();
    async move {
        dp.apply(&[op]).await.unwrap();
    }
}

type Summary = (&'static str, Change, Option<ObjectKey>, Option<String>);

/// Kind, change, owner and interface of each item.
fn summary(found: &[Found]) -> Vec<Summary> {
    found
        .iter()
        .map(|f| {
            (
                f.kind,
                f.change,
                f.pod_endpoint.clone(),
                f.interface.clone(),
            )
        })
        .collect()
}

fn pe_key(name: &str) -> Option<ObjectKey> {
    Some(ObjectKey::new(NS, name))
}

#[tokio::test]
async fn an_untouched_node_has_no_drift_and_a_new_pod_is_not_drift() {
    let (fake, gw, mut pes, previous) = programmed().await;
    assert_eq!(drift(&fake, &previous, &previous).await.0, []);
    pes.push(pod_endpoint("p3", "gw-a", "10.244.1.7/32", &random_pub()));
    let next = desired(&gw, pes);
    let (found, ops) = drift(&fake, &previous, &next).await;
    assert_eq!(ops.len(), 2, "the new peer and its route: {ops:?}");
    assert_eq!(found, []);
}

#[tokio::test]
async fn a_peer_removed_by_hand_is_missing_and_names_its_pod_endpoint() {
    let (fake, _, _, previous) = programmed().await;
    let p1 = previous.peers[&ObjectKey::new(NS, "p1")].clone();
    by_hand(
        &fake,
        Op::RemovePeer {
            device: device(),
            public_key: p1.public_key.clone(),
        },
    )
    .await;
    let (found, ops) = drift(&fake, &previous, &previous).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(
        (f.kind, f.change, &f.pod_endpoint, f.interface.as_deref()),
        ("peer", Change::Missing, &pe_key("p1"), Some("wg-6000"))
    );
    assert!(matches!(&ops[f.index], Op::AddPeer { peer, .. } if peer.public_key == p1.public_key));
    assert_eq!(f.repair, ops[f.index].to_string());
}

#[tokio::test]
async fn a_peer_whose_allowed_ips_were_changed_is_changed() {
    let (fake, _, _, previous) = programmed().await;
    let p2 = &previous.peers[&ObjectKey::new(NS, "p2")];
    by_hand(
        &fake,
        Op::AddPeer {
            device: device(),
            peer: Peer {
                allowed_ips: ["10.244.9.9/32".parse().unwrap()].into(),
                ..p2.peer()
            },
        },
    )
    .await;
    let (found, _) = drift(&fake, &previous, &previous).await;
    let got: Vec<_> = found
        .iter()
        .map(|f| (f.kind, f.change, f.pod_endpoint.clone()))
        .collect();
    assert_eq!(got, [("peer", Change::Changed, pe_key("p2"))]);
}

#[tokio::test]
async fn a_deleted_route_and_a_stranger_peer_are_found_with_their_owners() {
    let (fake, _, _, previous) = programmed().await;
    by_hand(
        &fake,
        Op::DelRoute {
            netns: gateway_netns(),
            route: RouteSpec::on_link(
                "10.244.1.6/32".parse().unwrap(),
                InterfaceName::for_gateway_port(6000),
            ),
        },
    )
    .await;
    let stranger = PrivateKey::generate().public_key();
    by_hand(
        &fake,
        Op::AddPeer {
            device: device(),
            peer: Peer {
                public_key: stranger.clone(),
                allowed_ips: ["10.244.7.7/32".parse().unwrap()].into(),
                endpoint: None,
            },
        },
    )
    .await;
    let (found, _) = drift(&fake, &previous, &previous).await;
    let mut got = summary(&found);
    got.sort();
    let wg = Some("wg-6000".to_string());
    assert_eq!(
        got,
        [
            ("peer", Change::Unexpected, None, wg.clone()),
            ("route", Change::Missing, pe_key("p2"), wg),
        ]
    );
}

#[tokio::test]
async fn a_node_wide_setting_is_found_without_an_owner() {
    let (fake, _, _, previous) = programmed().await;
    by_hand(
        &fake,
        Op::SetSysctl {
            netns: gateway_netns(),
            key: SysctlKey::ipv4_forwarding(),
            value: "0".into(),
        },
    )
    .await;
    let (found, _) = drift(&fake, &previous, &previous).await;
    let got = summary(&found);
    assert_eq!(got, [("sysctl", Change::Changed, None, None)]);
}

#[tokio::test]
async fn drift_of_what_is_no_longer_wanted_is_moot() {
    // p1's peer is removed by hand and its PodEndpoint is deleted before the resync: the
    // resync has nothing to repair, so nothing is reported.
    let (fake, gw, pes, previous) = programmed().await;
    let p1 = previous.peers[&ObjectKey::new(NS, "p1")].clone();
    by_hand(
        &fake,
        Op::RemovePeer {
            device: device(),
            public_key: p1.public_key,
        },
    )
    .await;
    let next = desired(&gw, pes[1..].to_vec());
    let (found, ops) = drift(&fake, &previous, &next).await;
    assert_eq!(found, [], "{ops:?}");
}

#[tokio::test]
async fn a_dual_stack_pods_ipv6_route_deleted_or_moved_by_hand_is_found_with_its_owner() {
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &"eth0".parse().unwrap(),
        &[AddressSpec::plain("10.0.0.4/24".parse().unwrap())],
    );
    let gw = Gw::new("gw-a", 6000, "10.0.0.10").dual("fd00::10");
    let pes = vec![with_ipv6(
        pod_endpoint("p1", "gw-a", "10.244.1.5/32", &random_pub()),
        "fd00:10:244:1::5/128",
    )];
    let pods = vec![pod("p1", "gw-a", &["10.244.1.5", "fd00:10:244:1::5"], 1)];
    let inv = inventory_with(&[&gw], pes, pods);
    let mut d = Desired::gateways(&inv, &node(), &host(), &Quarantine::new()).unwrap();
    d.place_all_peers(&inv, &Incumbents::new());
    let ops = plan_gateway_node(&d.state, &observe(&fake, &d).await);
    fake.dataplane().apply(&ops).await.unwrap();
    assert_eq!(drift(&fake, &d, &d).await.0, []);

    let route = RouteSpec::on_link(
        "fd00:10:244:1::5/128".parse().unwrap(),
        InterfaceName::for_gateway_port(6000),
    );
    by_hand(
        &fake,
        Op::DelRoute {
            netns: gateway_netns(),
            route: route.clone(),
        },
    )
    .await;
    let (found, _) = drift(&fake, &d, &d).await;
    assert_eq!(
        summary(&found),
        [(
            "route",
            Change::Missing,
            pe_key("p1"),
            Some("wg-6000".into())
        )]
    );
    // Sent elsewhere by hand: the route exists, pointing the wrong way.
    by_hand(
        &fake,
        Op::AddRoute {
            netns: gateway_netns(),
            route: RouteSpec::on_link(route.destination, "host0".parse().unwrap()),
        },
    )
    .await;
    let (found, _) = drift(&fake, &d, &d).await;
    assert_eq!(
        summary(&found),
        [(
            "route",
            Change::Changed,
            pe_key("p1"),
            Some("wg-6000".into())
        )]
    );
}
