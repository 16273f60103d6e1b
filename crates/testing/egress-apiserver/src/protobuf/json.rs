//! Kubernetes JSON <-> protobuf messages (prost-reflect dynamic messages), with the JSON forms
//! apimachinery gives its special types: `Time`/`MicroTime` as RFC 3339 strings,
//! `IntOrString` as a number or a string, `Quantity` as its string, `FieldsV1` and
//! `RawExtension` as the embedded JSON, `bytes` as base64, int64 as JSON numbers (not the
//! proto3 JSON mapping's strings). Unknown JSON fields are dropped, as typed decoding drops them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use prost::bytes::Bytes;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::{Map, Value as Json, json};

use super::schema::INLINE_PREFIX;

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

/// A JSON value that does not fit the message's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JsonError {
    /// Field path (`spec.replicas`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> JsonError {
    JsonError {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.to_string()
        },
        message: message.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

// ---- protobuf -> JSON ----

/// The JSON form of a decoded message.
pub fn to_json(msg: &DynamicMessage) -> Json {
    if let Some(special) = special_to_json(msg) {
        return special;
    }
    let mut out = Map::new();
    for (field, value) in msg.fields().filter(|(_, v)| !is_go_zero(v)) {
        let v = value_to_json(value);
        match v {
            Json::Object(inner) if is_inline(&field) => out.extend(inner),
            v => {
                out.insert(field.json_name().to_string(), v);
            }
        }
    }
    Json::Object(out)
}

/// Go clients (gogo-protobuf) write every non-pointer field, empty or not; Go's decoder then
/// cannot tell an empty string or a zero time from an absent one and its JSON leaves them
/// out. Empty strings and zero times are therefore dropped; numbers and booleans are kept
/// (a pointer field's explicit 0 or false, e.g. `replicas: 0`, must survive).
fn is_go_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Message(m) if matches!(m.descriptor().full_name(), TIME | MICRO_TIME) => m
            .fields()
            .all(|(_, v)| v.as_i64() == Some(0) || v.as_i32() == Some(0)),
        _ => false,
    }
}

fn is_inline(field: &FieldDescriptor) -> bool {
    field.name().starts_with(INLINE_PREFIX)
}

fn get<'a>(msg: &'a DynamicMessage, name: &str) -> Option<std::borrow::Cow<'a, Value>> {
    let field = msg.descriptor().get_field_by_name(name)?;
    msg.has_field(&field).then(|| msg.get_field(&field))
}

fn special_to_json(msg: &DynamicMessage) -> Option<Json> {
    let desc = msg.descriptor();
    let name = desc.full_name();
    let int = |f: &str| get(msg, f).and_then(|v| v.as_i64().or(v.as_i32().map(i64::from)));
    Some(match name {
        TIME | MICRO_TIME => {
            let secs = int("seconds").unwrap_or(0);
            let nanos = int("nanos").unwrap_or(0);
            let t = jiff::Timestamp::new(secs, nanos as i32).unwrap_or_default();
            let fmt = if name == TIME {
                "%Y-%m-%dT%H:%M:%SZ"
            } else {
                "%Y-%m-%dT%H:%M:%S%.6fZ"
            };
            json!(t.strftime(fmt).to_string())
        }
        INT_OR_STRING => match int("type") {
            Some(1) => json!(get(msg, "strVal").and_then(|v| v.as_str().map(str::to_string))),
            _ => json!(int("intVal").unwrap_or(0)),
        },
        QUANTITY => json!(
            get(msg, "string")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
        FIELDS_V1 | RAW_EXTENSION => {
            let raw = get(msg, "raw")
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            serde_json::from_slice(&raw).unwrap_or(Json::Null)
        }
        _ => return None,
    })
}

fn scalar_to_json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!(b),
        Value::I32(n) => json!(n),
        Value::I64(n) => json!(n),
        Value::U32(n) => json!(n),
        Value::U64(n) => json!(n),
        Value::F32(n) => json!(n),
        Value::F64(n) => json!(n),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(STANDARD.encode(b)),
        Value::EnumNumber(n) => json!(n),
        Value::Message(m) => to_json(m),
        Value::List(items) => Json::Array(items.iter().map(scalar_to_json).collect()),
        Value::Map(_) => Json::Null,
    }
}

fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let MapKey::String(k) = k {
                    out.insert(k.clone(), scalar_to_json(v));
                }
            }
            Json::Object(out)
        }
        other => scalar_to_json(other),
    }
}

// ---- JSON -> protobuf ----

/// The message `desc` holding `value` (a JSON object).
pub fn from_json(
    desc: &MessageDescriptor,
    value: &Json,
    path: &str,
) -> Result<DynamicMessage, JsonError> {
    let mut msg = DynamicMessage::new(desc.clone());
    if special_from_json(&mut msg, value, path)? {
        return Ok(msg);
    }
    let Json::Object(obj) = value else {
        return Err(err(path, format!("expected an object for {}", desc.name())));
    };
    for field in desc.fields().filter(is_inline) {
        if let Kind::Message(sub) = field.kind() {
            let inner = from_json(&sub, value, path)?;
            if inner.fields().next().is_some() {
                msg.set_field(&field, Value::Message(inner));
            }
        }
    }
    for (key, v) in obj {
        if v.is_null() {
            continue;
        }
        let Some(field) = desc.get_field_by_json_name(key) else {
            continue;
        };
        let fpath = join(path, key);
        let value = field_from_json(&field, v, &fpath)?;
        msg.try_set_field(&field, value)
            .map_err(|e| err(&fpath, e.to_string()))?;
    }
    Ok(msg)
}

