//! ARM resource handlers, one module per resource kind, and the dispatcher that picks one.

pub(crate) mod common;
pub(crate) mod instance_nics;
pub(crate) mod load_balancers;
pub(crate) mod network_interfaces;
pub(crate) mod operations;
pub(crate) mod public_ip_addresses;
pub(crate) mod public_ip_prefixes;
pub(crate) mod render;
pub(crate) mod resource_groups;
pub(crate) mod scale_set_vms;
pub(crate) mod scale_sets;
pub(crate) mod virtual_machines;
pub(crate) mod virtual_networks;

use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::key;
use crate::lro::{self, LroKind, LroStyle};
use crate::router::{Kind, Target};
use crate::state::State;
use common::{check_preconditions, check_subscription, resolve_rg};

/// Handles an ARM request (api-version already checked).
pub(crate) fn dispatch(state: &mut State, req: &Req, target: &Target, op: &str) -> Reply {
    let result = match target {
        Target::Operation { result, id } => operations::poll(state, *result, id),
        Target::ResourceGroup { sub, rg } => {
            check_subscription(state, sub).and_then(|()| resource_groups::handle(state, req, rg))
        }
        Target::Res { sub, rg, kind } => check_subscription(state, sub)
            .and_then(|()| resolve_rg(state, rg))
            .and_then(|rg| dispatch_kind(state, req, &rg, kind, op)),
        Target::Unknown { provider, kind } => Err(ArmError::bad_request(
            "InvalidResourceType",
            format!(
                "The resource type '{kind}' could not be found in the namespace '{provider}' (the emulator serves only the types kube-egress-gateway uses)."
            ),
        )),
        _ => Err(ArmError::not_found(
            "NotFound",
            format!("No route for '{}'.", req.path),
        )),
    };
    result.unwrap_or_else(Reply::from)
}

fn dispatch_kind(
    state: &mut State,
    req: &Req,
    rg: &str,
    kind: &Kind,
    op: &str,
) -> Result<Reply, ArmError> {
    match kind {
        Kind::LoadBalancer(name) => load_balancers::handle(state, req, rg, name, op),
        Kind::PublicIpPrefix(name) => public_ip_prefixes::handle(state, req, rg, name, op),
        Kind::PublicIpAddress(name) => public_ip_addresses::handle(state, req, rg, name, op),
        Kind::NetworkInterfaces => network_interfaces::list(state, req, rg),
        Kind::NetworkInterface(name) => network_interfaces::handle(state, req, rg, name, op),
        Kind::VirtualNetwork(name) => virtual_networks::vnet(state, req, rg, name),
        Kind::Subnet(vnet, name) => virtual_networks::subnet(state, req, rg, vnet, name),
        Kind::ScaleSets => scale_sets::list(state, req, rg),
        Kind::ScaleSet(name) => scale_sets::handle(state, req, rg, name, op),
        Kind::ScaleSetManualUpgrade(name) => scale_sets::manual_upgrade(state, req, rg, name, op),
        Kind::ScaleSetVms(vmss) => scale_set_vms::list(state, req, rg, vmss),
        Kind::ScaleSetVm(vmss, inst) => scale_set_vms::handle(state, req, rg, vmss, inst, op),
        Kind::ScaleSetVmNic(vmss, inst, nic) => {
            scale_set_vms::get_nic(state, req, rg, vmss, inst, nic)
        }
        Kind::VirtualMachines => virtual_machines::list(state, req, rg),
        Kind::VirtualMachine(name) => virtual_machines::get(state, req, rg, name),
    }
}

/// 405 for a verb a route does not serve.
pub(crate) fn method_not_allowed(req: &Req) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!(
            "The HTTP method '{}' is not supported for '{}' by the emulator.",
            req.method, req.path
        ),
    )
}

/// GET of a stored resource, rendered with its derived fields.
pub(crate) fn get_stored(
    state: &State,
    id: &str,
    full_type: &str,
    name: &str,
    rg: &str,
) -> Result<Reply, ArmError> {
    let v = state
        .store
        .get(id)
        .ok_or_else(|| common::not_found(full_type, name, rg))?;
    Ok(Reply::json(200, render::render(&state.store, v)).with_etag_header())
}

/// DELETE of a top-level Network resource: 204 when absent, else 202 + `Location`.
/// `in_use` is checked before anything changes.
pub(crate) fn delete_stored(
    state: &mut State,
    req: &Req,
    id: &str,
    op: &str,
    provider: &str,
    in_use: impl FnOnce(&State) -> Result<(), ArmError>,
) -> Result<Reply, ArmError> {
    let existing = state.store.get(id).cloned();
    check_preconditions(req, existing.as_ref())?;
    if existing.is_none() {
        return Ok(Reply::empty(204));
    }
    in_use(state)?;
    let plan = lro::plan(state, req, op);
    let mut targets = vec![key(id)];
    if plan.failure.is_none() {
        state.store.remove(id);
        for child in state.store.children_of(id) {
            state.store.remove(&child);
        }
        targets.clear();
    } else if let Some(v) = state.store.get_mut(id) {
        crate::store::set_provisioning_deep(v, "Deleting");
    }
    let headers = lro::begin(
        state,
        req,
        plan,
        LroKind::Delete,
        LroStyle::Location,
        provider,
        targets,
    );
    let mut reply = Reply::empty(202);
    reply.headers.extend(headers);
    Ok(reply)
}

/// The answer to a Network PUT: 201 (created) or 200, body in `Updating`, `Azure-AsyncOperation`.
pub(crate) fn put_reply(
    state: &mut State,
    req: &Req,
    id: &str,
    created: bool,
    plan: lro::LroPlan,
) -> Reply {
    let headers = lro::begin(
        state,
        req,
        plan,
        LroKind::Put,
        LroStyle::AsyncOperation,
        crate::ids::NETWORK,
        vec![key(id)],
    );
    let body = state
        .store
        .get(id)
        .map(|v| render::render(&state.store, v))
        .unwrap_or_default();
    let mut reply = Reply::json(if created { 201 } else { 200 }, body).with_etag_header();
    reply.headers.extend(headers);
    reply
}
