//! Egress on the simulator: pods without the annotation leave as the cluster's outbound IP,
//! the operator provisions the SGC against the emulator, the load balancer marks gateway nodes
//! healthy through the real daemon's probe, and `down` leaves nothing behind; and the demo
//! through `egress-sim run --json`: pods with the annotation leave from their prefix.

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
                crate::common::ilb_backends_in(&String::from_utf8_lossy(&out.stdout)) == 2
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

/// `make demo`'s scenario through the real CLI: `egress-sim run demo.yaml --json` exits 0,
/// prints the report of the shape, annotated pods (managed and BYO prefix) leave from
/// their prefix with their first connection, the plain pod as the outbound IP, and nothing of
/// the run is left.
#[test]
fn run_json_on_the_demo_annotated_pods_leave_from_their_prefix() {
    let Some(lab) = common::lab("prefix egress (egress-sim run --json)") else {
        return;
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_egress-sim"))
        .args([
            "run",
            common::scenario_path("demo.yaml").to_str().unwrap(),
            "--json",
        ])
        .env("EGRESS_SIM_STATE_DIR", &lab.root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let keys = |o: &serde_json::Value| {
        let mut k: Vec<String> = o.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["outboundIp", "pods", "sgcs"]);
    let outbound = v["outboundIp"].as_str().unwrap();
    assert_eq!(outbound, "198.51.100.200");
    let sgcs = v["sgcs"].as_array().unwrap();
    assert_eq!(sgcs.len(), 2);
    for s in sgcs {
        assert_eq!(keys(s), ["egressIpPrefix", "name", "namespace", "ready"]);
        assert_eq!(s["ready"], true, "{s}");
    }
    let byo = sgcs.iter().find(|s| s["name"] == "gw-byo").unwrap();
    assert_eq!(
        byo["egressIpPrefix"], "192.0.2.64/31",
        "the BYO prefix verbatim"
    );
    let pods = v["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 4, "2 web replicas, partner-sync, plain");
    for p in pods {
        assert_eq!(
            keys(p),
            [
                "egressIp",
                "inPrefix",
                "name",
                "namespace",
                "node",
                "readyMs",
                "sgc"
            ],
            "{p}"
        );
        let sgc = p["sgc"].as_str();
        let prefix = sgcs
            .iter()
            .find(|s| Some(s["name"].as_str().unwrap()) == sgc)
            .map(|s| s["egressIpPrefix"].as_str().unwrap());
        let ip = p["egressIp"].as_str().unwrap();
        match prefix {
            Some(prefix) => {
                assert_eq!(p["inPrefix"], true, "{p}");
                assert!(egress_sim::report::in_prefix(ip, prefix), "{p}");
            }
            None => {
                assert_eq!(ip, outbound, "{p}");
                assert!(p["inPrefix"].is_null());
            }
        }
        assert!(p["readyMs"].as_u64().is_some(), "{p}");
    }
    assert!(egress_sim::state::list_runs(&lab.root).unwrap().is_empty());
    let run_id = stderr
        .split("[egress-sim] run ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert!(
        namespaces_with(run_id).is_empty(),
        "namespaces left: {:?}",
        namespaces_with(run_id)
    );
}
