//! Structured merge of an applied configuration into a live object (structured-merge-diff's
//! `Merge`): maps merge field by field, sets and associative lists item by item, everything
//! else is replaced. A `null` in the configuration removes the field.

use crate::error::PatchError;
use crate::keys::{ITEM, ListType};
use crate::path::{Path, PathElement};
use crate::types::TypeInfo;
use crate::walk::index_items;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Merges `rhs` (the applied configuration) into `lhs` (the live object).
pub fn merge(lhs: &Value, rhs: &Value, types: &TypeInfo) -> Result<Value, PatchError> {
    let mut merger = Merger {
        types,
        schema_path: Vec::new(),
        path: Vec::new(),
    };
    merger.merge_value(Some(lhs), rhs)
}

struct Merger<'t> {
    types: &'t TypeInfo,
    schema_path: Vec<String>,
    path: Path,
}

impl Merger<'_> {
    fn merge_value(&mut self, lhs: Option<&Value>, rhs: &Value) -> Result<Value, PatchError> {
        match rhs {
            Value::Object(r) if !self.types.map_is_atomic(&self.schema_path) => {
                let mut out = match lhs {
                    Some(Value::Object(l)) => l.clone(),
                    _ => Map::new(),
                };
                for (key, value) in r {
                    if value.is_null() {
                        out.remove(key);
                        continue;
                    }
                    self.schema_path.push(key.clone());
                    self.path.push(PathElement::Field(key.clone()));
                    let merged = self.merge_value(out.get(key), value);
                    self.schema_path.pop();
                    self.path.pop();
                    out.insert(key.clone(), merged?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(r) => {
                let list = self.types.list_type(&self.schema_path);
                if list == ListType::Atomic {
                    return Ok(rhs.clone());
                }
                let l = match lhs {
                    Some(Value::Array(l)) => l.as_slice(),
                    _ => &[],
                };
                Ok(Value::Array(self.merge_lists(l, r, &list)?))
            }
            _ => Ok(rhs.clone()),
        }
    }

    fn merge_item(
        &mut self,
        pe: &PathElement,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        list: &ListType,
    ) -> Result<Value, PatchError> {
        match (rhs, list) {
            (Some(r), ListType::Map(_)) => {
                self.schema_path.push(ITEM.to_owned());
                self.path.push(pe.clone());
                let merged = self.merge_value(lhs, r);
                self.schema_path.pop();
                self.path.pop();
                merged
            }
            (Some(r), _) => Ok(r.clone()),
            (None, _) => Ok(lhs.cloned().unwrap_or(Value::Null)),
        }
    }

    /// Port of structured-merge-diff's list merge: shared items keep the configuration's
    /// order, live-only items stay where they were relative to them.
    fn merge_lists(
        &mut self,
        lhs: &[Value],
        rhs: &[Value],
        list: &ListType,
    ) -> Result<Vec<Value>, PatchError> {
        let rhs_items = index_items(rhs, list, true, &self.path)?;
        let lhs_items = index_items(lhs, list, false, &self.path)?;
        let mut observed_lhs: BTreeMap<&PathElement, &Value> = BTreeMap::new();
        for (pe, item) in &lhs_items {
            if let Some(pe) = pe {
                observed_lhs.entry(pe).or_insert(item);
            }
        }
        let mut observed_rhs: BTreeMap<&PathElement, &Value> = BTreeMap::new();
        let mut rhs_pes = Vec::with_capacity(rhs_items.len());
        for (pe, item) in &rhs_items {
            if let Some(pe) = pe {
                observed_rhs.insert(pe, item);
                rhs_pes.push(pe);
            }
        }
        let mut shared = rhs_pes
            .iter()
            .copied()
            .filter(|pe| observed_lhs.contains_key(pe))
            .collect::<Vec<_>>()
            .into_iter();
        let mut next_shared = shared.next();
        let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len() + rhs.len());
        let (mut li, mut ri) = (0, 0);
        while li < lhs_items.len() || ri < rhs_pes.len() {
            if li < lhs_items.len()
                && ri < rhs_pes.len()
                && let Some(pe) = &lhs_items[li].0
            {
                if pe == rhs_pes[ri] {
                    merged_rhs.insert(pe);
                    let item = self.merge_item(
                        pe,
                        observed_lhs.get(pe).copied(),
                        observed_rhs.get(pe).copied(),
                        list,
                    )?;
                    out.push(item);
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < lhs_items.len() {
                match &lhs_items[li].0 {
                    None => {
                        out.push(lhs_items[li].1.clone());
                        li += 1;
                        continue;
                    }
                    Some(pe) if !observed_rhs.contains_key(pe) => {
                        out.push(lhs_items[li].1.clone());
                        li += 1;
                        continue;
                    }
                    Some(pe) if merged_rhs.contains(pe) => {
                        li += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            if ri < rhs_pes.len() {
                let pe = rhs_pes[ri];
                merged_rhs.insert(pe);
                let item = self.merge_item(
                    pe,
                    observed_lhs.get(pe).copied(),
                    observed_rhs.get(pe).copied(),
                    list,
                )?;
                out.push(item);
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.next();
                }
            }
        }
        Ok(out)
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
    fn maps_merge_and_null_removes() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let cfg = json!({"metadata": {"labels": {"b": null, "c": "3"}}});
        let out = merge(&live, &cfg, &pod()).unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"a": "1", "c": "3"}}}));
    }

    #[test]
    fn keyed_lists_merge_items_and_keep_live_only_items() {
        let live = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "tty": true}, {"name": "b", "image": "b:1"}]}});
        let cfg = json!({"spec": {"containers": [{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}]}});
        let out = merge(&live, &cfg, &pod()).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "a:2", "tty": true}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}])
        );
    }

    #[test]
    fn shared_items_follow_the_configuration_order() {
        let live = json!({"metadata": {"finalizers": ["a", "x", "b"]}});
        let cfg = json!({"metadata": {"finalizers": ["b", "a"]}});
        let out = merge(&live, &cfg, &pod()).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "b", "a"]));
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let live = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}});
        let cfg = json!({"spec": {"tolerations": [{"key": "c"}]}});
        let out = merge(&live, &cfg, &pod()).unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
    }

    #[test]
    fn duplicate_keys_in_the_configuration_are_rejected() {
        let cfg = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = merge(&json!({}), &cfg, &pod()).unwrap_err().to_string();
        assert!(
            err.contains("duplicate entries for key [name=\"a\"]"),
            "{err}"
        );
    }
}
