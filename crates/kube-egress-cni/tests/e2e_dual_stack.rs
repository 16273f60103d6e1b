//! Privileged end-to-end test of a dual-stack pod (issue 20; root; throwaway namespaces;
//! documentation and private addresses only), with the same pieces as `e2e_tunnel.rs`: the
//! real `ptp` plugin (dual-stack host-local IPAM), then the real `kube-egress-cni` binary,
//! against a real egress-cni-manager and the in-memory API server; the gateway is
//! egress-dataplane's dual-stack `GatewayNodeState`, reprogrammed from PodEndpoints.
//!
//! ```text
//!  pod<i> eth0 10.99.9.x fd00:99:9::x (ptp) ── node eth0 192.0.2.2 2001:db8:2::2 ── pn0  inet
//!                                               gw0 198.51.100.1 2001:db8:64::1 ── eth0 gwnode 198.51.100.4 2001:db8:64::4
//!  inet lo: 203.0.113.1, 2001:db8:e0::1 (the internet), 2001:db8:ee::1 (excluded)
//!  gateway SNAT: 198.51.100.10 and 2001:db8:64::10
//! ```
//! Checks: a pod of a dual-stack SGC leaves from the gateway's IPv6 (and IPv4) on its first
//! connection, through `wg0`; an excluded IPv6 CIDR goes via `eth0` with the pod's own IPv6;
//! its PodEndpoint carries the `/128`. A dual-stack pod of an IPv4-only SGC keeps every IPv6
//! route the main plugin made and leaves from its own IPv6. In azureNetworking mode only the
//! SGC's IPv6 CIDR goes through the gateway. DEL removes the IPv6 exclusion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::gateway::{
    EGRESS_IP, ILB, INTERNET, PORT, World, gateway_node, seen_from, serve_gateway, sysctl, world,
};
use common::{Control, PTP, cni, k8s_args, our_conf, privileged};
use egress_api::PodEndpoint;
use egress_dataplane::PrivateKey;
use egress_dataplane::state::GatewayTunnel;
use egress_testkit::{EchoServer, Netns, ip, ip_out};
use kube::Api;
use serde_json::{Value, json};

const EGRESS_IPV6: &str = "2001:db8:64::10";
const INTERNET6: &str = "[2001:db8:e0::1]:8080";
const EXCLUDED6: &str = "[2001:db8:ee::1]:8083";
const EXCLUDED6_CIDR: &str = "2001:db8:ee::/48";

fn seen(ns: &Netns, addr: &str) -> String {
    seen_from(&ns.netns_ref(), addr).unwrap_or_else(|e| panic!("{e}\n{}", ip6_routes(ns)))
}

fn ip6_routes(ns: &Netns) -> String {
    ip_out(&["-n", &ns.0, "-6", "route", "show", "table", "all"])
}

fn gateway_tunnel(key: &PrivateKey) -> GatewayTunnel {
    GatewayTunnel::new(PORT, key.clone(), EGRESS_IP.parse().unwrap())
        .unwrap()
        .with_secondary_ipv6(EGRESS_IPV6.parse().unwrap())
        .unwrap()
}

/// [`world`] made dual-stack: IPv6 beside every IPv4 address and route, the IPv6
/// "internet" and excluded servers on `inet`, and the pods' IPv6 subnet routed to the node.
fn dual_stack_world() -> World {
    let w = world("kec6-");
    let (n, i, g) = (&w.node.0, &w.inet.0, &w.gwnode.0);
    for (ns, dev, v6) in [
        (n, "eth0", "2001:db8:2::2/64"),
        (i, "pn0", "2001:db8:2::1/64"),
        (g, "eth0", "2001:db8:64::4/64"),
        (i, "gw0", "2001:db8:64::1/64"),
        (i, "lo", "2001:db8:e0::1/128"),
        (i, "lo", "2001:db8:ee::1/128"),
    ] {
        ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
    }
    for (ns, via, dst) in [
        (n, "2001:db8:2::1", "default"),
        (g, "2001:db8:64::1", "default"),
        // The "VNet" delivers the gateway node's secondary IPv6 to it, and the pods' own
        // addresses (excluded destinations) to their node.
        (i, "2001:db8:64::4", "2001:db8:64::10/128"),
        (i, "2001:db8:2::2", "fd00:99:9::/64"),
    ] {
        ip(&["-n", ns, "-6", "route", "add", dst, "via", via]);
    }
    sysctl(&[n, i], "net.ipv6.conf.all.forwarding=1");
    w
}

