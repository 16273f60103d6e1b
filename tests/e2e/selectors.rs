//! Selectors (issue 17 item 2) on one simulated cluster: SGCs `gw` and `gw2` select pods by
//! the label `egress`. (a) Labelling a running pod `egress=gw` moves its new connections to
//! gw's prefix (Event `EgressGatewayAttached`), removing the label brings it back to the
//! outbound IP (`EgressGatewayDetached`, PodEndpoint gone). (b) A pod created with the label
//! leaves from gw's prefix on its very first connection (its ADD built the tunnel; no attach
//! Event). (c) When gw2's selector also selects `egress=gw`, the selected pods use neither:
//! the running one loses its egress (its tunnel stays, gw's gateway refuses it: never the
//! outbound IP), a new one does not start (its ADD is refused naming both SGCs), both SGCs
//! carry `SelectorConflict=True` naming each other and the pods; resolving the conflict gives
//! both pods gw's prefix and the conditions turn False; an SGC whose selector is removed loses
//! the condition.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::seed;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::{self, eventually, eventually_async, pod, podendpoints, sgc, sgc_doc};
use crate::running::{pod_events, source_of};

async fn label(cluster: &Cluster, name: &str, value: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "e2e");
    pods.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"egress": value}}})),
    )
    .await
    .unwrap();
}

async fn select(cluster: &Cluster, sgc_name: &str, value: &str) {
    let mut doc = sgc_doc(sgc_name);
    doc["spec"] = json!({"gatewayNodepoolName": "gwpool", "provisionPublicIps": true,
        "podSelector": {"matchLabels": {"egress": value}}});
    egress_sim::k8s::apply(&cluster.client, &doc).await.unwrap();
}

