//! In-use protection: an SGC's PodEndpoints are counted into `podCount` and `InUse`, and its
//! deletion waits (Azure untouched, Warning Event) until the last one is gone, then cleans up
//! exactly as an unused SGC's.

use egress_api::constants::{IN_USE_FINALIZER, SGC_FINALIZER};
use egress_api::{PodEndpoint, StaticGatewayConfiguration};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::common::*;

async fn create_pod_endpoint(h: &Harness, name: &str, sgc: &str) {
    let pe: PodEndpoint = serde_json::from_value(json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": "PodEndpoint",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": "10.244.1.5/32"},
    }))
    .unwrap();
    Api::<PodEndpoint>::namespaced(h.client.clone(), NS)
        .create(&PostParams::default(), &pe)
        .await
        .unwrap();
}

async fn delete_pod_endpoint(h: &Harness, name: &str) {
    Api::<PodEndpoint>::namespaced(h.client.clone(), NS)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

/// `podCount` and the `InUse` (status, reason, message) once they match `want`.
async fn in_use(h: &Harness, name: &str, count: i32, reason: &str, message: &str) {
    h.until(&format!("{name}: {count} pods, InUse {reason}"), || async {
        let sgc: StaticGatewayConfiguration = h.sgcs().get_opt(name).await.ok()??;
        let (_, r, m) = h.condition(name, "InUse").await?;
        (sgc.status?.pod_count == Some(count) && r == reason && m.contains(message)).then_some(())
    })
    .await;
}

async fn events(h: &Harness, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(h.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_used_gateway_waits_for_its_last_pod_endpoint() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("gw", PROFILE).await;
    let sgc = h.ready("gw").await;
    let finalizers = sgc.metadata.finalizers.clone().unwrap_or_default();
    assert!(
        finalizers.contains(&SGC_FINALIZER.to_string())
            && finalizers.contains(&IN_USE_FINALIZER.to_string()),
        "{finalizers:?}"
    );
    in_use(&h, "gw", 0, "NotInUse", "no pod uses this gateway").await;
    create_pod_endpoint(&h, "a", "gw").await;
    create_pod_endpoint(&h, "b", "gw").await;
    // Another gateway's pod does not count.
    create_pod_endpoint(&h, "c", "other").await;
    in_use(&h, "gw", 2, "PodsUsingGateway", "used by 2 pods (a, b)").await;
    let provisioned = h.resource_ids();

    h.delete_sgc("gw").await;
    in_use(&h, "gw", 2, "DeletionBlocked", "used by 2 pods (a, b)").await;
    let warning = events(&h, "DeletionBlocked").await;
    assert_eq!(warning.len(), 1, "{warning:?}");
    assert_eq!(warning[0].type_.as_deref(), Some("Warning"));
    assert!(
        warning[0]
            .note
            .as_deref()
            .unwrap()
            .contains("2 pods (a, b)"),
        "{warning:?}"
    );
    // Held: the chain is not being deleted and Azure is as provisioned.
    let lb = h.lbs().get("gw").await.unwrap();
    assert!(lb.metadata.deletion_timestamp.is_none());
    assert_eq!(h.resource_ids(), provisioned);

    delete_pod_endpoint(&h, "a").await;
    in_use(&h, "gw", 1, "DeletionBlocked", "used by 1 pod (b)").await;
    assert_eq!(events(&h, "DeletionBlocked").await.len(), 1, "one Warning");
    assert!(
        h.lbs()
            .get("gw")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    delete_pod_endpoint(&h, "b").await;
    h.gone("gw").await;
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    let unblocked = events(&h, "DeletionUnblocked").await;
    assert_eq!(unblocked.len(), 1, "{unblocked:?}");
    assert_eq!(unblocked[0].type_.as_deref(), Some("Normal"));
    op.stop().await;
}
