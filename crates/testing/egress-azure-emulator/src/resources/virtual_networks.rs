//! Subnets: GET and LIST (they come from the seed; VNets themselves are `top_level`'s).

use super::common::not_found;
use super::method_not_allowed;
use super::render::render;
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, resource_id};
use crate::paging;
use crate::state::State;
use serde_json::Value;

/// ARM type of virtual networks.
pub(crate) const VNET_TYPE: &str = "Microsoft.Network/virtualNetworks";
/// ARM type of subnets.
pub(crate) const SUBNET_TYPE: &str = "Microsoft.Network/virtualNetworks/subnets";

fn vnet_id(state: &State, rg: &str, vnet: &str) -> String {
    resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "virtualNetworks",
        vnet,
    )
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
    let id = format!("{}/subnets/{name}", vnet_id(state, rg, vnet));
    let v = state
        .store
        .get(&id)
        .ok_or_else(|| not_found(SUBNET_TYPE, &format!("{vnet}/subnets/{name}"), rg))?;
    Ok(Reply::json(200, render(&state.store, v)).with_etag_header())
}

pub(crate) fn subnets(
    state: &mut State,
    req: &Req,
    rg: &str,
    vnet: &str,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let id = vnet_id(state, rg, vnet);
    if state.store.get(&id).is_none() {
        return Err(not_found(VNET_TYPE, vnet, rg));
    }
    let items: Vec<Value> = state
        .store
        .children_of(&id)
        .iter()
        .filter_map(|k| state.store.get(k))
        .map(|v| render(&state.store, v))
        .collect();
    paging::page(state, req, items)
}
