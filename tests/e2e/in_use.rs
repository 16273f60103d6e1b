//! Gateways that cannot vanish under their pods, and pods told why a gateway cannot serve them
//! (issue 17, items 3 and 4), on one simulated cluster:
//! * a pod naming an SGC whose scale set does not exist shows the operator's reason
//!   (`GatewayPoolNotFound`) in its FailedCreatePodSandBox Event and Ready condition within 5 s;
//! * deleting an SGC a running pod uses waits: the SGC stays with `InUse=True/DeletionBlocked`,
//!   a Warning Event, its Azure state and the pod's egress intact, and new pods are refused;
//!   once the pod is deleted, the SGC goes and its Azure resources with it.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::report::in_prefix;
use egress_sim::scenario::Scenario;
use egress_sim::{seed, services};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use serde_json::{Value, json};

use crate::common::{self, azure_mentions, eventually_async, pod_doc, seen_from, sgc, sgc_doc};

/// The condition `type_` of an SGC as stored.
fn condition(obj: &kube::api::DynamicObject, type_: &str) -> Option<Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// Messages of the kubelet's FailedCreatePodSandBox Events of pod `name`.
async fn sandbox_failures(cluster: &Cluster, name: &str) -> Vec<String> {
    let api: Api<CoreEvent> = Api::namespaced(cluster.client.clone(), "e2e");
    let events = api.list(&Default::default()).await.unwrap();
    events
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(name)
                && e.reason.as_deref() == Some("FailedCreatePodSandBox")
        })
        .filter_map(|e| e.message)
        .collect()
}

