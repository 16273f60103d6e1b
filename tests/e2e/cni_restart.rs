//! A rolling restart of the CNI managers while pods are created on the node whose manager is
//! down: gracefully stopped (SIGTERM, as a DaemonSet rollout does) on one worker, killed
//! (SIGKILL, a crash) on the other and kept down past the plugin's wait. The chained conflist
//! stays in place throughout, a pod without the annotation starts without the manager, an
//! annotated pod never starts untunnelled (it waits, or fails with a clear CNI error and is
//! retried), and once the managers are back every annotated pod leaves from its prefix and no
//! annotated pod ever leaves as the cluster's outbound IP.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::scenario::Scenario;
use egress_sim::seed::{self, Role};
use egress_sim::services;
use serde_json::{Value, json};

use crate::common::{self, eventually, seen_from};

/// How long the crashed manager stays down: past the plugin's default 15 s wait
/// (`managerTimeoutSeconds`), so ADD fails and the kubelet retries.
const CRASH_DOWNTIME: Duration = Duration::from_secs(18);

fn pod_doc(name: &str, node: &str, sgc: Option<&str>) -> Value {
    let annotations = sgc.map_or(
        json!({}),
        |s| json!({"kubernetes.azure.com/static-gateway-configuration": s}),
    );
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "e2e", "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "agnhost"}]}})
}

fn record(cluster: &Cluster, name: &str) -> Option<egress_sim::kubelet::PodRecord> {
    cluster
        .pods()
        .get(&("e2e".to_string(), name.to_string()))
        .cloned()
}

/// Fails if an annotated pod of `names` got a sandbox (its ADD succeeded) while no manager ran.
fn assert_not_started(cluster: &Cluster, names: &[String], why: &str) {
    for n in names {
        let r = record(cluster, n);
        assert!(
            r.as_ref().is_none_or(|r| r.ip.is_none()),
            "annotated pod {n} started while {why}: {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_pods_never_start_untunnelled_across_manager_restarts() {
    let Some(lab) = common::lab("cni manager restart") else {
        return;
    };
    let path = common::e2e_scenario("cni-restart.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let mut cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(60))
        .await
        .unwrap();
    let prefix = egress_sim::report::sgcs(&cluster.client).await.unwrap()[0]
        .egress_ip_prefix
        .clone()
        .unwrap();
    let workers: Vec<String> = cluster
        .topo
        .nodes
        .iter()
        .filter(|n| n.spec.role == Role::Worker)
        .map(|n| n.spec.name.clone())
        .collect();
    assert_eq!(workers.len(), 2);
    let run_dir = cluster.run_dir();
    let mut annotated = vec!["p0".to_string()];
    let mut plain = Vec::new();

    for (i, worker) in workers.iter().enumerate() {
        let crash = i == 1;
        let manager = format!("egress-cni-manager-{worker}");
        let stopped = Instant::now();
        if crash {
            tokio::task::block_in_place(|| cluster.crash_process(&manager)).unwrap();
        } else {
            tokio::task::block_in_place(|| cluster.kill_process(&manager)).unwrap();
        }
        let why = if crash {
            "its manager was crashed"
        } else {
            "its manager was stopped"
        };
        let conflist = run_dir
            .join("nodes")
            .join(worker)
            .join("net.d/01-egressgateway.conflist");
        assert!(conflist.exists(), "{why}: the conflist must stay in place");

        let here: Vec<String> = (0..2).map(|k| format!("a{i}{k}")).collect();
        for name in &here {
            egress_sim::k8s::apply(&cluster.client, &pod_doc(name, worker, Some("gw")))
                .await
                .unwrap();
        }
        let plain_name = format!("plain{i}");
        egress_sim::k8s::apply(&cluster.client, &pod_doc(&plain_name, worker, None))
            .await
            .unwrap();
        // The runtime passes the annotations: a pod without one needs no manager.
        eventually(
            "the pod without the annotation to start while no manager runs",
            Duration::from_secs(20),
            || {
                assert_not_started(&cluster, &here, why);
                record(&cluster, &plain_name).is_some_and(|r| r.ip.is_some())
            },
        )
        .await;
        if crash {
            // Past the plugin's wait: ADD fails with a clear error (and is retried).
            eventually(
                "ADD of an annotated pod to fail while no manager runs",
                CRASH_DOWNTIME,
                || {
                    assert_not_started(&cluster, &here, why);
                    here.iter()
                        .any(|n| record(&cluster, n).is_some_and(|r| r.last_error.is_some()))
                },
            )
            .await;
            let errors: Vec<String> = here
                .iter()
                .filter_map(|n| record(&cluster, n)?.last_error)
                .collect();
            for e in &errors {
                assert!(
                    e.contains("CNI code 11")
                        && e.contains("failed to connect to egress-cni-manager")
                        && e.contains(
                            "is the egress-cni-manager DaemonSet pod running on this node?"
                        ),
                    "unclear error: {e}"
                );
            }
            eprintln!("[e2e] ADD while the manager was down: {}", errors[0]);
        } else {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert_not_started(&cluster, &here, why);
        assert!(conflist.exists(), "{why}: the conflist must stay in place");
        cluster.restart_process(&manager).unwrap();
        eprintln!(
            "[e2e] {manager} {} for {:.1}s while 2 annotated pods and 1 plain pod were created on {worker}",
            if crash { "crashed" } else { "stopped" },
            stopped.elapsed().as_secs_f64()
        );
        annotated.extend(here);
        plain.push(plain_name);
    }

    let all: Vec<String> = annotated.iter().chain(&plain).cloned().collect();
    eventually(
        "every pod to start once the managers are back",
        Duration::from_secs(60),
        || {
            all.iter()
                .all(|n| record(&cluster, n).is_some_and(|r| r.ip.is_some()))
        },
    )
    .await;
    let outbound = seed::OUTBOUND_IP.to_string();
    for name in annotated.iter().chain(&plain) {
        let ip = seen_from(
            &cluster,
            name,
            seed::INTERNET_SERVER_IP,
            services::RAW_ECHO_PORT,
        )
        .await;
        if plain.contains(name) {
            assert_eq!(ip, outbound, "{name}");
            continue;
        }
        let r = record(&cluster, name).unwrap();
        eprintln!(
            "[e2e] {name}: leaves as {ip} after {} failed ADD attempt(s), ready in {} ms",
            r.attempts,
            r.ready_ms.unwrap_or_default()
        );
        assert_ne!(
            ip, outbound,
            "annotated pod {name} leaves as the outbound IP"
        );
        assert!(
            in_prefix(&ip, &prefix),
            "{name} leaves as {ip}, not from {prefix}"
        );
    }
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}
