//! The daemon against the in-memory API server, with the data plane's stateful fake: peers
//! follow PodEndpoint events with O(1) work each, invalid ones become Events, the
//! GatewayStatus is written in batches, the probe and health endpoints answer as documented,
//! and the node identity comes from (emulated) IMDS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::*;
use egress_api::GatewayStatus;
use egress_dataplane::fake::FakeNode;
use egress_dataplane::{AddressSpec, InterfaceName, NetnsRef, PrivateKey, WgDeviceId};
use egress_gateway_daemon::{HostConfig, NodeIdentity};
use kube::Api;

const WAIT: Duration = Duration::from_secs(10);

/// Held by the tests that create hundreds of objects, so that the one measuring write
/// batching over elapsed time does not share the CPU with the other (cargo runs the tests of
/// a binary in parallel).
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fake_node() -> FakeNode {
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &"eth0".parse().unwrap(),
        &[AddressSpec::plain("10.0.0.4/24".parse().unwrap())],
    );
    fake
}

fn host() -> HostConfig {
    HostConfig {
        host_netns: NetnsRef::Current,
        host_interface: "eth0".parse().unwrap(),
        gateway_netns: "ns-static-egress-gateway".parse().unwrap(),
        tunnel_mtu: 1420,
        secret_namespace: KEY_NS.into(),
        ipv6: true,
    }
}

fn device(port: u16) -> WgDeviceId {
    WgDeviceId {
        netns: NetnsRef::Named("ns-static-egress-gateway".parse().unwrap()),
        name: InterfaceName::for_gateway_port(port),
    }
}

fn peers(fake: &FakeNode, port: u16) -> usize {
    fake.snapshot()
        .wireguard
        .get(&device(port))
        .map_or(0, |d| d.peers.len())
}

fn pod_ip(i: usize) -> String {
    format!("10.244.{}.{}/32", i / 250, i % 250 + 1)
}

fn key() -> String {
    PrivateKey::generate().public_key().to_base64()
}

#[tokio::test]
async fn peers_follow_pod_endpoint_events_with_constant_work() {
    let _heavy = HEAVY.lock().await;
    let cluster = Cluster::start().await;
    let mut gw = Gw::new("gw-a", 6000, "10.0.0.10", "10.0.0.4", "10.0.0.100");
    let secret = gw.key.expose_base64();
    cluster.gateway(&mut gw, NODE, &secret).await;
    for i in 0..500 {
        cluster
            .pod_endpoint(&format!("p{i}"), "gw-a", &pod_ip(i), &key())
            .await;
    }
    let fake = fake_node();
    let node = NodeIdentity::computer(NODE);
    let running = start_daemon(&cluster, fake.dataplane(), config(node, host())).await;
    wait_for("500 peers", WAIT, || async { peers(&fake, 6000) == 500 }).await;
    wait_for("probe 200", WAIT, || async {
        http_get(running.probe, &format!("/gw/{}", gw.uid)).await.0 == 200
    })
    .await;
    let cold = fake.stats();
    assert_eq!(cold.peer_changes, 500);
    assert!(
        cold.peer_transactions <= 2,
        "cold start batches peers: {cold:?}"
    );

    // One add, then one remove: one peer change and one transaction each.
    let before = fake.stats();
    cluster
        .pod_endpoint("new", "gw-a", &pod_ip(900), &key())
        .await;
    wait_for("501 peers", WAIT, || async { peers(&fake, 6000) == 501 }).await;
    let after_add = fake.stats();
    assert_eq!(after_add.peer_changes - before.peer_changes, 1);
    assert_eq!(after_add.peer_transactions - before.peer_transactions, 1);
    assert_eq!(after_add.nft_replacements, before.nft_replacements);
    assert_eq!(after_add.devices_created, before.devices_created);

    cluster.delete_pod_endpoint("p3").await;
    wait_for("500 peers again", WAIT, || async {
        peers(&fake, 6000) == 500
    })
    .await;
    let after_del = fake.stats();
    assert_eq!(after_del.peer_changes - after_add.peer_changes, 1);
    assert_eq!(after_del.peer_transactions - after_add.peer_transactions, 1);
    let routes_to_p3 = fake.snapshot().namespaces[&device(6000).netns]
        .routes
        .iter()
        .filter(|r| r.destination.to_string() == pod_ip(3))
        .count();
    assert_eq!(routes_to_p3, 0, "the removed pod's route is gone too");

    // Valid for the API server's schema, invalid for a gateway: rejected and reported.
    let zero_key = format!("{}=", "A".repeat(43));
    cluster
        .pod_endpoint("zero-key", "gw-a", &pod_ip(901), &zero_key)
        .await;
    cluster
        .pod_endpoint("subnet", "gw-a", "10.245.0.0/24", &key())
        .await;
    cluster
        .pod_endpoint("after", "gw-a", &pod_ip(902), &key())
        .await;
    wait_for("the valid one after them", WAIT, || async {
        peers(&fake, 6000) == 501
    })
    .await;
    wait_for("two Events", WAIT, || async {
        cluster.events("InvalidPodEndpoint").await.len() == 2
    })
    .await;
    let events = cluster.events("InvalidPodEndpoint").await;
    assert!(
        events
            .iter()
            .any(|(n, note)| n == "zero-key" && note.contains("all-zero key")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(n, note)| n == "subnet" && note.contains("is not an IPv4 /32")),
        "{events:?}"
    );
    assert_eq!(running.daemon.metrics().errors("invalid_pod_endpoint"), 2);
    running.daemon.terminate();
    running.daemon.wait().await;
}

