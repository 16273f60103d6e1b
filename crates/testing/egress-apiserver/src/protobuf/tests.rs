//! The codec against the maintained typed messages of k8s-pb: what we encode decodes with
//! prost into the right typed fields, and what prost encodes from typed values decodes into
//! the Kubernetes JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

use super::*;

fn unwrap_envelope(body: &[u8]) -> Unknown {
    assert_eq!(&body[..4], MAGIC);
    Unknown::decode(&body[4..]).unwrap()
}

fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let u = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(u.encode_to_vec());
    out
}

fn pod_json() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "demo", "generateName": "web-",
                     "labels": {"app": "web"}, "creationTimestamp": "2025-01-02T03:04:05Z",
                     "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
        "spec": {"nodeName": "n1", "containers": [{
            "name": "c", "image": "nginx", "command": ["sleep", "1"],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": 8080}}}],
            "terminationGracePeriodSeconds": 30, "hostNetwork": true},
        "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                   "hostIP": "10.224.0.4", "startTime": "2025-01-02T03:04:06Z",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-02T03:04:07Z"}],
                   "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2, "image": "nginx",
                                          "state": {"running": {"startedAt": "2025-01-02T03:04:07Z"}}}]},
    })
}

#[test]
fn what_we_encode_is_what_prost_decodes() {
    let body = encode(&pod_json()).unwrap();
    let u = unwrap_envelope(&body);
    let tm = u.type_meta.unwrap();
    assert_eq!(
        (tm.api_version.as_deref(), tm.kind.as_deref()),
        (Some("v1"), Some("Pod"))
    );
    let pod = core::Pod::decode(u.raw.unwrap().as_slice()).unwrap();
    let meta = pod.metadata.unwrap();
    assert_eq!(meta.generate_name.as_deref(), Some("web-"));
    assert_eq!(
        meta.creation_timestamp.unwrap().seconds,
        Some(1_735_787_045)
    );
    let fields = meta.managed_fields[0].fields_v1.clone().unwrap();
    assert_eq!(fields.raw.as_deref(), Some(br#"{"f:spec":{}}"#.as_slice()));
    let spec = pod.spec.unwrap();
    assert_eq!(spec.host_network, Some(true));
    let c = &spec.containers[0];
    assert_eq!(c.command, vec!["sleep", "1"]);
    assert_eq!(
        c.resources.as_ref().unwrap().limits["cpu"]
            .string
            .as_deref(),
        Some("500m")
    );
    let port = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
        .clone()
        .unwrap();
    assert_eq!(
        (port.r#type, port.str_val.as_deref()),
        (Some(1), Some("http"))
    );
    let tcp = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap()
        .tcp_socket
        .as_ref()
        .unwrap()
        .port
        .clone()
        .unwrap();
    assert_eq!((tcp.r#type, tcp.int_val), (Some(0), Some(8080)));
    let status = pod.status.unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.5"));
    assert_eq!(status.container_statuses[0].restart_count, Some(2));
}

#[test]
fn json_survives_a_protobuf_round_trip() {
    let original = pod_json();
    let back = decode(&encode(&original).unwrap()).unwrap();
    assert_eq!(back, original);
}

#[test]
fn what_prost_encodes_decodes_into_kubernetes_json() {
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        }),
        data: [("k".to_string(), b"v\x00".to_vec())].into(),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let v = decode(&wrap("v1", "Secret", secret.encode_to_vec())).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                         "data": {"k": "dgA="}, "type": "Opaque"})
    );
    let deploy = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: Some("d".into()),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            strategy: Some(apps::DeploymentStrategy {
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        str_val: Some("25%".into()),
                        int_val: None,
                    }),
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: None,
                    }),
                }),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: Some("c".into()),
                        resources: Some(core::ResourceRequirements {
                            requests: [(
                                "cpu".to_string(),
                                Quantity {
                                    string: Some("1".into()),
                                },
                            )]
                            .into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = decode(&wrap("apps/v1", "Deployment", deploy.encode_to_vec())).unwrap();
    assert_eq!(v["spec"]["replicas"], 0, "an explicit 0 is kept");
    assert_eq!(
        v["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": "25%", "maxUnavailable": 1})
    );
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "1"
    );
}

#[test]
fn envelope_errors_are_clear() {
    assert!(decode(b"{}").unwrap_err().message.contains("magic"));
    let e = decode(&wrap("example.com/v1", "Widget", vec![])).unwrap_err();
    assert!(
        e.message
            .contains("example.com/v1/Widget cannot be sent as protobuf"),
        "{}",
        e.message
    );
    let e = encode(&json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "x"}}))
        .unwrap_err();
    assert!(e.contains("spec.containers"), "{e}");
}

#[test]
fn accept_headers_choose_protobuf_only_when_preferred() {
    assert!(preferred(
        "application/vnd.kubernetes.protobuf,application/json"
    ));
    assert!(!preferred("application/json, */*"));
    assert!(!preferred(
        "application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1,application/json"
    ));
    assert!(!preferred(""));
}
