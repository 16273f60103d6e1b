//! Walks over objects guided by [`TypeInfo`]: the field set an object sets (SMD's
//! `ToFieldSet`), the comparison of two objects (added / modified / removed paths) and the
//! identity of list items.

use crate::error::PatchError;
use crate::fieldset::FieldSet;
use crate::keys::{ITEM, ListType};
use crate::path::{Path, PathElement, path_to_string};
use crate::types::TypeInfo;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The identity of a list item in a set or associative list.
///
/// With `strict` (applied configurations) a bad item is an error; otherwise (stored objects)
/// missing key fields are left out of the key and non-object items yield `None`.
pub fn item_element(
    item: &Value,
    list: &ListType,
    strict: bool,
    at: &[PathElement],
) -> Result<Option<PathElement>, PatchError> {
    match list {
        ListType::Atomic => Ok(None),
        ListType::Set => Ok(Some(PathElement::value(item))),
        ListType::Map(keys) => {
            let Value::Object(obj) = item else {
                return if strict {
                    Err(PatchError::InvalidObject(format!(
                        "{}: associative list items must be objects",
                        path_to_string(at)
                    )))
                } else {
                    Ok(None)
                };
            };
            let mut fields = Vec::new();
            for key in keys {
                match obj.get(&key.name).or(key.default.as_ref()) {
                    Some(v) => fields.push((key.name.clone(), v.clone())),
                    None if strict => {
                        return Err(PatchError::InvalidObject(format!(
                            "{}: associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                            path_to_string(at),
                            key.name
                        )));
                    }
                    None => {}
                }
            }
            Ok(Some(PathElement::key(fields)))
        }
    }
}

/// Indexes list items by identity; `strict` rejects duplicates.
pub fn index_items<'v>(
    items: &'v [Value],
    list: &ListType,
    strict: bool,
    at: &[PathElement],
) -> Result<Vec<(Option<PathElement>, &'v Value)>, PatchError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pe = item_element(item, list, strict, at)?;
        if let Some(pe) = &pe
            && !seen.insert(pe.clone())
            && strict
        {
            return Err(PatchError::InvalidObject(format!(
                "{}: duplicate entries for key {pe}",
                path_to_string(at)
            )));
        }
        out.push((pe, item));
    }
    Ok(out)
}

struct Walker<'t> {
    types: &'t TypeInfo,
    strict: bool,
    schema_path: Vec<String>,
    path: Path,
}

impl Walker<'_> {
    fn push(&mut self, schema: &str, pe: PathElement) {
        self.schema_path.push(schema.to_owned());
        self.path.push(pe);
    }

    fn pop(&mut self) {
        self.schema_path.pop();
        self.path.pop();
    }
}

/// The set of fields an object sets (members: leaves, empty maps, list items).
pub fn field_set(value: &Value, types: &TypeInfo, strict: bool) -> Result<FieldSet, PatchError> {
    let mut set = FieldSet::new();
    let mut walker = Walker {
        types,
        strict,
        schema_path: Vec::new(),
        path: Vec::new(),
    };
    if let Value::Object(map) = value {
        walker.map_fields(map, &mut set)?;
    }
    Ok(set)
}

impl Walker<'_> {
    fn map_fields(
        &mut self,
        map: &Map<String, Value>,
        set: &mut FieldSet,
    ) -> Result<(), PatchError> {
        for (key, child) in map {
            self.push(key, PathElement::Field(key.clone()));
            self.value_fields(child, set)?;
            self.pop();
        }
        Ok(())
    }

    fn value_fields(&mut self, value: &Value, set: &mut FieldSet) -> Result<(), PatchError> {
        match value {
            Value::Object(map) if !self.types.map_is_atomic(&self.schema_path) => {
                if map.is_empty() {
                    set.insert(&self.path);
                }
                self.map_fields(map, set)
            }
            Value::Array(items) => {
                let list = self.types.list_type(&self.schema_path);
                if list == ListType::Atomic {
                    set.insert(&self.path);
                    return Ok(());
                }
                for (pe, item) in index_items(items, &list, self.strict, &self.path)? {
                    let Some(pe) = pe else { continue };
                    self.push(ITEM, pe);
                    set.insert(&self.path);
                    if let (ListType::Map(_), Value::Object(fields)) = (&list, item) {
                        self.map_fields(fields, set)?;
                    }
                    self.pop();
                }
                Ok(())
            }
            _ => {
                set.insert(&self.path);
                Ok(())
            }
        }
    }
}

