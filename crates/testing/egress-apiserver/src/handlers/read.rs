//! `get` and `list`: selectors, `limit`/`continue` pagination over namespace/name order, and the
//! Table / PartialObjectMetadata answer forms.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::ApiRequest;
use crate::error::ApiError;
use crate::http::{Resp, json};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::table::{Format, format_from_accept, partial, table};
use crate::world::key_for;

/// Label and field selectors of a request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    label: LabelSelector,
    field: FieldSelector,
}

impl Selectors {
    /// Parses the request's selectors.
    pub fn of(req: &ApiRequest) -> Result<Self, ApiError> {
        Ok(Self {
            label: LabelSelector::parse(req.query.label_selector.as_deref().unwrap_or(""))?,
            field: FieldSelector::parse(
                req.query.field_selector.as_deref().unwrap_or(""),
                &req.res.field_selectors,
                |label| req.res.field_paths(label),
            )?,
        })
    }

    /// Whether an object is selected.
    pub fn matches(&self, obj: &Value) -> bool {
        self.label.matches(obj) && self.field.matches(obj)
    }
}

pub(super) fn get(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let name = req.path.name.clone().unwrap_or_default();
    let key = key_for(&req.res, req.namespace(), &name);
    let obj = {
        let world = shared.lock_world();
        world.store.get(&key).cloned()
    };
    let obj = obj.ok_or_else(|| ApiError::not_found(req.res.subject(), &name))?;
    let obj = req.present(obj);
    Ok(match format_from_accept(&req.accept) {
        Format::Object => json(200, &obj),
        Format::Metadata(v) => json(200, &partial(&obj, &v)),
        Format::Table(v) => json(
            200,
            &table(
                &req.res,
                req.version(),
                &v,
                &[obj],
                req.query.include_object.as_deref(),
                json!({}),
                true,
            ),
        ),
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::bad_request(format!("invalid continue token {token:?}")))
}

pub(super) fn list(shared: &Arc<Shared>, req: &ApiRequest) -> Result<Resp, ApiError> {
    let sel = Selectors::of(req)?;
    let after = req
        .query
        .continue_token
        .as_deref()
        .map(decode_continue)
        .transpose()?;
    let limit = req.query.limit.unwrap_or(usize::MAX);
    let (rv, items, remaining, next) = {
        let world = shared.lock_world();
        let rv = after.as_ref().map_or(world.store.current_rv(), |t| t.rv);
        let matching: Vec<_> = world
            .store
            .list(req.res.storage_group(), &req.res.plural, req.namespace())
            .filter(|(k, _)| {
                after
                    .as_ref()
                    .is_none_or(|t| (k.namespace.as_str(), k.name.as_str()) > (&t.ns, &t.name))
            })
            .filter(|(_, v)| sel.matches(v))
            .collect();
        let page = matching.len().min(limit);
        let remaining = matching.len() - page;
        let last = page
            .checked_sub(1)
            .and_then(|i| matching.get(i))
            .map(|(k, _)| (*k).clone());
        let items: Vec<Value> = matching[..page].iter().map(|(_, v)| (*v).clone()).collect();
        let next = (remaining > 0).then(|| {
            let k = last.unwrap_or_default();
            let t = ContinueToken {
                rv,
                ns: k.namespace,
                name: k.name,
            };
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap_or_default())
        });
        (rv, items, remaining, next)
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = next {
        meta["continue"] = json!(next);
        meta["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = items.into_iter().map(|o| req.present(o)).collect();
    Ok(match format_from_accept(&req.accept) {
        Format::Object => json(
            200,
            &json!({
                "kind": format!("{}List", req.res.kind),
                "apiVersion": req.res.api_version(req.version()),
                "metadata": meta,
                "items": items,
            }),
        ),
        Format::Metadata(v) => {
            let items: Vec<Value> = items.iter().map(|o| partial(o, &v)).collect();
            json(
                200,
                &json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": format!("meta.k8s.io/{v}"),
                    "metadata": meta,
                    "items": items,
                }),
            )
        }
        Format::Table(v) => json(
            200,
            &table(
                &req.res,
                req.version(),
                &v,
                &items,
                req.query.include_object.as_deref(),
                meta,
                true,
            ),
        ),
    })
}
