//! OpenAPI v3 value validation of a structural schema (types, enums, bounds, patterns, formats,
//! required fields, list types), with the API server's field paths and messages. CEL rules are
//! not evaluated here (see `validator`).

use std::collections::{HashMap, HashSet};

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{FieldError, FieldErrorKind as K};
use crate::formats;

/// Precompiled regular expressions of every `pattern` in a schema, keyed by their text.
pub(crate) type Patterns = HashMap<String, Regex>;

/// Appends `name` to a field path (`spec` + `replicas` = `spec.replicas`).
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Appends a list index or map key (`items` + 3 = `items[3]`).
pub(crate) fn index(path: &str, key: impl std::fmt::Display) -> String {
    format!("{path}[{key}]")
}

/// Walks `schema` and compiles every `pattern` in it.
pub(crate) fn compile_patterns(
    schema: &Value,
    path: &str,
    out: &mut Patterns,
) -> Result<(), crate::SchemaError> {
    let Some(obj) = schema.as_object() else {
        return Err(crate::SchemaError::NotAnObject(path.to_string()));
    };
    if let Some(p) = obj.get("pattern").and_then(Value::as_str)
        && !out.contains_key(p)
    {
        let re = Regex::new(p).map_err(|source| crate::SchemaError::Pattern {
            field: path.to_string(),
            pattern: p.to_string(),
            source,
        })?;
        out.insert(p.to_string(), re);
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            compile_patterns(s, &child(path, k), out)?;
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(s) = obj.get(key).filter(|s| s.is_object()) {
            compile_patterns(s, path, out)?;
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for s in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            compile_patterns(s, path, out)?;
        }
    }
    Ok(())
}

/// Validates `value` at `path` against `schema`, appending every problem to `errs`.
pub(crate) fn check(
    schema: &Value,
    value: &Value,
    path: &str,
    pats: &Patterns,
    errs: &mut Vec<FieldError>,
) {
    let Some(s) = schema.as_object() else { return };
    if value.is_null() {
        if !bool_at(s, "nullable") && s.contains_key("type") {
            errs.push(type_error(path, s, value));
        }
        return;
    }
    if !type_matches(s, value) {
        errs.push(type_error(path, s, value));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(crate::error::render_value).collect();
        errs.push(FieldError::new(
            path,
            K::NotSupported,
            Some(value.clone()),
            format!("supported values: {}", list.join(", ")),
        ));
    }
    match value {
        Value::String(v) => check_string(s, v, value, path, pats, errs),
        Value::Number(_) => check_number(s, value, path, errs),
        Value::Array(items) => check_array(s, items, path, pats, errs),
        Value::Object(map) => check_object(s, map, path, pats, errs),
        _ => {}
    }
    check_junctors(s, value, path, pats, errs);
}

fn bool_at(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(s: &Map<String, Value>, v: &Value) -> bool {
    if bool_at(s, "x-kubernetes-int-or-string") {
        return matches!(type_name(v), "integer" | "string");
    }
    match s.get("type").and_then(Value::as_str) {
        None => true,
        Some("number") => matches!(type_name(v), "integer" | "number"),
        Some(t) => t == type_name(v),
    }
}

fn type_error(path: &str, s: &Map<String, Value>, v: &Value) -> FieldError {
    let want = if bool_at(s, "x-kubernetes-int-or-string") {
        "integer,string"
    } else {
        s.get("type").and_then(Value::as_str).unwrap_or("object")
    };
    let got = type_name(v);
    FieldError::new(
        path,
        K::TypeInvalid,
        Some(Value::String(got.into())),
        format!("{path} in body must be of type {want}: {got:?}"),
    )
}

fn check_string(
    s: &Map<String, Value>,
    v: &str,
    value: &Value,
    path: &str,
    pats: &Patterns,
    errs: &mut Vec<FieldError>,
) {
    let len = v.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errs.push(FieldError::new(
            path,
            K::TooLong,
            None,
            format!("may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(value.clone()),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && pats.get(p).is_some_and(|re| !re.is_match(v))
    {
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(value.clone()),
            format!("{path} in body should match '{p}'"),
        ));
    }
    check_format(s, value, path, errs);
}

fn check_format(s: &Map<String, Value>, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(f) = s.get("format").and_then(Value::as_str)
        && !formats::conforms(f, value)
    {
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(value.clone()),
            format!(
                "{path} in body must be of type {f}: {}",
                crate::error::render_value(value)
            ),
        ));
    }
}

