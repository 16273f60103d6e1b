//! Privileged end-to-end test of the tunnel (root; throwaway namespaces; documentation and
//! private addresses only), with wireguard-go, or kernel WireGuard for the plugin and the
//! gateway with `EGRESS_WIREGUARD_BACKEND=kernel` (inside User-Mode Linux):
//!
//! ```text
//!  pod<i> eth0 10.99.8.x (ptp) ── node (plays the host; plugin + wireguard-go run here)
//!                                  eth0 192.0.2.2 ── pn0 192.0.2.1  inet  gw0 198.51.100.1 ── eth0 198.51.100.4  gwnode
//!                                  echo :8081        lo 203.0.113.1 echo :8080                ILB 198.51.100.100, wg-6000
//!                                                                                             gateway netns: SNAT to 198.51.100.10
//! ```
//! The real `ptp` plugin, then the real `kube-egress-cni` binary, against a real
//! egress-cni-manager and the in-memory API server; the gateway is egress-dataplane's
//! `GatewayNodeState`, reprogrammed from a watch on PodEndpoints as the gateway daemon does.
//! Checks: the FIRST connection of an annotated pod leaves with the egress IP; excluded CIDRs
//! use eth0; azureNetworking only tunnels the SGC's CIDRs; ingress still works; CHECK sees
//! drift; a gateway that never answers gives 103 and a clean pod; DEL leaves nothing behind.
//! Also prints the ADD durations used in docs/cni.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::gateway::{
    EGRESS_IP, ILB, INTERNET, PORT, gateway_node, seen_from, serve_gateway, world,
};
use common::{Control, PTP, cni, k8s_args, our_conf, privileged, ptp_conf};
use egress_dataplane::state::GatewayTunnel;
use egress_dataplane::{InterfaceName, PrivateKey};
use egress_testkit::{EchoServer, Netns, ip, ip_out, wireguard_go_running};
use serde_json::{Value, json};

