//! CustomResourceDefinitions: registration by POST (then served and discoverable), admission
//! (defaults, OpenAPI and CEL validation incl. transition rules, unknown fields per
//! fieldValidation), Table printing with printer columns, and CRD deletion.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::common::{raw, start, wait_for, widget, widget_resource};

fn status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn posted_crds_are_served_and_established() {
    let server = start().await;
    let client = server.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.test.io"},
        "spec": {"group": "test.io", "scope": "Cluster",
                 "names": {"kind": "Thing", "plural": "things", "shortNames": ["th"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}}]},
    }))
    .unwrap();
    let made = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conditions = made.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.io", "v1", "Thing"),
        "things",
    );
    let things: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let t: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"n": 1}}))
    .unwrap();
    things.create(&PostParams::default(), &t).await.unwrap();
    let (_, _, body) = raw(&server, "GET", "/apis/test.io/v1", &[], None).await;
    assert!(body.contains("\"shortNames\":[\"th\"]"), "{body}");
    // Bad CRDs are rejected with causes.
    let mut bad = crd.clone();
    bad.metadata.name = Some("wrong.test.io".into());
    let err = status(crds.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert_eq!(err.details.unwrap().causes[0].field, "metadata.name");
    // Deleting the CRD stops serving it and removes its objects.
    crds.delete("things.test.io", &DeleteParams::default())
        .await
        .unwrap();
    let (code, _, _) = raw(&server, "GET", "/apis/test.io/v1/things", &[], None).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn admission_defaults_and_validates_with_field_paths() {
    let server = start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client().unwrap(), "default", &widget_resource());
    let made = api
        .create(&PostParams::default(), &widget("ok", 5))
        .await
        .unwrap();
    assert_eq!(made.data["spec"]["mode"], "Small", "schema default applied");
    let err = status(
        api.create(&PostParams::default(), &widget("small", 0))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .starts_with("Widget.example.com \"small\" is invalid: spec.size"),
        "{}",
        err.message
    );
    let causes = err.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.size");
    let err = status(
        api.create(&PostParams::default(), &widget("big", 500))
            .await
            .unwrap_err(),
    );
    assert!(
        err.message.contains("size above 100 needs mode Large"),
        "{}",
        err.message
    );
    let mut large = widget("large", 500);
    large.data["spec"]["mode"] = json!("Large");
    large.data["spec"]["owner"] = json!("me");
    api.create(&PostParams::default(), &large).await.unwrap();
    let err = status(
        api.patch(
            "large",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"owner": "you"}})),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        err.message.contains("owner is immutable"),
        "{}",
        err.message
    );
    let mut bad_enum = widget("enum", 1);
    bad_enum.data["spec"]["mode"] = json!("Huge");
    let err = status(
        api.create(&PostParams::default(), &bad_enum)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.details.unwrap().causes[0].reason,
        "FieldValueNotSupported"
    );
}

#[tokio::test]
async fn unknown_fields_follow_field_validation() {
    let server = start().await;
    let body = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"u"},"spec":{"size":1,"colour":"red"}}"#;
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let json_ct = [("content-type", "application/json")];
    let (code, _, resp) = raw(
        &server,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        &json_ct,
        Some(body),
    )
    .await;
    assert_eq!(code, 400, "{resp}");
    assert!(
        resp.contains(r#"strict decoding error: unknown field \"spec.colour\""#),
        "{resp}"
    );
    let (code, headers, resp) = raw(&server, "POST", path, &json_ct, Some(body)).await;
    assert_eq!(code, 201, "{resp}");
    let warning = headers["warning"].to_str().unwrap();
    assert!(warning.contains("unknown field"), "{warning}");
    let obj: Value = serde_json::from_str(&resp).unwrap();
    assert!(obj["spec"].get("colour").is_none(), "pruned");
}

#[tokio::test]
async fn table_output_uses_printer_columns() {
    let server = start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client().unwrap(), "default", &widget_resource());
    api.create(&PostParams::default(), &widget("t1", 7))
        .await
        .unwrap();
    api.patch_status(
        "t1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let (code, _, body) = raw(
        &server,
        "GET",
        "/apis/example.com/v1/widgets",
        &accept,
        None,
    )
    .await;
    assert_eq!(code, 200);
    let table: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(table["kind"], "Table");
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Name", "Size", "Ready", "Age"]);
    let row = &table["rows"][0];
    assert_eq!(row["cells"][0], "t1");
    assert_eq!(row["cells"][1], 7);
    assert_eq!(row["cells"][2], "True");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["namespace"], "default");
}

#[tokio::test]
async fn crds_from_the_server_config_are_listed() {
    let server = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client().unwrap());
    let names = wait_for(2, "crds", || {
        let crds = crds.clone();
        async move {
            let mut v: Vec<String> = crds
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .map(|c| c.metadata.name.unwrap())
                .collect();
            v.sort();
            Some(v)
        }
    })
    .await;
    assert_eq!(names, vec!["gadgets.example.com", "widgets.example.com"]);
}
