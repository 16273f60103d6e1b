//! `patch`: JSON patch (RFC 6902, with the real server's rule that `test` of a missing path
//! against `null` succeeds), JSON merge patch (RFC 7386), strategic merge patch (built-ins
//! only; 415 for custom resources) and server-side apply (creating missing objects), each
//! computed and written under one lock so the read-modify-write is atomic.

use std::sync::Arc;

use json_patch::PatchOperation;
use serde_json::Value;

use super::ApiRequest;
use super::write::{answer, write_opts};
use crate::error::ApiError;
use crate::http::{Resp, decode};
use crate::managed;
use crate::objects::now;
use crate::server::Shared;
use crate::world::key_for;

/// The patch media types, strategic merge last (built-ins only).
const PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
];

/// Applies RFC 6902 operations in order; a `test` for `null` on a missing path passes.
pub fn apply_json_patch(doc: &Value, ops: &[PatchOperation]) -> Result<Value, ApiError> {
    let mut doc = doc.clone();
    for op in ops {
        if let PatchOperation::Test(t) = op
            && t.value.is_null()
            && doc.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op))
            .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
    }
    Ok(doc)
}

pub(super) fn patch(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let name = req.path.name.clone().unwrap_or_default();
    let key = key_for(&req.res, req.namespace(), &name);
    let mut opts = write_opts(req);
    let ct = req.content_type.as_str();
    let body = decode(&req.body, ct == "application/apply-patch+yaml")?;
    let mut world = shared.lock_world();
    // Patches apply to the object as seen in the URL's version.
    let live = world.store.get(&key).cloned().map(|l| req.present(l));
    let written = match ct {
        "application/json-patch+json" => {
            let ops: Vec<PatchOperation> = serde_json::from_value(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            let live = live.ok_or_else(|| ApiError::not_found(req.res.subject(), &name))?;
            let new = apply_json_patch(&live, &ops)?;
            world.update(&req.res, &opts, &key, new)?
        }
        "application/merge-patch+json" => {
            let live = live.ok_or_else(|| ApiError::not_found(req.res.subject(), &name))?;
            if !body.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut new = live;
            json_patch::merge(&mut new, &body);
            world.update(&req.res, &opts, &key, new)?
        }
        "application/strategic-merge-patch+json" if !req.res.custom => {
            let live = live.ok_or_else(|| ApiError::not_found(req.res.subject(), &name))?;
            let new = managed::strategic_merge(&req.res, req.version(), &live, &body)?;
            world.update(&req.res, &opts, &key, new)?
        }
        "application/apply-patch+yaml" => {
            let manager = req
                .query
                .field_manager
                .clone()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request("PATCH /apply requires a non-empty fieldManager")
                })?;
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "an apply patch must be a YAML or JSON object",
                ));
            }
            if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str)
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            opts.managed_fields_done = true;
            let sub = req.path.subresource.as_deref();
            match live {
                None if sub.is_some() => return Err(ApiError::not_found(req.res.subject(), &name)),
                None => {
                    let mut new = managed::apply(
                        &req.res,
                        req.version(),
                        None,
                        &body,
                        &manager,
                        None,
                        req.query.force,
                        &now(),
                    )?;
                    new["metadata"]["name"] = Value::String(name.clone());
                    let written = world.create(&req.res, &opts, req.namespace(), new)?;
                    drop(world);
                    shared.gc.notify_one();
                    return Ok(answer(req, 201, written));
                }
                Some(live) => {
                    let new = managed::apply(
                        &req.res,
                        req.version(),
                        Some(&live),
                        &body,
                        &manager,
                        sub,
                        req.query.force,
                        &now(),
                    )?;
                    world.update(&req.res, &opts, &key, new)?
                }
            }
        }
        other => {
            let accepted: &[&str] = if req.res.custom {
                &PATCH_TYPES[..3]
            } else {
                &PATCH_TYPES
            };
            return Err(ApiError::unsupported_media_type(other, accepted));
        }
    };
    drop(world);
    shared.gc.notify_one();
    Ok(answer(req, 200, written))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn test_null_on_missing_path_passes_like_the_real_server() {
        let ops: Vec<PatchOperation> = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]},
        ]))
        .unwrap();
        let out = apply_json_patch(&json!({"metadata": {}}), &ops).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["f"]));
        let again = apply_json_patch(&out, &ops).unwrap_err();
        assert_eq!(again.code, 422);
    }
}
