//! Who holds a slot when PodEndpoints contend: forged claims (an IP or a key that belongs to a
//! running pod) never take it, by event, by full placement (start-up, resync) or after a
//! restart that adopts the kernel's peers; incremental placement always equals the full one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use egress_api::PodEndpoint;
use egress_api::constants::POD_ENDPOINT_NODE_LABEL;

use super::{build, build_with, key};
use crate::desired::Desired;
use crate::fixtures::*;
use crate::inventory::{Change, Delta, Inventory};
use crate::placement::Incumbents;
use crate::pods::PodFacts;
use crate::translate::PeerError;

const VICTIM_IP: &str = "10.244.1.10/32";

/// The victim sorts last by name, so that name order would hand its slots to the forgers.
fn victim(k: &str) -> (PodEndpoint, PodFacts) {
    let pe = pod_endpoint("zz-victim", "gw-a", VICTIM_IP, k);
    let pod = pod("zz-victim", "gw-a", &["10.244.1.10"], 30);
    (pe, pod)
}

/// A pod and its PodEndpoint appear.
fn add(inv: &mut Inventory, pod: PodFacts, pe: PodEndpoint) {
    inv.apply(Change::Pod(Delta::Apply(pod)));
    inv.apply(Change::PodEndpoint(Delta::Apply(pe)));
}

fn reason(d: &Desired, name: &str) -> &'static str {
    match &d.peer_errors[&key(name)] {
        PeerError::Refused { refusal, .. } => refusal.reason(),
        other => panic!("{name}: expected a refusal, got {other}"),
    }
}

fn holder(d: &Desired) -> Option<String> {
    d.peers
        .iter()
        .find(|(_, s)| s.allowed_ips.contains(&VICTIM_IP.parse().unwrap()))
        .map(|(k, _)| k.name.clone())
}

/// The forged-IP claims: each asks for the victim's IP with a fresh key.
fn forged_ip(inv: &mut Inventory) -> Vec<(&'static str, &'static str)> {
    let mut unowned = pod_endpoint("aa-unowned", "gw-a", VICTIM_IP, &random_pub());
    unowned.metadata.owner_references = None;
    let mut borrowed = pod_endpoint("ab-borrowed", "gw-a", VICTIM_IP, &random_pub());
    borrowed.metadata.owner_references.as_mut().unwrap()[0].name = "zz-victim".into();
    borrowed.metadata.owner_references.as_mut().unwrap()[0].uid = pod_uid("zz-victim");
    let own_pod = pod_endpoint("ac-own-pod", "gw-a", VICTIM_IP, &random_pub());
    let pending = pod_endpoint("ad-pending", "gw-a", VICTIM_IP, &random_pub());
    let mut other_node = pod_endpoint("ae-other-node", "gw-a", VICTIM_IP, &random_pub());
    other_node.metadata.labels.as_mut().unwrap().insert(
        POD_ENDPOINT_NODE_LABEL.into(),
        "aks-nodepool1-vmss000007".into(),
    );
    let pods = [
        pod("ac-own-pod", "gw-a", &["10.244.1.77"], 1),
        pod("ad-pending", "gw-a", &[], 1),
        pod("ae-other-node", "gw-a", &[], 1),
    ];
    for p in pods {
        inv.apply(Change::Pod(Delta::Apply(p)));
    }
    for pe in [unowned, borrowed, own_pod, pending, other_node] {
        inv.apply(Change::PodEndpoint(Delta::Apply(pe)));
    }
    vec![
        ("aa-unowned", "not_owned"),
        ("ab-borrowed", "owner_name"),
        ("ac-own-pod", "ip_not_pods"),
        ("ad-pending", "ip_taken"),
        ("ae-other-node", "wrong_node"),
    ]
}

fn forgers(expected: &[(&str, &str)]) -> BTreeSet<crate::translate::ObjectKey> {
    expected.iter().map(|(n, _)| key(n)).collect()
}

