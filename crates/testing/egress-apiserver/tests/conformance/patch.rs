//! Patch types: JSON patch (with `test`, incl. kube's finalizer idiom on a missing path), merge
//! patch, strategic merge for built-ins (415 for custom resources), and server-side apply with
//! field managers, conflicts, force and status from two managers.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{raw, start, widget, widget_resource};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})).unwrap()
}

#[tokio::test]
async fn json_patch_test_against_a_missing_path_passes_for_null() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &cm("j")).await.unwrap();
    // What kube's finalizer helper sends for an object without finalizers.
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/f"]},
    ]))
    .unwrap();
    let out = api
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Json::<()>(add.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        out.metadata.finalizers,
        Some(vec!["example.com/f".to_string()])
    );
    let again = api
        .patch("j", &PatchParams::default(), &Patch::Json::<()>(add))
        .await
        .unwrap_err();
    assert!(
        matches!(again, kube::Error::Api(ref s) if s.code == 422),
        "{again:?}"
    );
    let remove: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/f"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]))
    .unwrap();
    let out = api
        .patch("j", &PatchParams::default(), &Patch::Json::<()>(remove))
        .await
        .unwrap();
    assert_eq!(
        out.metadata.finalizers.unwrap_or_default(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn merge_and_strategic_merge_patches() {
    let server = start().await;
    let client = server.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("m")).await.unwrap();
    let out = api
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": null, "b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        out.data.unwrap(),
        [("b".to_string(), "2".to_string())].into()
    );
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}},
    }))
    .unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    // Strategic merge merges containers by name instead of replacing the list.
    let smp =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
    let out = deploys
        .patch("d", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let containers = out.spec.template.spec.unwrap().containers;
    let images: Vec<_> = containers
        .iter()
        .map(|c| c.image.clone().unwrap())
        .collect();
    assert_eq!(images, vec!["a:1", "b:2"]);
    // Custom resources refuse strategic merge like the real server.
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let err = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 415),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_side_apply_creates_tracks_managers_and_conflicts() {
    let server = start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client().unwrap(), "default", &widget_resource());
    let applied = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                         "metadata": {"name": "ssa"}, "spec": {"size": 3}});
    let made = api
        .patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(made.data["spec"]["size"], 3);
    let managers: Vec<String> = made
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| m.manager.unwrap())
        .collect();
    assert_eq!(managers, vec!["alice"]);
    let bob = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                     "metadata": {"name": "ssa"}, "spec": {"size": 4}});
    let err = api
        .patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&bob))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"alice\""),
        "{}",
        status.message
    );
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldManagerConflict", ".spec.size")
    );
    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&bob),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["size"], 4);
}

#[tokio::test]
async fn status_apply_from_two_managers_keeps_both_conditions() {
    let server = start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client().unwrap(), "default", &widget_resource());
    api.create(&PostParams::default(), &widget("st", 1))
        .await
        .unwrap();
    let cond = |t: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "st"},
               "status": {"conditions": [{"type": t, "status": "True"}]}})
    };
    api.patch_status(
        "st",
        &PatchParams::apply("ctrl-a"),
        &Patch::Apply(cond("A")),
    )
    .await
    .unwrap();
    let out = api
        .patch_status(
            "st",
            &PatchParams::apply("ctrl-b"),
            &Patch::Apply(cond("B")),
        )
        .await
        .unwrap();
    let types: Vec<&str> = out.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["A", "B"], "list-map conditions merge by type");
    assert_eq!(
        out.data["spec"]["size"], 1,
        "status apply leaves spec alone"
    );
    // Re-applying the same status is a no-op: no new resourceVersion.
    let again = api
        .patch_status(
            "st",
            &PatchParams::apply("ctrl-b"),
            &Patch::Apply(cond("B")),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        out.metadata.resource_version
    );
    // SSA on status of a missing object is 404 (no create through the subresource).
    let mut missing = cond("A");
    missing["metadata"]["name"] = json!("missing");
    let err = api
        .patch_status(
            "missing",
            &PatchParams::apply("ctrl-a"),
            &Patch::Apply(missing),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn apply_requires_a_field_manager() {
    let server = start().await;
    let (code, _, body) = raw(
        &server,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        &[("content-type", "application/apply-patch+yaml")],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("fieldManager"), "{body}");
}
