//! What the daemon publishes for `egressctl` and the operator's PodEndpoint status, against the
//! in-memory API server with the data plane's fake: the heartbeat moves on without changes,
//! every peer is in the per-gateway compact list, refused PodEndpoints are listed with their
//! reason, and every counter exists at zero from the start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::*;
use egress_api::GatewayStatus;
use egress_dataplane::fake::FakeNode;
use egress_dataplane::{AddressSpec, NetnsRef, PrivateKey};
use egress_gateway_daemon::{HostConfig, NodeIdentity};
use kube::Api;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn heartbeat_compact_peers_and_refusals_are_published() {
    let cluster = Cluster::start().await;
    let mut gw = Gw::new("gw-a", 6000, "10.0.0.10", "10.0.0.4", "10.0.0.100");
    let secret = gw.key.expose_base64();
    cluster.gateway(&mut gw, NODE, &secret).await;
    let victim_key = PrivateKey::generate().public_key().to_base64();
    cluster.pod("web", "gw-a", &["10.244.1.5"]).await;
    let uid = cluster.pod_uid("web").await;
    cluster
        .create_pod_endpoint(
            "web",
            "gw-a",
            "10.244.1.5/32",
            &victim_key,
            ("web", &uid),
            POD_NODE,
        )
        .await;
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &"eth0".parse().unwrap(),
        &[AddressSpec::plain("10.0.0.4/24".parse().unwrap())],
    );
    let mut cfg = config(
        NodeIdentity::computer(NODE),
        HostConfig {
            host_netns: NetnsRef::Current,
            host_interface: "eth0".parse().unwrap(),
            gateway_netns: "ns-static-egress-gateway".parse().unwrap(),
            tunnel_mtu: 1420,
            secret_namespace: KEY_NS.into(),
            ipv6: true,
        },
    );
    cfg.publish.heartbeat = Duration::from_secs(1);
    let running = start_daemon(&cluster, fake.dataplane(), cfg).await;
    // Every counter is there before anything went wrong.
    let (_, metrics) = http_get(running.health, "/metrics").await;
    for series in [
        "egress_gateway_errors_total{kind=\"status_write\"} 0",
        "egress_gateway_programming_duration_seconds_count{kind=\"peer\"}",
        "egress_gateway_pod_endpoints_refused_total{reason=\"key_taken\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }

    let statuses: Api<GatewayStatus> = Api::namespaced(cluster.client.clone(), KEY_NS);
    let forged = cluster.forge("web", "10.244.1.5/32", &victim_key).await;
    wait_for(
        "the peer and the refusals in the GatewayStatus",
        WAIT,
        || async {
            let Some(s) = statuses.get_opt(NODE).await.unwrap() else {
                return false;
            };
            let listed = s.spec.gateways.as_ref().is_some_and(|g| {
                g[0].static_gateway_configuration == "default/gw-a"
                    && g[0]
                        .peers
                        .iter()
                        .any(|p| p.name == "web" && p.key == victim_key[..8])
            });
            listed && s.spec.refused.as_ref().map_or(0, Vec::len) == forged.len()
        },
    )
    .await;
    let s = statuses.get(NODE).await.unwrap();
    let refused = s.spec.refused.clone().unwrap();
    let reasons: Vec<(&str, &str)> = refused
        .iter()
        .map(|r| (r.pod_endpoint.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("default/aa-forged-ip", "ip_taken"),
            ("default/ab-dup-key", "key_taken"),
            ("default/ac-borrowed", "owner_name")
        ]
    );
    assert_eq!(s.spec.refused_total, Some(3));
    assert_eq!(s.spec.heartbeat_seconds, Some(1));

    // Nothing changes, yet the heartbeat moves on (a stopped daemon shows as an old one).
    let first = s.spec.heartbeat_time.clone().unwrap();
    wait_for("a later heartbeat", WAIT, || async {
        let s = statuses.get(NODE).await.unwrap();
        s.spec.heartbeat_time.unwrap().0.as_second() > first.0.as_second()
    })
    .await;

    // Deleting the forgeries clears their refusals.
    for (name, _) in &forged {
        cluster.delete_pod_endpoint(name).await;
    }
    wait_for("the refusals to be gone", WAIT, || async {
        statuses.get(NODE).await.unwrap().spec.refused.is_none()
    })
    .await;
}
