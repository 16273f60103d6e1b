//! ARM resource handlers, one module per resource kind, and the dispatcher that picks one.
//! Top-level resources all go through `top_level` (one resolve-and-dispatch path); scale-set
//! helpers shared by the scale-set and instance handlers live in `scale_set_model`.

pub(crate) mod common;
pub(crate) mod instance_nics;
pub(crate) mod instance_view;
pub(crate) mod ip_version;
mod lb_validate;
pub(crate) mod load_balancers;
pub(crate) mod network_interfaces;
pub(crate) mod operations;
pub(crate) mod public_ip_addresses;
pub(crate) mod public_ip_prefixes;
pub(crate) mod render;
pub(crate) mod resource_groups;
pub(crate) mod scale_set_model;
pub(crate) mod scale_set_network;
pub(crate) mod scale_set_vms;
pub(crate) mod scale_sets;
pub(crate) mod top_level;
pub(crate) mod virtual_machines;
pub(crate) mod virtual_networks;

use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::router::{Kind, Target};
use crate::state::State;
use common::{check_subscription, resolve_rg};

/// Handles an ARM request (api-version already checked).
pub(crate) fn dispatch(state: &mut State, req: &Req, target: &Target, op: &str) -> Reply {
    let result = match target {
        Target::Operation { result, id } => operations::poll(state, *result, id),
        Target::ResourceGroups { sub } => {
            check_subscription(state, sub).and_then(|()| resource_groups::list(state, req))
        }
        Target::ResourceGroup { sub, rg } => {
            check_subscription(state, sub).and_then(|()| resource_groups::handle(state, req, rg))
        }
        Target::SubscriptionList { sub, top } => {
            check_subscription(state, sub).and_then(|()| top_level::list(state, req, *top, None))
        }
        Target::Res { sub, rg, kind } => check_subscription(state, sub)
            .and_then(|()| resolve_rg(state, rg))
            .and_then(|rg| dispatch_kind(state, req, &rg, kind, op)),
        Target::UnknownType { namespace, type_ } => Err(ArmError::bad_request(
            "InvalidResourceType",
            format!(
                "The resource type '{type_}' could not be found in the namespace '{namespace}' for api version '{}'. The emulator serves only the types kube-egress-gateway uses (docs/azure-emulator.md).",
                req.api_version().unwrap_or_default()
            ),
        )),
        Target::UnknownNamespace { namespace } => Err(ArmError::bad_request(
            "InvalidResourceNamespace",
            format!("The resource namespace '{namespace}' is invalid."),
        )),
        _ => Err(ArmError::not_found(
            "NotFound",
            format!("The requested resource '{}' does not exist.", req.path),
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
        Kind::List(top) => top_level::list(state, req, *top, Some(rg)),
        Kind::Item(top, name) => top_level::serve(state, req, *top, rg, name, op),
        Kind::Subnets(vnet) => virtual_networks::subnets(state, req, rg, vnet),
        Kind::Subnet(vnet, name) => virtual_networks::subnet(state, req, rg, vnet, name),
        Kind::ManualUpgrade(name) => scale_sets::manual_upgrade(state, req, rg, name, op),
        Kind::ScaleSetVms(vmss) => scale_set_vms::list(state, req, rg, vmss),
        Kind::ScaleSetVm(vmss, inst) => scale_set_vms::handle(state, req, rg, vmss, inst, op),
        Kind::ScaleSetVmInstanceView(vmss, inst) => {
            scale_set_vms::instance_view(state, req, rg, vmss, inst)
        }
        Kind::VirtualMachineInstanceView(name) => {
            virtual_machines::instance_view(state, req, rg, name)
        }
        Kind::VmssNetwork(n) => scale_set_network::handle(state, req, rg, n),
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
