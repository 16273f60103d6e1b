//! Privileged end-to-end test of every refusal (root, throwaway namespaces, 10.99.0.0/16
//! only): the real `ptp` reference plugin sets the pod up inside a throwaway "node"
//! namespace, then the real `kube-egress-cni` binary runs against a real egress-cni-manager
//! and the in-memory API server. Pods without the annotation pass through; malformed or
//! non-UTF-8 stdin, a bad field, a missing prevResult, an unknown SGC, an unready SGC and a
//! dead manager each fail with a specific CNI error and leave the pod namespace exactly as ptp
//! made it, with no wireguard-go daemon started; an ADD that fails after starting wireguard-go
//! leaves no log of it. Skipped (with a message) when not root or a tool is missing, failing
//! instead when `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Control, PTP, cni, cni_bytes, k8s_args, our_conf, privileged, ptp_conf};
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
        // A missing manager is waited for (a restart) up to managerTimeoutSeconds, then 11.
        let started = std::time::Instant::now();
        expect_err("early", ours(dead, json!({"managerTimeoutSeconds": 1})), 11,
            "failed to connect to egress-cni-manager at /nonexistent/cni.sock (");
        let waited = started.elapsed();
        // Bounded by the setting, not the 15 s default (the upper bound leaves room for a loaded CI machine).
        assert!(waited >= std::time::Duration::from_millis(700) && waited < std::time::Duration::from_secs(10), "{waited:?}");
        expect_err("plain", "{not json".into(), 6, "");
        // Not UTF-8: a decoding error as well (6), not an I/O failure (5).
        let (ok, out, _) = cni_bytes(&node, &bin, "ADD", &id, &podns.path(), &k8s_args("plain"), b"{\"cniVersion\":\"1.0.0\",\"name\":\"n\xff\"}");
        assert!(!ok, "{out}");
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("error result is not JSON: {out}"));
        assert_eq!(v["code"], 6, "{out}");
        assert!(v["details"].as_str().unwrap().contains("not valid UTF-8"), "{out}");
        assert_eq!(podns.snapshot(), clean);
        expect_err("plain", ours(&sock, json!({"excludedCIDRs": ["bogus"]})), 7,
            "excludedCIDRs[0] \\\"bogus\\\" is not a CIDR");
        let mut no_prev: Value = serde_json::from_str(&ours(&sock, json!({}))).unwrap();
        no_prev.as_object_mut().unwrap().remove("prevResult");
        expect_err("plain", no_prev.to_string(), 7, "prevResult is missing");

        // DEL with a dead manager still succeeds, and changes nothing here.
        let (ok, out, _) = cni(&node, &bin, "DEL", &id, &podns, &k8s_args("early"), &ours(dead, json!({"managerTimeoutSeconds": 1})));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_add_leaves_no_wireguard_go_log_behind() {
    if !privileged() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kube-egress-cni").to_string();
    let tmp = tempfile::tempdir().unwrap();
    let node = Netns::new("kec-lnode");
    let podns = Netns::new("kec-lpod");
    let ptp = ptp_conf("10.99.9.0/24", tmp.path());
    let mut control = Control::start(tmp.path()).await;
    control.pod("doomed", Some("sgc-ok")).await;
    control
        .sgc(
            "sgc-ok",
            "staticEgressGateway",
            &[],
            Some((
                "10.99.9.254",
                51820,
                "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gISE=",
            )),
        )
        .await;
    let sock = control.socket.clone();
    let state = tmp.path().join("state");
    let logs = state.join("wireguard-go");
    tokio::task::spawn_blocking(move || {
        let id = format!("ctrlog{}", std::process::id());
        let (ok, prev, _) = cni(&node, PTP, "ADD", &id, &podns, "", &ptp);
        assert!(ok, "ptp ADD failed: {prev}");
        let prev: Value = serde_json::from_str(&prev).unwrap();
        // The sandbox's namespace disappears before our ADD runs: the tunnel is created (and
        // wireguard-go started, with its log) in the node namespace, then cannot be moved.
        let gone = Netns::new("kec-lgone");
        let gone_path = gone.path();
        drop(gone);
        let conf = our_conf(&sock, &state, &prev, json!({}));
        let (ok, out, _) = cni_bytes(
            &node,
            &bin,
            "ADD",
            &id,
            &gone_path,
            &k8s_args("doomed"),
            conf.as_bytes(),
        );
        assert!(!ok, "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], 104, "{out}");
        let left: Vec<_> = std::fs::read_dir(&logs)
            .map(|d| d.filter_map(|e| Some(e.ok()?.file_name())).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", logs.display());
        let (ok, out, _) = cni(&node, PTP, "DEL", &id, &podns, "", &ptp);
        assert!(ok, "ptp DEL: {out}");
        drop((node, podns));
    })
    .await
    .unwrap();
    control.shutdown().await;
}
