//! Unit tests of the pure translation: objects → desired node state, and every rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use crate::desired::{Desired, Quarantine};
use crate::fixtures::*;
use crate::inventory::{Change, Delta};
use crate::node::NodeIdentity;
use crate::placement::Incumbents;
use crate::programmer::error_chain;
use crate::translate::{GatewayError, ObjectKey, PeerError};

fn build(inv: &crate::inventory::Inventory) -> Desired {
    build_with(inv, &Incumbents::new())
}

fn build_with(inv: &crate::inventory::Inventory, incumbents: &Incumbents) -> Desired {
    let mut d = Desired::gateways(inv, &node(), &host(), &Quarantine::new()).unwrap();
    d.place_all_peers(inv, incumbents);
    d
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(NS, name)
}

#[test]
fn a_ready_sgc_listing_this_node_becomes_a_tunnel_with_its_peers() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let (k1, k2) = (random_pub(), random_pub());
    let inv = inventory(
        &[&gw],
        vec![
            pod_endpoint("pod1", "gw-a", "10.244.1.5/32", &k1),
            pod_endpoint("pod2", "gw-a", "10.244.1.6/32", &k2),
            pod_endpoint(
                "elsewhere",
                "not-on-this-node",
                "10.244.1.7/32",
                &random_pub(),
            ),
        ],
    );
    let d = build(&inv);
    assert!(
        d.gateway_errors.is_empty() && d.peer_errors.is_empty(),
        "{d:?}"
    );
    let state = &d.state;
    assert_eq!(state.host_primary_ip, Ipv4Addr::new(10, 0, 0, 4));
    assert_eq!(
        state.ilb_addresses.iter().collect::<Vec<_>>(),
        [&Ipv4Addr::new(10, 0, 0, 100)]
    );
    assert_eq!(state.gateway_netns.as_str(), "ns-static-egress-gateway");
    let tunnel = &state.gateways()[&6000];
    assert_eq!(tunnel.interface.as_str(), "wg-6000");
    assert_eq!(tunnel.secondary_ip, Ipv4Addr::new(10, 0, 0, 10));
    assert_eq!(tunnel.mtu, 1420);
    assert_eq!(tunnel.private_key, gw.key);
    assert_eq!(tunnel.mark().value(), 6000);
    let peers: Vec<String> = tunnel.peers().keys().map(|k| k.to_base64()).collect();
    assert_eq!(peers.len(), 2);
    assert!(peers.contains(&k1) && peers.contains(&k2));
    assert_eq!(d.gateways[&6000].uid, "uid-gw-a");
    assert_eq!(d.peers[&key("pod1")].port, 6000);
    assert!(!d.peers.contains_key(&key("elsewhere")));
}

#[test]
fn sgcs_not_ready_or_not_listing_this_node_ask_nothing() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let mut inv = inventory(&[&gw], vec![]);

    let mut other = node();
    other.computer_name = "gw-vmss000009".into();
    let d = Desired::gateways(&inv, &other, &host(), &Quarantine::new()).unwrap();
    assert!(d.gateways.is_empty() && d.gateway_errors.is_empty());

    // VM pools name the NIC, found through the IMDS tag.
    let vm_node = NodeIdentity {
        computer_name: "aks-gw-123".into(),
        nic_name: Some(NODE.into()),
    };
    let d = Desired::gateways(&inv, &vm_node, &host(), &Quarantine::new()).unwrap();
    assert_eq!(d.gateways.len(), 1);

    let mut sgc = gw.sgc();
    sgc.status.as_mut().unwrap().egress_ip_prefix = None;
    inv.apply(Change::Sgc(Box::new(Delta::Apply(sgc))));
    assert!(build(&inv).gateways.is_empty(), "not provisioned yet");

    let mut sgc = gw.sgc();
    sgc.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    sgc.metadata.finalizers = Some(vec![
        egress_api::constants::SGC_FINALIZER.into(),
        egress_api::constants::IN_USE_FINALIZER.into(),
    ]);
    inv.apply(Change::Sgc(Box::new(Delta::Apply(sgc.clone()))));
    assert_eq!(
        build(&inv).gateways.len(),
        1,
        "being deleted, but held while pods use it"
    );
    sgc.metadata.finalizers = Some(vec![egress_api::constants::SGC_FINALIZER.into()]);
    inv.apply(Change::Sgc(Box::new(Delta::Apply(sgc))));
    assert!(build(&inv).gateways.is_empty(), "being deleted");
}

