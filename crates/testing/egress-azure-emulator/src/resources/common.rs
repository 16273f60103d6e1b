//! Helpers shared by the resource handlers: subscription/resource-group checks, If-Match, the
//! ARM envelope of a stored resource, sub-resource normalisation and reference checks.

use crate::error::ArmError;
use crate::http::Req;
use crate::ids::{ParsedId, key};
use crate::state::State;
use crate::store::{Store, etag_matches};
use serde_json::{Map, Value, json};

/// `SubscriptionNotFound` unless `sub` is the emulated subscription.
pub(crate) fn check_subscription(state: &State, sub: &str) -> Result<(), ArmError> {
    if sub.eq_ignore_ascii_case(&state.settings.subscription) {
        Ok(())
    } else {
        Err(ArmError::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ))
    }
}

/// Canonical name of an existing resource group, or `ResourceGroupNotFound`.
pub(crate) fn resolve_rg(state: &State, rg: &str) -> Result<String, ArmError> {
    state
        .store
        .resource_group(rg)
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ArmError::not_found(
                "ResourceGroupNotFound",
                format!("Resource group '{rg}' could not be found."),
            )
        })
}

/// `If-Match` / `If-None-Match` preconditions → 412 `PreconditionFailed`.
pub(crate) fn check_preconditions(req: &Req, existing: Option<&Value>) -> Result<(), ArmError> {
    let current = existing.and_then(|v| v.get("etag")).and_then(Value::as_str);
    if let Some(want) = req.header("if-match") {
        let ok = match (want.trim(), existing, current) {
            ("*", Some(_), _) => true,
            (w, Some(_), Some(cur)) => w.split(',').any(|w| etag_matches(w, cur)),
            _ => false,
        };
        if !ok {
            return Err(ArmError::new(
                412,
                "PreconditionFailed",
                format!(
                    "The condition specified using HTTP conditional header(s) is not met. If-Match '{want}' does not match the current ETag '{}'.",
                    current.unwrap_or("<resource does not exist>")
                ),
            ));
        }
    }
    if let Some(none) = req.header("if-none-match")
        && none.trim() == "*"
        && existing.is_some()
    {
        return Err(ArmError::new(
            412,
            "PreconditionFailed",
            "The condition specified using HTTP conditional header(s) is not met. If-None-Match '*' but the resource exists.",
        ));
    }
    Ok(())
}

/// ARM's `ResourceNotFound` for a top-level resource.
pub(crate) fn not_found(full_type: &str, name: &str, rg: &str) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{full_type}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// The location for a create/update: the body's, or the existing one; required on create and
/// immutable afterwards.
pub(crate) fn location_for(
    body: &Value,
    existing: Option<&Value>,
    id: &str,
) -> Result<String, ArmError> {
    let given = body.get("location").and_then(Value::as_str);
    let current = existing
        .and_then(|e| e.get("location"))
        .and_then(Value::as_str);
    match (given, current) {
        (None, None) => Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )),
        (Some(g), Some(c)) if !normalise_location(g).eq(&normalise_location(c)) => {
            Err(ArmError::bad_request(
                "InvalidResourceLocation",
                format!(
                    "The resource '{id}' already exists in location '{c}'. A resource with the same name cannot be created in location '{g}'. Please select a new resource name."
                ),
            ))
        }
        (Some(g), _) => Ok(normalise_location(g)),
        (None, Some(c)) => Ok(c.to_owned()),
    }
}

/// ARM answers locations lower-case without spaces (`East US` → `eastus`).
pub(crate) fn normalise_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Fills the ARM envelope of a resource built from a request body, keeping every other field.
pub(crate) fn envelope(
    body: &Value,
    id: &str,
    name: &str,
    kind: &str,
    location: &str,
    etag: &str,
) -> Value {
    let mut v = body.clone();
    let obj = v.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("name".into(), json!(name));
    out.insert("type".into(), json!(kind));
    out.insert("location".into(), json!(location));
    out.insert("etag".into(), json!(etag));
    for (k, val) in obj {
        if !matches!(k.as_str(), "id" | "name" | "type" | "location" | "etag") {
            out.insert(k, val);
        }
    }
    if !out.get("tags").is_some_and(Value::is_object) {
        out.insert("tags".into(), json!({}));
    }
    if !out.get("properties").is_some_and(Value::is_object) {
        out.insert("properties".into(), json!({}));
    }
    Value::Object(out)
}

/// Normalises an array of sub-resources (`frontendIPConfigurations`, ...): every item needs a
/// unique `name`; `id`, `type`, `etag` and `provisioningState` are set as ARM returns them.
pub(crate) fn normalise_children(
    props: &mut Value,
    field: &str,
    parent_id: &str,
    child_type: &str,
    etag: &str,
    provisioning: &str,
) -> Result<(), ArmError> {
    let Some(items) = props.get_mut(field) else {
        return Ok(());
    };
    if items.is_null() {
        *items = json!([]);
        return Ok(());
    }
    let Some(arr) = items.as_array_mut() else {
        return Err(ArmError::bad_request(
            "InvalidRequestFormat",
            format!("Cannot parse the request: '{field}' must be an array."),
        ));
    };
    let mut seen = Vec::new();
    let last_seg = child_type.rsplit('/').next().unwrap_or(child_type);
    for item in arr.iter_mut() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidRequestFormat",
                    format!("Cannot parse the request: an item of '{field}' has no name."),
                )
            })?;
        if seen.contains(&name.to_ascii_lowercase()) {
            return Err(ArmError::bad_request(
                "DuplicateResourceName",
                format!(
                    "Resource {parent_id} has two child resources with the same name ({name})."
                ),
            ));
        }
        seen.push(name.to_ascii_lowercase());
        let Some(obj) = item.as_object_mut() else {
            continue;
        };
        obj.insert("id".into(), json!(format!("{parent_id}/{last_seg}/{name}")));
        obj.insert("type".into(), json!(child_type));
        obj.insert("etag".into(), json!(etag));
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("provisioningState".into(), json!(provisioning));
        }
    }
    Ok(())
}

/// The `id` at a JSON pointer, if present.
pub(crate) fn ref_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `InvalidResourceReference` as the Network provider words it.
pub(crate) fn invalid_reference(referenced: &str, by: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidResourceReference",
        format!(
            "Resource {referenced} referenced by resource {by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
        ),
    )
}

/// True when `id` names an existing resource (or sub-resource inside one).
pub(crate) fn exists(store: &Store, id: &str) -> bool {
    if store.get(id).is_some() {
        return true;
    }
    let Some(p) = ParsedId::parse(id) else {
        return false;
    };
    let Some(top) = p.top_level_id().and_then(|t| store.get(&t)) else {
        return false;
    };
    let want = key(id);
    let mut found = false;
    crate::store::walk_objects(top, &mut |o| {
        if o.get("id")
            .and_then(Value::as_str)
            .is_some_and(|i| key(i) == want)
        {
            found = true;
        }
    });
    found
}

/// Fills a Network resource's `sku` with its defaults (Standard, Regional) and returns its name.
pub(crate) fn standard_sku(v: &mut Value) -> String {
    if !v.get("sku").is_some_and(Value::is_object) {
        v["sku"] = json!({"name": "Standard"});
    }
    if v["sku"].get("name").is_none() {
        v["sku"]["name"] = json!("Standard");
    }
    if v["sku"].get("tier").is_none() {
        v["sku"]["tier"] = json!("Regional");
    }
    v["sku"]["name"].as_str().unwrap_or_default().to_owned()
}
