//! Privileged end-to-end test of ADD for pods without the annotation now that SGCs can select
//! pods by label (root, throwaway namespaces, 10.99.0.0/16 only): the real `ptp` plugin, then
//! the real `kube-egress-cni` binary with the runtime's pod annotations (none of ours), as
//! containerd passes them.
//!
//! * A namespace the manager did not publish as having a `podSelector`: the pod starts without
//!   the manager (its socket does not even exist), as before selectors.
//! * Nothing published yet: the plugin asks the manager (a dead one fails the ADD with 11).
//! * A published namespace: the plugin asks the manager, a live one answers "no gateway" for
//!   an unselected pod, which starts.
//!
//! Prints the median ADD time of each case over [`RUNS`] runs (docs/benchmarks.md, "CNI ADD
//! overhead"); `EGRESS_BASELINE_PLUGIN=<path>` times another build of the plugin for the
//! first case as well (the numbers there were taken with the branch's base). Skipped (with a
//! message) when not root or a tool is missing, failing instead when `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Control, PTP, cni, k8s_args, our_conf, privileged, ptp_conf};
use egress_cni_proto::SelectorNamespaces;
use egress_testkit::Netns;
use serde_json::{Value, json};

/// ADDs timed per case.
const RUNS: usize = 20;

fn publish(socket: &Path, namespaces: &[&str]) {
    SelectorNamespaces {
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
    }
    .save(&egress_cni_proto::selectors::path(socket))
    .unwrap();
}

/// Median of `RUNS` ADDs of pod `plain` with `conf` for each of `bins` (each must succeed),
/// the binaries taking turns so that neither gets the warmer machine.
fn median_adds(node: &Netns, bins: &[&str], id: &str, podns: &Netns, conf: &str) -> Vec<Duration> {
    let mut took: Vec<Vec<Duration>> = vec![Vec::new(); bins.len()];
    for _ in 0..RUNS {
        for (bin, took) in bins.iter().zip(&mut took) {
            let (ok, out, t) = cni(node, bin, "ADD", id, podns, &k8s_args("plain"), conf);
            assert!(ok, "{bin}: {out}");
            took.push(t);
        }
    }
    took.into_iter()
        .map(|mut t| {
            t.sort();
            t[RUNS / 2]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_pods_ask_the_manager_only_where_selectors_may_pick_them() {
    if !privileged() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kube-egress-cni").to_string();
    let tmp = tempfile::tempdir().unwrap();
    let node = Netns::new("kec-snode");
    let podns = Netns::new("kec-spod");
    let ptp = ptp_conf("10.99.8.0/24", tmp.path());
    let mut control = Control::start(tmp.path()).await;
    control.pod("plain", None).await;
    let live = control.socket.clone();
    let dead_dir = tmp.path().join("dead");
    std::fs::create_dir(&dead_dir).unwrap();
    let dead = dead_dir.join("cni.sock");
    let state = tmp.path().join("state");

    tokio::task::spawn_blocking(move || {
        let id = format!("ctr{}", std::process::id());
        let (ok, prev, _) = cni(&node, PTP, "ADD", &id, &podns, "", &ptp);
        assert!(ok, "ptp ADD failed: {prev}");
        let prev: Value = serde_json::from_str(&prev).unwrap();
        let runtime = json!({"runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"app": "web"}},
            "managerTimeoutSeconds": 1});
        let conf = |sock: &Path| our_conf(sock, &state, &prev, runtime.clone());
        // Published, ns1 not in it: no manager needed (the socket does not exist).
        publish(&dead, &["other"]);
        let baseline = std::env::var("EGRESS_BASELINE_PLUGIN").ok();
        let mut bins = vec![bin.as_str()];
        bins.extend(baseline.as_deref());
        let unlisted = median_adds(&node, &bins, &id, &podns, &conf(&dead));

        // Nothing published: asks the manager; a dead one fails the ADD (11).
        std::fs::remove_file(egress_cni_proto::selectors::path(&dead)).unwrap();
        let (ok, out, _) = cni(&node, &bin, "ADD", &id, &podns, &k8s_args("plain"), &conf(&dead));
        assert!(!ok, "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["code"], 11, "{out}");

        // ns1 published: asks the live manager, which says "no gateway".
        publish(&live, &["ns1"]);
        let listed = median_adds(&node, &[&bin], &id, &podns, &conf(&live))[0];

        eprintln!(
            "[bench] median of {RUNS}: plain pod, namespace without selectors (no manager call) {:?}; plain pod, namespace with selectors (one manager query) {listed:?}",
            unlisted[0]
        );
        if let (Some(base), Some(t)) = (&baseline, unlisted.get(1)) {
            eprintln!("[bench] median of {RUNS}, taking turns with the above: plain pod with the baseline plugin {base} (no manager call) {t:?}");
        }
        let (ok, out, _) = cni(&node, &bin, "DEL", &id, &podns, &k8s_args("plain"), &conf(&dead));
        assert!(ok, "{out}");
        let (ok, out, _) = cni(&node, PTP, "DEL", &id, &podns, "", &ptp);
        assert!(ok, "{out}");
    })
    .await
    .unwrap();
    control.shutdown().await;
}