/// The message of pod `name`'s Ready condition.
async fn ready_message(cluster: &Cluster, name: &str) -> String {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client.clone(), "e2e");
    let Some(p) = api.get_opt(name).await.unwrap() else {
        return String::new();
    };
    p.status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| c.message)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_reason_reaches_the_pod_and_deletion_waits_for_pods() {
    let Some(lab) = common::lab("in_use") else {
        return;
    };
    let started = Instant::now();
    let path = common::e2e_scenario("in-use.yaml");
    let scenario = Scenario::load(&path).unwrap();
    let cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(60))
        .await
        .unwrap();

    pool_reason_reaches_the_pod(&cluster).await;
    deletion_waits_for_the_pod(&cluster).await;

    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
    eprintln!(
        "[e2e] in-use test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

async fn pool_reason_reaches_the_pod(cluster: &Cluster) {
    let mut doc = sgc_doc("gw-nowhere");
    doc["spec"] = json!({"gatewayVmssProfile": {"vmssResourceGroup": "rg-nodes",
        "vmssName": "no-such-vmss", "publicIpPrefixSize": 31}, "provisionPublicIps": true});
    egress_sim::k8s::apply(&cluster.client, &doc).await.unwrap();
    eventually_async(
        "the operator to report gw-nowhere's pool missing",
        Duration::from_secs(60),
        || async {
            sgc(cluster, "gw-nowhere")
                .await
                .and_then(|o| condition(&o, "LoadBalancerReady"))
                .is_some_and(|c| c["reason"] == "GatewayPoolNotFound")
        },
    )
    .await;
    let t = Instant::now();
    egress_sim::k8s::apply(&cluster.client, &pod_doc("lost", "gw-nowhere"))
        .await
        .unwrap();
    eventually_async(
        "pod lost's Event and Ready condition to name GatewayPoolNotFound",
        Duration::from_secs(5),
        || async {
            let events = sandbox_failures(cluster, "lost").await;
            events.iter().any(|m| m.contains("GatewayPoolNotFound"))
                && ready_message(cluster, "lost")
                    .await
                    .contains("GatewayPoolNotFound")
        },
    )
    .await;
    let took = t.elapsed();
    let message = ready_message(cluster, "lost").await;
    assert!(
        message.contains("e2e/gw-nowhere cannot be provisioned")
            && message.contains("no-such-vmss")
            && !message.contains("not set yet"),
        "{message}"
    );
    eprintln!(
        "[e2e] the pool's reason reached pod lost after {:.1}s: {message}",
        took.as_secs_f64()
    );
    egress_sim::k8s::delete(&cluster.client, &pod_doc("lost", "gw-nowhere"))
        .await
        .unwrap();
}

async fn deletion_waits_for_the_pod(cluster: &Cluster) {
    let uids = common::sgc_uids(cluster, "gw").await;
    let prefix = sgc(cluster, "gw").await.unwrap().data["status"]["egressIpPrefix"]
        .as_str()
        .unwrap()
        .to_string();
    eventually_async("gw to count pod p", Duration::from_secs(10), || async {
        sgc(cluster, "gw").await.unwrap().data["status"]["podCount"] == 1
    })
    .await;

    let t = Instant::now();
    egress_sim::k8s::delete(&cluster.client, &sgc_doc("gw"))
        .await
        .unwrap();
    eventually_async(
        "gw's deletion to be blocked by pod p",
        Duration::from_secs(10),
        || async {
            let obj = sgc(cluster, "gw").await.unwrap();
            condition(&obj, "InUse").is_some_and(|c| {
                c["status"] == "True"
                    && c["reason"] == "DeletionBlocked"
                    && c["message"].as_str().unwrap().contains("1 pod (p)")
            })
        },
    )
    .await;
    let obj = sgc(cluster, "gw").await.unwrap();
    assert!(obj.metadata.deletion_timestamp.is_some());
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "e2e");
    let warned = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("gw")
                && e.reason.as_deref() == Some("DeletionBlocked")
                && e.type_.as_deref() == Some("Warning")
        });
    assert!(warned, "a Warning Event DeletionBlocked on gw");
    // Held, not black-holed: the internal chain is not being deleted, Azure still has the
    // gateway, and the pod still leaves from the prefix.
    let lb_resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(
            "egressgateway.kubernetes.azure.com",
            "v1alpha1",
            "GatewayLBConfiguration",
        ),
        "gatewaylbconfigurations",
    );
    let lbs: Api<kube::api::DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), "e2e", &lb_resource);
    let lb = lbs.get("gw").await.unwrap();
    assert!(lb.metadata.deletion_timestamp.is_none(), "LB config kept");
    assert!(!azure_mentions(cluster, &uids).await.is_empty());
    let seen = seen_from(
        cluster,
        "p",
        seed::INTERNET_SERVER_IP,
        services::RAW_ECHO_PORT,
    )
    .await;
    assert!(in_prefix(&seen, &prefix), "{seen} not in {prefix}");
    // No new users meanwhile: a new pod is told the gateway is going.
    egress_sim::k8s::apply(&cluster.client, &pod_doc("late", "gw"))
        .await
        .unwrap();
    eventually_async(
        "pod late to be refused",
        Duration::from_secs(10),
        || async {
            ready_message(cluster, "late")
                .await
                .contains("is being deleted")
        },
    )
    .await;
    egress_sim::k8s::delete(&cluster.client, &pod_doc("late", "gw"))
        .await
        .unwrap();
    eprintln!(
        "[e2e] gw's deletion held by pod p for {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    egress_sim::k8s::delete(&cluster.client, &pod_doc("p", "gw"))
        .await
        .unwrap();
    eventually_async(
        "SGC gw gone after its pod",
        Duration::from_secs(60),
        || async { sgc(cluster, "gw").await.is_none() },
    )
    .await;
    eventually_async(
        "no Azure resource of gw",
        Duration::from_secs(30),
        || async { azure_mentions(cluster, &uids).await.is_empty() },
    )
    .await;
    eprintln!(
        "[e2e] gw deleted and cleaned {:.1}s after its last pod",
        t.elapsed().as_secs_f64()
    );
}
