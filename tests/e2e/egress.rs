//! Egress on the simulator: pods without the annotation leave as the cluster's outbound IP,
//! the operator provisions the SGC against the emulator, the load balancer marks gateway nodes
//! healthy through the real daemon's probe, and `down` leaves nothing behind. Pods with the
//! annotation (prefix egress) wait for the CNI plugin's tunnel.

use std::time::Duration;

use egress_sim::cluster::Cluster;
use egress_sim::scenario::Scenario;

use crate::common::{self, eventually, namespaces_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_annotation_leave_as_the_outbound_ip_and_down_removes_everything() {
    let Some(lab) = common::lab("plain egress") else {
        return;
    };
    let path = common::scenario_path("plain.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    let run_id = cluster.run_id();
    let run_dir = cluster.run_dir();
    let present = namespaces_with(&run_id);
    for ns in cluster.topo.namespaces() {
        assert!(
            present.contains(&ns),
            "namespace {ns} missing from {present:?}"
        );
    }

    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(60))
        .await
        .unwrap();
    let report = egress_sim::cli::measure(&cluster).await.unwrap();
    assert_eq!(
        report.pods.len(),
        3,
        "the Deployment's 3 replicas, created once"
    );
    for p in &report.pods {
        assert_eq!(p.egress_ip.as_deref(), Some("198.51.100.200"), "{p:?}");
        assert!(p.ready_ms.is_some(), "{p:?}");
    }
    let nodes: std::collections::BTreeSet<_> = report.pods.iter().map(|p| p.node.clone()).collect();
    assert_eq!(
        nodes.len(),
        2,
        "pods without nodeName are spread over both workers"
    );
    assert_eq!(report.sgcs.len(), 1);
    assert_eq!(
        report.sgcs[0].egress_ip_prefix.as_deref(),
        Some("203.0.113.0/31")
    );
    assert!(report.problems().is_empty(), "{:?}", report.problems());

    if cluster.daemons_running {
        // The rule's probe answers on both gateway daemons: the ILB hashes over both.
        let vnet = cluster.topo.vnet.clone();
        eventually(
            "both gateway nodes healthy behind the load balancer",
            Duration::from_secs(30),
            || {
                let out = std::process::Command::new("ip")
                    .args([
                        "netns", "exec", &vnet, "nft", "list", "table", "ip", "sim_ilb",
                    ])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains("mod 2 seed")
            },
        )
        .await;
    } else {
        eprintln!("NOTE: egress-gateway-daemon not built; load-balancer health not checked");
    }

    let report = cluster.down().await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        namespaces_with(&run_id).is_empty(),
        "namespaces left: {:?}",
        namespaces_with(&run_id)
    );
    assert!(!run_dir.exists(), "run directory left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "waits for the kube-egress-cni tunnel: annotated pods fail ADD today"]
async fn annotated_pods_leave_from_their_prefix_and_others_from_the_outbound_ip() {
    let Some(lab) = common::lab("prefix egress") else {
        return;
    };
    let path = common::scenario_path("demo.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    let ready = egress_sim::cli::wait_ready(&cluster, Duration::from_secs(90)).await;
    let report = egress_sim::cli::measure(&cluster).await.unwrap();
    cluster.down().await;
    ready.unwrap();
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    assert!(
        report
            .pods
            .iter()
            .any(|p| p.sgc.as_deref() == Some("gw-byo") && p.in_prefix == Some(true))
    );
}
