//! The `scale` subresource (`kubectl scale`, HPAs): get, update (PUT of a Scale) and patch
//! (JSON, merge or strategic merge patch of the Scale), each written back as the object's
//! `spec.replicas` under one lock.

use std::sync::Arc;

use json_patch::PatchOperation;
use serde_json::Value;

use super::ApiRequest;
use super::patch::apply_json_patch;
use super::write::{body_value, write_opts};
use crate::error::ApiError;
use crate::http::{Resp, decode, json};
use crate::server::Shared;
use crate::workloads::scale::{apply_scale, to_scale};
use crate::world::key_for;

/// The Scale after a patch of the `content_type` kind.
fn patched(scale: &Value, req: &ApiRequest) -> Result<Value, ApiError> {
    let body = decode(&req.body, false)?;
    match req.content_type.as_str() {
        "application/json-patch+json" => {
            let ops: Vec<PatchOperation> = serde_json::from_value(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            apply_json_patch(scale, &ops)
        }
        // A Scale has no lists: strategic merge is a merge patch.
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let mut out = scale.clone();
            json_patch::merge(&mut out, &body);
            Ok(out)
        }
        other => Err(ApiError::unsupported_media_type(
            other,
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ],
        )),
    }
}

/// Serves `get`, `update` and `patch` of `<plural>/<name>/scale`.
pub(super) fn serve(shared: &Arc<Shared>, req: &ApiRequest, verb: &str) -> Result<Resp, ApiError> {
    let name = req.path.name.clone().unwrap_or_default();
    let key = key_for(&req.res, req.namespace(), &name);
    let mut world = shared.lock_world();
    let live = world
        .store
        .get(&key)
        .cloned()
        .map(|o| req.present(o))
        .ok_or_else(|| ApiError::not_found(req.res.subject(), &name))?;
    let scale = to_scale(&live);
    let wanted = match verb {
        "get" => return Ok(json(200, &scale)),
        "update" => body_value(req)?,
        "patch" => patched(&scale, req)?,
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({verb} {}/scale)",
                req.res.plural
            )));
        }
    };
    let new = apply_scale(&live, &wanted)?;
    let written = world.update(&req.res, &write_opts(req), &key, new)?;
    drop(world);
    shared.gc.notify_one();
    Ok(json(200, &to_scale(&written.object)))
}
