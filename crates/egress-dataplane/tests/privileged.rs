//! Privileged end-to-end tests of the data plane, in throwaway namespaces, with wireguard-go
//! or (`EGRESS_WIREGUARD_BACKEND=kernel`, inside User-Mode Linux) kernel WireGuard:
//!
//! ```text
//!  pod<i> eth0 10.244.<i+1>.10 ── vpod<i> podnode eth0 192.0.2.2 ── pn0 192.0.2.1  inet  gw0 198.51.100.1 ── eth0 198.51.100.4 gwnode
//!    wg0 (socket in podnode)                                            lo 203.0.113.1 (echo server)        + ILB 198.51.100.100/32
//!                                                                                                            host-gateway ── host0 gateway netns
//!                                                                                                                              wg-6000 (socket in gwnode)
//! ```
//! `gwnode` plays the gateway node's host namespace and masquerades everything leaving eth0,
//! as a Kubernetes node does; the server must still see the gateway's secondary IP.
//! Run as root; they print SKIPPED and pass otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use egress_dataplane::control::LinkControl;
use egress_dataplane::state::{GatewayTunnel, PodTunnelState};
use egress_dataplane::{
    Dataplane, GatewayNodeState, NetnsRef, Op, Peer, PrivateKey, WgDeviceId,
    observe_request_for_gateway_node, observe_request_for_pod, plan_gateway_node, plan_pod,
};
use egress_testkit::{Client, EgressWorld, Lab, connect_within, name, privileged};

const SERVER: &str = "203.0.113.1:8080";
const ILB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 4);
const SECONDARY: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 10),
    Ipv4Addr::new(198, 51, 100, 11),
];

type World = EgressWorld;

fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

async fn world(lab: &mut Lab, pods: u8) -> World {
    let w = lab.egress_world(pods, &SECONDARY).await;
    lab.echo_server(&w.inet, server());
    w
}

fn gateway_node(w: &World) -> GatewayNodeState {
    let mut node = GatewayNodeState::new(w.gwnode.clone(), name("eth0"), PRIMARY).unwrap();
    node.gateway_netns = w.gateway_netns.clone();
    node.ilb_addresses.insert(ILB);
    node
}

fn pod_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, u8::try_from(i).unwrap() + 1, 10)
}

fn pod_tunnel(w: &World, i: usize, gateway: &PrivateKey, port: u16) -> PodTunnelState {
    w.pod_tunnel(i, gateway.public_key(), SocketAddr::from((ILB, port)))
}

fn pod_peer(pod: &PodTunnelState, i: usize) -> Peer {
    Peer {
        public_key: pod.private_key.public_key(),
        allowed_ips: [format!("{}/32", pod_ip(i)).parse().unwrap()].into(),
        endpoint: None,
    }
}

/// Observes, plans, applies; then checks that planning again yields nothing.
async fn converge_gateway(
    dp: &Dataplane,
    desired: &GatewayNodeState,
) -> Result<Vec<Op>, egress_dataplane::ApplyError> {
    let observed = dp
        .observe(&observe_request_for_gateway_node(desired))
        .await
        .unwrap();
    let ops = plan_gateway_node(desired, &observed);
    let report = dp.apply(&ops).await?;
    assert!(
        report.peer_failures.is_empty(),
        "{:?}",
        report.peer_failures
    );
    let again = plan_gateway_node(
        desired,
        &dp.observe(&observe_request_for_gateway_node(desired))
            .await
            .unwrap(),
    );
    assert!(again.is_empty(), "gateway plan not idempotent: {again:#?}");
    Ok(ops)
}

async fn converge_pod(dp: &Dataplane, desired: &PodTunnelState) {
    let observed = dp.observe(&observe_request_for_pod(desired)).await.unwrap();
    let ops = plan_pod(desired, &observed);
    dp.apply(&ops).await.unwrap();
    let again = plan_pod(
        desired,
        &dp.observe(&observe_request_for_pod(desired)).await.unwrap(),
    );
    assert!(again.is_empty(), "pod plan not idempotent: {again:#?}");
}

fn gateway_device(node: &GatewayNodeState, port: u16) -> WgDeviceId {
    WgDeviceId {
        netns: node.gateway_netns_ref(),
        name: egress_dataplane::InterfaceName::for_gateway_port(port),
    }
}

