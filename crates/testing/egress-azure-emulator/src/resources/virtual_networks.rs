//! Virtual networks and subnets: GET only (they come from the seed).

use super::{get_stored, method_not_allowed};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, resource_id};
use crate::state::State;

/// ARM type of virtual networks.
pub(crate) const VNET_TYPE: &str = "Microsoft.Network/virtualNetworks";
/// ARM type of subnets.
pub(crate) const SUBNET_TYPE: &str = "Microsoft.Network/virtualNetworks/subnets";

pub(crate) fn vnet(state: &mut State, req: &Req, rg: &str, name: &str) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let id = resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "virtualNetworks",
        name,
    );
    get_stored(state, &id, VNET_TYPE, name, rg)
}

pub(crate) fn subnet(
    state: &mut State,
    req: &Req,
    rg: &str,
    vnet: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let vnet_id = resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "virtualNetworks",
        vnet,
    );
    let id = format!("{vnet_id}/subnets/{name}");
    get_stored(
        state,
        &id,
        SUBNET_TYPE,
        &format!("{vnet}/subnets/{name}"),
        rg,
    )
}
