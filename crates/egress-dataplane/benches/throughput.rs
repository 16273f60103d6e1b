//! Tunnel throughput benchmark (root, iperf3): TCP from a pod to the "internet" namespace of
//! egress-testkit's two-node topology over three paths, each measured `RUNS` times (median):
//!
//! 1. plain routing: pod → pod node → internet, no tunnel, no NAT;
//! 2. the egress path as the library programs it: pod → WireGuard → gateway namespace → SNAT
//!    to the secondary IP → gateway node → internet;
//! 3. the same tunnel without any SNAT (the gateway's and the node's NAT tables removed and
//!    return routes added), to separate the cost of NAT from the cost of the tunnel.
//!
//! The backend comes from `EGRESS_WIREGUARD_BACKEND` (`make bench` runs it with `kernel`
//! inside User-Mode Linux). Prints one Markdown table with Mbit/s and ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use egress_dataplane::state::GatewayTunnel;
use egress_dataplane::{
    GatewayNodeState, NetnsRef, Peer, PrivateKey, RouteSpec, observe_request_for_gateway_node,
    observe_request_for_pod, plan_gateway_node, plan_pod,
};
use egress_testkit::topology::{INTERNET, PRIMARY};
use egress_testkit::{Lab, backend, connect_within, name, run_in_netns};

const SECONDARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const ILB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const POD: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 10);
const PORT: u16 = 6000;
const IPERF_PORT: u16 = 5201;

fn runs() -> usize {
    std::env::var("EGRESS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn seconds() -> u32 {
    std::env::var("EGRESS_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// `iperf3 -s` inside `ns`, killed on drop.
struct Server(Child);

impl Server {
    fn start(ns: &NetnsRef) -> Self {
        let child = run_in_netns(ns, || {
            Command::new("iperf3")
                .args([
                    "-s",
                    "-B",
                    &INTERNET.to_string(),
                    "-p",
                    &IPERF_PORT.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .unwrap()
        .unwrap();
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Median receive rate in Mbit/s of `runs()` iperf3 runs from `ns`.
fn iperf(ns: &NetnsRef) -> f64 {
    let mut rates: Vec<f64> = (0..runs())
        .map(|_| {
            let out = run_in_netns(ns, || {
                Command::new("iperf3")
                    .args(["-c", &INTERNET.to_string(), "-p", &IPERF_PORT.to_string()])
                    .args(["-t", &seconds().to_string(), "-J"])
                    .output()
            })
            .unwrap()
            .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "iperf3 output: {e}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            let bps = v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or_else(|| panic!("iperf3 failed: {v}"));
            bps / 1e6
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The source address the internet's echo server sees for a connection from `ns` (retried
/// while a fresh tunnel handshakes).
async fn seen_as(ns: &NetnsRef) -> String {
    let ns = ns.clone();
    tokio::task::spawn_blocking(move || {
        connect_within(
            &ns,
            SocketAddr::from((INTERNET, 8080)),
            Duration::from_secs(10),
        )
        .seen_as
    })
    .await
    .unwrap()
}

fn ip(ns: &NetnsRef, args: &[&str]) -> String {
    let NetnsRef::Named(name) = ns else {
        panic!("named namespace expected")
    };
    let out = Command::new("ip")
        .args(["-n", name.as_str()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: the throughput benchmark needs root (network namespaces)");
        return;
    }
    egress_testkit::require_tools(
        &["iperf3"],
        "apt-get install -y --no-install-recommends iperf3",
    );
    let mut lab = Lab::new("tput");
    let w = lab.egress_world(1, &[SECONDARY]).await;
    let pod_ns = w.pods[0].clone();
    let _server = Server::start(&w.inet);
    // A TCP server for connect_within's readiness check of the tunnel.
    lab.echo_server(&w.inet, SocketAddr::from((INTERNET, 8080)));

    // 1. Plain routing: the internet routes the pod subnet back to the pod node.
    lab.route(
        &w.inet,
        RouteSpec::via(
            "10.244.1.0/24".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            name("pn0"),
        ),
    )
    .await;
    let plain = iperf(&pod_ns);

    // 2. The egress path, programmed by the library.
    let key = PrivateKey::generate();
    let pod = w.pod_tunnel(0, key.public_key(), SocketAddr::from((ILB, PORT)));
    let mut node = GatewayNodeState::new(w.gwnode.clone(), name("eth0"), PRIMARY).unwrap();
    node.gateway_netns = w.gateway_netns.clone();
    node.ilb_addresses.insert(ILB);
    let mut gw = GatewayTunnel::new(PORT, key, SECONDARY).unwrap();
    gw.upsert_peer(Peer {
        public_key: pod.private_key.public_key(),
        allowed_ips: [format!("{POD}/32").parse().unwrap()].into(),
        endpoint: None,
    })
    .unwrap();
    node.add_gateway(gw).unwrap();
    let dp = &lab.dataplane;
    let observed = dp
        .observe(&observe_request_for_gateway_node(&node))
        .await
        .unwrap();
    dp.apply(&plan_gateway_node(&node, &observed))
        .await
        .unwrap();
    let observed = dp.observe(&observe_request_for_pod(&pod)).await.unwrap();
    dp.apply(&plan_pod(&pod, &observed)).await.unwrap();
    let seen = seen_as(&pod_ns).await;
    assert_eq!(
        seen,
        SECONDARY.to_string(),
        "the tunnel path SNATs to the secondary IP"
    );
    let snat = iperf(&pod_ns);

    // 3. The same tunnel without NAT: drop the gateway's SNAT and the node's masquerade, and
    //    route the pod's address back through the gateway namespace.
    let gateway_ns = node.gateway_netns_ref();
    run_in_netns(&gateway_ns, || {
        Command::new("nft")
            .args(["delete", "table", "ip", "egress_gateway"])
            .status()
    })
    .unwrap()
    .unwrap();
    run_in_netns(&w.gwnode, || {
        Command::new("nft")
            .args(["delete", "table", "ip", "test_node_masq"])
            .status()
    })
    .unwrap()
    .unwrap();
    // The gateway namespace owns the secondary IP on host0: the node reaches the pod via it.
    ip(
        &w.gwnode,
        &[
            "route",
            "add",
            &format!("{POD}/32"),
            "via",
            &SECONDARY.to_string(),
            "dev",
            "host-gateway",
        ],
    );
    ip(
        &w.inet,
        &[
            "route",
            "replace",
            &format!("{POD}/32"),
            "via",
            &PRIMARY.to_string(),
        ],
    );
    let seen = seen_as(&pod_ns).await;
    assert_eq!(seen, POD.to_string(), "without NAT the server sees the pod");
    let tunnel = iperf(&pod_ns);

    println!(
        "\n## Tunnel throughput, {} backend (iperf3 TCP, {} s, median of {})\n",
        backend().as_str(),
        seconds(),
        runs()
    );
    println!("| path | Mbit/s | vs plain routing | vs tunnel without SNAT |");
    println!("|---|---:|---:|---:|");
    println!("| plain routing (pod → node → internet) | {plain:.0} | 1.00 | |");
    println!(
        "| tunnel, no SNAT | {tunnel:.0} | {:.3} | 1.00 |",
        tunnel / plain
    );
    println!(
        "| tunnel + SNAT (the egress path) | {snat:.0} | {:.3} | {:.3} |",
        snat / plain,
        snat / tunnel
    );
}
