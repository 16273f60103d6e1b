//! Privileged tests of the data plane's IPv6 side (issue 20), in throwaway namespaces: the
//! netlink executor against the real kernel (IPv6 addresses, routes and sysctls), and a
//! dual-stack gateway carrying a pod's IPv6 (SNAT, return path, Packet Too Big).
//! Run as root; they print SKIPPED and pass otherwise (and fail under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use egress_dataplane::control::{LinkControl, SysctlControl};
use egress_dataplane::exec::ProcSysctl;
use egress_dataplane::netns::run_in_netns;
use egress_dataplane::spec::{MAIN_TABLE, NextHop, SysctlKey};
use egress_dataplane::state::{GatewayTunnel, TUNNEL_LINK_LOCAL};
use egress_dataplane::{
    AddressSpec, Dataplane, GatewayNodeState, NetnsRef, Peer, PrivateKey, RouteSpec,
    observe_request_for_gateway_node, observe_request_for_pod, plan_gateway_node, plan_pod,
};
use egress_testkit::topology::PRIMARY;
use egress_testkit::{EgressWorld, Lab, connect_within, ip_out, name, privileged};

fn v6route(destination: &str, device: &str, next_hop: NextHop, table: u32) -> RouteSpec {
    RouteSpec {
        table,
        destination: destination.parse().unwrap(),
        device: name(device),
        next_hop,
    }
}

#[tokio::test]
async fn ipv6_addresses_routes_and_forwarding_round_trip_through_the_kernel() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dp6");
    let a_name = lab.netns_name("a");
    egress_dataplane::netns::create_netns(&a_name).unwrap();
    let a = NetnsRef::Named(a_name.clone());
    let b = lab.netns("b").await;
    lab.wire((&a, "v6a", "fd00::1/64"), (&b, "v6b", "fd00::2/64"))
        .await;
    // A /128 as the gateway puts its secondary IPv6 on host0, added twice (exists = ok).
    let secondary = AddressSpec::plain("fd00:1::10/128".parse().unwrap());
    for _ in 0..2 {
        lab.links
            .add_address(&a, &name("v6a"), &secondary)
            .await
            .unwrap();
    }
    // Added without duplicate address detection: usable at once, never "tentative".
    let shown = ip_out(&["-n", a_name.as_str(), "-6", "addr", "show", "dev", "v6a"]);
    let ours: Vec<&str> = shown.lines().filter(|l| l.contains("fd00")).collect();
    assert_eq!(ours.len(), 2, "{shown}");
    assert!(
        ours.iter()
            .all(|l| l.contains("nodad") && !l.contains("tentative")),
        "{shown}"
    );

    let wanted = [
        v6route("2001:db8::5/128", "v6a", NextHop::OnLink, MAIN_TABLE),
        v6route(
            "2001:db8:1::/48",
            "v6a",
            NextHop::Gateway(IpAddr::V6("fd00::2".parse().unwrap())),
            MAIN_TABLE,
        ),
        v6route(
            "::/0",
            "v6a",
            NextHop::Gateway(IpAddr::V6("fe80::1".parse().unwrap())),
            100,
        ),
    ];
    for route in &wanted {
        // Replace semantics: programming the same route twice is not an error.
        lab.links.add_route(&a, route).await.unwrap();
        lab.links.add_route(&a, route).await.unwrap();
    }
    let observed = lab.links.observe(&a).await.unwrap();
    for route in &wanted {
        assert!(
            observed.ipv6_routes.contains(route),
            "{route} missing from {:#?}",
            observed.ipv6_routes
        );
    }
    // The kernel's own prefix route is observed; its link-local and multicast ones are not,
    // and no IPv6 route lands among the IPv4 ones.
    assert!(
        observed
            .ipv6_routes
            .contains(&v6route("fd00::/64", "v6a", NextHop::OnLink, MAIN_TABLE)),
        "{:#?}",
        observed.ipv6_routes
    );
    assert!(
        observed
            .ipv6_routes
            .iter()
            .all(|r| !r.destination.addr().to_string().starts_with("fe80")
                && !r.destination.addr().to_string().starts_with("ff")),
        "{:#?}",
        observed.ipv6_routes
    );
    assert!(
        observed
            .routes
            .iter()
            .all(|r| r.destination.addr().is_ipv4()),
        "{:#?}",
        observed.routes
    );
    let link = &observed.links[&name("v6a")];
    assert!(link.addresses.contains(&secondary), "{:#?}", link.addresses);

    for route in &wanted {
        lab.links.del_route(&a, route).await.unwrap();
        // Deleting what is gone is success.
        lab.links.del_route(&a, route).await.unwrap();
    }
    lab.links
        .del_address(&a, &name("v6a"), &secondary)
        .await
        .unwrap();
    let after = lab.links.observe(&a).await.unwrap();
    for route in &wanted {
        assert!(!after.ipv6_routes.contains(route), "{route} still there");
    }
    assert!(!after.links[&name("v6a")].addresses.contains(&secondary));

    let key = SysctlKey::ipv6_forwarding();
    assert_eq!(
        ProcSysctl.read(&a, &key).await.unwrap().as_deref(),
        Some("0")
    );
    ProcSysctl.write(&a, &key, "1").await.unwrap();
    assert_eq!(
        ProcSysctl.read(&a, &key).await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        ProcSysctl.read(&b, &key).await.unwrap().as_deref(),
        Some("0"),
        "per namespace"
    );
}

