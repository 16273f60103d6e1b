//! Programmer tests on the data plane's stateful fake: cold start, incremental peers, a busy
//! port held back without blocking the others, rejected PodEndpoints reported once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_dataplane::fake::FakeNode;
use egress_dataplane::{
    AddressSpec, InterfaceName, NetnsRef, WgDeviceId, observe_request_for_gateway_node,
    plan_gateway_node,
};
use tokio::sync::mpsc;

use super::{Outputs, Programmer};
use crate::fixtures::*;
use crate::inventory::{Change, Delta};
use crate::report::Report;

fn fake_node() -> FakeNode {
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &"eth0".parse().unwrap(),
        &[AddressSpec::plain("10.0.0.4/24".parse().unwrap())],
    );
    fake
}

fn programmer(fake: &FakeNode) -> (Programmer, mpsc::UnboundedReceiver<Report>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Outputs {
        reports: Some(tx),
        ..Outputs::default()
    };
    (Programmer::new(fake.dataplane(), node(), host(), out), rx)
}

async fn start(p: &mut Programmer, gateways: &[&Gw], pes: Vec<egress_api::PodEndpoint>) {
    for c in changes(gateways, pes) {
        p.apply_change(c);
    }
    p.flush().await;
}

fn device(port: u16) -> WgDeviceId {
    WgDeviceId {
        netns: NetnsRef::Named("ns-static-egress-gateway".parse().unwrap()),
        name: InterfaceName::for_gateway_port(port),
    }
}

#[tokio::test]
async fn cold_start_programs_the_node_and_a_second_pass_has_nothing_to_do() {
    let fake = fake_node();
    let (mut p, _rx) = programmer(&fake);
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    start(
        &mut p,
        &[&gw],
        vec![pod_endpoint("p1", "gw-a", "10.244.1.5/32", &random_pub())],
    )
    .await;
    assert!(p.started() && !p.needs_retry());
    assert_eq!(p.programmed().iter().copied().collect::<Vec<_>>(), [6000]);
    assert_eq!(
        p.out.probe.programmed(),
        ["uid-gw-a".to_owned()].into_iter().collect()
    );
    let (spec, total) = p.out.status.spec(10);
    assert_eq!(total, 1);
    assert_eq!(
        spec.ready_gateway_configurations.unwrap()[0]
            .interface_name
            .as_deref(),
        Some("wg-6000")
    );
    let snapshot = fake.snapshot();
    assert_eq!(snapshot.wireguard[&device(6000)].peers.len(), 1);
    let desired = &p.desired().unwrap().state;
    let again = plan_gateway_node(
        desired,
        &fake
            .dataplane()
            .observe(&observe_request_for_gateway_node(desired))
            .await
            .unwrap(),
    );
    assert!(again.is_empty(), "{again:#?}");

    // A resync on an unchanged node changes nothing in the kernel.
    let before = fake.stats();
    p.resync().await;
    assert_eq!(fake.stats(), before);
}

#[tokio::test]
async fn a_busy_port_holds_back_only_its_gateway() {
    let fake = fake_node();
    fake.occupy_port(6001);
    let (mut p, mut rx) = programmer(&fake);
    let good = Gw::new("gw-a", 6000, "10.0.0.10");
    let busy = Gw::new("gw-b", 6001, "10.0.0.11");
    start(&mut p, &[&good, &busy], vec![]).await;
    assert_eq!(p.programmed().iter().copied().collect::<Vec<_>>(), [6000]);
    assert!(!p.needs_retry(), "the node itself is fine");
    let snapshot = fake.snapshot();
    assert!(snapshot.wireguard.contains_key(&device(6000)));
    assert!(!snapshot.wireguard.contains_key(&device(6001)));
    let gw_ns = &snapshot.namespaces[&device(6001).netns];
    assert!(
        !gw_ns.links.contains_key(&device(6001).name),
        "no half-configured wg-6001"
    );
    let report = rx.try_recv().unwrap();
    assert_eq!(report.reason, "GatewayProgrammingFailed");
    assert_eq!(report.object.name.as_deref(), Some("gw-b"));
    assert!(
        report.note.contains("UDP port 6001 is already in use"),
        "{}",
        report.note
    );
    assert_eq!(p.out.metrics.errors("gateway_programming"), 1);

    // Held back until it changes or the resync: an unrelated peer event does not retry it.
    for c in arrive(pod_endpoint("p1", "gw-a", "10.244.1.5/32", &random_pub())) {
        p.apply_change(c);
    }
    p.flush().await;
    assert!(rx.try_recv().is_err(), "reported once");
}

