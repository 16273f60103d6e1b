//! Object semantics and verbs: uid/creationTimestamp/resourceVersion, generateName, 404/409
//! errors as Status, optimistic concurrency, generation, status subresource, selectors,
//! pagination, deletecollection, dry run, namespaces.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::Error;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{start, widget, widget_resource};

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn api_err(e: Error) -> kube::core::Status {
    match e {
        Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_sets_metadata_and_resource_versions_increase() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let a = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &cm("b", &[]))
        .await
        .unwrap();
    assert!(a.metadata.uid.is_some());
    assert!(a.metadata.creation_timestamp.is_some());
    let rv = |c: &ConfigMap| {
        c.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&b) > rv(&a));
    let got = api.get("a").await.unwrap();
    assert_eq!(got.metadata.uid, a.metadata.uid);
    let dup = api_err(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"a\" already exists");
    let missing = api_err(api.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"nope\" not found");
}

#[tokio::test]
async fn generate_name_and_invalid_names() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let mut c = cm("", &[]);
    c.metadata.name = None;
    c.metadata.generate_name = Some("gen-".into());
    let made = api.create(&PostParams::default(), &c).await.unwrap();
    let name = made.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let bad = api_err(
        api.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"));
    let causes = bad.details.unwrap().causes;
    assert_eq!(causes[0].field, "metadata.name");
    assert_eq!(causes[0].reason, "FieldValueInvalid");
}

#[tokio::test]
async fn stale_resource_version_conflicts() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let first = api
        .create(&PostParams::default(), &cm("c", &[]))
        .await
        .unwrap();
    let mut newer = first.clone();
    newer.data = Some(BTreeMap::from([("k".into(), "2".into())]));
    api.replace("c", &PostParams::default(), &newer)
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.data = Some(BTreeMap::from([("k".into(), "3".into())]));
    let err = api_err(
        api.replace("c", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    // A no-op update keeps the resourceVersion (no write).
    let cur = api.get("c").await.unwrap();
    let again = api
        .replace("c", &PostParams::default(), &cur)
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        cur.metadata.resource_version
    );
}

#[tokio::test]
async fn custom_resources_need_a_resource_version_on_update() {
    let server = start().await;
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(server.client().unwrap(), "default", &widget_resource());
    api.create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let err = api_err(
        api.replace("w", &PostParams::default(), &widget("w", 2))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.details.unwrap().causes[0].field,
        "metadata.resourceVersion"
    );
}

#[tokio::test]
async fn generation_and_status_subresource() {
    let server = start().await;
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(server.client().unwrap(), "default", &widget_resource());
    let mut w = widget("w", 1);
    w.data["status"] = json!({"phase": "ignored-on-create"});
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );
    // Status writes change status only and keep generation.
    let st = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 50}, "status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(st.data["spec"]["size"], 1);
    assert_eq!(st.metadata.generation, Some(1));
    // Main-resource writes ignore status; a label change keeps generation, a spec change bumps.
    let labelled = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "status": {"phase": "X"}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    assert_eq!(labelled.data["status"]["phase"], "Ready");
    let spec = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
}

#[tokio::test]
async fn pods_start_pending_and_take_status_through_the_subresource() {
    let server = start().await;
    let api: Api<Pod> = Api::namespaced(server.client().unwrap(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        "status": {"podIP": "10.0.0.9"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    let status = created.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.pod_ip, None);
    let patched = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().pod_ip.as_deref(), Some("10.0.0.9"));
    let on_node = api
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 1);
    let elsewhere = api
        .list(&ListParams::default().fields("spec.nodeName=n2"))
        .await
        .unwrap();
    assert!(elsewhere.items.is_empty());
    let bad = api_err(
        api.list(&ListParams::default().fields("spec.unknown=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn label_selectors_including_set_based() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    for (n, app, tier) in [
        ("a", "web", "front"),
        ("b", "web", "back"),
        ("c", "db", "back"),
    ] {
        api.create(
            &PostParams::default(),
            &cm(n, &[("app", app), ("tier", tier)]),
        )
        .await
        .unwrap();
    }
    api.create(&PostParams::default(), &cm("d", &[]))
        .await
        .unwrap();
    let names = |sel: &'static str| {
        let api = api.clone();
        async move {
            let mut v: Vec<String> = api
                .list(&ListParams::default().labels(sel))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|c| c.metadata.name.unwrap())
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(names("app=web").await, vec!["a", "b"]);
    assert_eq!(names("app!=web").await, vec!["c", "d"]);
    assert_eq!(
        names("tier in (front, back),app notin (db)").await,
        vec!["a", "b"]
    );
    assert_eq!(names("app").await, vec!["a", "b", "c"]);
    assert_eq!(names("!app").await, vec!["d"]);
}

#[tokio::test]
async fn pagination_with_limit_and_continue() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("p{i}"), &[]))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => {
                assert!(page.metadata.remaining_item_count.unwrap() > 0);
                lp = lp.continue_token(&c);
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn deletecollection_and_dry_run() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    for (n, l) in [("x1", "gone"), ("x2", "gone"), ("x3", "kept")] {
        api.create(&PostParams::default(), &cm(n, &[("fate", l)]))
            .await
            .unwrap();
    }
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &cm("dry", &[])).await.unwrap();
    assert!(api.get_opt("dry").await.unwrap().is_none());
    let deleted = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("fate=gone"),
        )
        .await
        .unwrap();
    let deleted = deleted.left().expect("a list of deleted objects");
    assert_eq!(deleted.items.len(), 2);
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, vec!["x3"]);
}

#[tokio::test]
async fn namespaces_must_exist_and_secrets_encode_string_data() {
    let server = start().await;
    let client = server.client().unwrap();
    let in_missing: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let err = api_err(
        in_missing
            .create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"missing\" not found");
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = nss.get("default").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "default"
    );
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    let made = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(made.data.unwrap()["password"].0, b"hunter2".to_vec());
    assert_eq!(made.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
async fn delete_preconditions_and_status_answers() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let c = api
        .create(&PostParams::default(), &cm("d", &[]))
        .await
        .unwrap();
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = api_err(api.delete("d", &wrong).await.unwrap_err());
    assert_eq!(err.code, 409);
    assert!(
        err.message
            .contains("Precondition failed: UID in precondition"),
        "{}",
        err.message
    );
    let right = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: c.metadata.uid.clone(),
            resource_version: c.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    let status = api
        .delete("d", &right)
        .await
        .unwrap()
        .right()
        .expect("Success status");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    assert!(api.get_opt("d").await.unwrap().is_none());
}
