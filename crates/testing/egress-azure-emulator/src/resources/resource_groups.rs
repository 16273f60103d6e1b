//! Resource groups: PUT (create/update), GET, HEAD (`CheckExistence`: 204 or 404) and LIST,
//! as Microsoft.Resources answers them.

use super::common::location_for;
use super::method_not_allowed;
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::rg_id;
use crate::paging;
use crate::state::State;
use serde_json::{Value, json};

/// ARM type of resource groups.
pub(crate) const RG_TYPE: &str = "Microsoft.Resources/resourceGroups";

/// A resource group value.
pub(crate) fn rg_value(sub: &str, name: &str, location: &str, tags: Value) -> Value {
    json!({
        "id": rg_id(sub, name),
        "name": name,
        "type": RG_TYPE,
        "location": location,
        "tags": tags,
        "properties": {"provisioningState": "Succeeded"},
    })
}

pub(crate) fn handle(state: &mut State, req: &Req, rg: &str) -> Result<Reply, ArmError> {
    let existing = state.store.resource_group(rg).cloned();
    match req.method.as_str() {
        "HEAD" => Ok(Reply::empty(if existing.is_some() { 204 } else { 404 })),
        "GET" => existing.map(|v| Reply::json(200, v)).ok_or_else(|| {
            ArmError::not_found(
                "ResourceGroupNotFound",
                format!("Resource group '{rg}' could not be found."),
            )
        }),
        "PUT" => {
            let body = req.json_object()?;
            let name = existing
                .as_ref()
                .and_then(|e| e.get("name"))
                .and_then(Value::as_str)
                .unwrap_or(rg)
                .to_owned();
            let id = rg_id(&state.settings.subscription, &name);
            let location = location_for(&body, existing.as_ref(), &id)?;
            let tags = body
                .get("tags")
                .filter(|t| t.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            let v = rg_value(&state.settings.subscription, &name, &location, tags);
            state
                .store
                .resource_groups
                .insert(name.to_ascii_lowercase(), v.clone());
            Ok(Reply::json(if existing.is_some() { 200 } else { 201 }, v))
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// `GET /subscriptions/{sub}/resourcegroups`.
pub(crate) fn list(state: &mut State, req: &Req) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let items = state.store.resource_groups.values().cloned().collect();
    paging::page(state, req, items)
}