/// What changed between two versions of an object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new object.
    pub added: FieldSet,
    /// Leaf paths whose value changed (atomic lists/maps count as leaves).
    pub modified: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

/// Compares two objects field by field.
pub fn compare(old: &Value, new: &Value, types: &TypeInfo) -> Comparison {
    let mut out = Comparison::default();
    let mut walker = Walker {
        types,
        strict: false,
        schema_path: Vec::new(),
        path: Vec::new(),
    };
    let empty = Map::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let new_map = new.as_object().unwrap_or(&empty);
    walker.compare_maps(Some(old_map), Some(new_map), &mut out);
    out
}

impl Walker<'_> {
    fn compare_maps(
        &mut self,
        lhs: Option<&Map<String, Value>>,
        rhs: Option<&Map<String, Value>>,
        out: &mut Comparison,
    ) {
        let keys: BTreeSet<&String> = lhs
            .into_iter()
            .flat_map(|m| m.keys())
            .chain(rhs.into_iter().flat_map(|m| m.keys()))
            .collect();
        for key in keys {
            self.push(key, PathElement::Field(key.clone()));
            self.compare_values(
                lhs.and_then(|m| m.get(key)),
                rhs.and_then(|m| m.get(key)),
                out,
            );
            self.pop();
        }
    }

    fn compare_values(&mut self, lhs: Option<&Value>, rhs: Option<&Value>, out: &mut Comparison) {
        let granular_map = !self.types.map_is_atomic(&self.schema_path);
        match (lhs, rhs) {
            (None, None) => {}
            (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None) if granular_map => {
                self.compare_maps(
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                    out,
                );
                self.mark_presence(lhs, rhs, out);
            }
            (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None) => {
                let list = self.types.list_type(&self.schema_path);
                if list == ListType::Atomic {
                    if lhs != rhs {
                        out.modified.insert(&self.path);
                    }
                    return;
                }
                self.compare_lists(lhs, rhs, &list, out);
                self.mark_presence(lhs, rhs, out);
            }
            (None, Some(_)) if !matches!(rhs, Some(Value::Object(_))) => {
                out.added.insert(&self.path)
            }
            (Some(_), None) if !matches!(lhs, Some(Value::Object(_))) => {
                out.removed.insert(&self.path)
            }
            (l, r) => {
                if l != r {
                    out.modified.insert(&self.path);
                }
            }
        }
    }

    fn mark_presence(&self, lhs: Option<&Value>, rhs: Option<&Value>, out: &mut Comparison) {
        if lhs.is_none() {
            out.added.insert(&self.path);
        } else if rhs.is_none() {
            out.removed.insert(&self.path);
        }
    }

    fn compare_lists(
        &mut self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        list: &ListType,
        out: &mut Comparison,
    ) {
        let index = |v: Option<&Value>| -> Vec<(PathElement, Value)> {
            let items = v
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            index_items(items, list, false, &[])
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(pe, item)| pe.map(|pe| (pe, item.clone())))
                .filter(|(pe, _)| seen.insert(pe.clone()))
                .collect()
        };
        let left = index(lhs);
        let right = index(rhs);
        let mut order: Vec<&PathElement> = left.iter().map(|(pe, _)| pe).collect();
        order.extend(right.iter().map(|(pe, _)| pe));
        let mut done = BTreeSet::new();
        for pe in order {
            if !done.insert(pe.clone()) {
                continue;
            }
            let l = left.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
            let r = right.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
            self.push(ITEM, pe.clone());
            match list {
                ListType::Map(_) => {
                    self.compare_maps(
                        l.and_then(Value::as_object),
                        r.and_then(Value::as_object),
                        out,
                    );
                    self.mark_presence(l, r, out);
                }
                _ => self.mark_presence(l, r, out),
            }
            self.pop();
        }
    }
}

/// Removes the value at `path` (a field, or a list item found by its identity) if present.
pub fn remove_path(value: &mut Value, path: &[PathElement], types: &TypeInfo) {
    let mut schema_path = Vec::new();
    remove_at(value, path, types, &mut schema_path);
}