#[test]
fn a_forged_ip_never_takes_a_running_pods_slot_by_event_full_cycle_or_restart() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let (victim_pe, victim_pod) = victim(&random_pub());
    let mut inv = inventory_with(&[&gw], vec![victim_pe], vec![victim_pod]);
    let mut d = build(&inv);
    assert_eq!(holder(&d).as_deref(), Some("zz-victim"));

    // Events: the forgeries arrive one batch; the victim's peer is not touched.
    let expected = forged_ip(&mut inv);
    let changes = d.replace_peers(&inv, &forgers(&expected));
    for (k, c) in &changes {
        assert_eq!(c.old, c.new, "{k}: no peer changes");
    }
    for (name, why) in &expected {
        assert_eq!(reason(&d, name), *why, "{name}");
    }
    assert_eq!(holder(&d).as_deref(), Some("zz-victim"));

    // Full cycle (resync): incumbents are what is placed.
    let resync = build_with(&inv, &d.placed());
    assert_eq!(resync.peers, d.peers);
    // Restart: a fresh daemon adopts the kernel's peers; and a new gateway node, with no
    // peers at all, still gives the slot to the pod that owns the IP.
    for incumbents in [d.placed(), Incumbents::new()] {
        let fresh = build_with(&inv, &incumbents);
        assert_eq!(holder(&fresh).as_deref(), Some("zz-victim"));
        for (name, why) in &expected {
            assert_eq!(reason(&fresh, name), *why, "{name}");
        }
    }
}

#[test]
fn a_duplicate_key_never_displaces_the_incumbent() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let k = random_pub();
    let (victim_pe, victim_pod) = victim(&k);
    let mut inv = inventory_with(&[&gw], vec![victim_pe], vec![victim_pod]);
    let mut d = build(&inv);
    // The forger's own pod is older than the victim and owns the IP it claims.
    add(
        &mut inv,
        pod("aa-dup", "gw-a", &["10.244.1.77"], 1),
        pod_endpoint("aa-dup", "gw-a", "10.244.1.77/32", &k),
    );
    let changes = d.replace_peers(&inv, &[key("aa-dup")].into());
    assert!(changes.values().all(|c| c.old == c.new));
    assert_eq!(
        d.peer_errors[&key("aa-dup")].to_string(),
        "refused PodEndpoint default/aa-dup: its spec.podPublicKey is already held by PodEndpoint default/zz-victim on wg-6000"
    );
    // Resync and restart (kernel adopted): the incumbent keeps the key.
    for incumbents in [d.placed(), d.placed()] {
        let again = build_with(&inv, &incumbents);
        assert_eq!(holder(&again).as_deref(), Some("zz-victim"));
        assert_eq!(reason(&again, "aa-dup"), "key_taken");
    }
}

#[test]
fn without_an_incumbent_the_older_pod_wins_a_duplicate_key_whatever_the_names() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let k = random_pub();
    let pes = vec![
        pod_endpoint("a-newer", "gw-a", "10.244.1.5/32", &k),
        pod_endpoint("b-older", "gw-a", "10.244.1.6/32", &k),
    ];
    let pods = vec![
        pod("a-newer", "gw-a", &["10.244.1.5"], 9),
        pod("b-older", "gw-a", &["10.244.1.6"], 3),
    ];
    let d = build(&inventory_with(&[&gw], pes, pods));
    assert_eq!(
        d.peers.keys().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["b-older"]
    );
}

