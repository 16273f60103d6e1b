//! `create`, `update` (PUT), `delete` and `deletecollection` handlers: decode the body, run the
//! world's write semantics under the lock, wake the garbage collector, and answer like the real
//! server (201 on create, the deleted object or a Success `Status` on delete).

use std::sync::Arc;

use serde_json::{Value, json};

use super::ApiRequest;
use super::read::Selectors;
use crate::delete::DeleteOpts;
use crate::error::ApiError;
use crate::http::{Resp, decode, json, with_warnings};
use crate::protobuf;
use crate::server::Shared;
use crate::world::{WriteOpts, Written, key_for};

/// Decodes an object body: JSON, YAML, or protobuf for built-in kinds (415 for other media
/// types, listing the ones this resource accepts).
pub(super) fn object_body(req: &ApiRequest) -> Result<Value, ApiError> {
    let body = body_value(req)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    Ok(body)
}

/// The request body as JSON, whatever media type it came in (an empty body is `null`).
pub(super) fn body_value(req: &ApiRequest) -> Result<Value, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let yaml = match req.content_type.as_str() {
        "" | "application/json" | "*/*" => false,
        "application/yaml" | "application/x-yaml" | "text/yaml" => true,
        ct if protobuf::is_protobuf(ct) && !req.res.custom => {
            return protobuf::decode(&req.body);
        }
        other => {
            let accepted = if req.res.custom {
                protobuf::JSON_TYPES
            } else {
                protobuf::OBJECT_TYPES
            };
            return Err(ApiError::unsupported_media_type(other, accepted));
        }
    };
    decode(&req.body, yaml)
}

pub(super) fn write_opts(req: &ApiRequest) -> WriteOpts {
    WriteOpts {
        version: req.version().to_string(),
        subresource: req.path.subresource.clone(),
        manager: req.manager(),
        field_validation: req.query.field_validation,
        dry_run: req.query.dry_run,
        managed_fields_done: false,
        user: Some(req.user.clone()),
    }
}

pub(super) fn answer(req: &ApiRequest, code: u16, written: Written) -> Resp {
    with_warnings(json(code, &req.present(written.object)), &written.warnings)
}

pub(super) fn create(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let body = object_body(req)?;
    let opts = write_opts(req);
    let written = shared
        .lock_world()
        .create(&req.res, &opts, req.namespace(), body)?;
    shared.gc.notify_one();
    Ok(answer(req, 201, written))
}

pub(super) fn update(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let body = object_body(req)?;
    let name = req.path.name.clone().unwrap_or_default();
    let key = key_for(&req.res, req.namespace(), &name);
    let opts = write_opts(req);
    let written = shared.lock_world().update(&req.res, &opts, &key, body)?;
    shared.gc.notify_one();
    Ok(answer(req, 200, written))
}

fn delete_opts(req: &ApiRequest) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        propagation: req.query.propagation_policy.clone(),
        dry_run: req.query.dry_run,
        user: Some(req.user.clone()),
        version: req.version().to_string(),
        ..DeleteOpts::default()
    };
    opts.merge_body(&body_value(req)?)?;
    Ok(opts)
}

/// Resources whose registry answers a removed object itself rather than a Success `Status`.
fn returns_deleted_object(req: &ApiRequest) -> bool {
    req.res.custom
        || (req.res.group.is_empty() && matches!(req.res.plural.as_str(), "pods" | "namespaces"))
}

pub(super) fn delete(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let opts = delete_opts(req)?;
    let name = req.path.name.clone().unwrap_or_default();
    let key = key_for(&req.res, req.namespace(), &name);
    let deleted = shared.lock_world().delete(&req.res, &key, &opts)?;
    shared.gc.notify_one();
    if deleted.gone && !returns_deleted_object(req) {
        let mut details = json!({
            "name": name,
            "kind": req.res.plural,
            "uid": deleted.object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        });
        if !req.res.group.is_empty() {
            details["group"] = json!(req.res.group);
        }
        return Ok(json(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Success", "details": details}),
        ));
    }
    Ok(json(200, &req.present(deleted.object)))
}

pub(super) fn delete_collection(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let opts = delete_opts(req)?;
    let sel = Selectors::of(req)?;
    let items = shared.lock_world().delete_collection(
        &req.res,
        req.namespace(),
        |o| sel.matches(o),
        &opts,
    )?;
    shared.gc.notify_one();
    let items: Vec<Value> = items.into_iter().map(|o| req.present(o)).collect();
    Ok(json(
        200,
        &json!({
            "kind": format!("{}List", req.res.kind),
            "apiVersion": req.res.api_version(req.version()),
            "metadata": {},
            "items": items,
        }),
    ))
}