const NODE_SERVER: &str = "192.0.2.2:8081";
/// A client address of the node that no pod route covers except the default one.
const INGRESS_CLIENT: &str = "198.18.0.7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_pods_leave_with_the_egress_ip_from_their_first_connection() {
    if !privileged() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kube-egress-cni").to_string();
    let tmp = tempfile::tempdir().unwrap();
    let w = world("kec-t");
    ip(&[
        "-n",
        &w.node.0,
        "addr",
        "add",
        &format!("{INGRESS_CLIENT}/32"),
        "dev",
        "lo",
    ]);

    // Gateway node.
    let key = PrivateKey::generate();
    let gw_pub = key.public_key().to_base64();
    let tunnel = move || GatewayTunnel::new(PORT, key.clone(), EGRESS_IP.parse().unwrap()).unwrap();
    let (dp, _gw_guard, node) = gateway_node(&w, &tmp.path().join("gw-logs"), tunnel()).await;

    // Control plane: the SGCs all point at this gateway except `sgc-deaf` (nobody holds its key).
    let mut control = Control::start(tmp.path()).await;
    let deaf_key = PrivateKey::generate().public_key().to_base64();
    control
        .sgc(
            "sgc-static",
            "staticEgressGateway",
            &["192.0.2.0/24"],
            Some((ILB, PORT, &gw_pub)),
        )
        .await;
    control
        .sgc(
            "sgc-azure",
            "azureNetworking",
            &["203.0.113.0/24"],
            Some((ILB, PORT, &gw_pub)),
        )
        .await;
    control
        .sgc(
            "sgc-deaf",
            "staticEgressGateway",
            &[],
            Some((ILB, PORT, &deaf_key)),
        )
        .await;
    for (pod, sgc) in [
        ("web1", "sgc-static"),
        ("web2", "sgc-azure"),
        ("deaf", "sgc-deaf"),
    ] {
        control.pod(pod, Some(sgc)).await;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let gateway = tokio::spawn(serve_gateway(
        control.client.clone(),
        dp.clone(),
        node,
        tunnel,
        &["sgc-static", "sgc-azure"],
        stop_rx,
    ));

    let _internet = EchoServer::start(&w.inet.netns_ref(), INTERNET.parse().unwrap());
    let _node_server = EchoServer::start(&w.node.netns_ref(), NODE_SERVER.parse().unwrap());
    let socket = control.socket.clone();
    let state = tmp.path().join("state");
    let runs: usize = std::env::var("EGRESS_CNI_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    let (w, tmp) = tokio::task::spawn_blocking(move || {
        let ptp = ptp_conf("10.99.8.0/24", tmp.path());
        let conf = |prev: &Value, extra: Value| {
            our_conf(&socket, &state, prev, extra)
        };
        let node_ns = &w.node;
        let pod_add = |tag: &str, id: &str, pod: &str, extra: Value| {
            let ns = Netns::new(&format!("kec-{tag}"));
            let (ok, prev, ptp_took) = cni(node_ns, PTP, "ADD", id, &ns, "", &ptp);
            assert!(ok, "ptp ADD: {prev}");
            let prev: Value = serde_json::from_str(&prev).unwrap();
            let clean = ns.snapshot();
            let (ok, out, took) = cni(node_ns, &bin, "ADD", id, &ns, &k8s_args(pod), &conf(&prev, extra));
            (ns, prev, clean, ok, out, ptp_took, took)
        };
        let pod_ip = |prev: &Value| -> String {
            prev["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_owned()
        };

        // staticEgressGateway: the first connection already leaves with the egress IP.
        let (pod1, prev1, _, ok, out, ptp_took, took) = pod_add("tpod1", "ctr-web1", "web1", json!({"excludedCIDRs": ["169.254.169.254/32"]}));
        assert!(ok, "ADD web1: {out}");
        eprintln!("web1: ptp ADD {ptp_took:?}, kube-egress-cni ADD {took:?}");
        let result: Value = serde_json::from_str(&out).unwrap();
        let wg0 = result["interfaces"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((wg0["name"].as_str(), wg0["sandbox"].as_str()), (Some("wg0"), Some(pod1.path().as_str())));
        let ip1 = pod_ip(&prev1);
        assert_eq!(seen_from(&pod1.netns_ref(), INTERNET).unwrap(), EGRESS_IP, "first connection");
        // An excluded CIDR goes via eth0 and keeps the pod's address.
        assert_eq!(seen_from(&pod1.netns_ref(), NODE_SERVER).unwrap(), ip1);
        // MTU: 1500-byte underlay minus WireGuard's 80 bytes over IPv6 (60 over IPv4).
        assert!(ip_out(&["-n", &pod1.0, "link", "show", "wg0"]).contains("mtu 1420"));
        // Ingress: a connection from a node address the tunnel would capture is answered via eth0.
        let host_veth = prev1["interfaces"][0]["name"].as_str().unwrap().to_owned();
        ip(&["-n", &node_ns.0, "route", "replace", &format!("{ip1}/32"), "dev", &host_veth, "src", INGRESS_CLIENT]);
        let pod_server = EchoServer::start(&pod1.netns_ref(), format!("{ip1}:8082").parse().unwrap());
        assert_eq!(seen_from(&node_ns.netns_ref(), &format!("{ip1}:8082")).unwrap(), INGRESS_CLIENT);
        drop(pod_server);
        // CHECK: clean, then drift named.
        let (ok, out, _) = cni(node_ns, &bin, "CHECK", "ctr-web1", &pod1, &k8s_args("web1"), &conf(&result, json!({})));
        assert!(ok, "CHECK: {out}");
        ip(&["-n", &pod1.0, "rule", "del", "fwmark", "0x2222", "lookup", "8738"]);
        let (ok, out, _) = cni(node_ns, &bin, "CHECK", "ctr-web1", &pod1, &k8s_args("web1"), &conf(&result, json!({})));
        assert!(!ok);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], 105, "{out}");
        assert!(v["details"].as_str().unwrap().contains("fwmark 0x2222 lookup 8738"), "{out}");

        // azureNetworking: only the SGC's CIDRs use the tunnel; the default route stays.
        let (pod2, prev2, _, ok, out, _, took) = pod_add("tpod2", "ctr-web2", "web2", json!({}));
        assert!(ok, "ADD web2: {out}");
        eprintln!("web2 (azureNetworking): kube-egress-cni ADD {took:?}");
        assert_eq!(seen_from(&pod2.netns_ref(), INTERNET).unwrap(), EGRESS_IP);
        assert_eq!(
            seen_from(&pod2.netns_ref(), NODE_SERVER).unwrap_or_else(|e| panic!("{e}\n{}", pod2.snapshot())),
            pod_ip(&prev2)
        );
        assert!(ip_out(&["-n", &pod2.0, "route", "show", "default"]).contains("dev eth0"));

        // A gateway that never answers: 103 after the timeout, the pod as ptp made it.
        let (pod3, _, clean3, ok, out, _, took) = pod_add("tpod3", "ctr-deaf", "deaf", json!({"handshakeTimeoutSeconds": 1.5}));
        assert!(!ok, "ADD deaf succeeded: {out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], 103, "{out}");
        assert!(v["details"].as_str().unwrap().contains(&format!("no WireGuard handshake with gateway sgc-deaf at {ILB}:{PORT} within 1.5s")), "{out}");
        assert!(took < Duration::from_secs(4), "{took:?}");
        assert_eq!(pod3.snapshot(), clean3);
        let deaf_name = InterfaceName::for_pod_socket("ctr-deaf");
        assert!(!wireguard_go_running(&deaf_name));
        assert!(!Path::new(&format!("/run/wireguard/{deaf_name}.sock")).exists());

        // DEL leaves nothing: no wg0, rule, table 8738, nft table, daemon, socket, log, record.
        for (ns, id, pod, prev) in [(&pod1, "ctr-web1", "web1", &prev1), (&pod2, "ctr-web2", "web2", &prev2)] {
            for _ in 0..2 {
                let (ok, out, _) = cni(node_ns, &bin, "DEL", id, ns, &k8s_args(pod), &conf(prev, json!({})));
                assert!(ok, "DEL {pod}: {out}");
            }
            let snap = ns.snapshot();
            for needle in ["wg0", "8738", "0x2222", "egress_pod"] {
                assert!(!snap.contains(needle), "{pod}: {needle} left in\n{snap}");
            }
            let name = InterfaceName::for_pod_socket(id);
            assert!(!wireguard_go_running(&name), "{pod}: wireguard-go {name} still running");
            assert!(!Path::new(&format!("/run/wireguard/{name}.sock")).exists());
            assert!(!state.join("wireguard-go").join(format!("{name}.log")).exists());
            assert!(!state.join(format!("{id}.json")).exists());
            assert!(!ip_out(&["-n", &node_ns.0, "link"]).contains(name.as_str()));
            let (ok, out, _) = cni(node_ns, PTP, "DEL", id, ns, "", &ptp);
            assert!(ok, "ptp DEL: {out}");
        }
        let (ok, out, _) = cni(node_ns, PTP, "DEL", "ctr-deaf", &pod3, "", &ptp);
        assert!(ok, "ptp DEL: {out}");

        // Added start-up time of an annotated pod: fresh namespace each run.
        let mut ptp_ms = Vec::new();
        let mut ours_ms = Vec::new();
        for run in 0..runs {
            let id = format!("ctr-bench{run}");
            let (ns, prev, _, ok, out, ptp_took, took) = pod_add(&format!("tb{run}"), &id, "web1", json!({}));
            assert!(ok, "bench ADD: {out}");
            assert_eq!(seen_from(&ns.netns_ref(), INTERNET).unwrap(), EGRESS_IP);
            ptp_ms.push(ptp_took.as_secs_f64() * 1e3);
            ours_ms.push(took.as_secs_f64() * 1e3);
            let (ok, _, _) = cni(node_ns, &bin, "DEL", &id, &ns, &k8s_args("web1"), &conf(&prev, json!({})));
            assert!(ok);
            cni(node_ns, PTP, "DEL", &id, &ns, "", &ptp);
        }
        let stats = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            (s.iter().sum::<f64>() / s.len() as f64, s[s.len() / 2], s[s.len() - 1])
        };
        eprintln!("BENCH runs={runs} ptp ADD ms (mean, median, max) = {:?}; kube-egress-cni ADD ms = {:?}", stats(&ptp_ms), stats(&ours_ms));
        (w, tmp)
    })
    .await
    .unwrap();
    let _ = stop_tx.send(true);
    gateway.await.unwrap();
    control.shutdown().await;
    drop((w, tmp));
}