/// One gateway with `pods` pods on it, converged and carrying traffic.
async fn one_gateway(lab: &mut Lab, extra_peers: u32) -> (World, GatewayNodeState, PodTunnelState) {
    let w = world(lab, 1).await;
    let key = PrivateKey::generate();
    let pod = pod_tunnel(&w, 0, &key, 6000);
    let mut node = gateway_node(&w);
    let mut gw = GatewayTunnel::new(6000, key, SECONDARY[0]).unwrap();
    gw.upsert_peer(pod_peer(&pod, 0)).unwrap();
    for n in 0..extra_peers {
        gw.upsert_peer(Peer {
            public_key: PrivateKey::generate().public_key(),
            allowed_ips: [format!("{}/32", Ipv4Addr::from(0x0a64_0000 + n))
                .parse()
                .unwrap()]
            .into(),
            endpoint: None,
        })
        .unwrap();
    }
    node.add_gateway(gw).unwrap();
    converge_gateway(&lab.dataplane, &node).await.unwrap();
    converge_pod(&lab.dataplane, &pod).await;
    (w, node, pod)
}

#[tokio::test]
async fn pod_reaches_the_internet_through_the_gateway_as_the_secondary_ip() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dpt");
    let (w, node, _pod) = one_gateway(&mut lab, 0).await;
    let mut client = connect_within(&w.pods[0], server(), Duration::from_secs(10));
    assert_eq!(
        client.seen_as,
        SECONDARY[0].to_string(),
        "SNAT to the secondary IP, not masqueraded again"
    );
    client.echo("hello through the tunnel").unwrap();

    let device = gateway_device(&node, 6000);
    let observed = lab
        .dataplane
        .observe(&observe_request_for_gateway_node(&node))
        .await
        .unwrap();
    let peer = observed.wireguard[&device].peers.values().next().unwrap();
    assert!(
        peer.last_handshake.is_some() && peer.rx_bytes > 0,
        "traffic went through wg-6000: {peer:?}"
    );
    assert_eq!(
        peer.endpoint.map(|e| e.ip().to_string()),
        Some("192.0.2.2".into()),
        "UDP socket of the pod lives in its node namespace"
    );
    // The gateway's UDP socket stays in the host namespace while wg-6000 lives in the gateway namespace.
    let host_links = lab.links.observe(&w.gwnode).await.unwrap();
    assert!(
        host_links
            .links
            .keys()
            .all(|l| !l.as_str().starts_with("wg")),
        "{:?}",
        host_links.links.keys()
    );
    assert!(
        observed.namespaces[&node.gateway_netns_ref()]
            .links
            .contains_key(&device.name)
    );
}

#[tokio::test]
async fn two_gateways_stay_isolated() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dpt");
    let w = world(&mut lab, 2).await;
    let mut node = gateway_node(&w);
    let mut pods = Vec::new();
    for (i, port) in [6000u16, 6001].into_iter().enumerate() {
        let key = PrivateKey::generate();
        let pod = pod_tunnel(&w, i, &key, port);
        let mut gw = GatewayTunnel::new(port, key, SECONDARY[i]).unwrap();
        gw.upsert_peer(pod_peer(&pod, i)).unwrap();
        node.add_gateway(gw).unwrap();
        pods.push(pod);
    }
    converge_gateway(&lab.dataplane, &node).await.unwrap();
    for pod in &pods {
        converge_pod(&lab.dataplane, pod).await;
    }
    for (i, ns) in w.pods.iter().enumerate() {
        let client = connect_within(ns, server(), Duration::from_secs(10));
        assert_eq!(
            client.seen_as,
            SECONDARY[i].to_string(),
            "pod {i} leaves as its own gateway's IP"
        );
    }
    // Each device knows only its own pod.
    let observed = lab
        .dataplane
        .observe(&observe_request_for_gateway_node(&node))
        .await
        .unwrap();
    for (i, port) in [6000u16, 6001].into_iter().enumerate() {
        let peers = &observed.wireguard[&gateway_device(&node, port)].peers;
        assert_eq!(
            peers.keys().cloned().collect::<Vec<_>>(),
            vec![pods[i].private_key.public_key()]
        );
    }
}

