//! The `scale` subresource of Deployments and ReplicaSets: the `autoscaling/v1` `Scale`
//! view of an object (`spec.replicas`, `status.replicas`, the selector as a string) and the
//! object with a Scale's `spec.replicas` written back.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};

/// A label selector (`matchLabels`, `matchExpressions`) as the string `kubectl` and the HPA
/// read (`app=web,tier in (a,b)`).
pub fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())),
        );
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// The Scale of `obj`.
pub fn to_scale(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut m = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            m[f] = v.clone();
        }
    }
    let mut status =
        json!({"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0)});
    let selector = selector_string(obj.pointer("/spec/selector").unwrap_or(&Value::Null));
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": m,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": status,
    })
}

/// `obj` with the replicas of `scale` (422 for a missing or negative count). A
/// `metadata.resourceVersion` in the Scale is kept as the precondition of the write.
pub fn apply_scale(obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64);
    let invalid = |message: String| {
        ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message,
                field: "spec.replicas".into(),
            }],
        )
    };
    let replicas = match replicas {
        Some(n) if n >= 0 => n,
        Some(n) => {
            return Err(invalid(format!(
                "Invalid value: {n}: must be greater than or equal to 0"
            )));
        }
        None => return Err(invalid("Required value".into())),
    };
    let mut out = obj.clone();
    out["spec"]["replicas"] = json!(replicas);
    match scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv) if !rv.is_empty() => out["metadata"]["resourceVersion"] = json!(rv),
        _ => {
            if let Some(m) = out["metadata"].as_object_mut() {
                m.remove("resourceVersion");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn scale_view_and_write_back() {
        let d = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"}},
                       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"},
                                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
                       "status": {"replicas": 1}});
        let s = to_scale(&d);
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(
            s["status"],
            json!({"replicas": 1, "selector": "app=web,tier in (a,b)"})
        );
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert!(s["metadata"].get("labels").is_none());
        let back = apply_scale(&d, &json!({"spec": {"replicas": 5}})).unwrap();
        assert_eq!(back["spec"]["replicas"], 5);
        assert!(
            back["metadata"].get("resourceVersion").is_none(),
            "unconditional"
        );
        let e = apply_scale(&d, &json!({"spec": {"replicas": -1}})).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("spec.replicas"), "{}", e.message);
    }
}
