//! Strategic merge patch as kubectl and kube-apiserver use it on built-in kinds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_apiserver_patch::{Gvk, PatchError, strategic_merge};
use serde_json::{Value, json};

fn pod_gvk() -> Gvk {
    Gvk::new("", "v1", "Pod")
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "a", "tier": "web"}, "finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {"name": "one", "image": "one:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "two", "image": "two:1"}
            ],
            "tolerations": [{"key": "x", "operator": "Exists"}],
            "volumes": [{"name": "v", "emptyDir": {}}]
        }
    })
}

fn patch(p: Value) -> Value {
    strategic_merge(&pod(), &p, &pod_gvk()).unwrap()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn maps_merge_and_null_deletes_a_key() {
    let out = patch(json!({"metadata": {"labels": {"tier": null, "new": "x"}}}));
    assert_eq!(out["metadata"]["labels"], json!({"app": "a", "new": "x"}));
    assert_eq!(out["spec"], pod()["spec"]);
}

#[test]
fn containers_merge_by_name_and_new_ones_are_added() {
    let out = patch(json!({"spec": {"containers": [
        {"name": "two", "image": "two:2"}, {"name": "three", "image": "three:1"}]}}));
    let containers = &out["spec"]["containers"];
    assert_eq!(names(containers), ["one", "two", "three"]);
    assert_eq!(containers[1]["image"], "two:2");
    // Untouched fields of the merged item and untouched items survive.
    assert_eq!(containers[0]["image"], "one:1");
}

#[test]
fn nested_keyed_lists_merge_too() {
    let out = patch(json!({"spec": {"containers": [
        {"name": "one", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}));
    let env = &out["spec"]["containers"][0]["env"];
    assert_eq!(names(env), ["A", "B", "C"]);
    assert_eq!(env[1]["value"], "20");
}

#[test]
fn lists_without_strategy_are_replaced() {
    let out = patch(json!({"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}}));
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "y", "operator": "Exists"}])
    );
}

#[test]
fn unknown_kinds_replace_lists_like_a_merge_patch() {
    let live = json!({"spec": {"containers": [{"name": "a"}], "x": 1}});
    let out = strategic_merge(
        &live,
        &json!({"spec": {"containers": [{"name": "b"}]}}),
        &Gvk::new("example.com", "v1", "Thing"),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"spec": {"containers": [{"name": "b"}], "x": 1}})
    );
}

#[test]
fn patch_delete_item_removes_it_and_needs_the_merge_key() {
    let out = patch(json!({"spec": {"containers": [{"name": "one", "$patch": "delete"}]}}));
    assert_eq!(names(&out["spec"]["containers"]), ["two"]);
    let err = strategic_merge(
        &pod(),
        &json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        &pod_gvk(),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::MissingMergeKey { ref key, .. } if key == "name"),
        "{err}"
    );
}

#[test]
fn patch_replace_in_a_list_replaces_the_whole_list() {
    let out = patch(
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "only", "image": "o:1"}])
    );
}

#[test]
fn patch_replace_and_delete_on_maps() {
    let out = patch(json!({"metadata": {"labels": {"$patch": "replace", "only": "x"}}}));
    assert_eq!(out["metadata"]["labels"], json!({"only": "x"}));
    let out = patch(json!({"metadata": {"labels": {"$patch": "delete"}}}));
    assert_eq!(out["metadata"]["labels"], json!({}));
    let out = patch(json!({"metadata": {"labels": {"$patch": "merge", "more": "y"}}}));
    assert_eq!(out["metadata"]["labels"]["app"], "a");
    assert_eq!(out["metadata"]["labels"]["more"], "y");
}

#[test]
fn bad_directives_are_rejected() {
    for bad in [
        json!({"metadata": {"labels": {"$patch": "explode"}}}),
        json!({"spec": {"containers": [{"name": "one", "$patch": "merge"}]}}),
        json!({"spec": {"$unknown": 1}}),
        json!({"spec": {"$retainKeys": "name"}}),
        json!({"spec": {"$setElementOrder/containers": {"name": "x"}}}),
    ] {
        let err = strategic_merge(&pod(), &bad, &pod_gvk()).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidDirective { .. }),
            "{bad}: {err}"
        );
    }
    let err = strategic_merge(&pod(), &json!([1]), &pod_gvk()).unwrap_err();
    assert!(matches!(err, PatchError::NotAnObject { .. }));
}

#[test]
fn retain_keys_clears_other_fields_of_a_volume() {
    let out = patch(json!({"spec": {"volumes": [
        {"name": "v", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]}}));
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v", "secret": {"secretName": "s"}}])
    );
    let err = strategic_merge(
        &pod(),
        &json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "secret": {}}]}}),
        &pod_gvk(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not in the $retainKeys list"),
        "{err}"
    );
}

#[test]
fn delete_from_primitive_list_removes_finalizers() {
    let out = patch(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn primitive_merge_lists_are_unions_with_new_items_first() {
    // As strategicpatch.mergeSortedSlice: patch items not in the live list come first.
    let out = patch(json!({"metadata": {"finalizers": ["c"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = patch(json!({"metadata": {"finalizers": ["b", "c"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
}

#[test]
fn set_element_order_reorders_and_validates() {
    let out = patch(json!({"spec": {
        "$setElementOrder/containers": [{"name": "two"}, {"name": "one"}],
        "containers": [{"name": "one", "image": "one:2"}]}}));
    assert_eq!(names(&out["spec"]["containers"]), ["two", "one"]);
    assert_eq!(out["spec"]["containers"][1]["image"], "one:2");
    let err = strategic_merge(
        &pod(),
        &json!({"spec": {"$setElementOrder/containers": [{"name": "two"}],
            "containers": [{"name": "one", "image": "x"}]}}),
        &pod_gvk(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("do not match"), "{err}");
}

#[test]
fn kubectl_client_side_apply_patch_updates_image_and_annotation() {
    // What `kubectl apply` sends for a Deployment whose image changed.
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{old}"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "c", "image": "c:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{new}"}},
        "spec": {"replicas": null, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}],
            "containers": [{"image": "c:2", "name": "c",
                "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 81}],
                "ports": [{"containerPort": 81}]}]}}}});
    let out = strategic_merge(&live, &patch, &Gvk::new("apps", "v1", "Deployment")).unwrap();
    let c = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "c:2");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 81}])
    );
    assert!(out["spec"].get("replicas").is_none());
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{new}"
    );
}
