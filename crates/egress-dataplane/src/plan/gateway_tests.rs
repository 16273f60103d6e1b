//! Unit tests of the gateway-node plan, applied to the stateful fake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use crate::fake::FakeNode;
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::{NftTable, NftTableId};
use crate::observed::{ObservedState, WgDeviceId};
use crate::op::Op;
use crate::plan::{observe_request_for_gateway_node, plan_gateway_node};
use crate::spec::{AddressSpec, Peer, RouteSpec, SnatRule};
use crate::state::{GatewayNodeState, GatewayTunnel};
use crate::{Dataplane, PrivateKey};

fn eth0() -> InterfaceName {
    "eth0".parse().unwrap()
}

fn node(gateways: &[(u16, &str)]) -> GatewayNodeState {
    let mut n =
        GatewayNodeState::new(NetnsRef::Current, eth0(), "10.0.0.4".parse().unwrap()).unwrap();
    n.ilb_addresses.insert("10.0.0.100".parse().unwrap());
    for (port, ip) in gateways {
        n.add_gateway(
            GatewayTunnel::new(*port, PrivateKey::generate(), ip.parse().unwrap()).unwrap(),
        )
        .unwrap();
    }
    n
}

fn pod_peer(i: u32) -> Peer {
    let ip = Ipv4Addr::from(0x0af4_0000 + i);
    Peer {
        public_key: PrivateKey::generate().public_key(),
        allowed_ips: [format!("{ip}/32").parse().unwrap()].into(),
        endpoint: None,
    }
}

fn fake_host() -> FakeNode {
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &eth0(),
        &[AddressSpec::plain("10.0.0.4/24".parse().unwrap())],
    );
    fake
}

async fn observe(dp: &Dataplane, desired: &GatewayNodeState) -> ObservedState {
    dp.observe(&observe_request_for_gateway_node(desired))
        .await
        .unwrap()
}

/// Plans, applies and checks that a second plan is empty; returns the first plan.
async fn converge(dp: &Dataplane, desired: &GatewayNodeState) -> Vec<Op> {
    let ops = plan_gateway_node(desired, &observe(dp, desired).await);
    let report = dp.apply(&ops).await.unwrap();
    assert!(report.peer_failures.is_empty());
    let again = plan_gateway_node(desired, &observe(dp, desired).await);
    assert!(again.is_empty(), "not idempotent: {}", display(&again));
    ops
}

fn display(ops: &[Op]) -> String {
    ops.iter().map(|o| format!("\n  {o}")).collect()
}

fn position(ops: &[Op], pred: impl Fn(&Op) -> bool) -> usize {
    ops.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("missing op in {}", display(ops)))
}

fn gw_device(n: &GatewayNodeState, port: u16) -> WgDeviceId {
    WgDeviceId {
        netns: n.gateway_netns_ref(),
        name: InterfaceName::for_gateway_port(port),
    }
}