#[tokio::test]
async fn pod_endpoint_events_are_single_peer_ops_and_bad_ones_are_reported_once() {
    let fake = fake_node();
    let (mut p, mut rx) = programmer(&fake);
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let pes = (0..200)
        .map(|i| {
            pod_endpoint(
                &format!("p{i}"),
                "gw-a",
                &format!("10.244.{}.{}/32", i / 200, i % 200 + 1),
                &random_pub(),
            )
        })
        .collect();
    start(&mut p, &[&gw], pes).await;
    assert_eq!(fake.snapshot().wireguard[&device(6000)].peers.len(), 200);

    let before = fake.stats();
    let bad = pod_endpoint("bad", "gw-a", "10.244.9.9/32", "not-a-key");
    p.apply_change(Change::PodEndpoint(Delta::Apply(bad.clone())));
    for c in arrive(pod_endpoint("new", "gw-a", "10.244.9.1/32", &random_pub())) {
        p.apply_change(c);
    }
    p.flush().await;
    let after = fake.stats();
    assert_eq!(after.peer_changes - before.peer_changes, 1);
    assert_eq!(after.peer_transactions - before.peer_transactions, 1);
    let report = rx.try_recv().unwrap();
    assert_eq!(
        (report.reason.as_str(), report.object.name.as_deref()),
        ("InvalidPodEndpoint", Some("bad"))
    );
    // The same invalid object seen again (a resync, a relist) is not reported twice.
    p.apply_change(Change::PodEndpoint(Delta::Apply(bad)));
    p.flush().await;
    p.resync().await;
    assert!(rx.try_recv().is_err());

    let before = fake.stats();
    p.apply_change(Change::PodEndpoint(Delta::Delete(pod_endpoint(
        "p7",
        "gw-a",
        "10.244.0.8/32",
        "",
    ))));
    p.flush().await;
    let after = fake.stats();
    assert_eq!(after.peer_changes - before.peer_changes, 1);
    assert_eq!(fake.snapshot().wireguard[&device(6000)].peers.len(), 200);
    assert_eq!(p.out.status.peer_count(), 200);
}

#[tokio::test]
async fn forged_pod_endpoints_never_take_a_slot_at_resync_or_restart() {
    let fake = fake_node();
    let (mut p, mut rx) = programmer(&fake);
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let victim_key = random_pub();
    let victim = pod_endpoint("zz-victim", "gw-a", "10.244.1.10/32", &victim_key);
    let victim_pod = pod("zz-victim", "gw-a", &["10.244.1.10"], 30);
    for c in changes_with(&[&gw], vec![victim.clone()], vec![victim_pod.clone()]) {
        p.apply_change(c);
    }
    p.flush().await;
    let kernel = |fake: &FakeNode| {
        fake.snapshot().wireguard[&device(6000)]
            .peers
            .iter()
            .map(|(k, peer)| (k.to_base64(), peer.allowed_ips.clone()))
            .collect::<Vec<_>>()
    };
    let programmed = kernel(&fake);
    assert_eq!(programmed.len(), 1);

    // Sorted before the victim by name: a duplicate key from an older pod of its own, and the
    // victim's IP from a pod still in ADD.
    let dup = pod_endpoint("aa-dup", "gw-a", "10.244.1.77/32", &victim_key);
    let forged_ip = pod_endpoint("ab-ip", "gw-a", "10.244.1.10/32", &random_pub());
    let forger_pods = vec![
        pod("aa-dup", "gw-a", &["10.244.1.77"], 1),
        pod("ab-ip", "gw-a", &[], 1),
    ];
    for pod in forger_pods.clone() {
        p.apply_change(Change::Pod(Delta::Apply(pod)));
    }
    for pe in [dup.clone(), forged_ip.clone()] {
        p.apply_change(Change::PodEndpoint(Delta::Apply(pe)));
    }
    let before = fake.stats();
    p.flush().await;
    p.resync().await;
    assert_eq!(fake.stats().peer_changes, before.peer_changes);
    assert_eq!(kernel(&fake), programmed);
    let mut reports: Vec<(String, String)> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|r| (r.object.name.unwrap_or_default(), r.reason))
        .collect();
    reports.sort();
    assert_eq!(
        reports,
        [
            ("aa-dup".to_owned(), "PodEndpointRefused".to_owned()),
            ("ab-ip".to_owned(), "PodEndpointRefused".to_owned())
        ]
    );
    assert_eq!(p.out.metrics.refusals("key_taken"), 1);
    assert_eq!(p.out.metrics.refusals("ip_taken"), 1);

    // A restarted daemon lists everything at once and adopts the kernel's peers.
    let (mut restarted, _rx) = programmer(&fake);
    let mut pods = forger_pods;
    pods.push(victim_pod);
    for c in changes_with(&[&gw], vec![dup, forged_ip, victim], pods) {
        restarted.apply_change(c);
    }
    restarted.flush().await;
    assert_eq!(fake.stats().peer_changes, before.peer_changes);
    assert_eq!(kernel(&fake), programmed);
    assert_eq!(restarted.out.metrics.refusals("key_taken"), 1);
}

