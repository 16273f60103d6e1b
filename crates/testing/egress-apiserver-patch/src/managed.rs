//! `metadata.managedFields`: decoding entries into field sets, encoding them back in the
//! server's order, and the fields the server never tracks.

use crate::error::PatchError;
use crate::fieldset::FieldSet;
use crate::path::PathElement;
use serde_json::{Map, Value, json};

/// `operation` of apply entries.
pub const APPLY: &str = "Apply";
/// `operation` of entries written by create, update and non-apply patches.
pub const UPDATE: &str = "Update";

/// One managedFields entry with its decoded field set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// Empty for the main resource, `status` for the status subresource.
    pub subresource: String,
    /// apiVersion of the object when written.
    pub api_version: String,
    /// RFC 3339 time of the last change of this entry.
    pub time: Option<String>,
    /// Owned fields.
    pub set: FieldSet,
}

impl Entry {
    /// Whether this entry belongs to the given identity.
    pub fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// The server's wording for this manager in conflict messages.
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        // The server builds this from the manager identifier, which never carries the time.
        if self.operation == UPDATE {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("manager".into(), json!(self.manager));
        obj.insert("operation".into(), json!(self.operation));
        obj.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            obj.insert("time".into(), json!(time));
        }
        obj.insert("fieldsType".into(), json!("FieldsV1"));
        obj.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            obj.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(obj)
    }
}

/// Decodes `metadata.managedFields` of an object (absent or null = no entries).
pub fn decode(object: &Value) -> Result<Vec<Entry>, PatchError> {
    let Some(raw) = object.pointer("/metadata/managedFields") else {
        return Ok(Vec::new());
    };
    let items = match raw {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => {
            return Err(PatchError::ManagedFields(
                "managedFields must be a list".into(),
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| decode_entry(i, item))
        .collect()
}

fn decode_entry(i: usize, item: &Value) -> Result<Entry, PatchError> {
    let err = |msg: &str| PatchError::ManagedFields(format!("entry {i}: {msg}"));
    let Value::Object(obj) = item else {
        return Err(err("must be an object"));
    };
    let text = |key: &str| -> Result<String, PatchError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(err(&format!("{key} must be a string"))),
        }
    };
    let fields_type = text("fieldsType")?;
    if !fields_type.is_empty() && fields_type != "FieldsV1" {
        return Err(err(&format!("unsupported fieldsType {fields_type:?}")));
    }
    let set = match obj.get("fieldsV1") {
        None | Some(Value::Null) => FieldSet::new(),
        Some(v) => FieldSet::from_fields_v1(v).map_err(|e| err(&e))?,
    };
    let operation = text("operation")?;
    // An empty entry (`[{}]`) is how clients clear managedFields; it decodes to nothing owned.
    if operation.is_empty() && set.is_empty() {
        return Ok(Entry {
            manager: text("manager")?,
            operation: UPDATE.to_owned(),
            subresource: String::new(),
            api_version: String::new(),
            time: None,
            set,
        });
    }
    if operation != APPLY && operation != UPDATE {
        return Err(err(&format!(
            "operation must be Apply or Update, not {operation:?}"
        )));
    }
    let time = text("time")?;
    Ok(Entry {
        manager: text("manager")?,
        operation,
        subresource: text("subresource")?,
        api_version: text("apiVersion")?,
        time: (!time.is_empty()).then_some(time),
        set,
    })
}

/// Writes entries into `metadata.managedFields` in the server's order (operation, time,
/// manager, apiVersion, subresource); removes the field when there are none.
pub fn encode(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| p.time.cmp(&q.time))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// A copy of the object without `metadata.managedFields`.
pub fn without_managed_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        meta.remove("managedFields");
    }
    out
}

/// Metadata fields that `ObjectMeta` omits when empty.
const OMIT_EMPTY_METADATA: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];

/// Drops empty `labels`, `annotations`, `finalizers` and `ownerReferences` from
/// `metadata`, as the real server's `ObjectMeta` encoding does (for custom resources too).
pub fn drop_empty_metadata(object: &mut Value) {
    let Some(Value::Object(meta)) = object.get_mut("metadata") else {
        return;
    };
    meta.retain(|key, value| {
        let empty = match value {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Null => true,
            _ => false,
        };
        !(empty && OMIT_EMPTY_METADATA.contains(&key.as_str()))
    });
}

/// Fields the server maintains itself and never records as owned (the real server's
/// `stripMeta` set, plus the deletion markers this server sets outside the field manager).
pub fn untracked() -> FieldSet {
    let mut set = FieldSet::new();
    let f = |s: &str| PathElement::Field(s.to_owned());
    set.insert(&[f("apiVersion")]);
    set.insert(&[f("kind")]);
    set.insert(&[f("metadata")]);
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        set.insert(&[f("metadata"), f(field)]);
    }
    set
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn decode_encode_round_trip_sorts_apply_first() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}},
            {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-02T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}, "subresource": "status"}
        ]}});
        let entries = decode(&obj).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].describe(), "\"a\" with subresource \"status\"");
        assert_eq!(entries[0].describe(), "\"b\" using v1");
        let mut out = json!({});
        encode(&mut out, entries);
        let list = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(list[0]["manager"], "a");
        assert_eq!(list[0]["subresource"], "status");
        assert_eq!(list[1], obj["metadata"]["managedFields"][0]);
    }

    #[test]
    fn bad_entries_are_rejected_with_their_index() {
        let bad_op =
            json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Patch"}]}});
        assert!(decode(&bad_op).unwrap_err().to_string().contains("entry 0"));
        let bad_type = json!({"metadata": {"managedFields": [{"operation": "Apply", "fieldsType": "FieldsV2"}]}});
        assert!(decode(&bad_type).is_err());
        assert!(decode(&json!({"metadata": {"managedFields": {}}})).is_err());
    }

    #[test]
    fn encoding_no_entries_removes_the_field() {
        let mut obj = json!({"metadata": {"managedFields": [], "name": "x"}});
        encode(&mut obj, Vec::new());
        assert_eq!(obj, json!({"metadata": {"name": "x"}}));
    }
}
