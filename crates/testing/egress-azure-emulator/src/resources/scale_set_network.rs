//! The Network provider's read APIs for scale-set NICs, their ipConfigurations and public IPs
//! (`.../virtualMachineScaleSets/{vmss}[/virtualMachines/{i}]/networkInterfaces...`): GET and
//! paged lists of what `instance_nics` materialised.

use super::common::not_found;
use super::instance_nics::NIC_TYPE;
use super::method_not_allowed;
use super::public_ip_addresses::PIP_TYPE;
use super::render::render;
use super::scale_set_model::scale_set;
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::key;
use crate::paging;
use crate::router::VmssNetwork;
use crate::state::State;
use crate::store::id_of;
use serde_json::Value;

pub(crate) fn handle(
    state: &mut State,
    req: &Req,
    rg: &str,
    n: &VmssNetwork,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let vmss_name = match n {
        VmssNetwork::Nics { vmss }
        | VmssNetwork::VmNics { vmss, .. }
        | VmssNetwork::Nic { vmss, .. }
        | VmssNetwork::IpConfigs { vmss, .. }
        | VmssNetwork::IpConfig { vmss, .. }
        | VmssNetwork::Pips { vmss }
        | VmssNetwork::VmPips { vmss, .. }
        | VmssNetwork::Pip { vmss, .. } => vmss,
    };
    let vmss = id_of(scale_set(state, rg, vmss_name)?).to_owned();
    let vm = |i: &str| format!("{vmss}/virtualMachines/{i}");
    let nic = |i: &str, n: &str| format!("{}/networkInterfaces/{n}", vm(i));
    let ipc = |i: &str, n: &str, c: &str| format!("{}/ipConfigurations/{c}", nic(i, n));
    match n {
        VmssNetwork::Nics { .. } => {
            list(state, req, NIC_TYPE, &format!("{vmss}/virtualMachines/"), 2)
        }
        VmssNetwork::VmNics { vm: i, .. } => list(
            state,
            req,
            NIC_TYPE,
            &format!("{}/networkInterfaces/", vm(i)),
            0,
        ),
        VmssNetwork::Nic { vm: i, nic: n, .. } => get(state, &nic(i, n), NIC_TYPE, rg),
        VmssNetwork::IpConfigs { vm: i, nic: n, .. } => {
            let v = stored(state, &nic(i, n), NIC_TYPE, rg)?;
            let items = v
                .pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            paging::page(state, req, items)
        }
        VmssNetwork::IpConfig {
            vm: i,
            nic: n,
            ipc: c,
            ..
        } => {
            let v = stored(state, &nic(i, n), NIC_TYPE, rg)?;
            let want = key(&ipc(i, n, c));
            v.pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|x| key(id_of(x)) == want)
                .map(|x| Reply::json(200, x.clone()).with_etag_header())
                .ok_or_else(|| {
                    not_found(
                        "Microsoft.Network/networkInterfaces/ipConfigurations",
                        c,
                        rg,
                    )
                })
        }
        VmssNetwork::Pips { .. } => {
            list(state, req, PIP_TYPE, &format!("{vmss}/virtualMachines/"), 6)
        }
        VmssNetwork::VmPips {
            vm: i,
            nic: n,
            ipc: c,
            ..
        } => list(
            state,
            req,
            PIP_TYPE,
            &format!("{}/publicIPAddresses/", ipc(i, n, c)),
            0,
        ),
        VmssNetwork::Pip {
            vm: i,
            nic: n,
            ipc: c,
            pip,
            ..
        } => get(
            state,
            &format!("{}/publicIPAddresses/{pip}", ipc(i, n, c)),
            PIP_TYPE,
            rg,
        ),
    }
}

fn stored<'a>(state: &'a State, id: &str, arm_type: &str, rg: &str) -> Result<&'a Value, ArmError> {
    let name = id.rsplit('/').next().unwrap_or(id);
    state
        .store
        .get(id)
        .ok_or_else(|| not_found(arm_type, name, rg))
}

fn get(state: &State, id: &str, arm_type: &str, rg: &str) -> Result<Reply, ArmError> {
    let v = stored(state, id, arm_type, rg)?;
    Ok(Reply::json(200, render(&state.store, v)).with_etag_header())
}

/// Resources of `arm_type` whose ID is `prefix` followed by exactly `slashes` more `/`
/// (`{i}/networkInterfaces/{nic}` below `.../virtualMachines/` has 2).
fn list(
    state: &State,
    req: &Req,
    arm_type: &str,
    prefix: &str,
    slashes: usize,
) -> Result<Reply, ArmError> {
    let prefix = prefix.to_ascii_lowercase();
    let items: Vec<Value> = state
        .store
        .of_type(arm_type)
        .filter(|v| {
            let k = key(id_of(v));
            k.strip_prefix(&prefix)
                .is_some_and(|rest| rest.matches('/').count() == slashes)
        })
        .map(|v| render(&state.store, v))
        .collect();
    paging::page(state, req, items)
}