// ---- A dual-stack gateway end to end ----
//
// The IPv4 egress world of `privileged.rs`, plus IPv6:
//
//   pod0 eth0 fd00:10:244:1::10/64, ::/0 via fe80::1 dev wg0
//   gwnode eth0 fd00:1::4/64 ── gw0 fd00:1::1/64 inet, lo 2001:db8:ff::1 (echo servers)
//   inet routes the secondary IPv6 fd00:2::10 to gwnode (as the VNet does), and gwnode
//   masquerades IPv6 leaving eth0 too, as a dual-stack Kubernetes node does.

const SECONDARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const ILB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const SECONDARY6: &str = "fd00:2::10";
const POD6: &str = "fd00:10:244:1::10";
const SERVER6: &str = "2001:db8:ff::1";

fn netns_name(ns: &NetnsRef) -> String {
    match ns {
        NetnsRef::Named(n) => n.as_str().to_owned(),
        other => panic!("not a named namespace: {other}"),
    }
}

async fn add_address(lab: &Lab, ns: &NetnsRef, link: &str, addr: &str) {
    lab.links
        .add_address(ns, &name(link), &AddressSpec::plain(addr.parse().unwrap()))
        .await
        .unwrap();
}

/// The IPv6 half of the world around the IPv4 one `egress_world` builds.
async fn dual_stack_world(lab: &mut Lab) -> EgressWorld {
    let w = lab.egress_world(1, &[SECONDARY]).await;
    add_address(lab, &w.gwnode, "eth0", "fd00:1::4/64").await;
    add_address(lab, &w.inet, "gw0", "fd00:1::1/64").await;
    add_address(lab, &w.inet, "lo", &format!("{SERVER6}/128")).await;
    add_address(lab, &w.pods[0], "eth0", &format!("{POD6}/64")).await;
    let v6 = |ip: &str| IpAddr::V6(ip.parse().unwrap());
    lab.route(
        &w.gwnode,
        RouteSpec::via("::/0".parse().unwrap(), v6("fd00:1::1"), name("eth0")),
    )
    .await;
    lab.route(
        &w.inet,
        RouteSpec::via(
            format!("{SECONDARY6}/128").parse().unwrap(),
            v6("fd00:1::4"),
            name("gw0"),
        ),
    )
    .await;
    lab.nft(
        &w.gwnode,
        "table ip6 test_node_masq6 {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"eth0\" masquerade\n }\n}\n",
    );
    w
}

/// Converges the gateway node (and checks a second plan is empty).
async fn converge_gateway(dp: &Dataplane, desired: &GatewayNodeState) {
    let req = observe_request_for_gateway_node(desired);
    let ops = plan_gateway_node(desired, &dp.observe(&req).await.unwrap());
    let report = dp.apply(&ops).await.unwrap();
    assert!(
        report.peer_failures.is_empty(),
        "{:?}",
        report.peer_failures
    );
    let again = plan_gateway_node(desired, &dp.observe(&req).await.unwrap());
    assert!(again.is_empty(), "gateway plan not idempotent: {again:#?}");
}

/// One dual-stack gateway and pod0 on it: IPv4 through the pod plan, IPv6 routed into wg0
/// by hand (the pod side's IPv6 plan is not this test's subject).
async fn dual_stack_gateway(lab: &mut Lab) -> (EgressWorld, GatewayNodeState) {
    let w = dual_stack_world(lab).await;
    let key = PrivateKey::generate();
    let pod = w.pod_tunnel(0, key.public_key(), SocketAddr::from((ILB, 6000)));
    let mut node = GatewayNodeState::new(w.gwnode.clone(), name("eth0"), PRIMARY).unwrap();
    node.gateway_netns = w.gateway_netns.clone();
    node.ilb_addresses.insert(ILB);
    let mut gw = GatewayTunnel::new(6000, key, SECONDARY)
        .unwrap()
        .with_secondary_ipv6(SECONDARY6.parse().unwrap())
        .unwrap();
    gw.upsert_peer(Peer {
        public_key: pod.private_key.public_key(),
        allowed_ips: [
            "10.244.1.10/32".parse().unwrap(),
            format!("{POD6}/128").parse().unwrap(),
        ]
        .into(),
        endpoint: None,
    })
    .unwrap();
    node.add_gateway(gw).unwrap();
    converge_gateway(&lab.dataplane, &node).await;
    let ops = plan_pod(
        &pod,
        &lab.dataplane
            .observe(&observe_request_for_pod(&pod))
            .await
            .unwrap(),
    );
    lab.dataplane.apply(&ops).await.unwrap();
    lab.route(
        &w.pods[0],
        RouteSpec::via(
            "::/0".parse().unwrap(),
            IpAddr::V6(TUNNEL_LINK_LOCAL),
            name("wg0"),
        ),
    )
    .await;
    (w, node)
}