#[tokio::test]
async fn cold_start_builds_the_node_in_dependency_order_and_converges() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let mut desired = node(&[(6000, "10.0.0.10"), (6001, "10.0.0.11")]);
    desired
        .gateway_mut(6000)
        .unwrap()
        .upsert_peer(pod_peer(1))
        .unwrap();
    let ops = converge(&dp, &desired).await;

    let netns = position(&ops, |o| matches!(o, Op::CreateNetns { .. }));
    let veth = position(&ops, |o| matches!(o, Op::CreateVeth { .. }));
    let wg = position(&ops, |o| matches!(o, Op::CreateWireGuard { .. }));
    let nat = position(&ops, |o| matches!(o, Op::ReplaceNftTable { .. }));
    let peer = position(&ops, |o| matches!(o, Op::AddPeer { .. }));
    let peer_route = position(
        &ops,
        |o| matches!(o, Op::AddRoute { route, .. } if route.device.as_str().starts_with("wg-")),
    );
    assert!(
        netns < veth && veth < wg && wg < nat && nat < peer_route && peer_route < peer,
        "{}",
        display(&ops)
    );

    let state = fake.snapshot();
    let gw = desired.gateway_netns_ref();
    let host0 = &state.namespaces[&gw].links[&desired.veth.gateway];
    assert!(host0.up);
    assert!(
        host0
            .addresses
            .contains(&AddressSpec::plain("10.0.0.10/32".parse().unwrap()))
    );
    assert!(
        host0
            .addresses
            .contains(&AddressSpec::plain("10.0.0.11/32".parse().unwrap()))
    );
    let eth = &state.namespaces[&NetnsRef::Current].links[&eth0()];
    assert!(eth.addresses.contains(&AddressSpec {
        addr: "10.0.0.100/32".parse().unwrap(),
        label: Some("eth0:egress".into())
    }));
    assert_eq!(
        state.namespaces[&gw].sysctls[&crate::SysctlKey::ipv4_forwarding()],
        "1"
    );
    let wg6000 = &state.namespaces[&gw].links[&InterfaceName::for_gateway_port(6000)];
    assert!(wg6000.up);
    assert_eq!(wg6000.mtu, Some(1420));
    assert_eq!(
        state.namespaces[&gw].nft[&NftTableId::ip(crate::nft::GATEWAY_TABLE)],
        NftTable::GatewayNat {
            egress: desired.veth.gateway.clone(),
            rules: [
                SnatRule {
                    tunnel: InterfaceName::for_gateway_port(6000),
                    mark: crate::FwMark::new(6000).unwrap(),
                    to: "10.0.0.10".parse().unwrap()
                },
                SnatRule {
                    tunnel: InterfaceName::for_gateway_port(6001),
                    mark: crate::FwMark::new(6001).unwrap(),
                    to: "10.0.0.11".parse().unwrap()
                },
            ]
            .into()
        }
    );
    assert!(
        state.namespaces[&NetnsRef::Current]
            .routes
            .contains(&RouteSpec::on_link(
                "10.0.0.10/32".parse().unwrap(),
                desired.veth.host.clone()
            ))
    );
    assert!(state.namespaces[&gw].routes.contains(&RouteSpec::on_link(
        "10.244.0.1/32".parse().unwrap(),
        InterfaceName::for_gateway_port(6000)
    )));
    assert_eq!(fake.stats().devices_created, 2);
}

#[tokio::test]
async fn one_peer_added_or_removed_at_n_peers_touches_one_peer() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let mut desired = node(&[(6000, "10.0.0.10")]);
    for i in 1..=1000 {
        desired
            .gateway_mut(6000)
            .unwrap()
            .upsert_peer(pod_peer(i))
            .unwrap();
    }
    converge(&dp, &desired).await;
    let before = fake.stats();
    assert_eq!(before.peer_changes, 1000);
    assert!(
        before.peer_transactions <= 1,
        "1,000 peers in one transaction: {before:?}"
    );

    let new = pod_peer(1001);
    desired
        .gateway_mut(6000)
        .unwrap()
        .upsert_peer(new.clone())
        .unwrap();
    let ops = converge(&dp, &desired).await;
    let device = gw_device(&desired, 6000);
    assert_eq!(
        ops,
        // The route first: the pod's ADD returns at its first handshake, which the peer
        // makes possible, and the reply to its first packet needs the route.
        vec![
            Op::AddRoute {
                netns: desired.gateway_netns_ref(),
                route: RouteSpec::on_link(*new.allowed_ips.first().unwrap(), device.name.clone())
            },
            Op::AddPeer {
                device: device.clone(),
                peer: new.clone()
            },
        ]
    );
    let gone = desired
        .gateway_mut(6000)
        .unwrap()
        .remove_peer(&new.public_key)
        .unwrap();
    let ops = converge(&dp, &desired).await;
    assert_eq!(
        ops,
        vec![
            Op::RemovePeer {
                device: device.clone(),
                public_key: gone.public_key.clone()
            },
            Op::DelRoute {
                netns: desired.gateway_netns_ref(),
                route: RouteSpec::on_link(*gone.allowed_ips.first().unwrap(), device.name.clone())
            },
        ]
    );
    let after = fake.stats();
    assert_eq!(after.peer_changes - before.peer_changes, 2);
    assert_eq!(after.devices_created, 1, "the device was never recreated");
}

#[tokio::test]
async fn a_changed_allowed_ip_updates_the_peer_in_place() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let mut desired = node(&[(6000, "10.0.0.10")]);
    let mut p = pod_peer(1);
    desired
        .gateway_mut(6000)
        .unwrap()
        .upsert_peer(p.clone())
        .unwrap();
    converge(&dp, &desired).await;
    p.allowed_ips = ["10.244.9.9/32".parse().unwrap()].into();
    desired
        .gateway_mut(6000)
        .unwrap()
        .upsert_peer(p.clone())
        .unwrap();
    let ops = converge(&dp, &desired).await;
    assert_eq!(ops.len(), 3, "{}", display(&ops));
    assert!(
        matches!(&ops[0], Op::DelRoute { route, .. } if route.destination.to_string() == "10.244.0.1/32")
    );
    assert!(
        matches!(&ops[1], Op::AddRoute { route, .. } if route.destination.to_string() == "10.244.9.9/32")
    );
    assert!(matches!(&ops[2], Op::AddPeer { peer, .. } if *peer == p));
}