#[tokio::test]
async fn gateway_status_is_written_in_batches_with_a_bounded_peer_list() {
    let _heavy = HEAVY.lock().await;
    let cluster = Cluster::start().await;
    let mut gw = Gw::new("gw-a", 6000, "10.0.0.10", "10.0.0.4", "10.0.0.100");
    let secret = gw.key.expose_base64();
    cluster.gateway(&mut gw, NODE, &secret).await;
    let fake = fake_node();
    // The pods exist before the daemon starts (it lists them once); the timed part is the
    // PodEndpoint (peer) changes.
    let mut uids = Vec::new();
    for i in 0..300 {
        let ip = pod_ip(i);
        let ip = ip.trim_end_matches("/32");
        uids.push(cluster.pod(&format!("p{i}"), "gw-a", &[ip]).await);
    }
    let mut cfg = config(NodeIdentity::computer(NODE), host());
    cfg.status_max_peers = 250;
    let running = start_daemon(&cluster, fake.dataplane(), cfg).await;
    let statuses: Api<GatewayStatus> = Api::namespaced(cluster.client.clone(), KEY_NS);
    wait_for("the first GatewayStatus", WAIT, || async {
        statuses.get_opt(NODE).await.unwrap().is_some()
    })
    .await;
    let started = Instant::now();
    for (i, uid) in uids.iter().enumerate() {
        let name = format!("p{i}");
        cluster
            .create_pod_endpoint(&name, "gw-a", &pod_ip(i), &key(), (&name, uid), POD_NODE)
            .await;
    }
    wait_for("the status to list 250 of 300 peers", WAIT, || async {
        let s = statuses.get(NODE).await.unwrap();
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("egressgateway.kubernetes.azure.com/ready-peers-total"))
            .map(String::as_str)
            == Some("300")
    })
    .await;
    let took = started.elapsed();
    let status = statuses.get(NODE).await.unwrap();
    let listed = status.spec.ready_peer_configurations.clone().unwrap();
    assert_eq!(listed.len(), 250, "bounded by --status-max-peers");
    assert_eq!(listed[0].interface_name.as_deref(), Some("wg-6000"));
    assert_eq!(listed[0].pod_endpoint.as_deref(), Some("default/p0"));
    let gws = status.spec.ready_gateway_configurations.unwrap();
    assert_eq!(
        gws[0].static_gateway_configuration.as_deref(),
        Some("default/gw-a")
    );
    let owner = &status.metadata.owner_references.unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", NODE));

    // 300 peer changes, yet at most one write per 300 ms interval (plus the first one).
    let writes = cluster
        .server
        .request_log()
        .count("patch", "gatewaystatuses");
    let bound = 2 + (took.as_millis() / 300) as u64;
    assert!(
        writes <= bound,
        "{writes} GatewayStatus writes in {took:?} (bound {bound})"
    );
    assert!(writes < 30, "{writes} writes for 300 peer changes");
    eprintln!("300 PodEndpoints in {took:?}: {writes} GatewayStatus writes");
    running.daemon.terminate();
    running.daemon.wait().await;
}

