//! Gateway failures on one simulated cluster: a gateway daemon restarted (SIGTERM with its
//! probe drain, then a new instance) while a numbered stream runs through it, then the
//! gateway node carrying the pod's tunnel killed as a VM dies, measuring how long until new
//! connections leave through the other gateway.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::scenario::Scenario;
use egress_sim::traffic::{NumberedStream, wait_for_egress};
use egress_sim::{seed, services};

use crate::common::{self, eventually, pod, seen_from};

/// The gateway node the pod's tunnel goes through now (from its egress address).
async fn carrying_gateway(cluster: &Cluster) -> (String, String) {
    let ip = seen_from(
        cluster,
        "p",
        seed::INTERNET_SERVER_IP,
        services::RAW_ECHO_PORT,
    )
    .await;
    let node = cluster.node_of_ip(&ip).await.unwrap().unwrap();
    (node, ip)
}

fn ilb_backends(cluster: &Cluster) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &cluster.topo.vnet])
        .args(["nft", "list", "table", "ip", "sim_ilb"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_restart_keeps_the_stream_and_a_dead_gateway_node_fails_over() {
    let Some(lab) = common::lab("resilience") else {
        return;
    };
    let path = common::e2e_scenario("resilience.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let mut cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(60))
        .await
        .unwrap();
    eventually(
        "both gateway nodes healthy behind the ILB",
        Duration::from_secs(30),
        || ilb_backends(&cluster).contains("mod 2"),
    )
    .await;
    let prefix = egress_sim::report::sgcs(&cluster.client).await.unwrap()[0]
        .egress_ip_prefix
        .clone()
        .unwrap();
    let (gateway, egress_ip) = carrying_gateway(&cluster).await;
    assert!(in_prefix(&egress_ip, &prefix));
    let pod_ns = pod(&cluster, "p").netns.unwrap();

    // A daemon restart on the gateway carrying the tunnel: nothing of the stream is lost.
    let stream = NumberedStream::start(
        &pod_ns,
        seed::INTERNET_SERVER_IP,
        services::STREAM_ECHO_PORT,
        Duration::from_millis(10),
    )
    .unwrap();
    eventually("the stream to flow", Duration::from_secs(10), || {
        stream.echoed() > 50
    })
    .await;
    let daemon = format!("egress-gateway-daemon-{gateway}");
    let t = Instant::now();
    cluster.kill_process(&daemon).unwrap();
    let stopped = t.elapsed();
    cluster.restart_process(&daemon).unwrap();
    eventually(
        "the restarted daemon healthy behind the ILB",
        Duration::from_secs(30),
        || ilb_backends(&cluster).contains("mod 2"),
    )
    .await;
    let healthy = t.elapsed();
    let echoed = stream.echoed();
    eventually("the stream to go on", Duration::from_secs(20), || {
        stream.echoed() > echoed + 100
    })
    .await;
    let stats = stream.finish(Duration::from_secs(5));
    eprintln!(
        "[e2e] daemon restart on {gateway}: old instance stopped after {:.1}s, new one healthy after {:.1}s; stream {stats:?}",
        stopped.as_secs_f64(),
        healthy.as_secs_f64()
    );
    assert_eq!(stats.error, None, "{stats:?}");
    assert!(
        stats.in_order && stats.echoed == stats.sent,
        "numbers lost: {stats:?}"
    );
    // The drain moves the tunnel's UDP flow to the other gateway (no session there) until
    // the new instance answers the probe; longer than WireGuard's 15 s would mean a
    // re-handshake elsewhere and a broken connection.
    assert!(stats.max_stall < Duration::from_secs(10), "{stats:?}");

    // The gateway node carrying the tunnel dies: new connections leave through the other
    // gateway once the ILB's probe has marked it down and the pod's WireGuard has
    // re-handshaked with the other node.
    let (gateway, egress_ip) = carrying_gateway(&cluster).await;
    let t = Instant::now();
    cluster.kill_node(&gateway).unwrap();
    let vnet_ilb = {
        let vnet = cluster.topo.vnet.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                let out = std::process::Command::new("ip")
                    .args([
                        "netns", "exec", &vnet, "nft", "list", "table", "ip", "sim_ilb",
                    ])
                    .output()
                    .unwrap();
                if !String::from_utf8_lossy(&out.stdout).contains("mod 2") {
                    return Some(start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        })
    };
    let ns = pod_ns.clone();
    let old = egress_ip.clone();
    let p2 = prefix.clone();
    let (took, new_ip) = tokio::task::spawn_blocking(move || {
        wait_for_egress(
            &ns,
            seed::INTERNET_SERVER_IP,
            |ip| ip != old && in_prefix(ip, &p2),
            Duration::from_secs(90),
        )
    })
    .await
    .unwrap()
    .unwrap();
    let survivor = cluster.node_of_ip(&new_ip).await.unwrap().unwrap();
    assert_ne!(survivor, gateway);
    let ilb = vnet_ilb
        .await
        .unwrap()
        .expect("the ILB drops the dead backend");
    eprintln!(
        "[e2e] FAILOVER: gateway node {gateway} killed; the ILB dropped it after {:.2}s (probe interval {} s); egress resumed through {survivor} ({new_ip}) after {:.2}s",
        ilb.as_secs_f64(),
        cluster.scenario.probe_interval_seconds,
        took.as_secs_f64(),
    );
    let _ = t;
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}
