//! `application/vnd.kubernetes.protobuf` for the built-in kinds, as the real server speaks it:
//! a body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` whose `typeMeta` names
//! the apiVersion and kind and whose `raw` is the object's message. Request bodies are
//! decoded into the server's JSON objects; answers are encoded from them when the client
//! prefers protobuf. The message schema comes from the k8s-pb crate (`generate`,
//! `k8s-schema.json`); wire encoding is prost-reflect's.

#[cfg(test)]
mod generate;
mod json;
mod schema;

use std::sync::OnceLock;

use prost::Message;
use prost::bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as PbValue};
use serde_json::Value;

use crate::error::ApiError;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4 bytes before every protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| match schema::Schema::load().pool() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "the protobuf schema does not load; protobuf is disabled");
            None
        }
    })
    .as_ref()
}

/// The message of `apiVersion`/`kind`: the group's package (`apps/v1` ->
/// `k8s.io.api.apps.v1`, core -> `k8s.io.api.core.v1`), else meta/v1 (Status,
/// DeleteOptions, WatchEvent are answered with any apiVersion).
pub fn message_for(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let pool = pool()?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    pool.get_message_by_name(&format!("k8s.io.api.{short}.{version}.{kind}"))
        .or_else(|| pool.get_message_by_name(&format!("{}.{kind}", json::meta_package())))
}

/// Whether a (media-type-only) Content-Type is protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type == MEDIA_TYPE
}

/// Whether the first acceptable type of an `Accept` header is plain protobuf (not a
/// `Table`/`PartialObjectMetadata` conversion, which are served as JSON).
pub fn preferred(accept: &str) -> bool {
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let converted = parts.any(|p| p.starts_with("as="));
        match media {
            MEDIA_TYPE if !converted => return true,
            MEDIA_TYPE => continue,
            "application/json" | "application/*" | "*/*" | "application/yaml" => return false,
            _ => continue,
        }
    }
    false
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// Decodes a protobuf request body into the JSON object it stands for (with `apiVersion` and
/// `kind` from the envelope).
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        bad("the protobuf body does not start with the Kubernetes magic number \"k8s\\x00\"")
    })?;
    let unknown_desc = pool()
        .and_then(|p| p.get_message_by_name(UNKNOWN))
        .ok_or_else(|| ApiError::internal("protobuf is not available: no schema"))?;
    let unknown = DynamicMessage::decode(unknown_desc, rest)
        .map_err(|e| bad(format!("invalid protobuf envelope: {e}")))?;
    let envelope = json::to_json(&unknown);
    let api_version = envelope
        .pointer("/typeMeta/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = envelope
        .pointer("/typeMeta/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(enc) = envelope.get("contentEncoding").and_then(Value::as_str)
        && !enc.is_empty()
    {
        return Err(bad(format!(
            "unsupported protobuf content encoding {enc:?}"
        )));
    }
    let desc = message_for(&api_version, &kind).ok_or_else(|| {
        bad(format!(
            "{api_version}/{kind} cannot be sent as protobuf: send it as application/json"
        ))
    })?;
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let msg = DynamicMessage::decode(desc, raw)
        .map_err(|e| bad(format!("invalid protobuf {api_version}/{kind}: {e}")))?;
    let mut obj = json::to_json(&msg);
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(api_version));
        m.insert("kind".into(), Value::String(kind));
    }
    Ok(obj)
}

/// Encodes a JSON object (with `apiVersion` and `kind`) as a protobuf body; `Err` names why
/// it cannot be (no message for the kind, or a field that does not fit its type).
pub fn encode(obj: &Value) -> Result<Vec<u8>, String> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let desc = message_for(api_version, kind)
        .ok_or_else(|| format!("no protobuf message for {api_version}/{kind}"))?;
    let msg = json::from_json(&desc, obj, "").map_err(|e| e.to_string())?;
    let pool = pool().ok_or("no schema")?;
    let unknown_desc = pool
        .get_message_by_name(UNKNOWN)
        .ok_or("no Unknown message")?;
    let type_meta = unknown_desc
        .get_field_by_name("typeMeta")
        .and_then(|f| f.kind().as_message().cloned())
        .ok_or("no TypeMeta message")?;
    let mut tm = DynamicMessage::new(type_meta);
    tm.set_field_by_name("apiVersion", PbValue::String(api_version.into()));
    tm.set_field_by_name("kind", PbValue::String(kind.into()));
    let mut unknown = DynamicMessage::new(unknown_desc);
    unknown.set_field_by_name("typeMeta", PbValue::Message(tm));
    unknown.set_field_by_name("raw", PbValue::Bytes(Bytes::from(msg.encode_to_vec())));
    let mut out = MAGIC.to_vec();
    unknown
        .encode(&mut out)
        .map_err(|e| format!("encoding failed: {e}"))?;
    Ok(out)
}

/// The media types object writes accept (what a 415 lists).
pub const OBJECT_TYPES: &[&str] = &["application/json", "application/yaml", MEDIA_TYPE];

/// The media types of custom resources and of kinds without a message.
pub const JSON_TYPES: &[&str] = &["application/json", "application/yaml"];

#[cfg(test)]
mod tests;
