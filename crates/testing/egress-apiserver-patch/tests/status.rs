//! Status subresource apply: two controllers writing status with different field managers,
//! custom resources typed by their CRD schema, and the status/main-resource split.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_apiserver_patch::{ApplyError, TypeInfo, apply, apply_typed, apply_with_schema};
use serde_json::{Value, json};

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T11:00:00Z";
const T3: &str = "2024-05-01T12:00:00Z";

fn crd_schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
        "status": {"type": "object", "properties": {
            "egressIpPrefix": {"type": "string"},
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": {"type": "object", "properties": {
                    "type": {"type": "string"}, "status": {"type": "string"}}}}}}}})
}

fn gw(status: Value) -> Value {
    json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "g", "namespace": "ns"}, "status": status})
}

fn live_gw() -> Value {
    json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "g", "namespace": "ns", "uid": "u1"}, "spec": {"size": 1}})
}

fn apply_status(
    live: &Value,
    status: Value,
    manager: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_with_schema(
        Some(live),
        &gw(status),
        manager,
        Some("status"),
        false,
        now,
        &crd_schema(),
        true,
    )
}

fn status_entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager && e["subresource"] == "status")
        .unwrap_or_else(|| panic!("no status entry for {manager}: {obj}"))
}

#[test]
fn two_managers_own_different_conditions_without_conflict() {
    let a = apply_status(
        &live_gw(),
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        "operator",
        T1,
    )
    .unwrap();
    let b = apply_status(
        &a,
        json!({"conditions": [{"type": "Healthy", "status": "False"}],
        "egressIpPrefix": "10.0.0.0/31"}),
        "daemon",
        T2,
    )
    .unwrap();
    assert_eq!(
        b["status"],
        json!({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Healthy", "status": "False"}],
            "egressIpPrefix": "10.0.0.0/31"})
    );
    assert_eq!(
        status_entry(&b, "daemon")["fieldsV1"],
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Healthy\"}": {".": {}, "f:status": {}, "f:type": {}}},
            "f:egressIpPrefix": {}}})
    );
    // Each manager updates its own condition; the other's stays.
    let a2 = apply_status(
        &b,
        json!({"conditions": [{"type": "Ready", "status": "False"}]}),
        "operator",
        T3,
    )
    .unwrap();
    assert_eq!(
        a2["status"]["conditions"][1],
        json!({"type": "Healthy", "status": "False"})
    );
    assert_eq!(a2["status"]["conditions"][0]["status"], "False");
    // Spec and metadata are untouched by status writes.
    assert_eq!(a2["spec"], json!({"size": 1}));
    assert_eq!(a2["metadata"]["uid"], "u1");
}

#[test]
fn changing_another_managers_status_field_conflicts() {
    let a = apply_status(
        &live_gw(),
        json!({"egressIpPrefix": "10.0.0.0/31"}),
        "daemon",
        T1,
    )
    .unwrap();
    let err =
        apply_status(&a, json!({"egressIpPrefix": "10.0.0.2/31"}), "operator", T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"daemon\" with subresource \"status\": .status.egressIpPrefix"
    );
    let err = apply_status(
        &a,
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        "operator",
        T2,
    );
    assert!(err.is_ok(), "a different field must not conflict: {err:?}");
}

#[test]
fn without_the_schema_custom_resource_conditions_are_atomic_and_conflict() {
    let types = TypeInfo::untyped().with_status_subresource(true);
    let a = apply_typed(
        Some(&live_gw()),
        &gw(json!({"conditions": [{"type": "Ready"}]})),
        "a",
        Some("status"),
        false,
        T1,
        &types,
    )
    .unwrap();
    let err = apply_typed(
        Some(&a),
        &gw(json!({"conditions": [{"type": "Healthy"}]})),
        "b",
        Some("status"),
        false,
        T2,
        &types,
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::Conflict { .. }), "{err}");
}

#[test]
fn status_writes_ignore_other_fields_and_main_writes_ignore_status() {
    let mut cfg = gw(json!({"egressIpPrefix": "p"}));
    cfg["spec"] = json!({"size": 5});
    cfg["metadata"]["labels"] = json!({"x": "y"});
    let status_write = apply_with_schema(
        Some(&live_gw()),
        &cfg,
        "m",
        Some("status"),
        false,
        T1,
        &crd_schema(),
        true,
    )
    .unwrap();
    assert_eq!(status_write["spec"]["size"], 1);
    assert!(status_write["metadata"].get("labels").is_none());
    assert_eq!(status_write["status"]["egressIpPrefix"], "p");
    assert_eq!(
        status_entry(&status_write, "m")["fieldsV1"],
        json!({"f:status": {"f:egressIpPrefix": {}}})
    );

    // The live object predates field tracking, so its spec belongs to before-first-apply.
    let main_write = apply_with_schema(
        Some(&status_write),
        &cfg,
        "m",
        None,
        true,
        T2,
        &crd_schema(),
        true,
    )
    .unwrap();
    assert_eq!(main_write["spec"]["size"], 5);
    assert_eq!(main_write["metadata"]["labels"], json!({"x": "y"}));
    let main_entry = main_write["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "m" && e.get("subresource").is_none())
        .unwrap();
    assert_eq!(
        main_entry["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:size": {}}})
    );

    // Without a status subresource, status is an ordinary field of the main resource.
    let plain = apply_with_schema(None, &cfg, "m", None, false, T1, &crd_schema(), false).unwrap();
    assert_eq!(plain["status"]["egressIpPrefix"], "p");
}

#[test]
fn builtin_pod_status_conditions_from_two_managers() {
    let pod = |conditions: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
            "status": {"conditions": conditions}})
    };
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let a = apply(
        Some(&live),
        &pod(json!([{"type": "Ready", "status": "True"}])),
        "kubelet",
        Some("status"),
        false,
        T1,
    )
    .unwrap();
    let b = apply(
        Some(&a),
        &pod(json!([{"type": "example.com/Gate", "status": "True"}])),
        "gate",
        Some("status"),
        false,
        T2,
    )
    .unwrap();
    assert_eq!(b["status"]["conditions"].as_array().unwrap().len(), 2);
    let err = apply(
        Some(&b),
        &pod(json!([{"type": "Ready", "status": "False"}])),
        "gate",
        Some("status"),
        false,
        T3,
    )
    .unwrap_err();
    let ApplyError::Conflict { conflicts } = err else {
        panic!("expected conflict")
    };
    assert_eq!(
        conflicts[0].field,
        ".status.conditions[type=\"Ready\"].status"
    );
    // The applied status on the main pod resource is ignored (status subresource).
    let main = apply(
        Some(&b),
        &pod(json!([{"type": "Ready", "status": "False"}])),
        "gate",
        None,
        false,
        T3,
    )
    .unwrap();
    assert_eq!(main["status"], b["status"]);
}