#[tokio::test]
async fn a_peer_removed_by_hand_is_put_back_at_the_resync_and_reported_as_drift() {
    let fake = fake_node();
    let (mut p, mut rx) = programmer(&fake);
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let key = random_pub();
    let pes = vec![
        pod_endpoint("web", "gw-a", "10.244.1.5/32", &key),
        pod_endpoint("other", "gw-a", "10.244.1.6/32", &random_pub()),
    ];
    start(&mut p, &[&gw], pes.clone()).await;
    // An event-driven change in between is not drift.
    for c in arrive(pod_endpoint("late", "gw-a", "10.244.1.7/32", &random_pub())) {
        p.apply_change(c);
    }
    p.flush().await;
    p.resync().await;
    assert_eq!(p.out.status.drift_total(), 0);

    let public: egress_dataplane::PublicKey = key.parse().unwrap();
    fake.dataplane()
        .apply(&[egress_dataplane::Op::RemovePeer {
            device: device(6000),
            public_key: public.clone(),
        }])
        .await
        .unwrap();
    // The sampler saw it missing before the resync.
    let seen = fake.snapshot().wireguard[&device(6000)]
        .peers
        .keys()
        .map(|k| (k.to_base64(), None))
        .collect::<Vec<_>>();
    p.out
        .status
        .observe_device("wg-6000", seen, std::time::Instant::now());
    assert_eq!(p.out.status.missing().len(), 1);

    p.resync().await;
    assert!(
        fake.snapshot().wireguard[&device(6000)]
            .peers
            .contains_key(&public)
    );
    assert!(p.out.status.missing().is_empty(), "the repair put it back");
    assert_eq!(p.out.metrics.drifts("peer"), 1);
    assert_eq!(p.out.metrics.drifts("route"), 0);
    let (spec, _) = p.out.status.spec(10);
    let drift = spec.drift.unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    let d = &drift[0];
    assert_eq!(
        (
            d.kind.as_str(),
            d.change.as_str(),
            d.pod_endpoint.as_deref(),
            d.interface_name.as_deref(),
            d.repaired
        ),
        (
            "peer",
            "missing",
            Some("default/web"),
            Some("wg-6000"),
            true
        )
    );
    assert_eq!(spec.drift_total, Some(1));
    let report = rx.try_recv().unwrap();
    assert_eq!(
        (report.reason.as_str(), report.object.name.as_deref()),
        ("DriftRepaired", Some("web"))
    );
    assert!(
        report
            .note
            .starts_with("the peer of PodEndpoint default/web was missing from wg-6000"),
        "{}",
        report.note
    );

    // Repaired: the next resync finds nothing more; a restarted daemon (no previous state of
    // its own) reports nothing either.
    p.resync().await;
    assert_eq!(p.out.status.drift_total(), 1);
    let (mut restarted, mut rx2) = programmer(&fake);
    start(&mut restarted, &[&gw], pes).await;
    restarted.resync().await;
    assert_eq!(restarted.out.status.drift_total(), 0);
    assert!(rx2.try_recv().is_err());
}
