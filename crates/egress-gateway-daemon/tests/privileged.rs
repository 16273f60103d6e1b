//! Privileged end-to-end tests: the real daemon (watches, programmer, probe) against the
//! in-memory API server, with the real data plane executors and wireguard-go (or kernel
//! WireGuard with `EGRESS_WIREGUARD_BACKEND=kernel`, inside User-Mode Linux), in throwaway
//! namespaces:
//!
//! ```text
//!  pod<i> eth0 10.244.<i+1>.10 ── podnode 192.0.2.2 ── inet (203.0.113.1 TCP+UDP echo) ── eth0 198.51.100.4 gwnode
//!    wg0 (socket in podnode)                                                             + ILB 198.51.100.100/32
//!                                                                                          host-gateway ── host0 <gateway netns>
//!                                                                                                           wg-<port> (socket in gwnode)
//! ```
//! `gwnode` plays the gateway node's host namespace (masquerading everything leaving eth0, as
//! a Kubernetes node does); the host's own interfaces are never touched. Run as root; they
//! print SKIPPED and pass otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/cluster.rs"]
mod cluster;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster::*;
use egress_dataplane::control::LinkControl;
use egress_dataplane::state::PodTunnelState;
use egress_dataplane::{
    Dataplane, InterfaceName, NetnsRef, PrivateKey, WgDeviceId, observe_request_for_pod, plan_pod,
};
use egress_gateway_daemon::metrics::{Metrics, SnatLabels};
use egress_gateway_daemon::snat::{SNAT_PORTS, dump, sample_once};
use egress_gateway_daemon::{HostConfig, NodeIdentity};
use egress_testkit::{Client, EgressWorld, Lab, UdpStream, connect_within, name, privileged};

const TCP_SERVER: &str = "203.0.113.1:8080";
const UDP_SERVER: &str = "203.0.113.1:9090";
const ILB: &str = "198.51.100.100";
const PRIMARY: &str = "198.51.100.4";
const SECONDARY: [&str; 3] = ["198.51.100.10", "198.51.100.11", "198.51.100.12"];
const WAIT: Duration = Duration::from_secs(15);

type World = EgressWorld;

async fn world(lab: &mut Lab, pods: u8) -> World {
    let w = lab
        .egress_world(pods, &SECONDARY.map(|ip| ip.parse().unwrap()))
        .await;
    lab.echo_server(&w.inet, TCP_SERVER.parse().unwrap());
    lab.udp_echo_server(&w.inet, UDP_SERVER.parse().unwrap());
    w
}

fn host(w: &World) -> HostConfig {
    HostConfig {
        host_netns: w.gwnode.clone(),
        host_interface: name("eth0"),
        gateway_netns: w.gateway_netns.clone(),
        tunnel_mtu: 1420,
        secret_namespace: KEY_NS.into(),
        ipv6: true,
    }
}

fn gw(name: &str, port: i32, i: usize) -> Gw {
    Gw::new(name, port, SECONDARY[i], PRIMARY, ILB)
}

fn pod_ip(i: usize) -> String {
    format!("10.244.{}.10/32", i + 1)
}

/// The pod side, programmed as the CNI plugin would (with the library directly).
async fn pod_tunnel(lab: &Lab, w: &World, i: usize, gw: &Gw) -> PodTunnelState {
    let pod = w.pod_tunnel(
        i,
        gw.key.public_key(),
        SocketAddr::new(ILB.parse().unwrap(), u16::try_from(gw.port).unwrap()),
    );

    let observed = lab
        .dataplane
        .observe(&observe_request_for_pod(&pod))
        .await
        .unwrap();
    lab.dataplane
        .apply(&plan_pod(&pod, &observed))
        .await
        .unwrap();
    pod
}

fn device(w: &World, port: u16) -> WgDeviceId {
    WgDeviceId {
        netns: NetnsRef::Named(w.gateway_netns.clone()),
        name: InterfaceName::for_gateway_port(port),
    }
}

async fn kernel_peers(dp: &Dataplane, device: &WgDeviceId) -> usize {
    dp.wireguard
        .observe(device)
        .await
        .ok()
        .flatten()
        .map_or(0, |d| d.peers.len())
}

async fn probe_ok(running: &Running, gw: &Gw) -> bool {
    http_get(running.probe, &format!("/gw/{}", gw.uid)).await.0 == 200
}

