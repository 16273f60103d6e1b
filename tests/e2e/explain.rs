//! `egressctl explain pod` on the simulated demo cluster, reading only the Kubernetes API as a
//! user's kubeconfig would: for every demo pod that uses a gateway it names the gateway node
//! whose address the internet server saw, and that address as its egress IP; it tells that a
//! destination in the SGC's `excludeCidrs` is not tunnelled; and when the gateway daemon of
//! the carrying node is stopped, it names that node's daemon as the failed hop.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::scenario::Scenario;
use egress_sim::{seed, services};
use egressctl::cluster::{Connection, for_explain};
use egressctl::explain::{Explanation, HopState, explain};

use crate::common::{self, eventually_async};

async fn explained(cluster: &Cluster, ns: &str, name: &str, to: Option<IpAddr>) -> Explanation {
    let c = Connection {
        kubeconfig: None,
        context: None,
        system_namespace: None,
    };
    let snap = for_explain(&cluster.client, &c, ns, name).await.unwrap();
    explain(&snap, ns, name, to, k8s_openapi::jiff::Timestamp::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_each_demo_pods_gateway_node_and_ip_and_a_stopped_daemon() {
    let Some(lab) = common::lab("explain") else {
        return;
    };
    let path = common::scenario_path("demo.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let mut cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(90))
        .await
        .unwrap();
    let pods: Vec<((String, String), String)> = cluster
        .pods()
        .into_iter()
        .filter(|(_, r)| r.sgc.is_some())
        .map(|(k, r)| (k, r.netns.unwrap()))
        .collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    let mut carrier = None;
    for ((ns, name), pod_ns) in &pods {
        let ip = common::seen_from_netns(
            pod_ns.clone(),
            seed::INTERNET_SERVER_IP,
            services::RAW_ECHO_PORT,
        )
        .await;
        let node = cluster.node_of_ip(&ip).await.unwrap().unwrap();
        // The daemons publish handshakes with their samples: wait for the one just made.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = explained(&cluster, ns, name, None).await;
            if e.problems() == 0
                && e.carried_by.as_deref() == Some(node.as_str())
                && e.egress_ips == [ip.clone()]
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "explain {ns}/{name} does not name {node} and {ip} (what the server saw): {e:#?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if name.starts_with("web") {
            carrier = Some((ns.clone(), name.clone(), node));
        }
    }

    // The demo's gw-pool excludes 10.0.0.0/8: such a destination is not tunnelled.
    let (ns, name, node) = carrier.unwrap();
    let e = explained(&cluster, &ns, &name, Some("10.1.2.3".parse().unwrap())).await;
    let d = e.destination.clone().unwrap();
    assert!(!d.tunnelled, "{e:?}");
    assert_eq!(d.matched.as_deref(), Some("10.0.0.0/8"), "{e:?}");

    // Stop the daemon of the node carrying it: its heartbeat goes stale and explain names it.
    cluster
        .kill_process(&format!("egress-gateway-daemon-{node}"))
        .unwrap();
    let hop = format!("gateway node {node}");
    eventually_async(
        &format!("explain to name the stopped daemon on {node}"),
        Duration::from_secs(240),
        || {
            let (cluster, ns, name, hop) = (&cluster, &ns, &name, &hop);
            async move {
                let e = explained(cluster, ns, name, None).await;
                e.hops.iter().any(|h| {
                    h.name == *hop
                        && h.state == HopState::Fail
                        && h.detail.contains("gateway daemon not running")
                })
            }
        },
    )
    .await;
}
