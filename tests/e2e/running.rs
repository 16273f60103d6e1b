//! Running pods follow their annotation (issue 17 item 1) on one simulated cluster: a pod
//! started without the annotation leaves as the outbound IP; annotating it while it runs
//! moves its new connections to the SGC's prefix without a restart (an Event
//! `EgressGatewayAttached` says so), and a TCP connection it opened before does not survive
//! (its packets now leave with another source address: the server answers them with a reset
//! or never sees them); removing the annotation brings it back to the outbound IP
//! (`EgressGatewayDetached`) and removes its PodEndpoint.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::traffic::NumberedStream;
use egress_sim::{seed, services};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::common::{self, eventually, eventually_async, pod, sgc, sgc_doc};

const ANNOTATION: &str = "kubernetes.azure.com/static-gateway-configuration";

/// The source address the raw echo saw on a new connection from the pod, or `None` while
/// the pod cannot reach it (during a switch).
pub(crate) async fn source_of(cluster: &Cluster, name: &str) -> Option<String> {
    let ns = pod(cluster, name).netns?;
    common::observed_from_netns(
        ns,
        seed::INTERNET_SERVER_IP,
        services::RAW_ECHO_PORT,
        Duration::from_secs(2),
    )
    .await
    .ok()
    .map(|s| {
        s.rsplit_once(':')
            .map_or(s.clone(), |(ip, _)| ip.to_string())
    })
}

/// wireguard-go zombies whose parent is an egress-cni-manager of the lab under `root`: with
/// the userspace backend an attach makes the manager the daemon's parent, so it must collect
/// the daemon when the tunnel goes.
fn manager_zombies(root: &std::path::Path) -> Vec<String> {
    let root = root.display().to_string();
    let field = |pid: &str, n: usize| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(") ")?.1.to_string();
        after.split(' ').nth(n).map(str::to_string)
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "wireguard-go" || field(&pid, 0).as_deref() != Some("Z") {
            continue;
        }
        let Some(parent) = field(&pid, 1) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("egress-cni-manager") && cmd.contains(&root) {
            out.push(pid);
        }
    }
    out
}

/// Notes of the Events with `reason` about pod `name`.
pub(crate) async fn pod_events(cluster: &Cluster, name: &str, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), "e2e");
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
        .filter_map(|e| e.note)
        .collect()
}