fn gateway_error(gw: &Gw, edit: impl FnOnce(&mut crate::inventory::Inventory)) -> GatewayError {
    let mut inv = inventory(&[gw], vec![]);
    edit(&mut inv);
    let d = build(&inv);
    assert!(
        d.gateways.is_empty(),
        "rejected gateway must not be programmed"
    );
    d.gateway_errors.into_values().next().unwrap()
}

#[test]
fn a_wrong_key_or_port_is_a_clear_error() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let err = gateway_error(&gw, |inv| {
        inv.apply(Change::Secret(Delta::Apply(gw.secret_with("bm90IGEga2V5"))));
    });
    assert_eq!(
        error_chain(&err),
        "failed to read the private key in Secret kube-egress-gateway-system/sgw-uid-gw-a: failed to parse WireGuard private key: expected 44 characters of base64 encoding 32 bytes, got 12 characters"
    );

    let stranger = egress_dataplane::PrivateKey::generate();
    let err = gateway_error(&gw, |inv| {
        inv.apply(Change::Secret(Delta::Apply(
            gw.secret_with(&stranger.expose_base64()),
        )));
    });
    assert!(matches!(err, GatewayError::KeyMismatch { .. }));
    assert!(
        err.to_string()
            .contains("differs from the SGC's status.gatewayServerProfile.publicKey"),
        "{err}"
    );

    let err = gateway_error(&gw, |inv| {
        inv.apply(Change::Secret(Delta::Delete(gw.secret())));
    });
    assert_eq!(
        err.to_string(),
        "failed to read the key Secret kube-egress-gateway-system/sgw-uid-gw-a: not found"
    );

    for port in [80, 7000] {
        let bad = Gw {
            port,
            ..Gw::new("gw-a", 6000, "10.0.0.10")
        };
        let err = gateway_error(&bad, |_| {});
        assert_eq!(
            err.to_string(),
            format!(
                "failed to use port {port} of status.gatewayServerProfile.port: gateway ports are 6000-6999"
            )
        );
    }

    let bad = Gw {
        ilb: "10.0.0.300".into(),
        ..Gw::new("gw-a", 6000, "10.0.0.10")
    };
    let err = gateway_error(&bad, |_| {});
    assert_eq!(
        err.to_string(),
        "failed to parse status.gatewayServerProfile.ip \"10.0.0.300\": expected an IPv4 address"
    );

    let err = gateway_error(&gw, |inv| {
        let mut sgc = gw.sgc();
        let profile = sgc.status.as_mut().unwrap().gateway_server_profile.as_mut();
        profile
            .unwrap()
            .private_key_secret_ref
            .as_mut()
            .unwrap()
            .namespace = Some("other".into());
        inv.apply(Change::Sgc(Box::new(Delta::Apply(sgc))));
    });
    assert!(matches!(err, GatewayError::SecretNamespace { .. }), "{err}");
}

#[test]
fn gateways_clashing_on_this_node_are_rejected_one_by_one() {
    let a = Gw::new("gw-a", 6000, "10.0.0.10");
    let same_ip = Gw::new("gw-b", 6001, "10.0.0.10");
    let mut other_primary = Gw::new("gw-c", 6002, "10.0.0.12");
    other_primary.primary = "10.0.0.9".into();
    let fine = Gw::new("gw-d", 6003, "10.0.0.13");
    let d = build(&inventory(&[&a, &same_ip, &other_primary, &fine], vec![]));
    assert_eq!(d.gateways.keys().copied().collect::<Vec<_>>(), [6000, 6003]);
    assert!(matches!(
        d.gateway_errors[&key("gw-b")],
        GatewayError::Conflict(_)
    ));
    assert!(
        d.gateway_errors[&key("gw-b")]
            .to_string()
            .contains("secondary IP 10.0.0.10 is already used by wg-6000")
    );
    assert!(matches!(
        d.gateway_errors[&key("gw-c")],
        GatewayError::PrimaryIpMismatch { .. }
    ));
}

