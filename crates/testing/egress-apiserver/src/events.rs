//! Events are stored once, in core/v1 form, and served through two views as by the real server:
//! core/v1 `events` and events.k8s.io/v1 `events`. This module holds the real server's field
//! mapping between the two forms (in both directions, as in `k8s.io/kubernetes/pkg/apis/events/v1`
//! conversion) and its field-label mapping for selectors.

use serde_json::{Map, Value, json};

/// The API group of the events.k8s.io view.
const EVENTS_GROUP: &str = "events.k8s.io";

/// The core/v1 form's apiVersion, which stored Events carry.
const CORE_API_VERSION: &str = "v1";

/// Fields that keep their name in both forms.
const SHARED: &[&str] = &[
    "reason",
    "type",
    "action",
    "related",
    "series",
    "eventTime",
    "reportingInstance",
];

/// (events.k8s.io/v1 field, core/v1 field) pairs the conversion renames.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedSource", "source"),
    ("reportingController", "reportingComponent"),
];

/// Whether the resource `group`/`kind` (built-in) is one of the two Event views.
pub fn is_event(group: &str, kind: &str) -> bool {
    kind == "Event" && (group.is_empty() || group == EVENTS_GROUP)
}

/// The group whose store holds the objects of built-in `group`/`kind`: Events of either view
/// live in core's.
pub fn storage_group<'a>(group: &'a str, kind: &str) -> &'a str {
    if is_event(group, kind) { "" } else { group }
}

fn api_version_of(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

/// Copies the known fields of `from` into a new object of `api_version`, renaming each
/// `(from_name, to_name)`; unknown fields are dropped, as typed decoding does.
fn convert(
    from: &Value,
    api_version: &str,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!(api_version));
    if let Some(meta) = from.get("metadata") {
        out.insert("metadata".into(), meta.clone());
    }
    for (src, dst) in pairs {
        if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
            out.insert(dst.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The events.k8s.io/v1 form of a core/v1 Event.
pub fn core_to_events(core: &Value, api_version: &str) -> Value {
    let pairs = SHARED
        .iter()
        .map(|f| (*f, *f))
        .chain(RENAMED.iter().map(|(ev, core)| (*core, *ev)));
    convert(core, api_version, pairs)
}

/// The core/v1 form of an events.k8s.io/v1 Event.
pub fn events_to_core(event: &Value) -> Value {
    let pairs = SHARED
        .iter()
        .map(|f| (*f, *f))
        .chain(RENAMED.iter().copied());
    let mut core = convert(event, CORE_API_VERSION, pairs);
    with_core_defaults(&mut core);
    core
}

/// `involvedObject` is a struct in the real server's core type, so it is always emitted (and
/// k8s-openapi's `Event` requires it).
fn with_core_defaults(core: &mut Value) {
    if core.get("involvedObject").is_none_or(Value::is_null) {
        core["involvedObject"] = json!({});
    }
}

/// An Event in either form as served with `api_version` (`v1` or `events.k8s.io/v1`).
pub fn present(obj: Value, api_version: &str) -> Value {
    let from_events = api_version_of(&obj).starts_with(EVENTS_GROUP);
    let to_events = api_version.starts_with(EVENTS_GROUP);
    match (from_events, to_events) {
        (false, true) => core_to_events(&obj, api_version),
        (true, false) => events_to_core(&obj),
        _ => {
            let mut obj = obj;
            obj["apiVersion"] = json!(api_version);
            if !to_events {
                with_core_defaults(&mut obj);
            }
            obj
        }
    }
}

/// The stored (core/v1) form of an Event written through either view.
pub fn to_storage(obj: Value) -> Value {
    if api_version_of(&obj).starts_with(EVENTS_GROUP) {
        events_to_core(&obj)
    } else {
        obj
    }
}

/// The stored-object fields a field label of `group`'s view reads, first non-empty wins: the
/// events.k8s.io labels are renamed to core fields (`regarding.name` -> `involvedObject.name`,
/// `reportingController` -> `reportingComponent`), and core's `source` is the source component
/// or else the reporting controller, as in the real server's selectable fields.
pub fn stored_field_paths(group: &str, label: &str) -> Vec<String> {
    if group == EVENTS_GROUP {
        if let Some(rest) = label.strip_prefix("regarding.") {
            return vec![format!("involvedObject.{rest}")];
        }
        if label == "reportingController" {
            return vec!["reportingComponent".into()];
        }
    } else if label == "source" {
        return vec!["source.component".into(), "reportingComponent".into()];
    }
    vec![label.to_string()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn events_form() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "w.1", "namespace": "default"},
            "regarding": {"kind": "Widget", "name": "w", "namespace": "default", "uid": "u1"},
            "note": "size must be positive", "reason": "InvalidSpec", "type": "Warning",
            "action": "Reconcile", "reportingController": "ctl", "reportingInstance": "ctl-0",
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"},
            "deprecatedCount": 3, "deprecatedSource": {"component": "old"},
            "deprecatedFirstTimestamp": "2025-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2025-01-01T00:02:00Z",
            "unknownField": 1,
        })
    }

    #[test]
    fn events_k8s_io_fields_map_to_core_fields() {
        let core = events_to_core(&events_form());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "w");
        assert_eq!(core["message"], "size must be positive");
        assert_eq!(core["reportingComponent"], "ctl");
        assert_eq!(core["reportingInstance"], "ctl-0");
        assert_eq!(core["count"], 3);
        assert_eq!(core["source"]["component"], "old");
        assert_eq!(core["firstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(core["lastTimestamp"], "2025-01-01T00:02:00Z");
        assert_eq!(core["series"]["count"], 2);
        assert_eq!(core["action"], "Reconcile");
        assert!(core.get("note").is_none() && core.get("unknownField").is_none());
    }

    #[test]
    fn the_two_forms_round_trip() {
        let mut original = events_form();
        original.as_object_mut().unwrap().remove("unknownField");
        let back = present(to_storage(original.clone()), "events.k8s.io/v1");
        assert_eq!(back, original);
    }

    #[test]
    fn core_events_gain_an_involved_object_and_selector_labels_are_renamed() {
        let core = present(json!({"apiVersion": "v1", "metadata": {}}), "v1");
        assert_eq!(core["involvedObject"], json!({}));
        assert_eq!(
            stored_field_paths("events.k8s.io", "regarding.uid"),
            vec!["involvedObject.uid"]
        );
        assert_eq!(
            stored_field_paths("", "source"),
            vec!["source.component", "reportingComponent"]
        );
        assert_eq!(storage_group("events.k8s.io", "Event"), "");
        assert_eq!(storage_group("apps", "Deployment"), "apps");
    }
}