async fn annotate(cluster: &Cluster, name: &str, gateway: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "e2e");
    pods.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {ANNOTATION: gateway}}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotating_a_running_pod_moves_its_egress_and_removing_it_moves_it_back() {
    let Some(lab) = common::lab("running") else {
        return;
    };
    let started = Instant::now();
    let cluster = common::up_ready(&lab, "running.yaml").await;
    let outbound = seed::OUTBOUND_IP.to_string();
    let prefix = sgc(&cluster, "gw").await.unwrap().data["status"]["egressIpPrefix"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(source_of(&cluster, "p").await.as_deref(), Some(&*outbound));

    // A connection opened before the annotation.
    let pod_ns = pod(&cluster, "p").netns.unwrap();
    let stream = NumberedStream::start(
        &pod_ns,
        seed::INTERNET_SERVER_IP,
        services::STREAM_ECHO_PORT,
        Duration::from_millis(10),
    )
    .unwrap();
    eventually("the stream to flow", Duration::from_secs(10), || {
        stream.echoed() > 20
    })
    .await;

    let t = Instant::now();
    annotate(&cluster, "p", Some("gw")).await;
    eventually_async(
        "new connections of p to leave from gw's prefix",
        Duration::from_secs(30),
        || async {
            source_of(&cluster, "p")
                .await
                .is_some_and(|s| in_prefix(&s, &prefix))
        },
    )
    .await;
    let attached_after = t.elapsed();
    eventually_async(
        "an EgressGatewayAttached Event on p",
        Duration::from_secs(10),
        || async {
            !pod_events(&cluster, "p", "EgressGatewayAttached")
                .await
                .is_empty()
        },
    )
    .await;
    let note = pod_events(&cluster, "p", "EgressGatewayAttached").await[0].clone();
    assert!(note.contains("e2e/gw"), "{note}");
    let endpoints = common::podendpoints(&cluster);
    let ep = endpoints.get("p").await.unwrap();
    assert_eq!(ep.data["spec"]["staticGatewayConfiguration"], "gw");

    // The old connection: its packets now enter the tunnel with the pod's address and leave
    // the gateway from the prefix, a source the server has no connection with.
    let echoed_at_switch = stream.echoed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = stream.finish(Duration::from_secs(2));
    eprintln!(
        "[e2e] attached after {:.1}s; the connection opened before: {stats:?} (echoed {echoed_at_switch} by the time the new path worked)",
        attached_after.as_secs_f64()
    );
    assert!(
        stats.error.is_some() || stats.echoed < stats.sent,
        "the old connection was expected to break (new source address): {stats:?}"
    );

    moves_to_a_gateway_that_appears_later(&cluster, &prefix).await;

    let t = Instant::now();
    annotate(&cluster, "p", None).await;
    eventually_async(
        "new connections of p to leave as the outbound IP again",
        Duration::from_secs(30),
        || async { source_of(&cluster, "p").await.as_deref() == Some(&*outbound) },
    )
    .await;
    let detached_after = t.elapsed();
    eventually_async(
        "an EgressGatewayDetached Event on p and its PodEndpoint gone",
        Duration::from_secs(10),
        || async {
            !pod_events(&cluster, "p", "EgressGatewayDetached")
                .await
                .is_empty()
                && endpoints.get_opt("p").await.unwrap().is_none()
        },
    )
    .await;
    // The only failures reported were about gw2 before it was ready.
    let failed = pod_events(&cluster, "p", "EgressGatewayFailed").await;
    assert!(!failed.is_empty());
    for note in &failed {
        assert!(
            note.starts_with("cannot attach to StaticGatewayConfiguration e2e/gw2 yet"),
            "{note}"
        );
    }
    eprintln!("[e2e] EgressGatewayFailed Events: {failed:?}");
    eprintln!("[e2e] detached after {:.1}s", detached_after.as_secs_f64());

    // Detached (and moved away from gw before): the daemons the manager started are gone and
    // collected.
    if egress_sim::backend::wireguard_backend() == "userspace" {
        eventually(
            "no wireguard-go zombie under the manager",
            Duration::from_secs(15),
            || manager_zombies(&lab.root).is_empty(),
        )
        .await;
    }

    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
    eprintln!(
        "[e2e] running-pods test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Pod p, on gw, is annotated with gw2, which does not exist yet: it is told why and has no
/// egress meanwhile; once gw2 is created and ready, p moves to gw2's prefix.
async fn moves_to_a_gateway_that_appears_later(cluster: &Cluster, prefix: &str) {
    annotate(cluster, "p", Some("gw2")).await;
    eventually_async(
        "an EgressGatewayFailed Event saying gw2 does not exist",
        Duration::from_secs(10),
        || async {
            pod_events(cluster, "p", "EgressGatewayFailed")
                .await
                .iter()
                .any(|n| n.contains("e2e/gw2 does not exist"))
        },
    )
    .await;
    // Fail closed: p keeps its tunnel to gw, whose gateway stops accepting p as soon as its
    // annotation names another SGC (docs/design.md, PodEndpoint trust rule 3), so p has no
    // egress at all until gw2 is ready, never the outbound IP.
    let cut = Instant::now();
    eventually_async(
        "p to lose its egress through gw",
        Duration::from_secs(15),
        || async { source_of(cluster, "p").await.is_none() },
    )
    .await;
    eprintln!(
        "[e2e] annotated with the missing gw2: p lost its egress through gw within {:.1}s",
        cut.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut doc = sgc_doc("gw2");
    doc["spec"] = json!({"gatewayNodepoolName": "gwpool", "provisionPublicIps": true});
    egress_sim::k8s::apply(&cluster.client, &doc).await.unwrap();
    eventually_async("gw2 to get its prefix", Duration::from_secs(60), || async {
        sgc(cluster, "gw2").await.unwrap().data["status"]["egressIpPrefix"].is_string()
    })
    .await;
    let prefix2 = sgc(cluster, "gw2").await.unwrap().data["status"]["egressIpPrefix"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(prefix2, prefix);
    eventually_async(
        "new connections of p to leave from gw2's prefix",
        Duration::from_secs(30),
        || async {
            source_of(cluster, "p")
                .await
                .is_some_and(|s| in_prefix(&s, &prefix2))
        },
    )
    .await;
    let moved_after = t.elapsed();
    eventually_async(
        "an EgressGatewayAttached Event saying p moved from gw to gw2",
        Duration::from_secs(10),
        || async {
            pod_events(cluster, "p", "EgressGatewayAttached")
                .await
                .iter()
                .any(|n| n.contains("moved from StaticGatewayConfiguration e2e/gw to e2e/gw2"))
        },
    )
    .await;
    let moved = pod_events(cluster, "p", "EgressGatewayAttached").await;
    eprintln!(
        "[e2e] p moved to gw2 {:.1}s after gw2 was created; Events: {moved:?}",
        moved_after.as_secs_f64()
    );
}