#[tokio::test]
async fn removing_a_peer_cuts_its_traffic_at_once() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dpt");
    let (w, mut node, pod) = one_gateway(&mut lab, 0).await;
    let mut open = connect_within(&w.pods[0], server(), Duration::from_secs(10));
    open.echo("before").unwrap();

    node.gateway_mut(6000)
        .unwrap()
        .remove_peer(&pod.private_key.public_key())
        .unwrap();
    let ops = converge_gateway(&lab.dataplane, &node).await.unwrap();
    assert!(
        matches!(ops.as_slice(), [Op::RemovePeer { .. }, Op::DelRoute { .. }]),
        "{ops:#?}"
    );

    // The very next packets are dropped: the open connection stalls and new ones fail.
    open.stream
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert!(
        open.echo("after").is_err(),
        "the open connection still works"
    );
    assert!(
        Client::connect(&w.pods[0], server(), Duration::from_millis(700)).is_err(),
        "a new connection still works"
    );
}

#[tokio::test]
async fn reapplying_is_a_no_op_and_a_restart_adopts_the_devices_with_1000_peers() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dpt");
    let (w, node, pod) = one_gateway(&mut lab, 999).await;
    let gw_dev = gateway_device(&node, 6000);
    let pod_dev = WgDeviceId {
        netns: w.pods[0].clone(),
        name: name("wg0"),
    };
    let pids = (
        lab.wireguard_instance(&gw_dev).await.unwrap(),
        lab.wireguard_instance(&pod_dev).await.unwrap(),
    );
    let index = lab
        .links
        .index(&gw_dev.netns, &gw_dev.name)
        .await
        .unwrap()
        .unwrap();

    // A transfer runs across the restart.
    let mut client = connect_within(&w.pods[0], server(), Duration::from_secs(10));
    let running = Arc::new(AtomicBool::new(true));
    let (flag, done) = (running.clone(), Arc::new(AtomicUsize::new(0)));
    let counter = done.clone();
    let transfer = std::thread::spawn(move || -> std::io::Result<()> {
        while flag.load(Ordering::SeqCst) {
            client.echo(&format!("line {}", counter.load(Ordering::SeqCst)))?;
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });

    // Same process: nothing to do.
    let observed = lab
        .dataplane
        .observe(&observe_request_for_gateway_node(&node))
        .await
        .unwrap();
    assert_eq!(plan_gateway_node(&node, &observed), vec![]);
    assert_eq!(observed.wireguard[&gw_dev].peers.len(), 1000);

    // A restarted daemon: fresh executors that started none of the daemons.
    let started = Instant::now();
    let (restarted, _wg) = lab.restarted_dataplane();
    let observed = restarted
        .observe(&observe_request_for_gateway_node(&node))
        .await
        .unwrap();
    let ops = plan_gateway_node(&node, &observed);
    assert_eq!(ops, vec![], "a restart must adopt, not reprogram");
    restarted.apply(&ops).await.unwrap();
    assert_eq!(
        plan_pod(
            &pod,
            &restarted
                .observe(&observe_request_for_pod(&pod))
                .await
                .unwrap()
        ),
        vec![]
    );
    let adopt_time = started.elapsed();

    let before = done.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while done.load(Ordering::SeqCst) < before + 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    running.store(false, Ordering::SeqCst);
    transfer
        .join()
        .unwrap()
        .expect("the transfer broke during the restart");
    assert!(
        done.load(Ordering::SeqCst) >= before + 50,
        "the transfer stalled"
    );
    assert_eq!(
        lab.wireguard_instance(&gw_dev).await,
        Some(pids.0),
        "gateway daemon kept"
    );
    assert_eq!(
        lab.wireguard_instance(&pod_dev).await,
        Some(pids.1),
        "pod daemon kept"
    );
    assert_eq!(
        lab.links.index(&gw_dev.netns, &gw_dev.name).await.unwrap(),
        Some(index),
        "interface not recreated"
    );
    eprintln!("adopting 1,000 peers after a restart took {adopt_time:?}");
}