/// Runs blocking socket work off the async runtime.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// One pod (its tunnel programmed as the plugin would) on gateway `gw-a` (port 6000), with
/// its pod and PodEndpoint `name` in the API: (world, cluster, gateway, pod tunnel).
async fn one_pod(lab: &mut Lab, name: &str) -> (World, Cluster, Gw, PodTunnelState) {
    let w = world(lab, 1).await;
    let cluster = Cluster::start().await;
    let mut a = gw("gw-a", 6000, 0);
    let secret = a.key.expose_base64();
    cluster.gateway(&mut a, NODE, &secret).await;
    let pod = pod_tunnel(lab, &w, 0, &a).await;
    let key = pod.private_key.public_key().to_base64();
    cluster.pod_endpoint(name, "gw-a", &pod_ip(0), &key).await;
    (w, cluster, a, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_leaves_as_this_nodes_secondary_ip_and_deleting_its_pod_endpoint_cuts_it_at_once() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("gwd");
    let (w, cluster, a, _pod) = one_pod(&mut lab, "pod0").await;
    let dp = lab.daemon_dataplane();
    let running = start_daemon(
        &cluster,
        dp.clone(),
        config(NodeIdentity::computer(NODE), host(&w)),
    )
    .await;
    wait_for("probe 200", WAIT, || probe_ok(&running, &a)).await;

    let ns = w.pods[0].clone();
    let mut client = blocking(move || connect_within(&ns, TCP_SERVER.parse().unwrap(), WAIT)).await;
    assert_eq!(
        client.seen_as, SECONDARY[0],
        "SNAT to the secondary IP, not masqueraded again"
    );
    let mut client = blocking(move || {
        client.echo("hello through the tunnel").unwrap();
        client
    })
    .await;
    // The UDP socket stays in the host namespace; only the interface is in the gateway one.
    let host_links = lab.links.observe(&w.gwnode).await.unwrap();
    assert!(
        host_links
            .links
            .keys()
            .all(|l| !l.as_str().starts_with("wg"))
    );
    let gw_links = lab
        .links
        .observe(&NetnsRef::Named(w.gateway_netns.clone()))
        .await
        .unwrap();
    assert_eq!(gw_links.links[&name("wg-6000")].mtu, Some(1420));

    // Metrics sampled from the tunnel: traffic counters and the handshake age.
    let labels = "{gateway=\"default/gw-a\",interface=\"wg-6000\"}";
    wait_for("traffic in the metrics", WAIT, || async {
        let text = running.daemon.metrics().encode().unwrap();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("egress_gateway_{name}{labels} ")))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        value("received_packets_total").is_some_and(|v| v > 0.0)
            && value("sent_bytes_total").is_some_and(|v| v > 0.0)
            && value("latest_handshake_age_seconds").is_some_and(|v| v < 60.0)
            && value("peers") == Some(1.0)
    })
    .await;

    let deleted = Instant::now();
    cluster.delete_pod_endpoint("pod0").await;
    wait_for("the peer to go", WAIT, || async {
        kernel_peers(&dp, &device(&w, 6000)).await == 0
    })
    .await;
    let removal = deleted.elapsed();
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let ns = w.pods[0].clone();
    let (old, new) = blocking(move || {
        let old = client.echo("after").is_err();
        let new =
            Client::connect(&ns, TCP_SERVER.parse().unwrap(), Duration::from_millis(700)).is_err();
        (old, new)
    })
    .await;
    assert!(old, "the open connection still works");
    assert!(new, "a new connection still works");
    eprintln!("PodEndpoint deleted -> peer removed from the kernel in {removal:?}");
    assert!(removal < Duration::from_secs(2), "removal took {removal:?}");
    running.daemon.terminate();
    running.daemon.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sgcs_on_one_node_stay_isolated() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("gwd");
    let w = world(&mut lab, 2).await;
    let cluster = Cluster::start().await;
    let mut gws = vec![gw("gw-a", 6000, 0), gw("gw-b", 6001, 1)];
    let mut pods = Vec::new();
    for (i, g) in gws.iter_mut().enumerate() {
        let secret = g.key.expose_base64();
        cluster.gateway(g, NODE, &secret).await;
        let pod = pod_tunnel(&lab, &w, i, g).await;
        cluster
            .pod_endpoint(
                &format!("pod{i}"),
                &g.name,
                &pod_ip(i),
                &pod.private_key.public_key().to_base64(),
            )
            .await;
        pods.push(pod);
    }
    let dp = lab.daemon_dataplane();
    let running = start_daemon(
        &cluster,
        dp.clone(),
        config(NodeIdentity::computer(NODE), host(&w)),
    )
    .await;
    for g in &gws {
        wait_for("probe 200", WAIT, || probe_ok(&running, g)).await;
    }
    for (i, pod_ns) in w.pods.iter().enumerate() {
        let ns = pod_ns.clone();
        let client = blocking(move || connect_within(&ns, TCP_SERVER.parse().unwrap(), WAIT)).await;
        assert_eq!(
            client.seen_as, SECONDARY[i],
            "pod {i} leaves as its own gateway's IP"
        );
    }
    for (i, port) in [6000u16, 6001].into_iter().enumerate() {
        let observed = dp
            .wireguard
            .observe(&device(&w, port))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            observed.peers.keys().cloned().collect::<Vec<_>>(),
            vec![pods[i].private_key.public_key()],
            "each tunnel knows only its own pod"
        );
    }
    running.daemon.terminate();
    running.daemon.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_1000_peers_keeps_a_transfer_alive_with_zero_loss() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("gwd");
    let (w, cluster, a, _pod) = one_pod(&mut lab, "pod0").await;
    for n in 0..999u32 {
        let ip = Ipv4Addr::from(0x0a64_0000 + n);
        let key = PrivateKey::generate().public_key().to_base64();
        cluster
            .pod_endpoint(&format!("extra{n}"), "gw-a", &format!("{ip}/32"), &key)
            .await;
    }
    let first_dp = lab.daemon_dataplane();
    let first = start_daemon(
        &cluster,
        first_dp.clone(),
        config(NodeIdentity::computer(NODE), host(&w)),
    )
    .await;
    let dev = device(&w, 6000);
    wait_for("1000 peers", WAIT, || async {
        kernel_peers(&first_dp, &dev).await == 1000
    })
    .await;
    wait_for("probe 200", WAIT, || probe_ok(&first, &a)).await;
    let pid_before = lab.wireguard_instance(&dev).await.unwrap();
    let index = lab
        .links
        .index(&dev.netns, &dev.name)
        .await
        .unwrap()
        .unwrap();

    // A TCP transfer and a numbered UDP stream run across the restart.
    let ns = w.pods[0].clone();
    let mut client = blocking(move || connect_within(&ns, TCP_SERVER.parse().unwrap(), WAIT)).await;
    let udp = UdpStream::start(
        &w.pods[0],
        UDP_SERVER.parse().unwrap(),
        Duration::from_millis(2),
    );
    let running = Arc::new(AtomicBool::new(true));
    let (flag, lines) = (running.clone(), Arc::new(AtomicUsize::new(0)));
    let counter = lines.clone();
    let transfer = std::thread::spawn(move || -> std::io::Result<()> {
        while flag.load(Ordering::SeqCst) {
            client.echo(&format!("line {}", counter.load(Ordering::SeqCst)))?;
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    wait_for("traffic before the restart", WAIT, || async {
        udp.echoed() > 50
    })
    .await;

    let restart = Instant::now();
    first.daemon.terminate();
    first.daemon.wait().await;
    let second_dp = lab.daemon_dataplane();
    let second = start_daemon(
        &cluster,
        second_dp.clone(),
        config(NodeIdentity::computer(NODE), host(&w)),
    )
    .await;
    wait_for("probe 200 after the restart", WAIT, || {
        probe_ok(&second, &a)
    })
    .await;
    let adopted = restart.elapsed();
    let (lines_then, echoed_then) = (lines.load(Ordering::SeqCst), udp.echoed());
    wait_for("traffic after the restart", WAIT, || async {
        udp.echoed() > echoed_then + 100 && lines.load(Ordering::SeqCst) > lines_then + 50
    })
    .await;
    running.store(false, Ordering::SeqCst);
    blocking(move || transfer.join().unwrap())
        .await
        .expect("the TCP transfer broke");
    let (sent, lost) = blocking(move || udp.finish()).await;
    assert!(
        lost.is_empty(),
        "{} of {sent} datagrams lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert_eq!(kernel_peers(&second_dp, &dev).await, 1000);
    assert_eq!(
        lab.wireguard_instance(&dev).await,
        Some(pid_before),
        "the wireguard-go daemon (or kernel link) was kept"
    );
    assert_eq!(
        lab.links.index(&dev.netns, &dev.name).await.unwrap(),
        Some(index),
        "wg-6000 was not recreated"
    );
    eprintln!(
        "restart with 1,000 peers: probe back to 200 after {adopted:?}; {sent} datagrams, 0 lost"
    );
    second.daemon.terminate();
    second.daemon.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_busy_port_gives_a_clear_error_and_no_half_configured_interface() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("gwd");
    let w = world(&mut lab, 0).await;
    let cluster = Cluster::start().await;
    let mut good = gw("gw-a", 6000, 0);
    let mut bad_key = gw("gw-b", 6001, 1);
    let mut busy = gw("gw-c", 6002, 2);
    let good_secret = good.key.expose_base64();
    cluster.gateway(&mut good, NODE, &good_secret).await;
    cluster.gateway(&mut bad_key, NODE, "bm90IGEga2V5").await;
    let busy_secret = busy.key.expose_base64();
    cluster.gateway(&mut busy, NODE, &busy_secret).await;
    let squatter = egress_dataplane::netns::run_in_netns(&w.gwnode, || {
        std::net::UdpSocket::bind("0.0.0.0:6002")
    })
    .unwrap()
    .unwrap();
    let dp = lab.daemon_dataplane();
    let mut cfg = config(NodeIdentity::computer(NODE), host(&w));
    cfg.resync_interval = Duration::from_millis(1500);
    let running = start_daemon(&cluster, dp.clone(), cfg).await;
    wait_for("probe 200 for the good gateway", WAIT, || {
        probe_ok(&running, &good)
    })
    .await;
    wait_for("both Events", WAIT, || async {
        !cluster.events("InvalidGateway").await.is_empty()
            && !cluster.events("GatewayProgrammingFailed").await.is_empty()
    })
    .await;
    let (name_b, note_b) = cluster.events("InvalidGateway").await.remove(0);
    assert_eq!(name_b, "gw-b");
    assert!(
        note_b.contains("failed to read the private key in Secret")
            && note_b.contains("got 12 characters"),
        "{note_b}"
    );
    let (name_c, note_c) = cluster.events("GatewayProgrammingFailed").await.remove(0);
    assert_eq!(name_c, "gw-c");
    assert!(
        note_c.contains("UDP port 6002 is already in use"),
        "{note_c}"
    );
    for g in [&bad_key, &busy] {
        assert_eq!(
            http_get(running.probe, &format!("/gw/{}", g.uid)).await.0,
            503
        );
    }
    let gw_links = lab
        .links
        .observe(&NetnsRef::Named(w.gateway_netns.clone()))
        .await
        .unwrap();
    let tunnels: Vec<&str> = gw_links
        .links
        .keys()
        .map(|l| l.as_str())
        .filter(|l| l.starts_with("wg"))
        .collect();
    assert_eq!(tunnels, ["wg-6000"], "no half-configured interface");
    let host_links = lab.links.observe(&w.gwnode).await.unwrap();
    assert!(
        host_links
            .links
            .keys()
            .all(|l| !l.as_str().starts_with("wg")),
        "no temporary link"
    );
    for port in [6001, 6002] {
        assert_eq!(
            lab.wireguard_instance(&device(&w, port)).await,
            None,
            "no daemon for port {port}"
        );
    }
    let host0 = &gw_links.links[&name("host0")];
    assert!(
        !host0
            .addresses
            .iter()
            .any(|a| a.addr.to_string().starts_with(SECONDARY[2])),
        "the held-back gateway's secondary IP is not configured"
    );

    // Once the port is free, the next resync programs the held-back gateway.
    drop(squatter);
    wait_for("probe 200 for the freed port", WAIT, || {
        probe_ok(&running, &busy)
    })
    .await;
    running.daemon.terminate();
    running.daemon.wait().await;
}

/// The victim pod streams numbered datagrams through its tunnel while PodEndpoints forged
/// against it (its IP with a fresh key, its key on another IP, its IP "owned" by its own pod;
/// all named to sort first) arrive, full cycles run every 300 ms, and the daemon restarts:
/// not one datagram is lost, and its peer is the only one, unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_pod_endpoints_cost_the_victims_stream_nothing_through_resyncs_and_a_restart() {
    if !privileged() {
        return;
    }
    let mut lab = Lab::new("gwd");
    let (w, cluster, a, pod) = one_pod(&mut lab, "zz-victim").await;
    let victim_key = pod.private_key.public_key().to_base64();
    let mut cfg = config(NodeIdentity::computer(NODE), host(&w));
    cfg.resync_interval = Duration::from_millis(300);
    let first = start_daemon(&cluster, lab.daemon_dataplane(), cfg.clone()).await;
    wait_for("probe 200", WAIT, || probe_ok(&first, &a)).await;
    // The tunnel is up (handshake done) before the numbered stream starts.
    let ns = w.pods[0].clone();
    blocking(move || connect_within(&ns, TCP_SERVER.parse().unwrap(), WAIT)).await;
    let udp = UdpStream::start(
        &w.pods[0],
        UDP_SERVER.parse().unwrap(),
        Duration::from_millis(2),
    );
    wait_for("the victim's stream", WAIT, || async { udp.echoed() > 50 }).await;

    let expected = cluster.forge("zz-victim", &pod_ip(0), &victim_key).await;
    cluster.refusals(&expected).await;
    let cycles = sample(
        &first,
        "programming_duration_seconds_count",
        "{kind=\"full\"}",
    )
    .unwrap();
    full_cycles(&first, cycles + 3.0).await;
    // Real wireguard-go with traffic and forgeries through resyncs: nothing reads as drift.
    assert_eq!(drift_items(&first), 0.0);

    first.daemon.terminate();
    first.daemon.wait().await;
    let dp = lab.daemon_dataplane();
    let second = start_daemon(&cluster, dp.clone(), cfg).await;
    wait_for("probe 200 after the restart", WAIT, || {
        probe_ok(&second, &a)
    })
    .await;
    full_cycles(&second, 2.0).await;
    let echoed = udp.echoed();
    wait_for("the stream after the restart", WAIT, || async {
        udp.echoed() > echoed + 100
    })
    .await;
    let (sent, lost) = blocking(move || udp.finish()).await;
    assert!(
        lost.is_empty(),
        "{} of {sent} datagrams lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    let observed = dp
        .wireguard
        .observe(&device(&w, 6000))
        .await
        .unwrap()
        .unwrap();
    let peers: Vec<_> = observed
        .peers
        .iter()
        .map(|(k, p)| (k.to_base64(), p.allowed_ips.clone()))
        .collect();
    assert_eq!(
        peers,
        [(victim_key, [pod_ip(0).parse().unwrap()].into())],
        "only the victim's peer, with its own IP"
    );
    eprintln!("forgeries, 3+ resyncs and a restart: {sent} datagrams, 0 lost");
    assert_eq!(drift_items(&second), 0.0);

    // The victim's peer removed by hand from the real device: the next resync puts it back
    // and tells (metric, GatewayStatus record naming the PodEndpoint, no longer missing).
    let public = pod.private_key.public_key();
    dp.apply(&[egress_dataplane::Op::RemovePeer {
        device: device(&w, 6000),
        public_key: public.clone(),
    }])
    .await
    .unwrap();
    let removed = Instant::now();
    wait_for("the peer put back and told as drift", WAIT, || async {
        drift_items(&second) >= 1.0
    })
    .await;
    let repaired_in = removed.elapsed();
    let back = dp
        .wireguard
        .observe(&device(&w, 6000))
        .await
        .unwrap()
        .unwrap();
    assert!(back.peers.contains_key(&public));
    assert_eq!(sample(&second, "drift_total", "{kind=\"peer\"}"), Some(1.0));
    let (spec, _) = second.daemon.status().spec(10);
    let record = &spec.drift.unwrap()[0];
    assert_eq!(
        (
            record.kind.as_str(),
            record.change.as_str(),
            record.repaired
        ),
        ("peer", "missing", true)
    );
    assert_eq!(record.pod_endpoint.as_deref(), Some("default/zz-victim"));
    assert!(second.daemon.status().missing().is_empty());
    eprintln!("a peer removed by hand: put back and told in {repaired_in:?} (resync 300 ms)");
    second.daemon.terminate();
    second.daemon.wait().await;
}

/// Drifted items the daemon counted, all kinds.
fn drift_items(running: &Running) -> f64 {
    let text = running.daemon.metrics().encode().unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("egress_gateway_drift_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Seven TCP connections held open through the daemon's own SNAT (five to one port of the
/// "internet", two to another) after one UDP warm-up flow: one sample of the gateway
/// namespace's real conntrack table by the function the metrics loop runs counts exactly
/// those eight flows for the secondary IP, under the gateway its ct mark names, and the
/// busiest destination (the five) holds 5 of the SNAT port range; `/metrics` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snat_sample_of_the_real_conntrack_table_counts_per_egress_ip_and_busiest_destination() {
    if !privileged() {
        return;
    }
    const BUSY: &str = "203.0.113.1:8081";
    const QUIET: &str = "203.0.113.1:8082";
    let mut lab = Lab::new("gwd");
    let (w, cluster, a, _pod) = one_pod(&mut lab, "pod0").await;
    for addr in [BUSY, QUIET] {
        lab.echo_server(&w.inet, addr.parse().unwrap());
    }
    let running = start_daemon(
        &cluster,
        lab.daemon_dataplane(),
        config(NodeIdentity::computer(NODE), host(&w)),
    )
    .await;
    wait_for("probe 200", WAIT, || probe_ok(&running, &a)).await;
    // Warm the tunnel up over UDP: one socket, so one conntrack entry however long the
    // handshake takes (TCP retries would each leave an entry behind).
    let udp = UdpStream::start(
        &w.pods[0],
        UDP_SERVER.parse().unwrap(),
        Duration::from_millis(20),
    );
    wait_for("the warm-up datagrams", WAIT, || async { udp.echoed() > 0 }).await;
    blocking(move || udp.finish()).await;

    // One attempt each (a retry would add an entry): the tunnel is up.
    let ns = w.pods[0].clone();
    let clients = blocking(move || {
        [(BUSY, 5), (QUIET, 2)]
            .into_iter()
            .flat_map(|(addr, n)| std::iter::repeat_n(addr, n))
            .map(|addr| Client::connect(&ns, addr.parse().unwrap(), WAIT).unwrap())
            .collect::<Vec<_>>()
    })
    .await;
    assert!(clients.iter().all(|c| c.seen_as == SECONDARY[0]));
    let started = Instant::now();

    let gateway_netns = NetnsRef::Named(w.gateway_netns.clone());
    let flows = egress_dataplane::netns::run_in_netns(&gateway_netns, dump)
        .unwrap()
        .unwrap();
    let egress: std::net::IpAddr = SECONDARY[0].parse().unwrap();
    let snated: Vec<_> = flows.iter().filter(|f| f.reply_dst == egress).collect();
    assert_eq!(snated.len(), 8, "5 + 2 TCP and the UDP warm-up: {flows:#?}");
    assert!(
        snated.iter().all(|f| f.mark == 6000),
        "ct mark = port: {snated:#?}"
    );

    eprintln!(
        "conntrack dump of the gateway namespace: {} entries in {:?}",
        flows.len(),
        started.elapsed()
    );

    let metrics = Metrics::new();
    let summary = sample_once(&gateway_netns, running.daemon.status(), &metrics)
        .await
        .unwrap();
    let labels = SnatLabels {
        gateway: "default/gw-a".into(),
        egress_ip: SECONDARY[0].into(),
    };
    assert_eq!(summary.keys().collect::<Vec<_>>(), [&labels], "{summary:?}");
    let (entries, share) = summary[&labels];
    assert_eq!(entries, 8);
    assert_eq!(share, 5.0 / f64::from(SNAT_PORTS));
    let series = format!(
        "{{gateway=\"default/gw-a\",egress_ip=\"{}\"}}",
        SECONDARY[0]
    );
    let text = metrics.encode().unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("egress_gateway_{name}{series} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    assert_eq!(value("snat_conntrack_entries"), Some(8.0), "{text}");
    assert_eq!(value("snat_port_usage_ratio"), Some(share), "{text}");
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("egress_gateway_conntrack_entries "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(total.is_some_and(|t| t >= 8.0), "{text}");

    // The daemon's own loop (every 200 ms here) reports the same in its registry.
    wait_for("the SNAT series in the daemon's metrics", WAIT, || async {
        sample(&running, "snat_conntrack_entries", &series) == Some(8.0)
            && sample(&running, "snat_port_usage_ratio", &series) == Some(share)
    })
    .await;
    drop(clients);
    running.daemon.terminate();
    running.daemon.wait().await;
}