#[tokio::test]
async fn removing_a_gateway_removes_its_device_address_route_and_snat_entry() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let mut desired = node(&[(6000, "10.0.0.10"), (6001, "10.0.0.11")]);
    converge(&dp, &desired).await;
    desired.remove_gateway(6001).unwrap();
    let ops = converge(&dp, &desired).await;
    assert!(ops.contains(&Op::DeleteWireGuard {
        device: gw_device(&desired, 6001)
    }));
    let state = fake.snapshot();
    let gw = desired.gateway_netns_ref();
    assert!(
        !state.namespaces[&gw]
            .links
            .contains_key(&InterfaceName::for_gateway_port(6001))
    );
    let host0 = &state.namespaces[&gw].links[&desired.veth.gateway];
    assert!(
        !host0
            .addresses
            .iter()
            .any(|a| a.addr.to_string() == "10.0.0.11/32")
    );
    assert!(
        !state.namespaces[&NetnsRef::Current]
            .routes
            .iter()
            .any(|r| r.destination.to_string() == "10.0.0.11/32")
    );
    let NftTable::HostNoMasquerade { sources } =
        &state.namespaces[&NetnsRef::Current].nft[&NftTableId::ip(crate::nft::HOST_TABLE)]
    else {
        panic!("host table missing")
    };
    assert_eq!(
        sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ["10.0.0.10"]
    );

    // With no gateway left: tables and ILB addresses go; namespace and veth stay.
    desired.remove_gateway(6000).unwrap();
    desired.ilb_addresses.clear();
    converge(&dp, &desired).await;
    let state = fake.snapshot();
    assert!(state.namespaces[&gw].nft.is_empty());
    assert!(state.namespaces[&NetnsRef::Current].nft.is_empty());
    assert!(
        !state.namespaces[&NetnsRef::Current].links[&eth0()]
            .addresses
            .iter()
            .any(|a| a.label.is_some())
    );
    assert!(
        state.namespaces[&gw]
            .links
            .contains_key(&desired.veth.gateway)
    );
}

#[tokio::test]
async fn key_or_port_change_reconfigures_without_recreating() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let mut desired = node(&[(6000, "10.0.0.10")]);
    desired
        .gateway_mut(6000)
        .unwrap()
        .upsert_peer(pod_peer(1))
        .unwrap();
    converge(&dp, &desired).await;
    let new_key = PrivateKey::generate();
    desired.gateway_mut(6000).unwrap().private_key = new_key.clone();
    let ops = converge(&dp, &desired).await;
    assert_eq!(
        ops,
        vec![Op::ConfigureWireGuard {
            device: gw_device(&desired, 6000),
            private_key: new_key,
            listen_port: Some(6000)
        }]
    );
    assert_eq!(fake.stats().devices_created, 1);
}

#[tokio::test]
async fn drift_is_repaired_one_item_at_a_time() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let desired = node(&[(6000, "10.0.0.10")]);
    converge(&dp, &desired).await;
    let gw = desired.gateway_netns_ref();
    let host_route = RouteSpec::on_link("10.0.0.10/32".parse().unwrap(), desired.veth.host.clone());
    crate::control::LinkControl::del_route(&fake, &NetnsRef::Current, &host_route)
        .await
        .unwrap();
    crate::control::SysctlControl::write(&fake, &gw, &crate::SysctlKey::ipv4_forwarding(), "0")
        .await
        .unwrap();
    let ops = converge(&dp, &desired).await;
    assert_eq!(ops.len(), 2, "{}", display(&ops));
    assert!(ops.contains(&Op::AddRoute {
        netns: NetnsRef::Current,
        route: host_route
    }));
}

#[tokio::test]
async fn host_addresses_are_cleaned_and_kept_as_the_original_does() {
    let fake = FakeNode::new();
    // The OS put the secondary IP on eth0; a stale ILB address carries our label.
    fake.add_link(
        &NetnsRef::Current,
        &eth0(),
        &[
            AddressSpec::plain("10.0.0.4/24".parse().unwrap()),
            AddressSpec::plain("10.0.0.10/24".parse().unwrap()),
            AddressSpec {
                addr: "10.0.0.99/32".parse().unwrap(),
                label: Some("eth0:egress".into()),
            },
        ],
    );
    let dp = fake.dataplane();
    let desired = node(&[(6000, "10.0.0.10")]);
    converge(&dp, &desired).await;
    let eth = &fake.snapshot().namespaces[&NetnsRef::Current].links[&eth0()];
    let addrs: Vec<String> = eth.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.4/24", "10.0.0.100/32 label eth0:egress"]);
}

