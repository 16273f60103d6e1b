//! Discovery and OpenAPI: what kube's Discovery and kubectl read before anything else.

use kube::discovery::{Discovery, Scope, verbs};
use serde_json::Value;

use crate::common::{raw, start};

#[tokio::test]
async fn kube_discovery_finds_builtins_and_crds() {
    let server = start().await;
    let discovery = Discovery::new(server.client().unwrap())
        .run()
        .await
        .unwrap();
    let find = |group: &str, kind: &str| {
        discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.kind == kind)
            .unwrap_or_else(|| panic!("{group}/{kind} not discovered"))
    };
    let (pods, caps) = find("", "Pod");
    assert_eq!(pods.plural, "pods");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation(verbs::WATCH));
    assert!(
        caps.subresources
            .iter()
            .any(|(sr, _)| sr.plural == "pods/status" || sr.plural == "status")
    );
    for (group, kind) in [
        ("", "Namespace"),
        ("", "Node"),
        ("", "Secret"),
        ("", "ConfigMap"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("coordination.k8s.io", "Lease"),
        ("apps", "Deployment"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ] {
        find(group, kind);
    }
    let (widgets, caps) = find("example.com", "Widget");
    assert_eq!(widgets.plural, "widgets");
    assert_eq!(caps.scope, Scope::Namespaced);
    let (_, gadget_caps) = find("example.com", "Gadget");
    assert_eq!(gadget_caps.scope, Scope::Cluster);
}

#[tokio::test]
async fn resource_lists_carry_short_names_and_categories() {
    let server = start().await;
    let (code, _, body) = raw(&server, "GET", "/apis/example.com/v1", &[], None).await;
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    let widgets = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap();
    assert_eq!(widgets["shortNames"], serde_json::json!(["wdg"]));
    assert_eq!(widgets["categories"], serde_json::json!(["all"]));
    let (code, _, _) = raw(&server, "GET", "/apis/nope.example.com/v1", &[], None).await;
    assert_eq!(code, 404);
    let (code, _, body) = raw(&server, "GET", "/version", &[], None).await;
    assert_eq!(code, 200);
    assert!(body.contains("\"major\":\"1\""));
}

#[tokio::test]
async fn openapi_v3_documents_let_kubectl_use_server_validation() {
    let server = start().await;
    let (code, _, body) = raw(&server, "GET", "/openapi/v3", &[], None).await;
    assert_eq!(code, 200);
    let root: Value = serde_json::from_str(&body).unwrap();
    let url = root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with("/openapi/v3/apis/example.com/v1?hash="));
    let (code, _, body) = raw(&server, "GET", &url, &[], None).await;
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    let patch =
        &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Widget");
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert!(
        doc["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"].is_object()
    );
}