#[tokio::test]
async fn a_wrong_key_or_busy_port_gives_a_clear_error_and_no_half_configured_interface() {
    if !privileged() {
        return;
    }
    let err = "bm90IGEga2V5".parse::<PrivateKey>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to parse WireGuard private key: expected 44 characters of base64 encoding 32 bytes, got 12 characters"
    );

    let mut lab = Lab::new("dpt");
    let w = world(&mut lab, 0).await;
    let mut node = gateway_node(&w);
    node.add_gateway(GatewayTunnel::new(6000, PrivateKey::generate(), SECONDARY[0]).unwrap())
        .unwrap();
    // Something else holds UDP 6000 in the host namespace.
    let squatter = egress_dataplane::netns::run_in_netns(&w.gwnode, || {
        std::net::UdpSocket::bind("0.0.0.0:6000")
    })
    .unwrap()
    .unwrap();
    let err = converge_gateway(&lab.dataplane, &node).await.unwrap_err();
    let chain = egress_runtime::error_chain(&err);
    assert!(chain.contains("create wireguard wg-6000"), "{chain}");
    assert!(
        chain.contains("UDP port 6000 is already in use in netns"),
        "{chain}"
    );

    let device = gateway_device(&node, 6000);
    let gw_links = lab.links.observe(&node.gateway_netns_ref()).await.unwrap();
    assert!(
        !gw_links.links.contains_key(&device.name),
        "no wg-6000 left behind"
    );
    let host_links = lab.links.observe(&w.gwnode).await.unwrap();
    assert!(
        host_links
            .links
            .keys()
            .all(|l| !l.as_str().starts_with("wg")),
        "no temporary link left behind"
    );
    assert_eq!(
        lab.wireguard_instance(&device).await,
        None,
        "no daemon left behind"
    );

    drop(squatter);
    converge_gateway(&lab.dataplane, &node).await.unwrap();
    assert!(lab.wireguard_instance(&device).await.is_some());
}

#[tokio::test]
async fn named_namespaces_are_created_and_deleted_idempotently() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("dpt");
    let name = lab.netns_name("plain");
    egress_dataplane::netns::create_netns(&name).unwrap();
    egress_dataplane::netns::create_netns(&name).unwrap();
    assert!(egress_dataplane::netns::netns_exists(&name));
    // A thread inside sees a fresh namespace: only lo, down, and forwarding off. Kernels
    // with IPv6-in-IPv4 or GRE tunnels built in (the UML test kernel has SIT) add their
    // fallback devices to every new namespace; those are the kernel's, not ours.
    let ns = NetnsRef::Named(name.clone());
    let links = lab.links.observe(&ns).await.unwrap();
    const KERNEL_FALLBACK: &[&str] = &["sit0", "tunl0", "gre0", "gretap0", "erspan0", "ip6tnl0"];
    assert_eq!(
        links
            .links
            .keys()
            .map(|l| l.as_str())
            .filter(|l| !KERNEL_FALLBACK.contains(l))
            .collect::<Vec<_>>(),
        ["lo"]
    );
    let forward = egress_dataplane::netns::run_in_netns(&ns, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
    })
    .unwrap()
    .unwrap();
    assert_eq!(forward.trim(), "0");
    lab.links.forget(&ns);
    egress_dataplane::netns::delete_netns(&name).unwrap();
    egress_dataplane::netns::delete_netns(&name).unwrap();
    assert!(!egress_dataplane::netns::netns_exists(&name));
    assert!(!name.path().exists());
}

/// The kernel backend on a kernel without WireGuard (this host) names the cause and the way
/// out instead of a bare EOPNOTSUPP; where the kernel has it (inside UML, the kernel stage),
/// the same call creates the device. Either way the answer must match the environment.
#[tokio::test]
async fn the_kernel_backend_says_when_the_kernel_has_no_wireguard() {
    if !privileged() {
        return;
    }
    use egress_dataplane::WgDeviceId;
    use egress_dataplane::control::WireGuardControl;
    use egress_dataplane::error::WireGuardError;
    use egress_dataplane::wireguard::KernelWireGuard;
    use egress_testkit::{Backend, backend};

    let mut lab = Lab::new("dpk");
    let ns = lab.netns("kernel").await;
    let kernel = KernelWireGuard::new(lab.links.clone());
    let device = WgDeviceId {
        netns: ns.clone(),
        name: name("wg-k"),
    };
    let created = kernel
        .create(&device, &ns, &PrivateKey::generate(), Some(7000))
        .await;
    match (backend(), created) {
        (Backend::Kernel, Ok(())) => {
            assert!(kernel.observe(&device).await.unwrap().is_some());
        }
        (Backend::Userspace, Err(e @ WireGuardError::KernelUnsupported { .. })) => {
            let text = e.to_string();
            assert!(text.contains("this kernel has no WireGuard"), "{text}");
            assert!(text.contains("--wireguard-backend userspace"), "{text}");
            let links = lab.links.observe(&ns).await.unwrap();
            assert!(
                links.links.keys().all(|l| !l.as_str().starts_with("wg")),
                "no link left behind"
            );
        }
        (b, other) => panic!("backend {b:?} (kernel has WireGuard iff kernel stage): {other:?}"),
    }
}
