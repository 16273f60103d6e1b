//! `application/vnd.kubernetes.protobuf`: kubectl's imperative generators (typed client-go
//! clients, which send protobuf) work, clients preferring protobuf get it back, and a 415
//! lists the media types the resource really accepts.

use crate::common::{Kubectl, raw, start};

#[tokio::test]
async fn kubectl_create_generators_work() {
    let server = start().await;
    let k = Kubectl::new(&server);
    let out = k.ok(&["create", "namespace", "shop"]).await;
    assert!(out.contains("namespace/shop created"), "{out}");
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
        "-n",
        "shop",
    ])
    .await;
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=size=L",
        "-n",
        "shop",
    ])
    .await;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
        "-n",
        "shop",
    ])
    .await;
    let deploy = k
        .ok(&["get", "deployment", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].ports[0].containerPort} {.metadata.labels.app}"])
        .await;
    assert_eq!(deploy, "2 80 web");
    let cm = k
        .ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.size}",
        ])
        .await;
    assert_eq!(cm, "L");
    // base64 of "admin"; the empty type protobuf clients send is defaulted to Opaque.
    let secret = k
        .ok(&[
            "get",
            "secret",
            "creds",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.user} {.type}",
        ])
        .await;
    assert_eq!(secret, "YWRtaW4= Opaque");
    let again = k.run(&["create", "namespace", "shop"]).await;
    assert!(
        !again.ok && again.stderr.contains("namespaces \"shop\" already exists"),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn answers_are_protobuf_when_the_client_prefers_it() {
    let server = start().await;
    let accept = [(
        "Accept",
        "application/vnd.kubernetes.protobuf,application/json",
    )];
    let (code, headers, body) =
        raw(&server, "GET", "/api/v1/namespaces/default", &accept, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        headers["content-type"],
        "application/vnd.kubernetes.protobuf"
    );
    assert!(body.starts_with("k8s\0"), "{body:?}");
    // Errors too: a Status message.
    let (code, headers, body) =
        raw(&server, "GET", "/api/v1/namespaces/missing", &accept, None).await;
    assert_eq!(code, 404);
    assert_eq!(
        headers["content-type"],
        "application/vnd.kubernetes.protobuf"
    );
    assert!(
        body.contains("Status") && body.contains("namespaces \"missing\" not found"),
        "{body:?}"
    );
    // Table requests stay JSON.
    let table = [(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let (_, headers, _) = raw(&server, "GET", "/api/v1/namespaces", &table, None).await;
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn unsupported_media_types_list_what_is_accepted() {
    let server = start().await;
    let text = [("Content-Type", "text/plain")];
    let (code, _, body) = raw(&server, "POST", "/api/v1/namespaces", &text, Some("x")).await;
    assert_eq!(code, 415);
    assert!(
        body.contains("accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"),
        "{body}"
    );
    // Custom resources have no protobuf form.
    let pb = [("Content-Type", "application/vnd.kubernetes.protobuf")];
    let (code, _, body) = raw(
        &server,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        &pb,
        Some("k8s\0"),
    )
    .await;
    assert_eq!(code, 415);
    assert!(
        body.contains("accepted media types include: application/json, application/yaml (got"),
        "{body}"
    );
    let (code, _, body) = raw(
        &server,
        "PATCH",
        "/api/v1/namespaces/default",
        &text,
        Some("{}"),
    )
    .await;
    assert_eq!(code, 415);
    assert!(
        body.contains("application/strategic-merge-patch+json"),
        "{body}"
    );
}