#[test]
fn a_pod_in_add_is_served_provisionally_and_loses_only_to_the_pod_that_owns_the_ip() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let k = random_pub();
    let adding = pod_endpoint("new", "gw-a", "10.244.1.5/32", &k);
    let mut inv = inventory_with(&[&gw], vec![adding], vec![pod("new", "gw-a", &[], 5)]);
    let mut d = build(&inv);
    assert!(d.peers.contains_key(&key("new")), "ADD waits for this peer");

    // The kubelet reports the IP: same peer, nothing to do.
    inv.apply(Change::Pod(Delta::Apply(pod(
        "new",
        "gw-a",
        &["10.244.1.5"],
        5,
    ))));
    let changes = d.replace_peers(&inv, &[key("new")].into());
    assert_eq!(changes[&key("new")].old, changes[&key("new")].new);

    // A provisional claim on an IP another pod reports loses it, incumbent or not.
    add(
        &mut inv,
        pod("pre", "gw-a", &[], 1),
        pod_endpoint("pre", "gw-a", "10.244.1.9/32", &random_pub()),
    );
    d.replace_peers(&inv, &[key("pre")].into());
    assert!(d.peers.contains_key(&key("pre")));
    add(
        &mut inv,
        pod("owner", "gw-a", &["10.244.1.9"], 7),
        pod_endpoint("owner", "gw-a", "10.244.1.9/32", &random_pub()),
    );
    let changes = d.replace_peers(&inv, &[key("owner")].into());
    assert!(changes[&key("owner")].new.is_some());
    assert!(changes[&key("pre")].old.is_some() && changes[&key("pre")].new.is_none());
    assert_eq!(reason(&d, "pre"), "ip_taken");
}

#[test]
fn a_terminating_pod_keeps_its_slot_until_a_live_pod_claims_it_and_the_waiter_gets_it() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let mut leaving = pod("old", "gw-a", &["10.244.1.5"], 1);
    leaving.terminating = true;
    let mut inv = inventory_with(
        &[&gw],
        vec![pod_endpoint("old", "gw-a", "10.244.1.5/32", &random_pub())],
        vec![leaving],
    );
    let mut d = build(&inv);
    assert!(
        d.peers.contains_key(&key("old")),
        "graceful shutdown keeps egress"
    );
    for c in arrive(pod_endpoint("new", "gw-a", "10.244.1.5/32", &random_pub())) {
        inv.apply(c);
    }
    d.replace_peers(&inv, &[key("new")].into());
    assert!(d.peers.contains_key(&key("new")));
    assert_eq!(reason(&d, "old"), "ip_taken");

    // The holder goes: the waiting claim is served in the same pass.
    inv.apply(Change::PodEndpoint(Delta::Delete(pod_endpoint(
        "new", "", "", "",
    ))));
    let changes = d.replace_peers(&inv, &[key("new")].into());
    assert!(changes[&key("old")].new.is_some());
    assert!(!d.peer_errors.contains_key(&key("old")));
}

#[test]
fn incremental_placement_equals_the_full_one_and_the_full_one_is_a_fixed_point() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let keys: Vec<String> = (0..4).map(|_| random_pub()).collect();
    let mut inv = inventory(&[&gw], vec![]);
    let mut d = build(&inv);
    // A tangle of claims sharing IPs and keys, arriving one at a time in a scrambled order.
    let mut claims = Vec::new();
    for i in 0..24u8 {
        let name = format!("p{:02}", (i * 7) % 24);
        let ip = format!("10.244.1.{}", i % 5 + 1);
        let k = &keys[usize::from(i % 4)];
        let mut facts = pod(&name, "gw-a", &[&ip], i % 6);
        facts.ips = if i % 3 == 0 {
            BTreeSet::new()
        } else {
            facts.ips
        };
        facts.terminating = i % 7 == 0;
        claims.push((pod_endpoint(&name, "gw-a", &format!("{ip}/32"), k), facts));
    }
    for (pe, facts) in claims {
        let k = key(pe.metadata.name.as_deref().unwrap());
        add(&mut inv, facts, pe);
        d.replace_peers(&inv, &[k].into());
        let full = build_with(&inv, &d.placed());
        assert_eq!(full.peers, d.peers, "incremental == full");
        assert_eq!(full.peer_errors, d.peer_errors);
        let again = build_with(&inv, &full.placed());
        assert_eq!(again.peers, full.peers, "fixed point");
    }
    assert!(d.peers.len() >= 4);
}