#[tokio::test]
async fn probe_health_and_drain() {
    let cluster = Cluster::start().await;
    let mut good = Gw::new("gw-a", 6000, "10.0.0.10", "10.0.0.4", "10.0.0.100");
    let mut bad = Gw::new("gw-b", 6001, "10.0.0.11", "10.0.0.4", "10.0.0.100");
    let good_key = good.key.expose_base64();
    cluster.gateway(&mut good, NODE, &good_key).await;
    cluster.gateway(&mut bad, NODE, "bm90IGEga2V5").await;
    let fake = fake_node();
    let mut cfg = config(NodeIdentity::computer(NODE), host());
    cfg.drain = Duration::from_millis(800);
    let running = start_daemon(&cluster, fake.dataplane(), cfg).await;
    let good_path = format!("/gw/{}", good.uid);
    wait_for("probe 200", WAIT, || async {
        http_get(running.probe, &good_path).await.0 == 200
    })
    .await;
    assert_eq!(
        http_get(running.probe, &format!("/gw/{}", bad.uid)).await.0,
        503
    );
    assert_eq!(http_get(running.probe, "/gw/unknown").await.0, 503);
    assert_eq!(http_get(running.probe, "/gw/a/b").await.0, 400);
    assert_eq!(peers(&fake, 6000), 0);
    assert!(
        !fake.snapshot().namespaces[&device(6001).netns]
            .links
            .contains_key(&device(6001).name),
        "nothing of the gateway with the bad key"
    );
    wait_for("an InvalidGateway Event", WAIT, || async {
        !cluster.events("InvalidGateway").await.is_empty()
    })
    .await;
    let (name, note) = cluster.events("InvalidGateway").await.remove(0);
    assert_eq!(name, "gw-b");
    assert!(
        note.starts_with(&format!(
            "failed to read the private key in Secret {KEY_NS}/sgw-{}",
            bad.uid
        )) && note
            .ends_with("expected 44 characters of base64 encoding 32 bytes, got 12 characters"),
        "{note}"
    );

    assert_eq!(http_get(running.health, "/healthz").await.0, 200);
    assert_eq!(http_get(running.health, "/readyz").await.0, 200);
    wait_for("the first counter sample", WAIT, || async {
        http_get(running.health, "/metrics")
            .await
            .1
            .contains("egress_gateway_peers{")
    })
    .await;
    let (code, metrics) = http_get(running.health, "/metrics").await;
    assert_eq!(code, 200);
    for series in [
        "egress_gateway_gateways_programmed 1",
        "egress_gateway_errors_total{kind=\"gateway_key\"} 1",
        "egress_gateway_programming_duration_seconds_count{kind=\"full\"}",
        "egress_gateway_peers{gateway=\"default/gw-a\",interface=\"wg-6000\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} missing in:\n{metrics}");
    }

    // SIGTERM on a node in service is a restart: no drain, the probe answers 200 until the
    // servers stop, which they do at once (the drain would be 800 ms).
    let stopping = Instant::now();
    assert!(!running.daemon.probe().draining());
    running.daemon.terminate();
    running.daemon.wait().await;
    assert!(
        stopping.elapsed() < Duration::from_millis(700),
        "a restart does not wait for a drain: {:?}",
        stopping.elapsed()
    );
    assert!(tokio::net::TcpStream::connect(running.probe).await.is_err());
    // The kernel (here: the fake) keeps the programmed gateway.
    assert!(fake.snapshot().wireguard.contains_key(&device(6000)));
}

