//! The resource store: every ARM resource (and resource group) as the JSON ARM returns, keyed by
//! its lower-cased ID. Derived, read-only fields (back-references) are computed on read elsewhere.

use crate::ids::key;
use serde_json::Value;
use std::collections::BTreeMap;

/// All stored resources.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Resource groups keyed by lower-cased name.
    pub resource_groups: BTreeMap<String, Value>,
    resources: BTreeMap<String, Value>,
}

impl Store {
    pub fn get(&self, id: &str) -> Option<&Value> {
        self.resources.get(&key(id))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.resources.get_mut(&key(id))
    }

    /// Inserts or replaces a resource under its own `id`.
    pub fn put(&mut self, value: Value) {
        let id = value.get("id").and_then(Value::as_str).unwrap_or_default();
        self.resources.insert(key(id), value);
    }

    pub fn remove(&mut self, id: &str) -> Option<Value> {
        self.resources.remove(&key(id))
    }

    /// Every stored resource, ordered by ID.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.resources.values()
    }

    /// Resources of an ARM type (e.g. `Microsoft.Network/loadBalancers`), case-insensitive.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.resources
            .values()
            .filter(move |v| type_of(v).eq_ignore_ascii_case(kind))
    }

    /// Resources whose ID starts with `parent_id/` (children stored as separate entries).
    pub fn children_of(&self, parent_id: &str) -> Vec<String> {
        let prefix = format!("{}/", key(parent_id));
        self.resources
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    pub fn resource_group(&self, name: &str) -> Option<&Value> {
        self.resource_groups.get(&name.to_ascii_lowercase())
    }
}

/// `id` of a resource value.
pub(crate) fn id_of(v: &Value) -> &str {
    v.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// `type` of a resource value.
pub(crate) fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// A fresh weak ETag as the Network provider issues them.
pub(crate) fn new_etag() -> String {
    format!("W/\"{}\"", uuid::Uuid::new_v4())
}

/// Compares ETags, ignoring the weak prefix and quoting differences clients introduce.
pub(crate) fn etag_matches(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> &str {
        s.trim().trim_start_matches("W/").trim_matches('"')
    }
    norm(a) == norm(b)
}

/// Calls `f` on every JSON object inside `v` (depth first, `v` included).
pub(crate) fn walk_objects<'a>(v: &'a Value, f: &mut impl FnMut(&'a Value)) {
    match v {
        Value::Object(map) => {
            f(v);
            for child in map.values() {
                walk_objects(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk_objects(child, f);
            }
        }
        _ => {}
    }
}

/// Sets `properties.provisioningState` on a value and on every sub-resource object inside it.
pub(crate) fn set_provisioning_deep(v: &mut Value, state: &str) {
    fn visit(v: &mut Value, state: &str) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get_mut("properties")
                    && props.contains_key("provisioningState")
                {
                    props.insert("provisioningState".into(), Value::String(state.into()));
                }
                for child in map.values_mut() {
                    visit(child, state);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|c| visit(c, state)),
            _ => {}
        }
    }
    visit(v, state);
}

/// Deep-merges `patch` into `target`: objects merge key by key, everything else (arrays included)
/// replaces, as ARM PATCH and Compute's partial PUT do.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() && pv.is_object() => merge(tv, pv),
                    _ => {
                        t.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_unknown_keys_and_replaces_arrays() {
        let mut t = json!({"a": {"x": 1, "keep": true}, "arr": [1, 2]});
        merge(&mut t, &json!({"a": {"x": 2}, "arr": [3]}));
        assert_eq!(t, json!({"a": {"x": 2, "keep": true}, "arr": [3]}));
    }

    #[test]
    fn etags_compare_without_weak_prefix() {
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(!etag_matches("W/\"abc\"", "W/\"abd\""));
    }
}
