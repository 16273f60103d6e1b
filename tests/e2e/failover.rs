//! A gateway node dies while a pod sends through it (issue 16, items 1, 3 and 5): its
//! probe stops answering, the simulated ILB (probe every second) drops it, and the pod's
//! egress must resume through the other gateway within the ILB's measured detection time
//! plus 1 s: the first datagram the internet sees from the other gateway's IP, and the first
//! new connection, both counted from the kill. (Before the CNI manager's failover this took
//! 15.7 s: WireGuard's own re-handshake.)

use crate::common::{self, carrying_gateway, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_gateway_node_fails_over_within_detection_plus_one_second() {
    let Some(lab) = common::lab("failover") else {
        return;
    };
    let (mut cluster, prefix) = common::two_gateways_up(&lab).await;
    let (gateway, egress_ip) = carrying_gateway(&cluster, "p").await;
    let pod_ns = pod(&cluster, "p").netns.unwrap();
    let (detected, p) =
        common::watch_one_pod_through(&mut cluster, &pod_ns, &egress_ip, async |c| {
            c.kill_node(&gateway).unwrap();
        })
        .await;
    eprintln!(
        "[e2e] FAILOVER: gateway node {gateway} killed; the ILB dropped it after {:.2}s (probe interval {} s); first packet as {:?} after {:?} ms, first new connection after {:?} ms",
        detected.as_secs_f64(),
        cluster.scenario.probe_interval_seconds,
        p.after,
        p.first_packet_new_ms,
        p.first_connection_new_ms,
    );
    let new_ip = common::assert_moved_in_time(&p, &egress_ip, &prefix, detected);
    assert_ne!(cluster.node_of_ip(&new_ip).await.unwrap().unwrap(), gateway);
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}