async fn prefix_of(cluster: &Cluster, name: &str) -> String {
    sgc(cluster, name).await.unwrap().data["status"]["egressIpPrefix"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The SGC's `SelectorConflict` condition: (status, message).
async fn conflict(cluster: &Cluster, name: &str) -> Option<(String, String)> {
    let sgc = sgc(cluster, name).await?;
    let conds = sgc.data["status"]["conditions"].as_array()?.clone();
    let c: &Value = conds.iter().find(|c| c["type"] == "SelectorConflict")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

/// A pod of `e2e` labelled `egress=<value>` (no annotation).
fn labelled_pod(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "e2e", "labels": {"egress": value}},
        "spec": {"containers": [{"name": "c", "image": "agnhost"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_attach_detach_start_and_conflict() {
    let Some(lab) = common::lab("selectors") else {
        return;
    };
    let started = Instant::now();
    let cluster = common::up_ready(&lab, "selectors.yaml").await;
    let outbound = seed::OUTBOUND_IP.to_string();
    let prefix = prefix_of(&cluster, "gw").await;
    assert_eq!(source_of(&cluster, "p").await.as_deref(), Some(&*outbound));

    relabelling_attaches_and_detaches(&cluster, &prefix, &outbound).await;
    let fresh = a_new_selected_pod_leaves_from_the_prefix_first(&cluster, &prefix).await;
    conflicting_selectors_give_neither_until_resolved(&cluster, &prefix, &fresh).await;

    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
    eprintln!(
        "[e2e] selectors test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// (a) p labelled egress=gw: gw's prefix; label removed: the outbound IP.
async fn relabelling_attaches_and_detaches(cluster: &Cluster, prefix: &str, outbound: &str) {
    let t = Instant::now();
    label(cluster, "p", Some("gw")).await;
    eventually_async(
        "new connections of p to leave from gw's prefix",
        Duration::from_secs(30),
        || async {
            source_of(cluster, "p")
                .await
                .is_some_and(|s| in_prefix(&s, prefix))
        },
    )
    .await;
    let attached = t.elapsed();
    eventually_async(
        "an EgressGatewayAttached Event on p",
        Duration::from_secs(10),
        || async {
            !pod_events(cluster, "p", "EgressGatewayAttached")
                .await
                .is_empty()
        },
    )
    .await;
    let ep = podendpoints(cluster).get("p").await.unwrap();
    assert_eq!(ep.data["spec"]["staticGatewayConfiguration"], "gw");

    let t = Instant::now();
    label(cluster, "p", None).await;
    eventually_async(
        "new connections of p to leave as the outbound IP again",
        Duration::from_secs(30),
        || async { source_of(cluster, "p").await.as_deref() == Some(outbound) },
    )
    .await;
    let detached = t.elapsed();
    eventually_async(
        "an EgressGatewayDetached Event on p and its PodEndpoint gone",
        Duration::from_secs(10),
        || async {
            !pod_events(cluster, "p", "EgressGatewayDetached")
                .await
                .is_empty()
                && podendpoints(cluster).get_opt("p").await.unwrap().is_none()
        },
    )
    .await;
    eprintln!(
        "[e2e] relabelled: attached after {:.1}s, detached after {:.1}s",
        attached.as_secs_f64(),
        detached.as_secs_f64()
    );
}

/// (b) A pod created with egress=gw: its first connection, opened the moment it is ready,
/// leaves from gw's prefix. Returns its name.
async fn a_new_selected_pod_leaves_from_the_prefix_first(
    cluster: &Cluster,
    prefix: &str,
) -> String {
    let name = "fresh";
    egress_sim::k8s::apply(&cluster.client, &labelled_pod(name, "gw"))
        .await
        .unwrap();
    eventually("fresh to be ready", Duration::from_secs(60), || {
        cluster
            .pods()
            .get(&("e2e".to_string(), name.to_string()))
            .is_some_and(|r| r.ip.is_some())
    })
    .await;
    let netns = pod(cluster, name).netns.unwrap();
    let first = tokio::task::spawn_blocking(move || {
        egress_sim::services::observed_source(
            &netns,
            seed::INTERNET_SERVER_IP,
            egress_sim::services::RAW_ECHO_PORT,
            Duration::from_secs(5),
        )
    })
    .await
    .unwrap()
    .unwrap();
    let ip = first.rsplit_once(':').map_or(first.as_str(), |(ip, _)| ip);
    assert!(
        in_prefix(ip, prefix),
        "the first connection of a selected pod left as {first}, not from {prefix}"
    );
    // Its ADD built the tunnel: the running-pods loop had nothing to attach.
    assert!(
        pod_events(cluster, name, "EgressGatewayAttached")
            .await
            .is_empty()
    );
    eprintln!("[e2e] a new pod selected by gw: first connection from {first}");
    name.to_string()
}

/// (c) gw2 selects egress=gw too: neither for the selected pods until resolved.
async fn conflicting_selectors_give_neither_until_resolved(
    cluster: &Cluster,
    prefix: &str,
    fresh: &str,
) {
    assert!(
        source_of(cluster, fresh)
            .await
            .is_some_and(|s| in_prefix(&s, prefix)),
        "{fresh} should leave from gw's prefix before the conflict"
    );
    select(cluster, "gw2", "gw").await;
    // The running pod keeps its tunnel to gw, whose gateway no longer accepts it: no egress,
    // never the outbound IP (three probes in a row fail, none leaves another way).
    let t = Instant::now();
    eventually_async(
        "the running selected pod to lose its egress",
        Duration::from_secs(30),
        || async {
            for _ in 0..3 {
                if source_of(cluster, fresh).await.is_some() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    eprintln!(
        "[e2e] conflict: {fresh} lost its egress within {:.1}s",
        t.elapsed().as_secs_f64()
    );
    eventually_async(
        "an EgressGatewayFailed Event naming both SGCs",
        Duration::from_secs(15),
        || async {
            pod_events(cluster, fresh, "EgressGatewayFailed")
                .await
                .iter()
                .any(|n| n.contains("(gw, gw2)"))
        },
    )
    .await;
    for (me, other) in [("gw", "gw2"), ("gw2", "gw")] {
        eventually_async(
            "SelectorConflict=True on both SGCs, naming the other and the pod",
            Duration::from_secs(20),
            || async {
                conflict(cluster, me).await.is_some_and(|(s, m)| {
                    s == "True"
                        && m.contains(fresh)
                        && m.contains(&format!("podSelector of {other}"))
                })
            },
        )
        .await;
    }
    eprintln!("[e2e] gw: {:?}", conflict(cluster, "gw").await);

    // A pod created during the conflict does not start: its ADD names both SGCs.
    egress_sim::k8s::apply(&cluster.client, &labelled_pod("late", "gw"))
        .await
        .unwrap();
    eventually("late's ADD to be refused", Duration::from_secs(30), || {
        cluster
            .pods()
            .get(&("e2e".to_string(), "late".to_string()))
            .and_then(|r| r.last_error.clone())
            .is_some_and(|e| e.contains("gw, gw2"))
    })
    .await;
    assert!(pod(cluster, "late").ip.is_none());

    // Resolved: gw2 selects egress=gw2 again. Both pods use gw.
    let t = Instant::now();
    select(cluster, "gw2", "gw2").await;
    for name in [fresh, "late"] {
        eventually_async(
            "the selected pods to leave from gw's prefix",
            Duration::from_secs(60),
            || async {
                source_of(cluster, name)
                    .await
                    .is_some_and(|s| in_prefix(&s, prefix))
            },
        )
        .await;
    }
    eprintln!(
        "[e2e] conflict resolved: both pods on gw within {:.1}s",
        t.elapsed().as_secs_f64()
    );
    for name in ["gw", "gw2"] {
        eventually_async(
            "SelectorConflict=False on both SGCs",
            Duration::from_secs(20),
            || async {
                conflict(cluster, name)
                    .await
                    .is_some_and(|(s, _)| s == "False")
            },
        )
        .await;
    }
    // gw2 without a selector any more: an SGC as the original has, without the condition.
    // (A merge patch: the in-memory API server's server-side apply keeps a field its manager
    // stops applying.)
    let sgcs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "e2e",
        &egress_sim::report::sgc_resource(),
    );
    sgcs.patch(
        "gw2",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"podSelector": null}})),
    )
    .await
    .unwrap();
    eventually_async(
        "gw2's SelectorConflict condition to go with its selector",
        Duration::from_secs(20),
        || async {
            let gone = sgc(cluster, "gw2").await.unwrap().data["spec"]
                .get("podSelector")
                .is_none();
            gone && conflict(cluster, "gw2").await.is_none()
        },
    )
    .await;
}
