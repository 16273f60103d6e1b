//! Field ownership (`metadata.managedFields`), server-side apply and strategic merge patch,
//! delegated to `egress-apiserver-patch` with the type information of the resource (the
//! built-in table, or the CRD version's schema parsed once at registration), and their
//! failures turned into the real server's answers (409 with `FieldManagerConflict` causes).

use std::sync::Arc;

use egress_apiserver_patch::{ApplyError, Gvk, TypeInfo};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects::{meta_mut, meta_str};
use crate::resource::ResourceInfo;

/// The list/map types of `res` at `version`.
pub fn types(res: &ResourceInfo, version: &str) -> Arc<TypeInfo> {
    if res.custom {
        return res
            .version(version)
            .and_then(|v| v.patch_types.clone())
            .unwrap_or_else(|| Arc::new(TypeInfo::untyped().with_status_subresource(res.status)));
    }
    Arc::new(TypeInfo::builtin(&Gvk::new(&res.group, version, &res.kind)))
}

/// Records ownership for a non-apply write (`operation: Update`). Like the real server, a
/// bookkeeping failure never fails the write: it is logged and managedFields are dropped.
pub fn record_update(
    res: &ResourceInfo,
    version: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let types = types(res, version);
    if let Err(e) =
        egress_apiserver_patch::record_update_typed(old, new, manager, subresource, now, &types)
    {
        tracing::warn!(error = %e, kind = %res.kind, "failed to update managedFields; dropping them");
        if let Some(meta) = meta_mut(new) {
            meta.remove("managedFields");
        }
    }
}

/// Server-side apply of `applied` onto `live` (`None`: create) by `manager`.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    res: &ResourceInfo,
    version: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    let types = types(res, version);
    egress_apiserver_patch::apply_typed(live, applied, manager, subresource, force, now, &types)
        .map_err(|e| match e {
            ApplyError::Conflict { conflicts } => {
                let name = meta_str(applied, "name").unwrap_or_default();
                let mut err = ApiError::new(
                    409,
                    "Conflict",
                    egress_apiserver_patch::conflict_message(&conflicts),
                );
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message, "field": c.field}))
                    .collect();
                let mut details = json!({"name": name, "kind": res.plural, "causes": causes});
                if !res.group.is_empty() {
                    details["group"] = json!(res.group);
                }
                err.details = Some(details);
                err
            }
            ApplyError::Invalid(msg) => ApiError::bad_request(msg),
            ApplyError::Patch(e) => ApiError::new(422, "Invalid", e.to_string()),
        })
}

/// Strategic merge patch of a built-in kind.
pub fn strategic_merge(
    res: &ResourceInfo,
    version: &str,
    live: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let types = types(res, version);
    egress_apiserver_patch::strategic_merge_typed(live, patch, &types)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}
