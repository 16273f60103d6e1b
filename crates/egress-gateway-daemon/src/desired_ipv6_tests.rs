//! A PodEndpoint's IPv6 address joins its peer only when its gateway egresses IPv6 here and
//! the address is an IPv6 /128 of its pod; anything else leaves the IPv4 peer exactly as it
//! would be without the field, with a specific reason. Two claims of one IPv6 address are
//! decided as IPv4 ones are.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use ipnet::IpNet;

use super::{build, build_with, key};
use crate::desired::Desired;
use crate::fixtures::*;
use crate::inventory::{Change, Delta};
use crate::ipv6::Ipv6Refusal;
use crate::placement::Incumbents;
use crate::translate::Ipv6Egress;

const V4: &str = "10.244.1.5/32";
const V6: &str = "fd00:10:244:1::5/128";

fn nets(ips: &[&str]) -> BTreeSet<IpNet> {
    ips.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// Gateway `gw-a` (dual-stack with `secondary_ipv6`, or IPv4-only with `None`) and pod1
/// (IPs `pod_ips`) whose PodEndpoint claims V4 and `claimed_v6`.
fn one_pod(secondary_ipv6: Option<&str>, claimed_v6: &str, pod_ips: &[&str]) -> Desired {
    let mut gw = Gw::new("gw-a", 6000, "10.0.0.10");
    if let Some(ip) = secondary_ipv6 {
        gw = gw.dual(ip);
    }
    let pe = with_ipv6(pod_endpoint("pod1", "gw-a", V4, &random_pub()), claimed_v6);
    let inv = inventory_with(&[&gw], vec![pe], vec![pod("pod1", "gw-a", pod_ips, 1)]);
    build(&inv)
}

fn ipv6_reason(d: &Desired, name: &str) -> Option<&'static str> {
    d.ipv6_refusals.get(&key(name)).map(Ipv6Refusal::reason)
}

#[test]
fn a_dual_stack_pod_gets_its_ipv6_in_its_peer_and_the_tunnel_its_secondary_ipv6() {
    let d = one_pod(Some("fd00::10"), V6, &["10.244.1.5", "fd00:10:244:1::5"]);
    assert!(
        d.peer_errors.is_empty() && d.ipv6_refusals.is_empty(),
        "{d:?}"
    );
    assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4, V6]));
    let tunnel = &d.state.gateways()[&6000];
    assert_eq!(
        tunnel.secondary_ipv6(),
        Some("fd00::10".parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(
        tunnel.peers().values().next().unwrap().allowed_ips,
        nets(&[V4, V6])
    );
    assert_eq!(
        d.gateways[&6000].ipv6,
        Ipv6Egress::Ready("fd00::10".parse().unwrap())
    );
}

#[test]
fn every_ipv6_problem_leaves_the_ipv4_peer_as_it_would_be_without_the_field() {
    let both = ["10.244.1.5", "fd00:10:244:1::5"];
    let cases = [
        (
            one_pod(None, V6, &both),
            "ipv6_not_enabled",
            "egresses IPv4 only",
        ),
        (
            one_pod(Some(""), V6, &both),
            "ipv6_no_secondary",
            "no secondary IPv6 for StaticGatewayConfiguration default/gw-a yet",
        ),
        (
            one_pod(Some("not-an-ip"), V6, &both),
            "ipv6_no_secondary",
            "secondaryIPv6 \"not-an-ip\" is not an IPv6 address",
        ),
        (
            one_pod(Some("fe80::10"), V6, &both),
            "ipv6_no_secondary",
            "secondary IPv6 fe80::10 is not a unicast address",
        ),
        (
            one_pod(Some("fd00::10"), "fd00:10:244:1::5/64", &both),
            "ipv6_bad_address",
            "is not an IPv6 /128",
        ),
        (
            one_pod(Some("fd00::10"), "10.244.1.5/32", &both),
            "ipv6_bad_address",
            "is not an IPv6 /128",
        ),
        (
            one_pod(Some("fd00::10"), "fd00:10:244:1::6/128", &both),
            "ipv6_not_pods",
            "fd00:10:244:1::6/128 is not an IP of pod default/pod1",
        ),
        // An IPv4-only pod claiming an IPv6 address.
        (
            one_pod(Some("fd00::10"), V6, &["10.244.1.5"]),
            "ipv6_not_pods",
            "is not an IP of pod",
        ),
    ];
    for (d, reason, text) in cases {
        assert!(d.peer_errors.is_empty(), "{reason}: {:?}", d.peer_errors);
        assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4]), "{reason}");
        assert_eq!(ipv6_reason(&d, "pod1"), Some(reason));
        let note = d.ipv6_refusals[&key("pod1")].to_string();
        assert!(
            note.starts_with("its IPv4 peer is programmed without spec.podIpv6Address: "),
            "{note}"
        );
        assert!(note.contains(text), "{reason}: {note}");
        // The gateway's IPv4 egress is never held back by its IPv6.
        assert!(d.gateway_errors.is_empty(), "{:?}", d.gateway_errors);
        assert_eq!(d.state.gateways().len(), 1);
    }
    // No field, no refusal: the IPv4-only behaviour of before.
    let gw = Gw::new("gw-a", 6000, "10.0.0.10").dual("fd00::10");
    let inv = inventory(
        &[&gw],
        vec![pod_endpoint("pod1", "gw-a", V4, &random_pub())],
    );
    let d = build(&inv);
    assert!(d.ipv6_refusals.is_empty() && d.peer_errors.is_empty());
    assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4]));
}

