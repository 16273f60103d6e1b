//! Label selectors (equality and set-based, in the real server's string syntax) and field
//! selectors (`=`, `==`, `!=` on the fields a resource supports), parsed once per request and
//! matched against JSON objects.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Expression, Selector, SelectorExt};
use serde_json::Value;

use crate::error::ApiError;

/// A parsed `labelSelector`.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Selector);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut exprs = Vec::new();
        for req in split_top_level(text) {
            let req = req.trim();
            if req.is_empty() {
                continue;
            }
            exprs.push(parse_requirement(req).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found '{req}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            })?);
        }
        Ok(Self(exprs.into_iter().collect()))
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels: BTreeMap<String, String> = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        self.0.matches(&labels)
    }
}

/// Splits on commas that are not inside `( )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_set(rest: &str) -> Option<BTreeSet<String>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn parse_requirement(req: &str) -> Option<Expression> {
    if let Some(key) = req.strip_prefix('!') {
        let key = key.trim();
        return valid_key(key).then(|| Expression::DoesNotExist(key.to_string()));
    }
    for (op, ctor) in [
        (
            "!=",
            Expression::NotEqual as fn(String, String) -> Expression,
        ),
        ("==", Expression::Equal),
        ("=", Expression::Equal),
    ] {
        if let Some((k, v)) = req.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            return valid_key(k).then(|| ctor(k.to_string(), v.to_string()));
        }
    }
    let mut words = req.splitn(2, char::is_whitespace);
    let key = words.next()?.trim();
    let rest = words.next().unwrap_or("").trim();
    if rest.is_empty() {
        return valid_key(key).then(|| Expression::Exists(key.to_string()));
    }
    if let Some(set) = rest.strip_prefix("notin") {
        return Some(Expression::NotIn(key.to_string(), parse_set(set)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Some(Expression::In(key.to_string(), parse_set(set)?));
    }
    None
}

/// One `field=value` / `field!=value` requirement.
#[derive(Debug, Clone)]
struct FieldRequirement {
    /// The stored-object fields the label reads, first non-empty wins.
    paths: Vec<String>,
    value: String,
    negate: bool,
}

/// A parsed `fieldSelector`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<FieldRequirement>);

impl FieldSelector {
    /// Parses and checks fields against `supported` (plus `metadata.name`/`metadata.namespace`);
    /// `paths` maps a supported label to the stored-object fields it reads (the real server's
    /// field label conversion, e.g. events.k8s.io `regarding.name` -> `involvedObject.name`).
    pub fn parse(
        text: &str,
        supported: &[String],
        paths: impl Fn(&str) -> Vec<String>,
    ) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, negate) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !supported.iter().any(|s| s == field)
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            let paths = if field.starts_with("metadata.") {
                vec![field.to_string()]
            } else {
                paths(field)
            };
            reqs.push(FieldRequirement {
                paths,
                value: value.trim().to_string(),
                negate,
            });
        }
        Ok(Self(reqs))
    }

    /// Whether an object matches every requirement; missing fields compare as `""`.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let actual = r
                .paths
                .iter()
                .map(|p| field_value(obj, p))
                .find(|v| !v.is_empty())
                .unwrap_or_default();
            (actual == r.value) != r.negate
        })
    }
}

/// The selector value of a dotted field path: strings as they are, other scalars as JSON.
fn field_value(obj: &Value, path: &str) -> String {
    match obj.pointer(&format!("/{}", path.replace('.', "/"))) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}, "spec": {"nodeName": "n1"}})
    }

    #[test]
    fn set_based_and_equality_requirements() {
        let sel = LabelSelector::parse("app in (a, b),tier notin (db),env,!legacy,x!=y").unwrap();
        assert!(sel.matches(&obj(json!({"app": "a", "env": "p"}))));
        assert!(!sel.matches(&obj(json!({"app": "c", "env": "p"}))));
        assert!(!sel.matches(&obj(json!({"app": "a", "env": "p", "tier": "db"}))));
        assert!(!sel.matches(&obj(json!({"app": "a"}))));
        assert!(!sel.matches(&obj(json!({"app": "a", "env": "p", "legacy": "1"}))));
        assert!(!sel.matches(&obj(json!({"app": "a", "env": "p", "x": "y"}))));
    }

    #[test]
    fn bad_label_selector_is_a_400() {
        let err = LabelSelector::parse("app in a").unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn field_selector_checks_supported_fields() {
        let supported = vec!["spec.nodeName".to_string()];
        let same = |l: &str| vec![l.to_string()];
        let sel =
            FieldSelector::parse("spec.nodeName=n1,metadata.name!=x", &supported, same).unwrap();
        assert!(sel.matches(&json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}})));
        assert!(!sel.matches(&json!({"metadata": {"name": "x"}, "spec": {"nodeName": "n1"}})));
        let err = FieldSelector::parse("spec.other=1", &supported, same).unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.other");
    }
}
