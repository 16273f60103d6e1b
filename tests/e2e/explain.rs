//! `egressctl explain pod` on the simulated demo cluster, reading only the Kubernetes API as a
//! user's kubeconfig would: for every demo pod that uses a gateway it names the gateway node
//! whose address the internet server saw, and that address as its egress IP; it tells that a
//! destination in the SGC's `excludeCidrs` is not tunnelled; when the pod's WireGuard peer is
//! removed by hand from the carrying node's device (`wg set … peer … remove`), it names that
//! node's hop with what happened (the daemon's resync found the peer missing and put it
//! back); and when the gateway daemon of a node carrying a demo pod is stopped (another node
//! than the peer's when there is one, so that the two waits overlap), it names that node's
//! daemon as the failed hop.

use std::net::IpAddr;
use std::process::Command;
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

/// Removes the peer with base64 `key` from gateway node `node`'s device `interface` with the
/// `wg` tool, as an operator would by hand: through wireguard-go's UAPI socket (named after
/// the device's namespace and name, as the daemon's userspace backend names it), or with the
/// kernel backend inside the node's gateway namespace.
fn remove_peer_by_hand(cluster: &Cluster, node: &str, interface: &str, key: &str) {
    let gateway_ns = egress_sim::components::gateway_netns(cluster.topo.node(node).unwrap());
    let mut wg = if egress_sim::backend::wireguard_backend() == "kernel" {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &gateway_ns, "wg", "set", interface]);
        c
    } else {
        let device = egress_dataplane::WgDeviceId {
            netns: egress_dataplane::NetnsRef::Named(gateway_ns.parse().unwrap()),
            name: interface.parse().unwrap(),
        };
        let mut c = Command::new("wg");
        c.args(["set", &egress_dataplane::wireguard::uapi_name(&device)]);
        c
    };
    let out = wg.args(["peer", key, "remove"]).output().unwrap();
    assert!(
        out.status.success(),
        "wg set {interface} peer {key} remove on {node}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The base64 public key of PodEndpoint `ns/name`.
async fn pod_key(cluster: &Cluster, ns: &str, name: &str) -> String {
    let api = common::podendpoints_in(cluster, ns);
    let pe = api.get(name).await.unwrap();
    pe.data["spec"]["podPublicKey"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_demo_pods_node_and_ip_a_peer_removed_by_hand_and_a_stopped_daemon() {
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
    let mut carried: Vec<String> = Vec::new();
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
        carried.push(node.clone());
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

    // The daemon-stop step waits for a stale heartbeat (2 × 60 s + 15 s): when another node
    // carries a demo pod, its daemon is stopped now, so that wait runs beside the next step.
    let stopped = carried.iter().find(|n| **n != node).cloned();
    if let Some(other) = &stopped {
        cluster
            .kill_process(&format!("egress-gateway-daemon-{other}"))
            .unwrap();
    }

    // Remove its peer from that node's device by hand. The daemon's resync (every 60 s) finds
    // it missing and puts it back; explain names that node's hop with what happened. (Before
    // the resync its sampler may flag the peer missing: a failed hop, also that node.)
    let e = explained(&cluster, &ns, &name, None).await;
    let interface = e
        .nodes
        .iter()
        .find(|n| n.node.node == node)
        .and_then(|n| n.node.interface.clone())
        .unwrap();
    let key = pod_key(&cluster, &ns, &name).await;
    let removed = Instant::now();
    remove_peer_by_hand(&cluster, &node, &interface, &key);
    let hop = format!("gateway node {node}");
    let gone = format!("the pod's peer was removed from {interface} outside the daemon");
    let deadline = Instant::now() + Duration::from_secs(150);
    let e = loop {
        let e = explained(&cluster, &ns, &name, None).await;
        let named = e.hops.iter().any(|h| {
            h.name == hop
                && h.state == HopState::Warn
                && h.detail.contains(&gone)
                && h.detail.contains("put it back")
        });
        if named {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "explain does not name the peer removed by hand on {node}: {e:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "peer removed by hand on {node}: explain named it after {:?}",
        removed.elapsed()
    );
    assert!(e.problems() >= 1, "a warning: exit 1");
    let view = e.nodes.iter().find(|n| n.node.node == node).unwrap();
    let drift = view.drift.as_ref().unwrap();
    assert_eq!(
        (drift.kind.as_str(), drift.change.as_str(), drift.repaired),
        ("peer", "missing", true),
        "{drift:?}"
    );
    assert_eq!(
        drift.pod_endpoint.as_deref(),
        Some(format!("{ns}/{name}").as_str())
    );
    // Only that node: the others have nothing to say about it.
    for other in e
        .hops
        .iter()
        .filter(|h| h.name.starts_with("gateway node ") && h.name != hop)
    {
        assert!(!other.detail.contains("outside the daemon"), "{other:?}");
    }

    // Stop the daemon of a node carrying a demo pod (done above when another node carries
    // one): its heartbeat goes stale and explain names it.
    let node = match stopped {
        Some(other) => other,
        None => {
            cluster
                .kill_process(&format!("egress-gateway-daemon-{node}"))
                .unwrap();
            node
        }
    };
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
