//! Privileged end-to-end test of every refusal (root, throwaway namespaces, 10.99.0.0/16
//! only): the real `ptp` reference plugin sets the pod up inside a throwaway "node"
//! namespace, then the real `kube-egress-cni` binary runs against a real egress-cni-manager
//! and the in-memory API server. Pods without the annotation pass through; malformed stdin,
//! a bad field, a missing prevResult, an unknown SGC, an unready SGC and a dead manager each
//! fail with a specific CNI error and leave the pod namespace exactly as ptp made it, with no
//! wireguard-go daemon started. Skipped (with a message) when not root or a tool is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Control, PTP, cni, k8s_args, our_conf, privileged, ptp_conf};
use egress_testkit::Netns;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_the_pod_namespace_as_the_main_plugin_made_it() {
    if !privileged() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kube-egress-cni").to_string();
    let tmp = tempfile::tempdir().unwrap();
    let node = Netns::new("kec-enode");
    let podns = Netns::new("kec-epod");
    let ptp = ptp_conf("10.99.7.0/24", tmp.path());

    let mut control = Control::start(tmp.path()).await;
    control.pod("plain", None).await;
    control.pod("lost", Some("missing-sgc")).await;
    control.pod("early", Some("sgc-unready")).await;
    control
        .sgc("sgc-unready", "staticEgressGateway", &[], None)
        .await;

    let sock = control.socket.clone();
    let state = tmp.path().join("state");
    let (node, podns) = tokio::task::spawn_blocking(move || {
        let id = format!("ctr{}", std::process::id());
        let (ok, prev, _) = cni(&node, PTP, "ADD", &id, &podns, "", &ptp);
        assert!(ok, "ptp ADD failed: {prev}");
        let prev: Value = serde_json::from_str(&prev).unwrap();
        let clean = podns.snapshot();
        let ours = |sock: &std::path::Path, extra: Value| our_conf(sock, &state, &prev, extra);

        // Pass-through: the result is ptp's, and nothing changed.
        let (ok, out, took) = cni(&node, &bin, "ADD", &id, &podns, &k8s_args("plain"), &ours(&sock, json!({})));
        assert!(ok, "{out}");
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["ips"], prev["ips"]);
        assert_eq!(got["interfaces"], prev["interfaces"]);
        assert_eq!(podns.snapshot(), clean);
        eprintln!("pass-through ADD (binary start + one manager query): {took:?}");

        let expect_err = |pod: &str, conf: String, code: u64, needle: &str| {
            let (ok, out, _) = cni(&node, &bin, "ADD", &id, &podns, &k8s_args(pod), &conf);
            assert!(!ok, "{pod}: expected failure, got {out}");
            let v: Value = serde_json::from_str(&out)
                .unwrap_or_else(|_| panic!("error result is not JSON: {out}"));
            assert_eq!(v["code"], code, "{pod}: {out}");
            let text = format!("{} {}", v["msg"], v["details"]);
            assert!(text.contains(needle), "{pod}: {needle:?} not in {text}");
            assert_eq!(podns.snapshot(), clean, "{pod}: pod namespace changed");
            // No daemon, socket or link of this sandbox's tunnel anywhere.
            let socket = format!(
                "/run/wireguard/{}.sock",
                egress_dataplane::InterfaceName::for_pod_socket(&id)
            );
            assert!(!std::path::Path::new(&socket).exists(), "{pod}: {socket} left behind");
        };
        expect_err("lost", ours(&sock, json!({})), 101,
            "StaticGatewayConfiguration ns1/missing-sgc named by the kubernetes.azure.com/static-gateway-configuration annotation of pod ns1/lost does not exist");
        expect_err("early", ours(&sock, json!({})), 11,
            "ns1/sgc-unready is not ready: status.egressIpPrefix");
        let dead = std::path::Path::new("/nonexistent/cni.sock");
        expect_err("early", ours(dead, json!({})), 11,
            "failed to connect to egress-cni-manager at /nonexistent/cni.sock");
        expect_err("plain", "{not json".into(), 6, "");
        expect_err("plain", ours(&sock, json!({"excludedCIDRs": ["bogus"]})), 7,
            "excludedCIDRs[0] \\\"bogus\\\" is not a CIDR");
        let mut no_prev: Value = serde_json::from_str(&ours(&sock, json!({}))).unwrap();
        no_prev.as_object_mut().unwrap().remove("prevResult");
        expect_err("plain", no_prev.to_string(), 7, "prevResult is missing");

        // DEL with a dead manager still succeeds, and changes nothing here.
        let (ok, out, _) = cni(&node, &bin, "DEL", &id, &podns, &k8s_args("early"), &ours(dead, json!({})));
        assert!(ok, "{out}");
        assert_eq!(podns.snapshot(), clean);
        let (ok, out, _) = cni(&node, PTP, "DEL", &id, &podns, "", &ptp);
        assert!(ok, "ptp DEL: {out}");
        (node, podns)
    })
    .await
    .unwrap();
    drop((node, podns));
    control.shutdown().await;
}
