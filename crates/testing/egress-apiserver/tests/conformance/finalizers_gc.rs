//! Finalizers and deletionTimestamp, ownerReference garbage collection (background,
//! foreground, orphan) and namespace deletion.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::Resource;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy,
};
use serde_json::json;

use crate::common::{start, wait_for, widget, widget_resource};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}),
    )
    .unwrap()
}

fn owned_widget(name: &str, owner: &Pod, block: bool) -> DynamicObject {
    let mut w = widget(name, 1);
    let mut oref = owner.controller_owner_ref(&()).unwrap();
    oref.block_owner_deletion = Some(block);
    w.metadata.owner_references = Some(vec![oref]);
    w
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }))
    .unwrap()
}

async fn gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(5, &format!("{name} to be deleted"), || {
        let api = api.clone();
        let name = name.to_string();
        async move { api.get_opt(&name).await.ok()?.is_none().then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn delete_with_finalizers_only_marks_until_the_last_is_removed() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let mut c = cm("f");
    c.metadata.finalizers = Some(vec!["a/one".into(), "a/two".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    let marked = api
        .delete("f", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    // No new finalizers on a deleting object.
    let err = api
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a/one", "a/two", "a/three"]}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["a/two"]}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("f").await.unwrap().is_some());
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("f").await.unwrap().is_none());
}

#[tokio::test]
async fn background_gc_deletes_dependents_of_a_deleted_pod() {
    let server = start().await;
    let client = server.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    let p = pods
        .create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    widgets
        .create(&PostParams::default(), &owned_widget("dep", &p, false))
        .await
        .unwrap();
    widgets
        .create(&PostParams::default(), &widget("unrelated", 1))
        .await
        .unwrap();
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    gone(&widgets, "dep").await;
    assert!(widgets.get_opt("unrelated").await.unwrap().is_some());
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let server = start().await;
    let client = server.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    let p = pods
        .create(&PostParams::default(), &pod("owner"))
        .await
        .unwrap();
    let mut dep = owned_widget("blocker", &p, true);
    dep.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &dep).await.unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..Default::default()
    };
    pods.delete("owner", &dp).await.unwrap();
    let dep_deleting = wait_for(5, "dependent marked for deletion", || {
        let widgets = widgets.clone();
        async move {
            let w = widgets.get("blocker").await.ok()?;
            w.metadata.deletion_timestamp.is_some().then_some(w)
        }
    })
    .await;
    assert!(dep_deleting.metadata.deletion_timestamp.is_some());
    let owner = pods.get("owner").await.unwrap();
    assert!(
        owner
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    widgets
        .patch(
            "blocker",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    gone(&pods, "owner").await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let server = start().await;
    let client = server.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    let p = pods
        .create(&PostParams::default(), &pod("o"))
        .await
        .unwrap();
    widgets
        .create(&PostParams::default(), &owned_widget("orphan", &p, false))
        .await
        .unwrap();
    pods.delete("o", &DeleteParams::orphan()).await.unwrap();
    gone(&pods, "o").await;
    let w = widgets.get("orphan").await.unwrap();
    assert!(
        w.metadata.owner_references.is_none(),
        "{:?}",
        w.metadata.owner_references
    );
}

#[tokio::test]
async fn deleting_a_namespace_empties_it_first() {
    let server = start().await;
    let client = server.client().unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["x/y".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.create(&PostParams::default(), &cm("free"))
        .await
        .unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    let terminating = nss.get("team").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    gone(&cms, "free").await;
    let err = cms
        .create(&PostParams::default(), &cm("late"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err:?}"
    );
    assert!(
        nss.get_opt("team").await.unwrap().is_some(),
        "waits for the held object"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    gone(&nss, "team").await;
}
