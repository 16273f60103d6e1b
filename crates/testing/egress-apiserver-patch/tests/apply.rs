//! Server-side apply: ownership, pruning, sharing, conflicts and force.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_apiserver_patch::{ApplyError, BEFORE_FIRST_APPLY, apply, record_update};
use serde_json::{Value, json};

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T11:00:00Z";
const T3: &str = "2024-05-01T12:00:00Z";

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns"}, "data": data})
}

fn entries(obj: &Value) -> &Vec<Value> {
    obj["metadata"]["managedFields"].as_array().unwrap()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    entries(obj)
        .iter()
        .find(|e| e["manager"] == manager)
        .unwrap_or_else(|| panic!("no entry for {manager} in {obj}"))
}

fn conflicts(err: ApplyError) -> Vec<(String, String)> {
    match err {
        ApplyError::Conflict { conflicts } => conflicts
            .into_iter()
            .map(|c| (c.manager, c.field))
            .collect(),
        other => panic!("expected a conflict, got {other}"),
    }
}

#[test]
fn create_records_an_apply_entry_with_fields_v1() {
    let obj = apply(None, &cm(json!({"a": "1"})), "mgr", None, false, T1).unwrap();
    assert_eq!(obj["data"], json!({"a": "1"}));
    assert_eq!(
        entries(&obj),
        &vec![
            json!({"manager": "mgr", "operation": "Apply", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}})
        ]
    );
}

#[test]
fn applying_the_same_config_twice_is_a_no_op() {
    let first = apply(None, &cm(json!({"a": "1"})), "mgr", None, false, T1).unwrap();
    let second = apply(Some(&first), &cm(json!({"a": "1"})), "mgr", None, false, T2).unwrap();
    assert_eq!(second, first);
    // A changed value does move the timestamp.
    let third = apply(
        Some(&second),
        &cm(json!({"a": "2"})),
        "mgr",
        None,
        false,
        T3,
    )
    .unwrap();
    assert_eq!(entry(&third, "mgr")["time"], T3);
}

