//! The kit's own privileged tests: a lab's namespaces carry traffic between each other, the
//! echo servers report the client's source address, and everything the lab or a guard made is
//! gone after drop. Run as root; they print SKIPPED and pass otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use egress_dataplane::NetnsName;
use egress_dataplane::netns::netns_exists;
use egress_testkit::topology::{INTERNET, PRIMARY};
use egress_testkit::{Lab, Netns, UdpStream, connect_within, privileged};

#[tokio::test]
async fn lab_namespaces_carry_traffic_and_are_deleted_on_drop() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("kit");
    let a = lab.netns("a").await;
    let b = lab.netns("b").await;
    lab.wire((&a, "eth0", "192.0.2.1/24"), (&b, "eth0", "192.0.2.2/24"))
        .await;
    lab.echo_server(&b, "192.0.2.2:8080".parse().unwrap());
    lab.udp_echo_server(&b, "192.0.2.2:9090".parse().unwrap());

    let mut client = connect_within(
        &a,
        "192.0.2.2:8080".parse().unwrap(),
        Duration::from_secs(5),
    );
    assert_eq!(client.seen_as, "192.0.2.1", "the server reports the peer");
    client.echo("hello").unwrap();

    let udp = UdpStream::start(
        &a,
        "192.0.2.2:9090".parse().unwrap(),
        Duration::from_millis(2),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while udp.echoed() < 20 {
        assert!(std::time::Instant::now() < deadline, "no UDP echoes");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (sent, lost) = udp.finish();
    assert!(sent >= 20 && lost.is_empty(), "{sent} sent, lost {lost:?}");

    let names: Vec<NetnsName> = [&a, &b]
        .iter()
        .map(|ns| match ns {
            egress_dataplane::NetnsRef::Named(n) => n.clone(),
            other => panic!("lab made an unnamed namespace {other:?}"),
        })
        .collect();
    assert_ne!(names[0], names[1]);
    drop(client);
    drop(lab);
    for name in &names {
        assert!(!netns_exists(name), "{name} survived the lab");
    }
}

#[test]
fn a_netns_guard_starts_with_lo_up_and_is_deleted_on_drop() {
    if !privileged() {
        return;
    }
    let ns = Netns::new("kit-guard");
    let path = ns.path();
    let snapshot = ns.snapshot();
    assert!(snapshot.contains("\"lo\""), "{snapshot}");
    assert!(
        snapshot.contains("local 127.0.0.1 dev lo"),
        "lo is up: {snapshot}"
    );
    drop(ns);
    assert!(!std::path::Path::new(&path).exists(), "{path} survived");
}

#[tokio::test]
async fn the_egress_world_routes_both_nodes_to_the_internet_and_masquerades_the_gateway_node() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("kit");
    let w = lab.egress_world(1, &[]).await;
    let server = std::net::SocketAddr::from((INTERNET, 8080));
    lab.echo_server(&w.inet, server);
    let from_gw = connect_within(&w.gwnode, server, Duration::from_secs(5));
    assert_eq!(from_gw.seen_as, PRIMARY.to_string());
    let from_podnode = connect_within(&w.podnode, server, Duration::from_secs(5));
    assert_eq!(from_podnode.seen_as, "192.0.2.2");
    assert_eq!(w.pods.len(), 1);
    assert!(
        !netns_exists(&w.gateway_netns),
        "the gateway namespace is left to the code under test"
    );
}