#[test]
fn invalid_pod_endpoints_are_rejected_without_affecting_others() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let shared_key = random_pub();
    let inv = inventory(
        &[&gw],
        vec![
            pod_endpoint("good", "gw-a", "10.244.1.5/32", &random_pub()),
            pod_endpoint("bad-key", "gw-a", "10.244.1.6/32", "AAAA"),
            pod_endpoint(
                "zero-key",
                "gw-a",
                "10.244.1.7/32",
                &format!("{}=", "A".repeat(43)),
            ),
            pod_endpoint("v6", "gw-a", "fd00::5/128", &random_pub()),
            pod_endpoint("subnet", "gw-a", "10.244.1.0/24", &random_pub()),
            pod_endpoint("garbage", "gw-a", "pod-ip", &random_pub()),
            pod_endpoint("no-gateway", "", "10.244.1.8/32", &random_pub()),
            pod_endpoint("same-ip", "gw-a", "10.244.1.5/32", &random_pub()),
            pod_endpoint("key-1", "gw-a", "10.244.1.9/32", &shared_key),
            pod_endpoint("key-2", "gw-a", "10.244.1.10/32", &shared_key),
        ],
    );
    let d = build(&inv);
    let programmed: Vec<&str> = d.peers.keys().map(|k| k.name.as_str()).collect();
    assert_eq!(programmed, ["good", "key-1"]);
    assert_eq!(d.state.gateways()[&6000].peers().len(), 2);
    let e = |n: &str| d.peer_errors[&key(n)].clone();
    assert!(matches!(e("bad-key"), PeerError::BadKey { .. }));
    assert_eq!(
        error_chain(&e("zero-key")),
        "failed to use PodEndpoint default/zero-key: spec.podPublicKey: failed to parse WireGuard public key: the all-zero key is not a usable key"
    );
    for n in ["v6", "subnet", "garbage"] {
        assert!(matches!(e(n), PeerError::BadIp { .. }), "{n}");
    }
    assert_eq!(
        e("subnet").to_string(),
        "failed to use PodEndpoint default/subnet: spec.podIpAddress \"10.244.1.0/24\" is not an IPv4 /32 such as 10.244.1.5/32"
    );
    assert!(matches!(e("no-gateway"), PeerError::NoGateway { .. }));
    // Equal standing (same creation time, no incumbent): the pod UID decides, never the name.
    assert_eq!(
        e("same-ip").to_string(),
        "refused PodEndpoint default/same-ip: spec.podIpAddress 10.244.1.5/32 is already held by PodEndpoint default/good"
    );
    assert_eq!(
        e("key-2").to_string(),
        "refused PodEndpoint default/key-2: its spec.podPublicKey is already held by PodEndpoint default/key-1 on wg-6000"
    );
}

#[test]
fn one_pod_endpoint_update_changes_one_slot() {
    let gw = Gw::new("gw-a", 6000, "10.0.0.10");
    let k = random_pub();
    let mut inv = inventory(&[&gw], vec![pod_endpoint("p", "gw-a", "10.244.1.5/32", &k)]);
    let mut d = build(&inv);
    for c in arrive(pod_endpoint("p", "gw-a", "10.244.1.6/32", &k)) {
        inv.apply(c);
    }
    let changes = d.replace_peers(&inv, &[key("p")].into());
    let change = &changes[&key("p")];
    assert_eq!(change.old.as_ref().unwrap().port, 6000);
    let new = change.new.as_ref().unwrap();
    assert_eq!(
        new.allowed_ips.iter().next().unwrap().to_string(),
        "10.244.1.6/32"
    );
    inv.apply(Change::PodEndpoint(Delta::Delete(pod_endpoint(
        "p", "", "", "",
    ))));
    let changes = d.replace_peers(&inv, &[key("p")].into());
    assert!(changes[&key("p")].old.is_some() && changes[&key("p")].new.is_none());
    assert!(d.state.gateways()[&6000].peers().is_empty());
}

#[path = "desired_trust_tests.rs"]
mod trust;

#[path = "desired_ipv6_tests.rs"]
mod ipv6;
