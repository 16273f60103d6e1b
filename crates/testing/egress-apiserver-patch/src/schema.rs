//! List and map types read from a CRD's `openAPIV3Schema` (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).

use crate::error::PatchError;
use crate::keys::{ITEM, KeyField, ListType};
use serde_json::Value;
use std::collections::BTreeMap;

/// The parts of a structural schema node that matter for merging and ownership.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaNode {
    properties: BTreeMap<String, SchemaNode>,
    additional: Option<Box<SchemaNode>>,
    items: Option<Box<SchemaNode>>,
    list: Option<ListType>,
    map_atomic: bool,
}

impl SchemaNode {
    /// Parses an openAPIV3Schema (or any sub-schema) value.
    pub fn parse(schema: &Value) -> Result<Self, PatchError> {
        Self::parse_at(schema, "")
    }

    fn parse_at(schema: &Value, at: &str) -> Result<Self, PatchError> {
        let Value::Object(obj) = schema else {
            return Err(PatchError::InvalidSchema(format!(
                "schema at {} must be an object",
                display(at)
            )));
        };
        let mut node = SchemaNode::default();
        if let Some(props) = obj.get("properties") {
            let Value::Object(props) = props else {
                return Err(PatchError::InvalidSchema(format!(
                    "properties at {} must be an object",
                    display(at)
                )));
            };
            for (name, sub) in props {
                let child = Self::parse_at(sub, &format!("{at}.{name}"))?;
                node.properties.insert(name.clone(), child);
            }
        }
        if let Some(add @ Value::Object(_)) = obj.get("additionalProperties") {
            node.additional = Some(Box::new(Self::parse_at(add, &format!("{at}.*"))?));
        }
        if let Some(items) = obj.get("items") {
            node.items = Some(Box::new(Self::parse_at(items, &format!("{at}[*]"))?));
        }
        match obj.get("x-kubernetes-map-type").and_then(Value::as_str) {
            None | Some("granular") => {}
            Some("atomic") => node.map_atomic = true,
            Some(other) => {
                return Err(PatchError::InvalidSchema(format!(
                    "unknown x-kubernetes-map-type {other:?} at {}",
                    display(at)
                )));
            }
        }
        node.list = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
            None => None,
            Some("atomic") => Some(ListType::Atomic),
            Some("set") => Some(ListType::Set),
            Some("map") => Some(ListType::Map(map_keys(obj, at)?)),
            Some(other) => {
                return Err(PatchError::InvalidSchema(format!(
                    "unknown x-kubernetes-list-type {other:?} at {}",
                    display(at)
                )));
            }
        };
        Ok(node)
    }

    /// The node at a schema path (field names, [`ITEM`] for list items).
    pub fn lookup(&self, path: &[String]) -> Option<&SchemaNode> {
        let mut node = self;
        for seg in path {
            node = if seg == ITEM {
                node.items.as_deref()?
            } else {
                node.properties.get(seg).or(node.additional.as_deref())?
            };
        }
        Some(node)
    }

    /// The list type declared at this node (CRD lists default to atomic).
    pub fn list_type(&self) -> ListType {
        self.list.clone().unwrap_or(ListType::Atomic)
    }

    /// Whether this node is an atomic map.
    pub fn map_is_atomic(&self) -> bool {
        self.map_atomic
    }
}

fn map_keys(obj: &serde_json::Map<String, Value>, at: &str) -> Result<Vec<KeyField>, PatchError> {
    let names = obj
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| {
            PatchError::InvalidSchema(format!(
                "x-kubernetes-list-type map at {} needs x-kubernetes-list-map-keys",
                display(at)
            ))
        })?;
    let item_schema = obj.get("items");
    names
        .iter()
        .map(|name| {
            let name = name.as_str().ok_or_else(|| {
                PatchError::InvalidSchema(format!(
                    "x-kubernetes-list-map-keys at {} must be strings",
                    display(at)
                ))
            })?;
            let default = item_schema
                .and_then(|s| s.get("properties"))
                .and_then(|p| p.get(name))
                .and_then(|p| p.get("default"))
                .cloned();
            Ok(KeyField {
                name: name.to_owned(),
                default,
            })
        })
        .collect()
}

fn display(at: &str) -> &str {
    if at.is_empty() { "<root>" } else { at }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn reads_list_map_keys_and_defaults() {
        let schema = json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": {"type": "object", "properties": {"type": {"type": "string"}}}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "args": {"type": "array", "items": {"type": "string"}},
            "sel": {"type": "object", "x-kubernetes-map-type": "atomic"}
        }}}});
        let node = SchemaNode::parse(&schema).unwrap();
        let ListType::Map(keys) = node.lookup(&p("status.conditions")).unwrap().list_type() else {
            panic!("conditions are not a map list")
        };
        assert_eq!(keys, vec![KeyField::required("type")]);
        let ListType::Map(keys) = node.lookup(&p("status.ports")).unwrap().list_type() else {
            panic!("ports are not a map list")
        };
        assert_eq!(keys[1].default, Some(json!("TCP")));
        assert_eq!(
            node.lookup(&p("status.tags")).unwrap().list_type(),
            ListType::Set
        );
        assert_eq!(
            node.lookup(&p("status.args")).unwrap().list_type(),
            ListType::Atomic
        );
        assert!(node.lookup(&p("status.sel")).unwrap().map_is_atomic());
        assert!(node.lookup(&p("status.missing")).is_none());
    }

    #[test]
    fn rejects_map_lists_without_keys_and_unknown_types() {
        let no_keys = json!({"properties": {"l": {"x-kubernetes-list-type": "map"}}});
        let err = SchemaNode::parse(&no_keys).unwrap_err().to_string();
        assert!(err.contains(".l needs x-kubernetes-list-map-keys"), "{err}");
        let bad = json!({"properties": {"l": {"x-kubernetes-list-type": "bag"}}});
        assert!(SchemaNode::parse(&bad).is_err());
        assert!(SchemaNode::parse(&json!("x")).is_err());
    }
}
