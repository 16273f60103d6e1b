//! Scale-set instances: LIST (paged, `$expand=instanceView`), GET, PUT (the instance's own
//! network configuration, merged as Compute does; NICs and public IPs follow) and the instance
//! view. PATCH is not in the specification for instances, so it is refused.

use super::instance_nics;
use super::instance_view;
use super::render::render_for;
use super::scale_set_model::{
    INSTANCE_NICS, INSTANCE_TYPE, instance_keys, instance_not_found, next_etag,
    refresh_latest_model, scale_set,
};
use super::top_level::write_reply;
use super::{common::check_preconditions, method_not_allowed};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::key;
use crate::lro;
use crate::paging;
use crate::schema;
use crate::state::State;
use crate::store::{id_of, merge};
use serde_json::{Value, json};

pub(crate) fn list(state: &mut State, req: &Req, rg: &str, vmss: &str) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let id = id_of(scale_set(state, rg, vmss)?).to_owned();
    let items: Vec<Value> = instance_keys(state, &id)
        .iter()
        .filter_map(|k| state.store.get(k))
        .map(|v| render_for(&state.store, v, req))
        .collect();
    paging::page(state, req, items)
}

fn instance(state: &State, rg: &str, vmss: &str, inst: &str) -> Result<Value, ArmError> {
    let id = format!(
        "{}/virtualMachines/{inst}",
        id_of(scale_set(state, rg, vmss)?)
    );
    state
        .store
        .get(&id)
        .cloned()
        .ok_or_else(|| instance_not_found(vmss, inst, rg))
}

pub(crate) fn handle(
    state: &mut State,
    req: &Req,
    rg: &str,
    vmss: &str,
    inst: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    let existing = instance(state, rg, vmss, inst)?;
    match req.method.as_str() {
        "GET" => {
            lro::resource_read(state, id_of(&existing));
            let v = state.store.get(id_of(&existing)).unwrap_or(&existing);
            Ok(Reply::json(200, render_for(&state.store, v, req)).with_etag_header())
        }
        "PUT" => update(state, req, existing, op),
        _ => Err(method_not_allowed(req)),
    }
}

/// `.../virtualMachines/{i}/instanceView`.
pub(crate) fn instance_view(
    state: &mut State,
    req: &Req,
    rg: &str,
    vmss: &str,
    inst: &str,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    Ok(Reply::json(
        200,
        instance_view::of(&instance(state, rg, vmss, inst)?),
    ))
}

fn update(state: &mut State, req: &Req, existing: Value, op: &str) -> Result<Reply, ArmError> {
    check_preconditions(req, Some(&existing))?;
    let mut body = req.json_object()?;
    schema::prune_request(INSTANCE_TYPE, &mut body);
    let id = id_of(&existing).to_owned();
    super::common::location_for(&body, Some(&existing), &id)?;
    let mut v = existing.clone();
    merge(&mut v, &body);
    let nics = v
        .pointer(INSTANCE_NICS)
        .cloned()
        .unwrap_or_else(|| json!([]));
    instance_nics::validate(state, &nics, &id)?;
    v["etag"] = json!(next_etag(&existing));
    v["properties"]["provisioningState"] = json!("Updating");
    let plan = lro::plan(state, req, op);
    let m = instance_nics::materialise(state, &v, "Updating")?;
    let mut targets = vec![key(&id)];
    targets.extend(m.keys());
    state.store.put(v);
    instance_nics::commit(state, &id, m);
    let vmss_id = id
        .rsplit_once("/virtualMachines/")
        .map(|(v, _)| v.to_owned())
        .unwrap_or_default();
    refresh_latest_model(state, &vmss_id);
    Ok(write_reply(state, req, op, plan, targets, false))
}
