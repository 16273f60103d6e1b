//! The one resolve-and-dispatch path of top-level resources (load balancers, public IP prefixes
//! and addresses, NICs, VNets, scale sets, VMs): the resource is resolved to its canonical ID and
//! name once, then the verb goes to the type's handler from one table. GET, DELETE and lists
//! are the same for every type and live here too.

use super::common::{check_preconditions, not_found};
use super::{
    load_balancers, network_interfaces, public_ip_addresses, public_ip_prefixes, scale_sets,
};
use super::{method_not_allowed, render};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{ParsedId, key, resource_id};
use crate::lro::{self, Start};
use crate::paging;
use crate::router::TopType;
use crate::state::State;
use crate::store::id_of;
use serde_json::Value;

/// A top-level resource named by a request: its ID and name as stored (the casing of
/// creation) or as requested when it does not exist yet, and its current value.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub id: String,
    pub name: String,
    pub rg: String,
    pub existing: Option<Value>,
}

/// A PUT or PATCH handler.
pub(crate) type WriteFn = fn(&mut State, &Req, &Resolved, &str) -> Result<Reply, ArmError>;
/// Checked before a DELETE changes anything (e.g. "still in use").
pub(crate) type GuardFn = fn(&State, &Resolved) -> Result<(), ArmError>;

/// What a type does with each verb (`None`: not served by the emulator).
struct Verbs {
    put: Option<WriteFn>,
    patch: Option<WriteFn>,
    delete: Option<GuardFn>,
}

fn verbs(top: TopType) -> Verbs {
    let v = |put, patch, delete| Verbs { put, patch, delete };
    match top {
        TopType::LoadBalancer => v(
            Some(load_balancers::put as WriteFn),
            None,
            Some(load_balancers::delete_guard as GuardFn),
        ),
        TopType::PublicIpPrefix => v(
            Some(public_ip_prefixes::put),
            None,
            Some(public_ip_prefixes::delete_guard),
        ),
        TopType::PublicIpAddress => v(
            Some(public_ip_addresses::put),
            None,
            Some(public_ip_addresses::delete_guard),
        ),
        TopType::NetworkInterface => v(
            Some(network_interfaces::put),
            None,
            Some(network_interfaces::delete_guard),
        ),
        TopType::ScaleSet => v(Some(scale_sets::put), Some(scale_sets::patch), None),
        TopType::VirtualNetwork | TopType::VirtualMachine => v(None, None, None),
    }
}

/// Resolves `name` of `top` in `rg` against the store.
pub(crate) fn resolve(state: &State, top: TopType, rg: &str, name: &str) -> Resolved {
    let url_id = resource_id(
        &state.settings.subscription,
        rg,
        top.provider(),
        top.collection(),
        name,
    );
    match state.store.get(&url_id) {
        Some(v) => Resolved {
            id: id_of(v).to_owned(),
            name: v["name"].as_str().unwrap_or(name).to_owned(),
            rg: rg.to_owned(),
            existing: Some(v.clone()),
        },
        None => Resolved {
            id: url_id,
            name: name.to_owned(),
            rg: rg.to_owned(),
            existing: None,
        },
    }
}

/// Serves a request for one top-level resource.
pub(crate) fn serve(
    state: &mut State,
    req: &Req,
    top: TopType,
    rg: &str,
    name: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    let r = resolve(state, top, rg, name);
    let verbs = verbs(top);
    let unserved = || {
        ArmError::new(
            405,
            "MethodNotAllowed",
            format!(
                "The emulator does not serve {} of {} (its instances come from the seed).",
                req.method,
                top.arm_type()
            ),
        )
    };
    match req.method.as_str() {
        "GET" => get(state, req, top, &r),
        "PUT" => verbs.put.ok_or_else(unserved)?(state, req, &r, op),
        "PATCH" => verbs.patch.ok_or_else(unserved)?(state, req, &r, op),
        "DELETE" => delete(state, req, &r, op, verbs.delete.ok_or_else(unserved)?),
        _ => Err(method_not_allowed(req)),
    }
}

fn get(state: &mut State, req: &Req, top: TopType, r: &Resolved) -> Result<Reply, ArmError> {
    if r.existing.is_none() {
        return Err(not_found(top.arm_type(), &r.name, &r.rg));
    }
    lro::resource_read(state, &r.id);
    let v = state
        .store
        .get(&r.id)
        .ok_or_else(|| not_found(top.arm_type(), &r.name, &r.rg))?;
    Ok(Reply::json(200, render::render_for(&state.store, v, req)).with_etag_header())
}

/// DELETE: 204 when absent; else the guard, then the resource and its children go and the
/// operation answers in its response form. A failed delete (injected) keeps the resource.
fn delete(
    state: &mut State,
    req: &Req,
    r: &Resolved,
    op: &str,
    guard: GuardFn,
) -> Result<Reply, ArmError> {
    check_preconditions(req, r.existing.as_ref())?;
    if r.existing.is_none() {
        return Ok(Reply::empty(204));
    }
    guard(state, r)?;
    let plan = lro::plan(state, req, op);
    let mut targets = Vec::new();
    if plan.failure.is_none() {
        for child in state.store.children_of(&r.id) {
            state.store.remove(&child);
        }
        state.store.remove(&r.id);
    } else if let Some(v) = state.store.get_mut(&r.id) {
        crate::store::set_provisioning_deep(v, "Deleting");
        targets.push(key(&r.id));
    }
    Ok(lro::start(
        state,
        req,
        op,
        plan,
        Start {
            targets,
            created: false,
        },
    ))
}

/// Stores the accepted body of a Network PUT (`provisioningState: Updating`, `resourceGuid`
/// kept across updates) and answers in the operation's response form.
pub(crate) fn store_write(
    state: &mut State,
    req: &Req,
    op: &str,
    r: &Resolved,
    mut v: Value,
) -> Reply {
    let guid = r
        .existing
        .as_ref()
        .and_then(|e| e.pointer("/properties/resourceGuid"))
        .cloned()
        .unwrap_or_else(|| serde_json::json!(uuid::Uuid::new_v4().to_string()));
    v["properties"]["provisioningState"] = serde_json::json!("Updating");
    v["properties"]["resourceGuid"] = guid;
    let plan = lro::plan(state, req, op);
    state.store.put(v);
    write_reply(state, req, op, plan, vec![key(&r.id)], r.existing.is_none())
}

/// The answer to an accepted PUT/PATCH of `id` (already stored, in `Updating`).
pub(crate) fn write_reply(
    state: &mut State,
    req: &Req,
    op: &str,
    plan: lro::LroPlan,
    targets: Vec<String>,
    created: bool,
) -> Reply {
    lro::start(state, req, op, plan, Start { targets, created })
}

/// Top-level resources of `top` in `rg` (or the whole subscription), ordered by ID, paged.
pub(crate) fn list(
    state: &State,
    req: &Req,
    top: TopType,
    rg: Option<&str>,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let items: Vec<Value> = state
        .store
        .of_type(top.arm_type())
        .filter(|v| {
            // Scale-set NICs and public IPs share the types but are not top-level.
            ParsedId::parse(id_of(v)).is_some_and(|p| {
                p.types.len() == 1
                    && p.provider.eq_ignore_ascii_case(top.provider())
                    && rg.is_none_or(|rg| p.resource_group.eq_ignore_ascii_case(rg))
            })
        })
        .map(|v| render::render_for(&state.store, v, req))
        .collect();
    paging::page(state, req, items)
}