#[tokio::test]
async fn a_dual_stack_gateway_snats_a_pods_ipv6_to_its_secondary_ipv6_and_the_reply_comes_back() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dp6");
    let (w, _node) = dual_stack_world_with_servers(&mut lab).await;
    let server6 = SocketAddr::new(SERVER6.parse().unwrap(), 8080);
    let mut client = connect_within(&w.pods[0], server6, Duration::from_secs(10));
    assert_eq!(
        client.seen_as, SECONDARY6,
        "SNAT to the secondary IPv6 (not the pod's address, not gwnode's masquerade)"
    );
    client
        .echo("the reply found the pod's /128 through the tunnel")
        .unwrap();
    // IPv4 still leaves as the IPv4 secondary, side by side.
    let server4 = SocketAddr::from((egress_testkit::topology::INTERNET, 8080));
    let client4 = connect_within(&w.pods[0], server4, Duration::from_secs(10));
    assert_eq!(client4.seen_as, SECONDARY.to_string());
}

/// The dual-stack gateway with TCP echo servers on both families of `inet`.
async fn dual_stack_world_with_servers(lab: &mut Lab) -> (EgressWorld, GatewayNodeState) {
    let (w, node) = dual_stack_gateway(lab).await;
    lab.echo_server(&w.inet, SocketAddr::new(SERVER6.parse().unwrap(), 8080));
    lab.echo_server(
        &w.inet,
        SocketAddr::from((egress_testkit::topology::INTERNET, 8080)),
    );
    (w, node)
}

/// Routers never fragment IPv6: a reply larger than the tunnel's MTU must make the gateway
/// send the server an ICMPv6 Packet Too Big (the kernel's job, tested rather than assumed),
/// translated back through the SNAT so the server's kernel takes it for its flow; the
/// server's next send then fits and reaches the pod.
#[tokio::test]
async fn an_oversized_ipv6_reply_gets_a_packet_too_big_and_then_reaches_the_pod() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dp6");
    let (w, node) = dual_stack_gateway(&mut lab).await;
    let server_addr = SocketAddr::new(SERVER6.parse().unwrap(), 9000);
    let server = run_in_netns(&w.inet, move || UdpSocket::bind(server_addr))
        .unwrap()
        .unwrap();
    let pod = run_in_netns(&w.pods[0], || UdpSocket::bind("[::]:0"))
        .unwrap()
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    pod.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // The pod speaks first (as every egress flow does): the SNAT binding exists.
    pod.send_to(b"hello", server_addr).unwrap();
    let mut buf = vec![0u8; 2048];
    let (_, seen) = server.recv_from(&mut buf).unwrap();
    assert_eq!(seen.ip().to_string(), SECONDARY6);

    // 1452 bytes of payload: a 1500-byte packet, which fits every link but the tunnel.
    let big = vec![7u8; 1452];
    let mtu = node.gateways()[&6000].mtu;
    assert!((1280..1500).contains(&mtu), "{mtu}");
    let inet = netns_name(&w.inet);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut got_big, mut ptb_seen, mut sends) = (false, false, 0);
    while !got_big {
        assert!(
            Instant::now() < deadline,
            "no Packet Too Big or no delivery: ptb {ptb_seen}"
        );
        server.send_to(&big, seen).unwrap();
        sends += 1;
        if let Ok((n, _)) = pod.recv_from(&mut buf) {
            got_big = n == big.len();
        }
        // The server's kernel learned the tunnel's MTU for the egress address.
        let route = ip_out(&["-n", &inet, "-6", "route", "get", SECONDARY6]);
        ptb_seen |= route.contains(&format!("mtu {mtu}"));
    }
    assert!(
        ptb_seen,
        "the datagram arrived without a Packet Too Big: was it fragmented by a router?"
    );
    assert!(
        sends >= 2,
        "the first 1500-byte packet must be dropped at the tunnel, not delivered"
    );
}