/// A dual-stack ptp network with host-local IPAM, state under `dir`.
fn ptp_dual_conf(dir: &std::path::Path) -> String {
    json!({"cniVersion": "1.0.0", "name": "kectest6", "type": "ptp",
        "ipam": {"type": "host-local", "dataDir": dir.join("ipam6"),
                 "ranges": [[{"subnet": "10.99.9.0/24"}], [{"subnet": "fd00:99:9::/64"}]],
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}})
    .to_string()
}

/// The pod's IPv6 address from ptp's result.
fn pod_ipv6(prev: &Value) -> String {
    prev["ips"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["address"].as_str())
        .find(|a| a.contains(':'))
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_pod_leaves_from_the_gateways_ipv6_and_excludes_bypass_the_tunnel() {
    if !privileged() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kube-egress-cni").to_string();
    let tmp = tempfile::tempdir().unwrap();
    let w = dual_stack_world();

    let key = PrivateKey::generate();
    let gw_pub = key.public_key().to_base64();
    let (dp, _gw_guard, node) =
        gateway_node(&w, &tmp.path().join("gw-logs"), gateway_tunnel(&key)).await;

    let mut control = Control::start(tmp.path()).await;
    for sgc in ["sgc-dual", "sgc-v4"] {
        control
            .sgc(
                sgc,
                "staticEgressGateway",
                &["192.0.2.0/24", EXCLUDED6_CIDR],
                Some((ILB, PORT, &gw_pub)),
            )
            .await;
    }
    control
        .sgc(
            "sgc-az",
            "azureNetworking",
            &["2001:db8:e0::/48"],
            Some((ILB, PORT, &gw_pub)),
        )
        .await;
    for sgc in ["sgc-dual", "sgc-az"] {
        control.dual_stack(sgc, "2001:db8:64::10/128").await;
    }
    control.pod("dual", Some("sgc-dual")).await;
    control.pod("az", Some("sgc-az")).await;
    control.pod("v4", Some("sgc-v4")).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let gateway = tokio::spawn(serve_gateway(
        control.client.clone(),
        dp.clone(),
        node,
        move || gateway_tunnel(&key),
        &["sgc-dual", "sgc-v4", "sgc-az"],
        stop_rx,
    ));

    let _servers = [INTERNET, INTERNET6, EXCLUDED6]
        .map(|a| EchoServer::start(&w.inet.netns_ref(), a.parse().unwrap()));
    let socket = control.socket.clone();
    let state = tmp.path().join("state");
    let client = control.client.clone();

    let (w, tmp, v6_of) = tokio::task::spawn_blocking(move || {
        let ptp = ptp_dual_conf(tmp.path());
        let node_ns = &w.node;
        let pod_add = |tag: &str, id: &str, pod: &str| {
            let ns = Netns::new(&format!("kec6-{tag}"));
            let (ok, prev, _) = cni(node_ns, PTP, "ADD", id, &ns, "", &ptp);
            assert!(ok, "ptp ADD: {prev}");
            let prev: Value = serde_json::from_str(&prev).unwrap();
            let before = ip6_routes(&ns);
            let conf = our_conf(&socket, &state, &prev, json!({}));
            let (ok, out, _) = cni(node_ns, &bin, "ADD", id, &ns, &k8s_args(pod), &conf);
            assert!(ok, "ADD {pod}: {out}");
            (ns, prev, before, conf)
        };

        // A dual-stack SGC: the first connection of each family leaves from the gateway.
        let (dual, prev, _, conf) = pod_add("pdual", "ctr-dual", "dual");
        assert_eq!(seen(&dual, INTERNET6), EGRESS_IPV6, "first IPv6 connection");
        assert_eq!(seen(&dual, INTERNET), EGRESS_IP);
        let route = ip_out(&["-n", &dual.0, "-6", "route", "get", "2001:db8:e0::1"]);
        assert!(route.contains("dev wg0"), "{route}");
        // The excluded IPv6 CIDR goes via eth0 and keeps the pod's own IPv6.
        let own = pod_ipv6(&prev);
        assert_eq!(seen(&dual, EXCLUDED6), own);
        assert!(ip6_routes(&dual).contains(&format!("{EXCLUDED6_CIDR} via")));
        // CHECK finds nothing to say about a pod just set up.
        let (ok, out, _) = cni(
            node_ns,
            &bin,
            "CHECK",
            "ctr-dual",
            &dual,
            &k8s_args("dual"),
            &conf,
        );
        assert!(ok, "CHECK: {out}");

        // An IPv4-only SGC: every IPv6 route stays as ptp made it; IPv6 leaves from the pod.
        let (v4, prev4, before, conf4) = pod_add("pv4", "ctr-v4", "v4");
        // (The kernel's own link-local and multicast routes of the new wg0 aside.)
        let without_wg0 = |routes: String| -> Vec<String> {
            routes
                .lines()
                .filter(|l| !l.contains("dev wg0"))
                .map(String::from)
                .collect()
        };
        assert!(
            before.contains("default via fd00:99:9::1 dev eth0"),
            "{before}"
        );
        assert_eq!(
            without_wg0(ip6_routes(&v4)),
            without_wg0(before),
            "IPv6 routes changed"
        );
        assert_eq!(seen(&v4, INTERNET), EGRESS_IP);
        assert_eq!(seen(&v4, INTERNET6), pod_ipv6(&prev4));

        // azureNetworking: only the SGC's IPv6 CIDR goes through the tunnel.
        let (az, prev_az, _, conf_az) = pod_add("paz", "ctr-az", "az");
        assert_eq!(seen(&az, INTERNET6), EGRESS_IPV6);
        assert_eq!(seen(&az, EXCLUDED6), pod_ipv6(&prev_az));
        assert!(ip6_routes(&az).contains("default via fd00:99:9::1 dev eth0"));

        // DEL removes the IPv6 exclusion with the tunnel.
        for (ns, id, pod, conf) in [
            (&dual, "ctr-dual", "dual", &conf),
            (&v4, "ctr-v4", "v4", &conf4),
            (&az, "ctr-az", "az", &conf_az),
        ] {
            let (ok, out, _) = cni(node_ns, &bin, "DEL", id, ns, &k8s_args(pod), conf);
            assert!(ok, "DEL {pod}: {out}");
            let routes = ip6_routes(ns);
            assert!(
                !routes.contains("wg0") && !routes.contains(EXCLUDED6_CIDR),
                "{routes}"
            );
        }
        for (ns, id) in [(&dual, "ctr-dual"), (&v4, "ctr-v4"), (&az, "ctr-az")] {
            let (ok, out, _) = cni(node_ns, PTP, "DEL", id, ns, "", &ptp);
            assert!(ok, "ptp DEL: {out}");
        }
        (w, tmp, own)
    })
    .await
    .unwrap();
    // The PodEndpoint of the dual-stack pod carried its /128 (DEL removed it; the gateway
    // loop saw it, or the first IPv6 connection could not have left from the gateway).
    let pes: Api<PodEndpoint> = Api::namespaced(client, "ns1");
    assert!(pes.get_opt("dual").await.unwrap().is_none());
    assert!(v6_of.starts_with("fd00:99:9::"), "{v6_of}");
    let _ = stop_tx.send(true);
    gateway.await.unwrap();
    control.shutdown().await;
    drop((w, tmp));
}
