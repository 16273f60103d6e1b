//! Field sets (structured-merge-diff's `fieldpath.Set`) and their FieldsV1 JSON encoding.

use crate::path::{Path, PathElement};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A set of field paths, stored as a tree. A node is a *member* when the path to it is in
/// the set; it may also have member descendants (FieldsV1 writes that as `".": {}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    children: BTreeMap<PathElement, Node>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    children: FieldSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Adds a path (no-op for the empty path: the root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.children.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether exactly this path is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.children.get(first) {
            Some(node) if rest.is_empty() => node.member,
            Some(node) => node.children.has(rest),
            None => false,
        }
    }

    /// Whether this path or any path below it is in the set.
    pub fn has_prefix(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return !self.is_empty();
        };
        self.children.get(first).is_some_and(|node| {
            (rest.is_empty() && !node.is_empty()) || node.children.has_prefix(rest)
        })
    }

    /// Set union.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (pe, node) in &other.children {
            let mine = out.children.entry(pe.clone()).or_default();
            mine.member |= node.member;
            mine.children = mine.children.union(&node.children);
        }
        out
    }

    /// Paths in `self` but not in `other` (exact paths, not whole subtrees).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.children {
            let new_node = match other.children.get(pe) {
                None => node.clone(),
                Some(theirs) => Node {
                    member: node.member && !theirs.member,
                    children: node.children.difference(&theirs.children),
                },
            };
            if !new_node.is_empty() {
                out.children.insert(pe.clone(), new_node);
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let new_node = Node {
                    member: node.member && theirs.member,
                    children: node.children.intersection(&theirs.children),
                };
                if !new_node.is_empty() {
                    out.children.insert(pe.clone(), new_node);
                }
            }
        }
        out
    }

    /// All member paths, in order.
    pub fn members(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_members(&mut prefix, &mut out);
        out
    }

    fn collect_members(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for (pe, node) in &self.children {
            prefix.push(pe.clone());
            if node.member {
                out.push(prefix.clone());
            }
            node.children.collect_members(prefix, out);
            prefix.pop();
        }
    }

    /// Encodes as FieldsV1 JSON (`{"f:spec":{"f:replicas":{}}}`).
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for (pe, node) in &self.children {
            let mut child = match node.children.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if node.member && !child.is_empty() {
                child.insert(".".to_owned(), Value::Object(Map::new()));
            }
            map.insert(pe.to_fields_v1_key(), Value::Object(child));
        }
        Value::Object(map)
    }

    /// Decodes FieldsV1 JSON.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = value else {
            return Err("fieldsV1 must be a JSON object".to_owned());
        };
        let mut out = FieldSet::new();
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let Value::Object(child_map) = child else {
                return Err(format!("fieldsV1 entry {key:?} must be a JSON object"));
            };
            let pe = PathElement::from_fields_v1_key(key)?;
            let children = FieldSet::from_fields_v1(child)?;
            let member = child_map.is_empty() || child_map.contains_key(".");
            let node = Node { member, children };
            if !node.is_empty() {
                out.children.insert(pe, node);
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

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_owned())
    }

    #[test]
    fn fields_v1_round_trip_keeps_item_markers() {
        let v = json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}
        });
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert_eq!(set.to_fields_v1(), v);
        assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.has(&[f("metadata"), f("labels")]));
        let item = PathElement::key(vec![("name".into(), json!("c"))]);
        assert!(set.has(&[f("spec"), f("containers"), item.clone()]));
        assert!(set.has(&[f("spec"), f("containers"), item, f("image")]));
    }

    #[test]
    fn malformed_fields_v1_is_rejected() {
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"spec": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
    }

    #[test]
    fn set_operations_work_on_exact_paths() {
        let mut a = FieldSet::new();
        a.insert(&[f("spec")]);
        a.insert(&[f("spec"), f("x")]);
        a.insert(&[f("spec"), f("y")]);
        let mut b = FieldSet::new();
        b.insert(&[f("spec"), f("x")]);
        let diff = a.difference(&b);
        assert!(diff.has(&[f("spec")]));
        assert!(!diff.has(&[f("spec"), f("x")]));
        assert!(diff.has(&[f("spec"), f("y")]));
        let inter = a.intersection(&b);
        assert_eq!(inter.members(), vec![vec![f("spec"), f("x")]]);
        assert_eq!(b.union(&diff), a);
        assert!(a.has_prefix(&[f("spec"), f("y")]));
        assert!(!b.has_prefix(&[f("spec"), f("y")]));
        assert!(a.difference(&a).is_empty());
    }
}