/// A node taken out of service drains at once (before any SIGTERM), comes back when
/// uncordoned, and a SIGTERM while it drains honours the drain period; the probe state file
/// follows, with the heartbeat the keeper checks.
#[tokio::test]
async fn a_cordoned_node_drains_and_a_sigterm_then_waits_for_the_drain() {
    use egress_gateway_daemon::probe_file;
    let cluster = Cluster::start().await;
    let mut gw = Gw::new("gw-a", 6000, "10.0.0.10", "10.0.0.4", "10.0.0.100");
    let key = gw.key.expose_base64();
    cluster.gateway(&mut gw, NODE, &key).await;
    let fake = fake_node();
    let mut cfg = config(NodeIdentity::computer(NODE), host());
    cfg.drain = Duration::from_millis(800);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("lb-probe.json");
    let running = start_daemon_with(
        &cluster,
        fake.dataplane(),
        cfg,
        egress_gateway_daemon::DaemonOptions {
            probe_state_file: Some(state.clone()),
            heartbeat: Duration::from_millis(100),
        },
    )
    .await;
    let path = format!("/gw/{}", gw.uid);
    wait_for("probe 200", WAIT, || async {
        http_get(running.probe, &path).await.0 == 200
    })
    .await;
    wait_for("the state file", WAIT, || async {
        probe_file::read(&state).is_ok_and(|f| f.state.programmed.contains(&gw.uid))
    })
    .await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client.clone());
    let cordon = |on: bool| {
        let nodes = nodes.clone();
        async move {
            nodes
                .patch(
                    NODE,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(serde_json::json!({"spec": {"unschedulable": on}})),
                )
                .await
                .unwrap();
        }
    };
    cordon(true).await;
    wait_for("503 on the cordoned node", WAIT, || async {
        http_get(running.probe, &path).await.0 == 503
    })
    .await;
    wait_for("the drain in the state file", WAIT, || async {
        probe_file::read(&state).is_ok_and(|f| {
            f.state
                .draining
                .as_deref()
                .is_some_and(|d| d.contains("cordoned"))
        })
    })
    .await;
    cordon(false).await;
    wait_for("200 again once uncordoned", WAIT, || async {
        http_get(running.probe, &path).await.0 == 200
    })
    .await;
    let beat = probe_file::read(&state).unwrap().heartbeat_unix_ms;
    wait_for("a heartbeat", WAIT, || async {
        probe_file::read(&state).is_ok_and(|f| f.heartbeat_unix_ms > beat)
    })
    .await;
    // Going away for good: a SIGTERM now drains for the whole period.
    cordon(true).await;
    wait_for("503 again", WAIT, || async {
        http_get(running.probe, &path).await.0 == 503
    })
    .await;
    let drained = Instant::now();
    running.daemon.terminate();
    assert_eq!(http_get(running.probe, &path).await.0, 503);
    running.daemon.wait().await;
    assert!(
        drained.elapsed() >= Duration::from_millis(700),
        "drain period honoured"
    );
    assert!(probe_file::read(&state).unwrap().state.draining.is_some());
}

