//! Which properties each resource type has, and which of them are read-only, so request bodies
//! are cut to what the resource provider understands before anything is stored: ARM resource
//! providers silently drop properties they do not know (docs/azure-emulator.md gives the
//! evidence) and ignore read-only ones in requests, so neither is stored nor echoed.
//!
//! `schema/arm-schema.json` is generated from the official Azure SDK for Python's models (which
//! are generated from the REST specification) by `sdk-conformance/gen_schema.py`; the
//! conformance suite fails when it is stale. Each definition maps a JSON name to a compact
//! spec: `""` a value, `"T"` an object of definition `T`, `"[x]"` a list, `"{x}"` a map, and a
//! leading `!` marks a read-only property.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

#[derive(Debug, Deserialize)]
struct Schema {
    roots: BTreeMap<String, String>,
    defs: BTreeMap<String, BTreeMap<String, String>>,
}

static SCHEMA: LazyLock<Option<Schema>> = LazyLock::new(|| {
    match serde_json::from_str(include_str!("../schema/arm-schema.json")) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "schema/arm-schema.json is corrupt; properties are not pruned");
            None
        }
    }
});

/// Removes from a request body of `arm_type` every property the type does not have and every
/// read-only one, at any depth. Types without a schema are left alone. Returns the JSON paths
/// removed as unknown (for the debug log).
pub(crate) fn prune_request(arm_type: &str, body: &mut Value) -> Vec<String> {
    let Some(schema) = SCHEMA.as_ref() else {
        return Vec::new();
    };
    let Some(root) = schema
        .roots
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(arm_type))
        .map(|(_, r)| r.as_str())
    else {
        return Vec::new();
    };
    let mut dropped = Vec::new();
    prune(schema, root, body, "", &mut dropped);
    dropped
}

fn prune(schema: &Schema, spec: &str, v: &mut Value, path: &str, dropped: &mut Vec<String>) {
    if let Some(inner) = spec.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Value::Array(items) = v {
            for (i, item) in items.iter_mut().enumerate() {
                prune(schema, inner, item, &format!("{path}[{i}]"), dropped);
            }
        }
        return;
    }
    if let Some(inner) = spec.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        if let Value::Object(map) = v {
            for (k, item) in map.iter_mut() {
                prune(schema, inner, item, &format!("{path}.{k}"), dropped);
            }
        }
        return;
    }
    let (Some(def), Value::Object(map)) = (schema.defs.get(spec), v) else {
        return;
    };
    map.retain(|k, _| match def.get(k) {
        Some(s) => !s.starts_with('!'),
        None => {
            dropped.push(format!("{path}.{k}"));
            false
        }
    });
    for (k, item) in map.iter_mut() {
        if let Some(s) = def.get(k) {
            prune(schema, s, item, &format!("{path}.{k}"), dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_read_only_properties_go_at_any_depth() {
        let mut lb = json!({
            "location": "eastus", "etag": "W/\"x\"", "bogus": 1,
            "properties": {
                "provisioningState": "Succeeded",
                "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": "s", "junk": true}, "nope": 2}}],
                "loadBalancingRules": [{"name": "r", "properties": {"frontendPort": 1, "made_up": "x"}}],
            },
            "tags": {"free": "form", "keys": "stay"},
        });
        let dropped = prune_request("microsoft.network/loadBalancers", &mut lb);
        assert_eq!(
            lb,
            json!({
                "location": "eastus",
                "properties": {
                    "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": "s"}}}],
                    "loadBalancingRules": [{"name": "r", "properties": {"frontendPort": 1}}],
                },
                "tags": {"free": "form", "keys": "stay"},
            })
        );
        assert!(dropped.contains(&".bogus".to_owned()), "{dropped:?}");
        assert!(
            dropped.iter().any(|d| d.ends_with("subnet.junk")),
            "{dropped:?}"
        );
    }

    #[test]
    fn every_served_type_has_a_schema() {
        let schema = SCHEMA.as_ref().unwrap();
        for t in crate::router::TopType::ALL {
            assert!(
                schema
                    .roots
                    .keys()
                    .any(|r| r.eq_ignore_ascii_case(t.arm_type())),
                "{t:?}"
            );
        }
        for def in schema.roots.values() {
            assert!(schema.defs.contains_key(def), "{def}");
        }
    }
}
