//! Ownership bookkeeping for create, update and non-apply patches, and the finalizer flows
//! of kube's `finalizer` helper (JSON patch) and of controllers that apply finalizers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_apiserver_patch::{PatchError, apply, record_update};
use serde_json::{Value, json};

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T11:00:00Z";
const T3: &str = "2024-05-01T12:00:00Z";

fn managed(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn fields_of(obj: &Value, manager: &str) -> Option<Value> {
    managed(obj)
        .into_iter()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
}

fn created() -> Value {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "uid": "u", "resourceVersion": "1",
            "creationTimestamp": T1, "labels": {"app": "x"}},
        "data": {"a": "1"}});
    record_update(None, &mut obj, "kubectl-create", None, T1).unwrap();
    obj
}

#[test]
fn create_owns_every_field_except_server_maintained_metadata() {
    let obj = created();
    assert_eq!(
        managed(&obj),
        vec![
            json!({"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}})
        ]
    );
}

#[test]
fn update_takes_fields_from_appliers_without_conflict() {
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"},
        "data": {"a": "1", "b": "2"}});
    let applied = apply(Some(&created()), &cfg, "ssa", None, false, T2).unwrap();
    let mut edited = applied.clone();
    edited["data"]["b"] = json!("20");
    record_update(Some(&applied), &mut edited, "kubectl-edit", None, T3).unwrap();
    assert_eq!(
        fields_of(&edited, "kubectl-edit").unwrap(),
        json!({"f:data": {"f:b": {}}})
    );
    assert_eq!(
        fields_of(&edited, "ssa").unwrap(),
        json!({"f:data": {"f:a": {}}})
    );
    // The applier now conflicts with the editor.
    let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"},
        "data": {"a": "1", "b": "2"}});
    let err = apply(Some(&edited), &cfg2, "ssa", None, false, T3).unwrap_err();
    assert!(
        err.to_string()
            .contains("conflict with \"kubectl-edit\" using v1: .data.b"),
        "{err}"
    );
}

#[test]
fn removed_fields_leave_every_set_and_empty_entries_disappear() {
    let old = created();
    let mut new = old.clone();
    new["metadata"].as_object_mut().unwrap().remove("labels");
    record_update(Some(&old), &mut new, "cleaner", None, T2).unwrap();
    assert_eq!(
        fields_of(&new, "kubectl-create").unwrap(),
        json!({"f:data": {".": {}, "f:a": {}}})
    );
    // Nothing was added or changed, so "cleaner" owns nothing and gets no entry.
    assert!(fields_of(&new, "cleaner").is_none());
}

#[test]
fn an_unchanged_write_keeps_managed_fields_and_times() {
    let old = created();
    let mut new = old.clone();
    new["metadata"]["resourceVersion"] = json!("2");
    record_update(Some(&old), &mut new, "someone", None, T3).unwrap();
    assert_eq!(managed(&new), managed(&old));
}

#[test]
fn repeated_updates_by_one_manager_merge_into_one_entry() {
    let old = created();
    let mut v2 = old.clone();
    v2["data"]["b"] = json!("2");
    record_update(Some(&old), &mut v2, "ctl", None, T2).unwrap();
    let mut v3 = v2.clone();
    v3["data"]["c"] = json!("3");
    record_update(Some(&v2), &mut v3, "ctl", None, T3).unwrap();
    let ctl: Vec<Value> = managed(&v3)
        .into_iter()
        .filter(|e| e["manager"] == "ctl")
        .collect();
    assert_eq!(ctl.len(), 1);
    assert_eq!(
        ctl[0]["fieldsV1"],
        json!({"f:data": {"f:b": {}, "f:c": {}}})
    );
    assert_eq!(ctl[0]["time"], T3);
}

#[test]
fn status_updates_get_their_own_entry() {
    let mut old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "uid": "u"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    record_update(None, &mut old, "creator", None, T1).unwrap();
    let mut new = old.clone();
    new["status"] = json!({"podIP": "10.0.0.5"});
    record_update(Some(&old), &mut new, "kubelet", Some("status"), T2).unwrap();
    let entry = managed(&new)
        .into_iter()
        .find(|e| e["manager"] == "kubelet")
        .unwrap();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:status": {".": {}, "f:podIP": {}}})
    );
}

#[test]
fn existing_objects_without_managed_fields_stay_untracked() {
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    record_update(Some(&old), &mut new, "m", None, T2).unwrap();
    assert!(new["metadata"].get("managedFields").is_none());
}

#[test]
fn clients_may_rewrite_or_clear_managed_fields() {
    let old = created();
    let mut cleared = old.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&old), &mut cleared, "m", None, T2).unwrap();
    assert!(
        cleared["metadata"].get("managedFields").is_none(),
        "{cleared}"
    );
    // A client that does not send managedFields keeps the stored ones.
    let mut omitted = old.clone();
    omitted["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    record_update(Some(&old), &mut omitted, "m", None, T2).unwrap();
    assert_eq!(managed(&omitted), managed(&old));
}

#[test]
fn bad_input_is_rejected() {
    let mut not_object = json!("x");
    assert!(matches!(
        record_update(None, &mut not_object, "m", None, T1),
        Err(PatchError::NotAnObject { .. })
    ));
    let mut obj = created();
    assert!(matches!(
        record_update(None, &mut obj, "", None, T1),
        Err(PatchError::MissingManager)
    ));
}

#[test]
fn kube_finalizer_helper_adds_and_removes_its_finalizer() {
    // The helper JSON-patches `metadata.finalizers` onto an object that has none yet.
    let old = created();
    let mut with = old.clone();
    with["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    record_update(Some(&old), &mut with, "ctrl", None, T2).unwrap();
    assert_eq!(
        fields_of(&with, "ctrl").unwrap(),
        json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"example.com/cleanup\"": {}}}})
    );
    // After cleanup it removes the finalizer again; its entry goes away with it.
    let mut without = with.clone();
    without["metadata"]["finalizers"] = json!([]);
    record_update(Some(&with), &mut without, "ctrl", None, T3).unwrap();
    // ObjectMeta drops the empty list, so nothing of "ctrl" is left.
    assert!(without["metadata"].get("finalizers").is_none());
    assert!(fields_of(&without, "ctrl").is_none(), "{without}");
}

#[test]
fn applied_finalizers_from_two_managers_are_a_set() {
    let cfg = |finalizers: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "ns", "finalizers": finalizers}})
    };
    let a = apply(
        Some(&created()),
        &cfg(json!(["a.io/f"])),
        "a",
        None,
        false,
        T1,
    )
    .unwrap();
    let b = apply(Some(&a), &cfg(json!(["b.io/f"])), "b", None, false, T2).unwrap();
    assert_eq!(b["metadata"]["finalizers"], json!(["a.io/f", "b.io/f"]));
    // "a" stops applying its finalizer: only that one goes.
    let a2 = apply(Some(&b), &cfg(json!([])), "a", None, false, T3).unwrap();
    assert_eq!(a2["metadata"]["finalizers"], json!(["b.io/f"]));
    // "b" removes the last one: the empty list is dropped like ObjectMeta does.
    let b2 = apply(
        Some(&a2),
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns"}}),
        "b",
        None,
        false,
        T3,
    )
    .unwrap();
    assert!(b2["metadata"].get("finalizers").is_none(), "{b2}");
}