#[tokio::test]
async fn node_identity_comes_from_imds() {
    let emu = egress_azure_emulator::Emulator::start(Default::default())
        .await
        .unwrap();
    let node = NodeIdentity::from_imds(&emu.imds_url("gw-vmss000001"))
        .await
        .unwrap();
    assert_eq!(node.computer_name, "gw-vmss000001");
    assert!(node.is_named("gw-vmss000001"));
    let err = NodeIdentity::from_imds("ftp://nowhere/").await.unwrap_err();
    assert!(err.to_string().contains("plain http"), "{err}");
    emu.shutdown().await;
}

/// The peers of `wg-6000` in the fake kernel: (public key, allowed IPs).
fn kernel_peers(fake: &FakeNode) -> Vec<(String, String)> {
    fake.snapshot()
        .wireguard
        .get(&device(6000))
        .map(|d| {
            d.peers
                .iter()
                .map(|(k, p)| (k.to_base64(), format!("{:?}", p.allowed_ips)))
                .collect()
        })
        .unwrap_or_default()
}

/// Forged PodEndpoints sorted before the victim by name (`Cluster::forge`): the victim's IP
/// with a fresh key, the victim's key on another IP, the victim's IP "owned" by the victim's
/// pod. None may change a peer, through events, periodic full cycles or a restart; each is
/// refused with a specific Event and counted.
#[tokio::test]
async fn forged_pod_endpoints_never_change_a_peer_through_resyncs_and_a_restart() {
    let cluster = Cluster::start().await;
    let mut gw = Gw::new("gw-a", 6000, "10.0.0.10", "10.0.0.4", "10.0.0.100");
    let secret = gw.key.expose_base64();
    cluster.gateway(&mut gw, NODE, &secret).await;
    let victim_key = key();
    cluster
        .pod_endpoint("zz-victim", "gw-a", "10.244.1.10/32", &victim_key)
        .await;
    let fake = fake_node();
    let mut cfg = config(NodeIdentity::computer(NODE), host());
    cfg.resync_interval = Duration::from_millis(300);
    let running = start_daemon(&cluster, fake.dataplane(), cfg.clone()).await;
    wait_for("the victim's peer", WAIT, || async {
        peers(&fake, 6000) == 1
    })
    .await;
    for reason in egress_gateway_daemon::trust::Refusal::REASONS {
        let labels = format!("{{reason=\"{reason}\"}}");
        assert_eq!(
            sample(&running, "pod_endpoints_refused_total", &labels),
            Some(0.0),
            "{reason} registered at zero"
        );
    }
    let programmed = kernel_peers(&fake);
    let changes = fake.stats().peer_changes;

    let expected = cluster
        .forge("zz-victim", "10.244.1.10/32", &victim_key)
        .await;
    cluster.refusals(&expected).await;
    let cycles = sample(
        &running,
        "programming_duration_seconds_count",
        "{kind=\"full\"}",
    )
    .unwrap();
    full_cycles(&running, cycles + 3.0).await;
    assert_eq!(kernel_peers(&fake), programmed, "after three resyncs");
    assert_eq!(fake.stats().peer_changes, changes);
    for (reason, n) in [("ip_taken", 1.0), ("key_taken", 1.0), ("owner_name", 1.0)] {
        let labels = format!("{{reason=\"{reason}\"}}");
        assert_eq!(
            sample(&running, "pod_endpoints_refused_total", &labels),
            Some(n),
            "{reason}"
        );
    }

    // A restart adopts the kernel's peers: the forgeries, listed with everything else at
    // once, still change nothing.
    running.daemon.terminate();
    running.daemon.wait().await;
    let restarted = start_daemon(&cluster, fake.dataplane(), cfg).await;
    full_cycles(&restarted, 2.0).await;
    assert_eq!(kernel_peers(&fake), programmed, "after the restart");
    assert_eq!(fake.stats().peer_changes, changes);
    assert_eq!(
        sample(
            &restarted,
            "pod_endpoints_refused_total",
            "{reason=\"key_taken\"}"
        ),
        Some(1.0)
    );
    restarted.daemon.terminate();
    restarted.daemon.wait().await;
}
