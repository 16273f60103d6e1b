//! Admission behaviour a CRD author relies on: pruning, defaulting, OpenAPI checks and CEL rules,
//! reported with the API server's field paths and messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_schema::{FieldErrorKind, SchemaValidator};
use serde_json::{Value, json};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["name"],
                "x-kubernetes-validations": [
                    {"rule": "!has(self.a) || !has(self.b)", "message": "a and b are mutually exclusive"},
                    {"rule": "self.name == oldSelf.name", "message": "name is immutable", "fieldPath": ".name"}
                ],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z]+$"},
                    "size": {"type": "integer", "format": "int32", "minimum": 28, "maximum": 31},
                    "mode": {"type": "string", "enum": ["x", "y"], "default": "x"},
                    "enabled": {"type": "boolean", "default": true},
                    "a": {"type": "string"},
                    "b": {"type": "string"},
                    "cidrs": {
                        "type": "array", "maxItems": 2,
                        "items": {"type": "string", "maxLength": 64,
                                  "x-kubernetes-validations": [{"rule": "isCIDR(self)", "message": "must be a CIDR"}]}
                    },
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }
        }
    })
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "e.io/v1", "kind": "K", "metadata": {"name": "n", "labels": {"x": "y"}}, "spec": spec})
}

fn admit(spec: Value) -> (Value, Vec<String>, Vec<String>) {
    let v = SchemaValidator::new(&schema()).unwrap();
    let mut o = obj(spec);
    let (pruned, errs) = v.admit(&mut o, None);
    (o, pruned, errs.iter().map(ToString::to_string).collect())
}

#[test]
fn valid_object_is_accepted_and_defaulted() {
    let (o, pruned, errs) =
        admit(json!({"name": "abc", "size": 30, "cidrs": ["10.0.0.0/8", "fd00::/64"]}));
    assert!(errs.is_empty(), "{errs:?}");
    assert!(pruned.is_empty());
    assert_eq!(o["spec"]["mode"], "x");
    assert_eq!(o["spec"]["enabled"], true);
    assert_eq!(
        o["metadata"]["labels"]["x"], "y",
        "metadata is never pruned"
    );
}

#[test]
fn unknown_fields_are_pruned_and_reported_but_preserved_where_declared() {
    let (o, pruned, errs) =
        admit(json!({"name": "abc", "bogus": 1, "free": {"any": {"thing": 1}}}));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(pruned, vec!["spec.bogus".to_string()]);
    assert!(o["spec"].get("bogus").is_none());
    assert_eq!(o["spec"]["free"]["any"]["thing"], 1);
}

#[test]
fn null_in_non_nullable_field_takes_the_default_or_is_dropped() {
    let (o, _, errs) = admit(json!({"name": "abc", "mode": null, "a": null}));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(o["spec"]["mode"], "x");
    assert!(o["spec"].get("a").is_none());
}

#[test]
fn bounds_are_reported_with_field_path_and_server_message() {
    let (_, _, errs) = admit(json!({"name": "abc", "size": 27}));
    assert_eq!(
        errs,
        vec![
            "spec.size: Invalid value: 27: spec.size in body should be greater than or equal to 28"
        ]
    );
    let (_, _, errs) = admit(json!({"name": "abc", "size": 32}));
    assert_eq!(
        errs,
        vec!["spec.size: Invalid value: 32: spec.size in body should be less than or equal to 31"]
    );
}

#[test]
fn required_enum_pattern_length_and_type_errors() {
    let (_, _, errs) = admit(json!({"mode": "z"}));
    assert!(
        errs.contains(&"spec.name: Required value".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(
            &r#"spec.mode: Unsupported value: "z": supported values: "x", "y""#.to_string()
        ),
        "{errs:?}"
    );
    let (_, _, errs) = admit(json!({"name": "ABCDEFGHIJ"}));
    assert!(
        errs.iter()
            .any(|e| e == "spec.name: Too long: may not be more than 8 bytes"),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with(
            "spec.name: Invalid value: \"ABCDEFGHIJ\": spec.name in body should match"
        )),
        "{errs:?}"
    );
    let (_, _, errs) = admit(json!({"name": "abc", "size": "thirty"}));
    assert_eq!(
        errs,
        vec![
            r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#
        ]
    );
}

#[test]
fn cel_rules_run_on_items_and_objects() {
    let (_, _, errs) = admit(json!({"name": "abc", "cidrs": ["10.0.0.0/8", "10.0.0"]}));
    assert_eq!(
        errs,
        vec![r#"spec.cidrs[1]: Invalid value: "10.0.0": must be a CIDR"#]
    );
    let (_, _, errs) = admit(json!({"name": "abc", "a": "1", "b": "2"}));
    assert_eq!(
        errs,
        vec![r#"spec: Invalid value: "object": a and b are mutually exclusive"#]
    );
}

#[test]
fn list_and_map_limits() {
    let (_, _, errs) =
        admit(json!({"name": "abc", "cidrs": ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"]}));
    assert_eq!(
        errs,
        vec!["spec.cidrs: Too many: 3: must have at most 2 items"]
    );
    let (_, _, errs) = admit(json!({"name": "abc", "tags": {"k": 1}}));
    assert_eq!(
        errs,
        vec![
            r#"spec.tags[k]: Invalid value: "integer": spec.tags[k] in body must be of type string: "integer""#
        ]
    );
}

#[test]
fn transition_rules_compare_with_the_old_object() {
    let v = SchemaValidator::new(&schema()).unwrap();
    let old = obj(json!({"name": "abc"}));
    let mut new = obj(json!({"name": "abd"}));
    let (_, errs) = v.admit(&mut new, Some(&old));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "spec.name");
    assert_eq!(errs[0].kind, FieldErrorKind::Invalid);
    assert_eq!(errs[0].reason(), "FieldValueInvalid");
    assert!(errs[0].message().ends_with("name is immutable"));
    let mut same = obj(json!({"name": "abc", "size": 29}));
    assert!(v.admit(&mut same, Some(&old)).1.is_empty());
}

#[test]
fn broken_schemas_are_refused_with_the_reason() {
    let bad_cel = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==", "message": "m"}]});
    let err = SchemaValidator::new(&bad_cel).unwrap_err().to_string();
    assert!(err.starts_with("failed to compile CEL rules"), "{err}");
    let bad_pattern =
        json!({"type": "object", "properties": {"p": {"type": "string", "pattern": "(["}}});
    let err = SchemaValidator::new(&bad_pattern).unwrap_err().to_string();
    assert!(err.contains("at p"), "{err}");
}