#[tokio::test]
async fn a_stale_link_with_a_gateway_name_is_replaced() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let desired = node(&[(6000, "10.0.0.10")]);
    let gw = desired.gateway_netns_ref();
    fake.add_netns(gw.clone());
    fake.add_link(&gw, &InterfaceName::for_gateway_port(6000), &[]);
    fake.add_link(&gw, &"wg-7000".parse().unwrap(), &[]);
    let ops = converge(&dp, &desired).await;
    let del = position(&ops, |o| {
        *o == Op::DeleteWireGuard {
            device: gw_device(&desired, 6000),
        }
    });
    let create = position(&ops, |o| matches!(o, Op::CreateWireGuard { .. }));
    assert!(del < create);
    assert!(ops.contains(&Op::DeleteWireGuard {
        device: gw_device(&desired, 7000)
    }));
}

#[tokio::test]
async fn one_rejected_peer_does_not_hold_back_the_others() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let mut desired = node(&[(6000, "10.0.0.10")]);
    let bad = pod_peer(2);
    fake.reject_peer(bad.public_key.clone());
    for p in [pod_peer(1), bad.clone(), pod_peer(3)] {
        desired.gateway_mut(6000).unwrap().upsert_peer(p).unwrap();
    }
    let ops = plan_gateway_node(&desired, &observe(&dp, &desired).await);
    let report = dp.apply(&ops).await.unwrap();
    assert_eq!(report.peer_failures.len(), 1);
    assert!(
        report.peer_failures[0]
            .op
            .contains(&bad.public_key.to_string())
    );
    let peers = &fake.snapshot().wireguard[&gw_device(&desired, 6000)].peers;
    assert_eq!(peers.len(), 2);
    assert!(!peers.contains_key(&bad.public_key));
}

#[tokio::test]
async fn a_busy_port_fails_at_its_operation_and_creates_no_device() {
    let fake = fake_host();
    fake.occupy_port(6000);
    let dp = fake.dataplane();
    let desired = node(&[(6000, "10.0.0.10")]);
    let ops = plan_gateway_node(&desired, &observe(&dp, &desired).await);
    let err = dp.apply(&ops).await.unwrap_err();
    assert!(matches!(ops[err.index], Op::CreateWireGuard { .. }));
    assert!(
        err.to_string().starts_with("failed to apply operation"),
        "{err}"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.contains("UDP port 6000 is already in use"),
        "{source}"
    );
    assert!(fake.snapshot().wireguard.is_empty());
}

#[test]
fn ops_display_one_line_each_without_secrets() {
    let desired = node(&[(6000, "10.0.0.10")]);
    let key = desired.gateways()[&6000].private_key.clone();
    let ops = plan_gateway_node(&desired, &ObservedState::default());
    let text = display(&ops);
    assert!(!text.contains(&key.expose_base64()), "{text}");
    assert!(
        text.contains("create netns ns-static-egress-gateway"),
        "{text}"
    );
    assert!(text.contains(&format!("create wireguard wg-6000 in netns ns-static-egress-gateway (socket in host netns, key {}, port 6000)", key.public_key())), "{text}");
    assert!(
        text.contains("host netns: add address 10.0.0.100/32 label eth0:egress dev eth0"),
        "{text}"
    );
    assert!(
        text.contains(
            "netns ns-static-egress-gateway: replace route default via 10.0.0.4 dev host0"
        ),
        "{text}"
    );
    assert!(ops.iter().all(|o| !o.to_string().contains('\n')));
}

#[tokio::test]
async fn a_host_veth_end_without_its_peer_is_recreated() {
    let fake = fake_host();
    let dp = fake.dataplane();
    let desired = node(&[(6000, "10.0.0.10")]);
    fake.add_link(&NetnsRef::Current, &desired.veth.host, &[]);
    let ops = converge(&dp, &desired).await;
    let del = position(
        &ops,
        |o| matches!(o, Op::DeleteLink { link, .. } if *link == desired.veth.host),
    );
    let create = position(&ops, |o| matches!(o, Op::CreateVeth { .. }));
    assert!(del < create, "{}", display(&ops));
}
