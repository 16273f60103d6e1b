//! Gateway daemon restarts and a node drain on one simulated cluster (issue 16, item 2):
//! while a numbered TCP stream runs through the gateway carrying the pod's tunnel, its
//! daemon is restarted (SIGTERM, as a rollout stops it) and then crashed (SIGKILL) and
//! started again: not a number may be lost or reordered, the connection must stay, and the
//! stream may stall at most 0.5 s. Then that node is drained (cordoned): its probe answers
//! 503, the load balancer moves the flow, and new connections leave through the other
//! gateway within the load balancer's detection time + 1 s, before the node goes; killing
//! the drained node afterwards changes nothing for the pod.

use std::time::Duration;

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::traffic::{NumberedStream, StreamStats};
use egress_sim::{seed, services};

use crate::common::{self, carrying_gateway, eventually, ilb_has_backends, pod, set_cordon};

/// The longest stall a restart may cause (issue 16: 0.5 s).
const RESTART_STALL: Duration = Duration::from_millis(500);

async fn stream_through(
    cluster: &mut Cluster,
    pod_ns: &str,
    what: &str,
    disrupt: impl FnOnce(&mut Cluster),
) -> StreamStats {
    let stream = NumberedStream::start(
        pod_ns,
        seed::INTERNET_SERVER_IP,
        services::STREAM_ECHO_PORT,
        Duration::from_millis(10),
    )
    .unwrap();
    eventually("the stream to flow", Duration::from_secs(10), || {
        stream.echoed() > 50
    })
    .await;
    disrupt(cluster);
    eventually(
        "both gateways healthy behind the ILB",
        Duration::from_secs(30),
        || ilb_has_backends(cluster, 2),
    )
    .await;
    let echoed = stream.echoed();
    eventually("the stream to go on", Duration::from_secs(20), || {
        stream.echoed() > echoed + 100
    })
    .await;
    let stats = stream.finish(Duration::from_secs(5));
    eprintln!("[e2e] {what}: stream {stats:?}");
    assert_eq!(stats.error, None, "{what}: {stats:?}");
    assert!(
        stats.in_order && stats.echoed == stats.sent,
        "{what}: numbers lost: {stats:?}"
    );
    assert!(
        stats.max_stall <= RESTART_STALL,
        "{what}: stalled {:?}, more than {RESTART_STALL:?}",
        stats.max_stall
    );
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_restarts_keep_the_stream_and_a_drained_node_hands_over_before_it_goes() {
    let Some(lab) = common::lab("resilience") else {
        return;
    };
    let (mut cluster, prefix) = common::two_gateways_up(&lab).await;
    let (gateway, egress_ip) = carrying_gateway(&cluster, "p").await;
    assert!(in_prefix(&egress_ip, &prefix));
    let pod_ns = pod(&cluster, "p").netns.unwrap();
    let daemon = format!("egress-gateway-daemon-{gateway}");

    // A restart as a rollout or eviction stops the daemon (SIGTERM), then a crash (SIGKILL):
    // the kernel keeps forwarding and the probe keeps answering, so nothing moves.
    stream_through(&mut cluster, &pod_ns, "daemon restart (SIGTERM)", |c| {
        c.kill_process(&daemon).unwrap();
        c.restart_process(&daemon).unwrap();
    })
    .await;
    stream_through(&mut cluster, &pod_ns, "daemon crash (SIGKILL)", |c| {
        c.crash_process(&daemon).unwrap();
        c.restart_process(&daemon).unwrap();
    })
    .await;
    assert_eq!(
        carrying_gateway(&cluster, "p").await,
        (gateway.clone(), egress_ip.clone()),
        "the tunnel stayed on its gateway"
    );

    // A drain: the node is cordoned. Its probe turns 503, the ILB drops it, and new
    // connections leave through the other gateway soon after.
    let (detected, p) =
        common::watch_one_pod_through(&mut cluster, &pod_ns, &egress_ip, async |c| {
            set_cordon(c, &gateway, true).await;
        })
        .await;
    eprintln!(
        "[e2e] DRAIN: {gateway} cordoned; the ILB dropped it after {:.2}s; first packet as {:?} after {:?} ms, first new connection after {:?} ms",
        detected.as_secs_f64(),
        p.after,
        p.first_packet_new_ms,
        p.first_connection_new_ms
    );
    let new_ip = common::assert_moved_in_time(&p, &egress_ip, &prefix, detected);
    // The node goes now: nothing changes for the pod any more.
    cluster.kill_node(&gateway).unwrap();
    let seen = common::observed_from_netns(
        pod_ns.clone(),
        seed::INTERNET_SERVER_IP,
        services::RAW_ECHO_PORT,
        Duration::from_secs(2),
    )
    .await
    .expect("egress keeps working when the drained node goes");
    assert!(seen.starts_with(&format!("{new_ip}:")), "{seen}");
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}