#[test]
fn a_pod_without_ips_yet_is_provisional_for_ipv6_as_for_ipv4() {
    let d = one_pod(Some("fd00::10"), V6, &[]);
    assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4, V6]));
}

/// pod1 (older) and pod2 (newer) both claim V6 with their own IPv4 addresses.
fn contest(pod2_created: u8) -> (crate::inventory::Inventory, Gw) {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10").dual("fd00::10");
    let pe1 = with_ipv6(pod_endpoint("pod1", "gw-a", V4, &random_pub()), V6);
    let pe2 = with_ipv6(
        pod_endpoint("pod2", "gw-a", "10.244.1.6/32", &random_pub()),
        V6,
    );
    let pods = vec![
        pod("pod1", "gw-a", &["10.244.1.5", "fd00:10:244:1::5"], 10),
        pod(
            "pod2",
            "gw-a",
            &["10.244.1.6", "fd00:10:244:1::5"],
            pod2_created,
        ),
    ];
    (inventory_with(&[&gw], vec![pe1, pe2], pods), gw)
}

#[test]
fn a_contested_ipv6_goes_to_the_claim_ipv4_would_choose_and_the_other_keeps_its_ipv4() {
    // pod2 is older: it wins the address; pod1 keeps its IPv4 peer without it.
    let (inv, _) = contest(5);
    let d = build(&inv);
    assert!(d.peer_errors.is_empty(), "{:?}", d.peer_errors);
    assert_eq!(
        d.peers[&key("pod2")].allowed_ips,
        nets(&["10.244.1.6/32", V6])
    );
    assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4]));
    assert_eq!(ipv6_reason(&d, "pod1"), Some("ipv6_taken"));
    assert!(
        d.ipv6_refusals[&key("pod1")]
            .to_string()
            .contains("fd00:10:244:1::5/128 is already held by PodEndpoint default/pod2")
    );
    // The incumbent keeps it against an equal newcomer, as for IPv4: a restart that adopts
    // the kernel's peers changes nothing.
    let incumbents: Incumbents = d.placed();
    let again = build_with(&inv, &incumbents);
    assert_eq!(again.peers, d.peers);
    assert_eq!(again.ipv6_refusals, d.ipv6_refusals);

    // Incremental: pod2's PodEndpoint goes; pod1 gets the address at once.
    let mut d = d;
    let mut inv = inv;
    let pe2 = inv.pod_endpoints[&key("pod2")].clone();
    inv.apply(Change::PodEndpoint(Delta::Delete(pe2)));
    let changes = d.replace_peers(&inv, &[key("pod2")].into());
    assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4, V6]));
    assert!(d.ipv6_refusals.is_empty(), "{:?}", d.ipv6_refusals);
    assert!(changes[&key("pod1")].new.is_some());
    // And equals what a full placement gives.
    assert_eq!(build(&inv).peers, d.peers);
}

#[test]
fn a_node_without_ipv6_keeps_ipv4_egress_and_reports_why_it_has_no_ipv6() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10").dual("fd00::10");
    let pe = with_ipv6(pod_endpoint("pod1", "gw-a", V4, &random_pub()), V6);
    let inv = inventory_with(
        &[&gw],
        vec![pe],
        vec![pod("pod1", "gw-a", &["10.244.1.5", "fd00:10:244:1::5"], 1)],
    );
    let mut host = host();
    host.ipv6 = false;
    let mut d = Desired::gateways(&inv, &node(), &host, &Default::default()).unwrap();
    d.place_all_peers(&inv, &Incumbents::new());
    assert!(d.gateway_errors.is_empty(), "{:?}", d.gateway_errors);
    let tunnel = &d.state.gateways()[&6000];
    assert_eq!(tunnel.secondary_ipv6(), None, "nothing IPv6 is planned");
    assert_eq!(d.peers[&key("pod1")].allowed_ips, nets(&[V4]));
    assert_eq!(
        d.gateways[&6000].ipv6,
        Ipv6Egress::Unusable(crate::desired::NO_IPV6_ON_NODE.into())
    );
    assert!(ipv6_reason(&d, "pod1").is_some(), "{:?}", d.ipv6_refusals);
}