#[test]
fn dropping_a_field_from_the_config_deletes_it_when_only_this_manager_owned_it() {
    let first = apply(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        "mgr",
        None,
        false,
        T1,
    )
    .unwrap();
    let second = apply(Some(&first), &cm(json!({"a": "1"})), "mgr", None, false, T2).unwrap();
    assert_eq!(second["data"], json!({"a": "1"}));
    assert_eq!(
        entry(&second, "mgr")["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    assert_eq!(entry(&second, "mgr")["time"], T2);
}

#[test]
fn dropping_a_shared_field_keeps_it_for_the_other_owner() {
    let a = apply(None, &cm(json!({"x": "1", "y": "a"})), "a", None, false, T1).unwrap();
    // Same value from another manager: shared ownership, no conflict.
    let b = apply(Some(&a), &cm(json!({"x": "1"})), "b", None, false, T2).unwrap();
    assert_eq!(
        entry(&b, "a")["fieldsV1"],
        json!({"f:data": {"f:x": {}, "f:y": {}}})
    );
    assert_eq!(entry(&b, "b")["fieldsV1"], json!({"f:data": {"f:x": {}}}));
    let a2 = apply(Some(&b), &cm(json!({"y": "a"})), "a", None, false, T3).unwrap();
    assert_eq!(a2["data"], json!({"x": "1", "y": "a"}));
    assert_eq!(entry(&a2, "a")["fieldsV1"], json!({"f:data": {"f:y": {}}}));
}

#[test]
fn a_different_value_conflicts_and_force_takes_ownership() {
    let a = apply(None, &cm(json!({"x": "1", "y": "1"})), "a", None, false, T1).unwrap();
    let err = apply(
        Some(&a),
        &cm(json!({"x": "2", "y": "1"})),
        "b",
        None,
        false,
        T2,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .data.x"
    );
    assert_eq!(conflicts(err), [("a".to_owned(), ".data.x".to_owned())]);
    let forced = apply(
        Some(&a),
        &cm(json!({"x": "2", "y": "1"})),
        "b",
        None,
        true,
        T2,
    )
    .unwrap();
    assert_eq!(forced["data"]["x"], "2");
    assert_eq!(
        entry(&forced, "a")["fieldsV1"],
        json!({"f:data": {"f:y": {}}})
    );
    assert_eq!(
        entry(&forced, "b")["fieldsV1"],
        json!({"f:data": {"f:x": {}, "f:y": {}}})
    );
    // "a" no longer owns x: dropping it from its config must not delete b's value.
    let a2 = apply(Some(&forced), &cm(json!({"y": "1"})), "a", None, false, T3).unwrap();
    assert_eq!(a2["data"]["x"], "2");
}

#[test]
fn several_conflicts_are_listed_per_manager_like_the_server() {
    let a = apply(None, &cm(json!({"x": "1", "y": "1"})), "a", None, false, T1).unwrap();
    let err = apply(
        Some(&a),
        &cm(json!({"x": "2", "y": "2"})),
        "b",
        None,
        false,
        T2,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .data.x\n- .data.y"
    );
}

#[test]
fn update_managers_lose_fields_to_force_and_are_named_with_their_version() {
    let created = {
        let mut obj = cm(json!({"x": "1"}));
        record_update(None, &mut obj, "kubectl-create", None, T1).unwrap();
        obj
    };
    let err = apply(
        Some(&created),
        &cm(json!({"x": "2"})),
        "ssa",
        None,
        false,
        T2,
    )
    .unwrap_err();
    match &err {
        ApplyError::Conflict { conflicts } => {
            assert_eq!(
                conflicts[0].message,
                "conflict with \"kubectl-create\" using v1"
            );
        }
        other => panic!("{other}"),
    }
    let forced = apply(
        Some(&created),
        &cm(json!({"x": "2"})),
        "ssa",
        None,
        true,
        T2,
    )
    .unwrap();
    // kubectl-create keeps only the map itself (created by it), not the taken-over key.
    assert_eq!(
        entry(&forced, "kubectl-create")["fieldsV1"],
        json!({"f:data": {}})
    );
    assert_eq!(
        entry(&forced, "ssa")["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
}

#[test]
fn objects_without_managed_fields_are_taken_over_by_before_first_apply() {
    let live = cm(json!({"x": "1", "y": "1"}));
    let err = apply(Some(&live), &cm(json!({"x": "2"})), "ssa", None, false, T1).unwrap_err();
    assert_eq!(
        conflicts(err),
        [(BEFORE_FIRST_APPLY.to_owned(), ".data.x".to_owned())]
    );
    let same = apply(Some(&live), &cm(json!({"x": "1"})), "ssa", None, false, T1).unwrap();
    assert_eq!(entry(&same, BEFORE_FIRST_APPLY)["operation"], "Update");
    assert_eq!(
        entry(&same, "ssa")["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
}

#[test]
fn keyed_list_items_are_owned_per_item_and_pruned_as_a_whole() {
    let deploy = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"spec": {"containers": containers}}}})
    };
    let first = apply(
        None,
        &deploy(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
        "mgr",
        None,
        false,
        T1,
    )
    .unwrap();
    assert_eq!(
        entry(&first, "mgr")["fieldsV1"]["f:spec"],
        json!({"f:selector": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}},
            "k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}}}}})
    );
    // Another manager adds a container: the item is merged in, not replacing the list.
    let other = apply(
        Some(&first),
        &deploy(json!([{"name": "side", "image": "s:1"}])),
        "other",
        None,
        false,
        T2,
    )
    .unwrap();
    let names: Vec<&str> = other["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "side"]);
    let pruned = apply(
        Some(&other),
        &deploy(json!([{"name": "a", "image": "a:1"}])),
        "mgr",
        None,
        false,
        T3,
    )
    .unwrap();
    let names: Vec<&str> = pruned["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "side"]);
}

#[test]
fn atomic_lists_conflict_as_a_whole() {
    let pod = |tolerations: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"tolerations": tolerations}});
    let a = apply(None, &pod(json!([{"key": "a"}])), "a", None, false, T1).unwrap();
    let err = apply(Some(&a), &pod(json!([{"key": "b"}])), "b", None, false, T2).unwrap_err();
    assert_eq!(
        conflicts(err),
        [("a".to_owned(), ".spec.tolerations".to_owned())]
    );
}

#[test]
fn invalid_configurations_are_rejected_with_a_reason() {
    let ok = cm(json!({"a": "1"}));
    let cases = [
        (ok.clone(), "", "fieldManager is required"),
        (
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
            "m",
            "apiVersion must be set",
        ),
        (
            json!({"apiVersion": "v1", "metadata": {"name": "c"}}),
            "m",
            "kind must be set",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": []}}),
            "m",
            "metadata.managedFields must be nil",
        ),
        (json!([]), "m", "must be an object"),
    ];
    for (config, manager, want) in cases {
        let err = apply(None, &config, manager, None, false, T1).unwrap_err();
        assert!(matches!(err, ApplyError::Invalid(_)), "{err}");
        assert!(
            err.to_string().contains(want),
            "{err} should mention {want}"
        );
    }
    let live = apply(None, &ok, "m", None, false, T1).unwrap();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}});
    let err = apply(Some(&live), &secret, "m", None, false, T1).unwrap_err();
    assert!(err.to_string().contains("incorrect kind"), "{err}");
    let dup = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
    let err = apply(None, &dup, "m", None, false, T1).unwrap_err();
    assert!(
        err.to_string()
            .contains("duplicate entries for key [name=\"a\"]"),
        "{err}"
    );
}

#[test]
fn null_in_the_config_removes_the_field_but_records_ownership() {
    let a = apply(None, &cm(json!({"x": "1", "y": "2"})), "a", None, false, T1).unwrap();
    let b = apply(Some(&a), &cm(json!({"y": null})), "b", None, true, T2).unwrap();
    assert_eq!(b["data"], json!({"x": "1"}));
    assert_eq!(entry(&b, "a")["fieldsV1"], json!({"f:data": {"f:x": {}}}));
}