fn remove_at(
    value: &mut Value,
    path: &[PathElement],
    types: &TypeInfo,
    schema_path: &mut Vec<String>,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (first, value) {
        (PathElement::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                schema_path.push(name.clone());
                remove_at(child, rest, types, schema_path);
                schema_path.pop();
            }
        }
        (PathElement::Key(_) | PathElement::Value(_), Value::Array(items)) => {
            let list = types.list_type(schema_path);
            let is_it = |item: &Value| {
                item_element(item, &list, false, &[])
                    .ok()
                    .flatten()
                    .as_ref()
                    == Some(first)
            };
            if rest.is_empty() {
                items.retain(|item| !is_it(item));
            } else if let Some(item) = items.iter_mut().find(|item| is_it(item)) {
                schema_path.push(ITEM.to_owned());
                remove_at(item, rest, types, schema_path);
                schema_path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn pod() -> TypeInfo {
        TypeInfo::for_object(&json!({"apiVersion": "v1", "kind": "Pod"}))
    }

    #[test]
    fn field_set_marks_items_and_leaves() {
        let obj = json!({"metadata": {"labels": {"app": "x"}, "finalizers": ["f"]},
            "spec": {"containers": [{"name": "c", "image": "i", "args": ["a"]}], "tolerations": [{"key": "k"}]}});
        let set = field_set(&obj, &pod(), true).unwrap();
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:finalizers": {"v:\"f\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}},
                           "f:tolerations": {}}
            })
        );
    }

    #[test]
    fn field_set_uses_key_defaults_and_rejects_missing_keys() {
        let obj =
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}});
        let set = field_set(&obj, &pod(), true).unwrap();
        let text = set.to_fields_v1().to_string();
        assert!(
            text.contains(r#"k:{\"containerPort\":80,\"protocol\":\"TCP\"}"#),
            "{text}"
        );
        let bad = json!({"spec": {"containers": [{"image": "x"}]}});
        let err = field_set(&bad, &pod(), true).unwrap_err().to_string();
        assert!(err.contains("omits key field \"name\""), "{err}");
        assert!(field_set(&bad, &pod(), false).is_ok());
    }

    #[test]
    fn compare_reports_added_modified_removed() {
        let old =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"tolerations": []}});
        let new = json!({"metadata": {"labels": {"a": "9", "c": "3"}}, "spec": {"tolerations": [{"key": "x"}]}});
        let cmp = compare(&old, &new, &pod());
        let s = |set: &FieldSet| {
            set.members()
                .iter()
                .map(|p| path_to_string(p))
                .collect::<Vec<_>>()
        };
        assert_eq!(s(&cmp.added), [".metadata.labels.c"]);
        assert_eq!(
            s(&cmp.modified),
            [".metadata.labels.a", ".spec.tolerations"]
        );
        assert_eq!(s(&cmp.removed), [".metadata.labels.b"]);
        assert_eq!(compare(&new, &new, &pod()), Comparison::default());
    }

    #[test]
    fn compare_tracks_list_items() {
        let old = json!({"status": {"conditions": [{"type": "A", "status": "True"}]}});
        let new = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "True"}]}});
        let cmp = compare(&old, &new, &pod());
        let s = |set: &FieldSet| {
            set.members()
                .iter()
                .map(|p| path_to_string(p))
                .collect::<Vec<_>>()
        };
        assert_eq!(s(&cmp.modified), [".status.conditions[type=\"A\"].status"]);
        assert_eq!(
            s(&cmp.added),
            [
                ".status.conditions[type=\"B\"]",
                ".status.conditions[type=\"B\"].status",
                ".status.conditions[type=\"B\"].type"
            ]
        );
    }

    #[test]
    fn remove_path_finds_items_by_key_with_defaults() {
        let mut obj = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]}});
        let set = field_set(&obj, &pod(), true).unwrap();
        let port80 = set
            .members()
            .into_iter()
            .find(|p| path_to_string(p).ends_with("[containerPort=80,protocol=\"TCP\"]"))
            .unwrap();
        remove_path(&mut obj, &port80, &pod());
        assert_eq!(
            obj["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 81}])
        );
    }
}