fn set(msg: &mut DynamicMessage, name: &str, v: Value, path: &str) -> Result<(), JsonError> {
    let field = msg
        .descriptor()
        .get_field_by_name(name)
        .ok_or_else(|| err(path, format!("no field {name}")))?;
    msg.try_set_field(&field, v)
        .map_err(|e| err(path, e.to_string()))
}

fn special_from_json(
    msg: &mut DynamicMessage,
    value: &Json,
    path: &str,
) -> Result<bool, JsonError> {
    let name = msg.descriptor().full_name().to_string();
    match name.as_str() {
        TIME | MICRO_TIME => {
            let text = value
                .as_str()
                .ok_or_else(|| err(path, "expected an RFC 3339 time string"))?;
            let t: jiff::Timestamp = text
                .parse()
                .map_err(|e| err(path, format!("invalid time {text:?}: {e}")))?;
            set(msg, "seconds", Value::I64(t.as_second()), path)?;
            if t.subsec_nanosecond() != 0 {
                set(msg, "nanos", Value::I32(t.subsec_nanosecond()), path)?;
            }
        }
        INT_OR_STRING => match value {
            Json::String(s) => {
                set(msg, "type", Value::I64(1), path)?;
                set(msg, "strVal", Value::String(s.clone()), path)?;
            }
            other => {
                let n = int_of(other, path)?;
                set(msg, "type", Value::I64(0), path)?;
                let n = i32::try_from(n).map_err(|_| err(path, "out of range for int32"))?;
                set(msg, "intVal", Value::I32(n), path)?;
            }
        },
        QUANTITY => {
            let s = match value {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                _ => return Err(err(path, "expected a quantity string")),
            };
            set(msg, "string", Value::String(s), path)?;
        }
        FIELDS_V1 | RAW_EXTENSION => {
            let raw = serde_json::to_vec(value).unwrap_or_default();
            set(msg, "raw", Value::Bytes(Bytes::from(raw)), path)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn int_of(v: &Json, path: &str) -> Result<i64, JsonError> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .ok_or_else(|| err(path, format!("expected an integer, got {v}")))
}

fn kind_from_json(kind: &Kind, v: &Json, path: &str) -> Result<Value, JsonError> {
    let range = |_| err(path, "integer out of range");
    Ok(match kind {
        Kind::String => Value::String(
            v.as_str()
                .ok_or_else(|| err(path, format!("expected a string, got {v}")))?
                .to_string(),
        ),
        Kind::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| err(path, "expected a base64 string"))?;
            Value::Bytes(Bytes::from(
                STANDARD
                    .decode(s)
                    .map_err(|e| err(path, format!("invalid base64: {e}")))?,
            ))
        }
        Kind::Bool => Value::Bool(
            v.as_bool()
                .ok_or_else(|| err(path, format!("expected a boolean, got {v}")))?,
        ),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(i32::try_from(int_of(v, path)?).map_err(range)?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(int_of(v, path)?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::try_from(int_of(v, path)?).map_err(range)?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::try_from(int_of(v, path)?).map_err(range)?),
        Kind::Double => Value::F64(
            v.as_f64()
                .ok_or_else(|| err(path, format!("expected a number, got {v}")))?,
        ),
        Kind::Float => Value::F32(
            v.as_f64()
                .ok_or_else(|| err(path, format!("expected a number, got {v}")))?
                as f32,
        ),
        Kind::Enum(_) => Value::EnumNumber(i32::try_from(int_of(v, path)?).map_err(range)?),
        Kind::Message(m) => Value::Message(from_json(m, v, path)?),
    })
}

fn field_from_json(field: &FieldDescriptor, v: &Json, path: &str) -> Result<Value, JsonError> {
    if field.is_map() {
        let Json::Object(obj) = v else {
            return Err(err(path, "expected an object"));
        };
        let Kind::Message(entry) = field.kind() else {
            return Err(err(path, "map without entry type"));
        };
        let value_kind = entry.map_entry_value_field().kind();
        let mut out = std::collections::HashMap::new();
        for (k, item) in obj {
            if item.is_null() {
                continue;
            }
            out.insert(
                MapKey::String(k.clone()),
                kind_from_json(&value_kind, item, &join(path, k))?,
            );
        }
        return Ok(Value::Map(out));
    }
    if field.is_list() {
        let Json::Array(items) = v else {
            return Err(err(path, format!("expected an array, got {v}")));
        };
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| kind_from_json(&field.kind(), item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List);
    }
    kind_from_json(&field.kind(), v, path)
}

/// The package of apimachinery's meta/v1 (Status, DeleteOptions, WatchEvent, ...).
pub fn meta_package() -> &'static str {
    META
}
