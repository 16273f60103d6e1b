//! Pruning as the API server does it before defaulting: fields the structural schema does not
//! declare are dropped (unless `x-kubernetes-preserve-unknown-fields`), and `null` in a
//! non-nullable field is replaced by the field's default or dropped.

use serde_json::{Map, Value};

use crate::openapi::{child, index};

/// Prunes `value` in place against `schema`; returns the field paths of unknown fields removed.
pub(crate) fn prune_root(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune(schema, value, "", true, &mut pruned);
    pruned
}

fn prune(schema: &Value, value: &mut Value, path: &str, keep_meta: bool, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    match value {
        Value::Object(map) => prune_object(s, map, path, keep_meta, out),
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &index(path, i), false, out);
                }
            }
        }
        _ => {}
    }
}

fn prune_object(
    s: &Map<String, Value>,
    map: &mut Map<String, Value>,
    path: &str,
    keep_meta: bool,
    out: &mut Vec<String>,
) {
    let preserve = s
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let embedded = keep_meta
        || s.get("x-kubernetes-embedded-resource")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let props = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties").filter(|a| a.is_object());
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let field_path = if props.is_some_and(|p| p.contains_key(&key)) || additional.is_none() {
            child(path, &key)
        } else {
            index(path, &key)
        };
        // The server owns metadata and the type fields of embedded objects itself.
        if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let sub = props.and_then(|p| p.get(&key)).or(additional);
        match sub {
            Some(sub) => {
                if map.get(&key).is_some_and(Value::is_null) && !nullable(sub) {
                    match sub.get("default") {
                        Some(d) => {
                            map.insert(key.clone(), d.clone());
                        }
                        None => {
                            map.remove(&key);
                        }
                    }
                    continue;
                }
                if let Some(v) = map.get_mut(&key) {
                    prune(sub, v, &field_path, false, out);
                }
            }
            None if preserve => {}
            None => {
                map.remove(&key);
                out.push(field_path);
            }
        }
    }
}

fn nullable(s: &Value) -> bool {
    s.get("nullable").and_then(Value::as_bool).unwrap_or(false)
}
