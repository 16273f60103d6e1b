//! Object-level rules of the real server that do not need the store: metadata access, names
//! (validation, `generateName`), timestamps and uids, what counts as a spec change for
//! `generation`, and the per-kind preparation of built-ins on create and update (status reset,
//! Secret `stringData`, Namespace finalizer and name label).

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::Cause;
use crate::resource::ResourceInfo;

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata` as a mutable map, created when missing (`None` only if `obj` is no object).
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let root = obj.as_object_mut()?;
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `metadata.finalizers` (removing the field when empty, as the server's encoder does).
pub fn set_finalizers(obj: &mut Value, list: &[String]) {
    let Some(meta) = meta_mut(obj) else { return };
    if list.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(list));
    }
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Whether a deleting object still waits for finalizers (metadata ones, and a namespace's
/// `spec.finalizers`).
pub fn has_pending_finalizers(obj: &Value) -> bool {
    !finalizers(obj).is_empty()
        || (obj.get("kind").and_then(Value::as_str) == Some("Namespace")
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

/// The apiVersion's version part (`apps/v1` -> `v1`).
pub fn version_of(obj: &Value) -> String {
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    av.rsplit('/').next().unwrap_or(av).to_string()
}

/// The current time as Kubernetes `Time` (RFC 3339, seconds).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A new random uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `generateName` plus the five random characters the real server appends.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!("{prefix}{suffix}")
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks `metadata.name`: a DNS-1123 label for namespaces, a subdomain otherwise.
pub fn validate_name(name: &str, label_only: bool) -> Option<Cause> {
    let ok = if label_only {
        is_label(name)
    } else {
        name.len() <= 253 && name.split('.').all(is_label)
    };
    if ok {
        return None;
    }
    let message = if label_only {
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    } else {
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    };
    Some(Cause {
        reason: "FieldValueInvalid".into(),
        message,
        field: "metadata.name".into(),
    })
}

/// Whether `generation` must be bumped: anything but metadata (and status when it is a
/// subresource) changed.
pub fn spec_changed(res: &ResourceInfo, old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            if res.status {
                m.remove("status");
            }
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    strip(old) != strip(new)
}

/// Kind-specific changes the real server's strategies make on create.
pub fn prepare_create(res: &ResourceInfo, obj: &mut Value) {
    if res.custom
        && res.status
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => obj["status"] = json!({"phase": "Pending"}),
        ("apps", "Deployment" | "ReplicaSet") => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
            if obj.pointer("/spec/replicas").is_none() && obj.get("spec").is_some() {
                obj["spec"]["replicas"] = json!(1);
            }
        }
        ("", "Namespace") => {
            obj["status"] = json!({"phase": "Active"});
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        ("apiextensions.k8s.io", _) => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        _ => {}
    }
    prepare_write(res, obj);
}

/// Kind-specific changes on every write (create and update).
pub fn prepare_write(res: &ResourceInfo, obj: &mut Value) {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Secret") => {
            if let Some(Value::Object(string_data)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = json!({});
                }
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    obj["data"][k] =
                        json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
                }
            }
            // As SetDefaults_Secret: a missing or empty type is Opaque (protobuf clients
            // send the empty string).
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                obj["type"] = json!("Opaque");
            }
        }
        ("apps", "Deployment") if obj.get("spec").is_some_and(Value::is_object) => {
            default_deployment(&mut obj["spec"]);
        }
        ("", "Namespace") => {
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            let Some(meta) = meta_mut(obj) else { return };
            if !meta.get("labels").is_some_and(Value::is_object) {
                meta.insert("labels".into(), json!({}));
            }
            meta["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        _ => {}
    }
}

/// SetDefaults_Deployment: RollingUpdate 25%/25%, 10 revisions kept, 600 s progress deadline.
fn default_deployment(spec: &mut Value) {
    let strategy = spec
        .as_object_mut()
        .map(|m| m.entry("strategy").or_insert_with(|| json!({})));
    let Some(strategy) = strategy.filter(|s| s.is_object()) else {
        return;
    };
    if strategy.get("type").is_none_or(Value::is_null) {
        strategy["type"] = json!("RollingUpdate");
    }
    if strategy["type"] == "RollingUpdate" {
        if !strategy["rollingUpdate"].is_object() {
            strategy["rollingUpdate"] = json!({});
        }
        for f in ["maxUnavailable", "maxSurge"] {
            if strategy["rollingUpdate"].get(f).is_none_or(Value::is_null) {
                strategy["rollingUpdate"][f] = json!("25%");
            }
        }
    }
    for (f, v) in [
        ("revisionHistoryLimit", 10),
        ("progressDeadlineSeconds", 600),
    ] {
        if spec.get(f).is_none_or(Value::is_null) {
            spec[f] = json!(v);
        }
    }
}

/// The real server's `ObjectMeta` fields; others are dropped from custom resources.
pub const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Drops unknown `metadata` fields; returns their paths.
pub fn prune_metadata(obj: &mut Value) -> Vec<String> {
    let Some(meta) = meta_mut(obj) else {
        return Vec::new();
    };
    let unknown: Vec<String> = meta
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in &unknown {
        meta.remove(k);
    }
    unknown
        .into_iter()
        .map(|k| format!("metadata.{k}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::builtin::builtin_resources;

    fn res(kind: &str) -> ResourceInfo {
        builtin_resources()
            .into_iter()
            .find(|r| r.kind == kind)
            .unwrap()
    }

    #[test]
    fn names_are_checked_like_the_real_server() {
        assert!(validate_name("a.b-c", false).is_none());
        assert!(validate_name("a.b", true).is_some());
        assert!(validate_name("Upper", false).is_some());
        assert!(validate_name("-x", false).is_some());
        assert!(generate_name("web-").starts_with("web-"));
        assert_eq!(generate_name("p-").len(), 7);
    }

    #[test]
    fn secret_string_data_is_encoded_into_data() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        prepare_create(&res("Secret"), &mut s);
        assert_eq!(s["data"]["k"], "dg==");
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn generation_ignores_metadata_and_status() {
        let pod = res("Pod");
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"p": 1}});
        let b = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"x": 1}, "status": {"p": 2}});
        assert!(!spec_changed(&pod, &a, &b));
        let c = json!({"metadata": {}, "spec": {"x": 2}});
        assert!(spec_changed(&pod, &a, &c));
    }
}
