//! Path elements of field sets (`f:`, `k:`, `v:`, `i:`) and their two spellings: the FieldsV1
//! key and the server's human wording used in conflict messages.

use serde_json::Value;
use std::fmt;

/// One step of a field path, as structured-merge-diff models it.
///
/// Values are kept as canonical JSON text so elements are totally ordered and hashable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map or struct (`f:name`).
    Field(String),
    /// An item of an associative list, identified by its key fields sorted by name (`k:{...}`).
    Key(Vec<(String, String)>),
    /// An item of a set list, identified by its value (`v:...`).
    Value(String),
    /// An item of a list by position (`i:3`); only read, never produced.
    Index(usize),
}

/// A path from the object root.
pub type Path = Vec<PathElement>;

impl PathElement {
    /// Builds a key element from (field, value) pairs; sorts them by field name.
    pub fn key(mut fields: Vec<(String, Value)>) -> Self {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(
            fields
                .into_iter()
                .map(|(name, value)| (name, canonical_json(&value)))
                .collect(),
        )
    }

    /// Builds a set-item element from the item's value.
    pub fn value(value: &Value) -> Self {
        PathElement::Value(canonical_json(value))
    }

    /// The FieldsV1 spelling (`f:spec`, `k:{"name":"c"}`, `v:"x"`, `i:0`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let body: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{}:{value}", json_string(name)))
                    .collect();
                format!("k:{{{}}}", body.join(","))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a FieldsV1 key; `None` for `.` (the item itself) is handled by the caller.
    pub fn from_fields_v1_key(key: &str) -> Result<Self, String> {
        let (prefix, rest) = key
            .split_once(':')
            .ok_or_else(|| format!("invalid path element {key:?}: missing prefix"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_owned())),
            "k" => {
                let parsed: Value = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid key element {key:?}: {e}"))?;
                let Value::Object(map) = parsed else {
                    return Err(format!("invalid key element {key:?}: not a JSON object"));
                };
                Ok(PathElement::key(map.into_iter().collect()))
            }
            "v" => {
                let parsed: Value = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid value element {key:?}: {e}"))?;
                Ok(PathElement::value(&parsed))
            }
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid index element {key:?}: {e}")),
            _ => Err(format!("invalid path element {key:?}: unknown prefix")),
        }
    }

    /// Whether a list item (a JSON object for keys, any value for sets) is the one this
    /// element names.
    pub fn matches_item(&self, item: &Value) -> bool {
        match self {
            PathElement::Key(fields) => fields.iter().all(|(name, value)| {
                item.get(name)
                    .is_some_and(|found| canonical_json(found) == *value)
            }),
            PathElement::Value(value) => canonical_json(item) == *value,
            PathElement::Field(_) | PathElement::Index(_) => false,
        }
    }
}

impl fmt::Display for PathElement {
    /// The server's wording: `.name`, `[name="c",port=80]`, `[="x"]`, `[3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let body: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                write!(f, "[{}]", body.join(","))
            }
            PathElement::Value(value) => write!(f, "[={value}]"),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// Renders a whole path in the server's wording, e.g. `.spec.containers[name="c"].image`.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// JSON text with object keys sorted, so equal values always print the same.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), canonical_json(v)))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", body.join(","))
        }
        other => other.to_string(),
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn key_elements_sort_fields_and_round_trip() {
        let pe = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        let text = pe.to_fields_v1_key();
        assert_eq!(text, r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(PathElement::from_fields_v1_key(&text).unwrap(), pe);
        assert_eq!(pe.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
    }

    #[test]
    fn value_and_field_elements_round_trip() {
        for text in [r#"v:"a/b""#, "f:metadata", "i:2"] {
            let pe = PathElement::from_fields_v1_key(text).unwrap();
            assert_eq!(pe.to_fields_v1_key(), text);
        }
        let path = vec![
            PathElement::Field("metadata".into()),
            PathElement::Field("finalizers".into()),
            PathElement::value(&json!("x")),
        ];
        assert_eq!(path_to_string(&path), r#".metadata.finalizers[="x"]"#);
    }

    #[test]
    fn bad_elements_are_rejected() {
        assert!(PathElement::from_fields_v1_key("spec").is_err());
        assert!(PathElement::from_fields_v1_key("x:spec").is_err());
        assert!(PathElement::from_fields_v1_key("k:[1]").is_err());
        assert!(PathElement::from_fields_v1_key("i:x").is_err());
    }

    #[test]
    fn key_matches_items_by_key_fields_only() {
        let pe = PathElement::key(vec![("name".into(), json!("c"))]);
        assert!(pe.matches_item(&json!({"name": "c", "image": "x"})));
        assert!(!pe.matches_item(&json!({"name": "d"})));
        assert!(PathElement::value(&json!("f")).matches_item(&json!("f")));
    }
}
