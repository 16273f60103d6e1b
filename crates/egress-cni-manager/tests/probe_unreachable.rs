//! Privileged: the CNI manager's gateway probe sees a node whose network is gone at its next
//! probe, on the connection it keeps alive, instead of at its timeout. Three namespaces
//! (manager — router — gateway, documentation addresses); the gateway's link on the router
//! goes down and its address becomes unreachable there, so the router answers the probe's
//! next segment with ICMP host unreachable. Run as root; prints SKIPPED and passes otherwise
//! (and fails under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use egress_cni_manager::failover::health::SgcRef;
use egress_cni_manager::failover::prober::{ProbeSettings, Prober};
use egress_testkit::{Netns, ip, is_root, run_in_netns, skip};

const MANAGER: &str = "192.0.2.2";
const GATEWAY: &str = "192.0.2.130";
/// Far above what the test waits for: a probe that fails only by timing out fails the test.
const TIMEOUT: Duration = Duration::from_secs(5);

fn wire(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    ip(&[
        "-n", &a.0, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.0,
    ]);
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        ip(&["-n", &ns.0, "addr", "add", addr, "dev", ifname]);
        ip(&["-n", &ns.0, "link", "set", ifname, "up"]);
    }
}

#[test]
fn a_kept_alive_probe_fails_on_the_networks_unreachable_not_its_timeout() {
    if !is_root() {
        skip("the probe ICMP test needs root (network namespaces)");
        return;
    }
    let manager = Netns::new("pim");
    let router = Netns::new("pir");
    let gateway = Netns::new("pig");
    wire(
        &manager,
        "m0",
        &format!("{MANAGER}/25"),
        &router,
        "r0",
        "192.0.2.1/25",
    );
    wire(
        &router,
        "r1",
        "192.0.2.129/25",
        &gateway,
        "g0",
        &format!("{GATEWAY}/25"),
    );
    ip(&[
        "-n",
        &manager.0,
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
    ]);
    ip(&[
        "-n",
        &gateway.0,
        "route",
        "add",
        "default",
        "via",
        "192.0.2.129",
    ]);
    let fwd = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &router.0,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .unwrap();
    assert!(fwd.success());

    // The gateway's probe endpoint: a listener made in its namespace, served from here.
    let listener = run_in_netns(&gateway.netns_ref(), || {
        std::net::TcpListener::bind((GATEWAY, 0)).unwrap()
    })
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            egress_runtime::serve(
                l,
                |_| (hyper::StatusCode::OK, "text/plain", String::new()),
                std::future::pending(),
            )
            .await;
        });
    });

    let router_name = router.0.clone();
    let waited = run_in_netns(&manager.netns_ref(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let settings = ProbeSettings {
                port,
                interval: Duration::from_millis(200),
                timeout: TIMEOUT,
            };
            let mut prober = Prober::new(settings, tx);
            let node: IpAddr = GATEWAY.parse().unwrap();
            prober.sync(&[(SgcRef::new("ns", "gw"), "uid".to_string(), node)].into());
            // A few answers on the kept-alive connection first.
            for _ in 0..3 {
                let r = tokio::time::timeout(TIMEOUT, rx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                assert!(r.up, "{r:?}");
            }
            ip(&["-n", &router_name, "link", "set", "r1", "down"]);
            ip(&[
                "-n",
                &router_name,
                "route",
                "replace",
                "unreachable",
                &format!("{GATEWAY}/32"),
            ]);
            let gone = Instant::now();
            loop {
                let r = tokio::time::timeout(TIMEOUT * 2, rx.recv())
                    .await
                    .expect("a probe result")
                    .unwrap();
                if !r.up {
                    return gone.elapsed();
                }
            }
        })
    })
    .unwrap();
    // The next probe (within 200 ms) plus one retransmission (~200 ms, the first ICMP meets
    // the socket busy sending); a probe that waited for its timeout took 5 s.
    assert!(
        waited < Duration::from_secs(2),
        "the probe saw the unreachable node after {waited:?} (its timeout is {TIMEOUT:?})"
    );
}