fn check_number(s: &Map<String, Value>, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    let bound = |key: &str| s.get(key).and_then(Value::as_f64);
    let excl = |key: &str| bool_at(s, key);
    if let Some(min) = bound("minimum") {
        let (bad, word) = if excl("exclusiveMinimum") {
            (n <= min, "greater than")
        } else {
            (n < min, "greater than or equal to")
        };
        if bad {
            errs.push(FieldError::new(
                path,
                K::Invalid,
                Some(value.clone()),
                format!("{path} in body should be {word} {}", show(min)),
            ));
        }
    }
    if let Some(max) = bound("maximum") {
        let (bad, word) = if excl("exclusiveMaximum") {
            (n >= max, "less than")
        } else {
            (n > max, "less than or equal to")
        };
        if bad {
            errs.push(FieldError::new(
                path,
                K::Invalid,
                Some(value.clone()),
                format!("{path} in body should be {word} {}", show(max)),
            ));
        }
    }
    if let Some(m) = bound("multipleOf").filter(|m| *m > 0.0)
        && (n / m).fract() != 0.0
    {
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(value.clone()),
            format!("{path} in body should be a multiple of {}", show(m)),
        ));
    }
    check_format(s, value, path, errs);
}

/// Prints a bound as the server does: integral bounds without a fraction.
fn show(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 9.0e15 {
        format!("{}", b as i64)
    } else {
        b.to_string()
    }
}

/// Size bounds of a list or map: `(max key, min key, noun for the minimum message)`.
fn check_count(
    s: &Map<String, Value>,
    n: usize,
    (max_key, min_key, noun): (&str, &str, &str),
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let n = n as u64;
    if let Some(max) = s.get(max_key).and_then(Value::as_u64)
        && n > max
    {
        let detail = format!("must have at most {max} items");
        errs.push(FieldError::new(
            path,
            K::TooMany,
            Some(Value::from(n)),
            detail,
        ));
    }
    if let Some(min) = s.get(min_key).and_then(Value::as_u64)
        && n < min
    {
        let detail = format!("{path} in body should have at least {min} {noun}");
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(Value::from(n)),
            detail,
        ));
    }
}

fn check_array(
    s: &Map<String, Value>,
    items: &[Value],
    path: &str,
    pats: &Patterns,
    errs: &mut Vec<FieldError>,
) {
    check_count(
        s,
        items.len(),
        ("maxItems", "minItems", "items"),
        path,
        errs,
    );
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &index(path, i), pats, errs);
        }
    }
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    if bool_at(s, "uniqueItems") || list_type == Some("set") {
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            if !seen.insert(item.to_string()) {
                errs.push(FieldError::new(
                    index(path, i),
                    K::Duplicate,
                    Some(item.clone()),
                    "",
                ));
            }
        }
    }
    if list_type == Some("map") {
        let keys: Vec<&str> = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let key: Map<String, Value> = keys
                .iter()
                .filter_map(|k| item.get(*k).map(|v| ((*k).to_string(), v.clone())))
                .collect();
            if !seen.insert(Value::Object(key.clone()).to_string()) {
                errs.push(FieldError::new(
                    index(path, i),
                    K::Duplicate,
                    Some(Value::Object(key)),
                    "",
                ));
            }
        }
    }
}

fn check_object(
    s: &Map<String, Value>,
    map: &Map<String, Value>,
    path: &str,
    pats: &Patterns,
    errs: &mut Vec<FieldError>,
) {
    for req in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(req) {
            errs.push(FieldError::new(child(path, req), K::Required, None, ""));
        }
    }
    check_count(
        s,
        map.len(),
        ("maxProperties", "minProperties", "properties"),
        path,
        errs,
    );
    let props = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in map {
        if let Some(ps) = props.and_then(|p| p.get(k)) {
            check(ps, v, &child(path, k), pats, errs);
        } else if let Some(a) = additional {
            check(a, v, &index(path, k), pats, errs);
        }
    }
}

fn check_junctors(
    s: &Map<String, Value>,
    value: &Value,
    path: &str,
    pats: &Patterns,
    errs: &mut Vec<FieldError>,
) {
    let passes = |sub: &Value| {
        let mut e = Vec::new();
        check(sub, value, path, pats, &mut e);
        e
    };
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        errs.extend(passes(sub));
    }
    if let Some(any) = s
        .get("anyOf")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        && any.iter().all(|sub| !passes(sub).is_empty())
    {
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(value.clone()),
            "must validate at least one schema (anyOf)",
        ));
    }
    if let Some(one) = s
        .get("oneOf")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let ok = one.iter().filter(|sub| passes(sub).is_empty()).count();
        if ok != 1 {
            errs.push(FieldError::new(
                path,
                K::Invalid,
                Some(value.clone()),
                "must validate one and only one schema (oneOf)",
            ));
        }
    }
    if let Some(not) = s.get("not")
        && passes(not).is_empty()
    {
        errs.push(FieldError::new(
            path,
            K::Invalid,
            Some(value.clone()),
            "must not validate the schema (not)",
        ));
    }
}
