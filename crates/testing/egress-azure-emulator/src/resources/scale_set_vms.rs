//! Scale-set instances: LIST, GET, PUT/PATCH (the instance's own network configuration, merged
//! as Compute does; NICs and public IPs follow), and GET of an instance NIC.

use super::common::{check_preconditions, list_reply, not_found};
use super::instance_nics::{self, NIC_TYPE};
use super::method_not_allowed;
use super::render::render;
use super::scale_sets::{VMSS_TYPE, next_etag, refresh_latest_model};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{COMPUTE, key, resource_id};
use crate::lro::{self, LroKind, LroStyle};
use crate::state::State;
use crate::store::{id_of, merge};
use serde_json::{Value, json};

/// ARM type of scale-set instances.
pub(crate) const INSTANCE_TYPE: &str = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines";

/// A new instance of `vmss` with the model's network configuration.
pub(crate) fn instance_value(vmss: &Value, instance: u32, computer_name: &str) -> Value {
    let vmss_name = vmss["name"].as_str().unwrap_or_default();
    json!({
        "id": format!("{}/virtualMachines/{instance}", id_of(vmss)),
        "name": format!("{vmss_name}_{instance}"),
        "type": INSTANCE_TYPE,
        "location": vmss["location"],
        "tags": vmss["tags"],
        "instanceId": instance.to_string(),
        "etag": "\"1\"",
        "sku": {"name": vmss["sku"]["name"], "tier": "Standard"},
        "properties": {
            "latestModelApplied": true,
            "provisioningState": "Succeeded",
            "vmId": uuid::Uuid::new_v4().to_string(),
            "hardwareProfile": {"vmSize": vmss["sku"]["name"]},
            "osProfile": {"computerName": computer_name, "adminUsername": "azureuser"},
            "networkProfileConfiguration": {
                "networkInterfaceConfigurations": vmss.pointer("/properties/virtualMachineProfile/networkProfile/networkInterfaceConfigurations").cloned().unwrap_or_else(|| json!([]))
            },
            "networkProfile": {"networkInterfaces": []},
        }
    })
}

fn vmss_id(state: &State, rg: &str, vmss: &str) -> String {
    resource_id(
        &state.settings.subscription,
        rg,
        COMPUTE,
        "virtualMachineScaleSets",
        vmss,
    )
}

fn instance_not_found(vmss: &str, inst: &str, rg: &str) -> ArmError {
    not_found(
        &format!("{VMSS_TYPE}/virtualMachines"),
        &format!("{vmss}/{inst}"),
        rg,
    )
}

pub(crate) fn list(state: &mut State, req: &Req, rg: &str, vmss: &str) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let id = vmss_id(state, rg, vmss);
    if state.store.get(&id).is_none() {
        return Err(not_found(VMSS_TYPE, vmss, rg));
    }
    let prefix = format!("{}/virtualmachines/", key(&id));
    let mut items: Vec<Value> = state
        .store
        .of_type(INSTANCE_TYPE)
        .filter(|v| key(id_of(v)).starts_with(&prefix))
        .cloned()
        .collect();
    items.sort_by_key(|v| {
        v["instanceId"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    Ok(list_reply(items))
}

pub(crate) fn handle(
    state: &mut State,
    req: &Req,
    rg: &str,
    vmss: &str,
    inst: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{}/virtualMachines/{inst}", vmss_id(state, rg, vmss));
    let existing = state
        .store
        .get(&id)
        .cloned()
        .ok_or_else(|| instance_not_found(vmss, inst, rg))?;
    match req.method.as_str() {
        "GET" => Ok(Reply::json(200, existing).with_etag_header()),
        "PUT" | "PATCH" => update(state, req, existing, op, &vmss_id(state, rg, vmss)),
        _ => Err(method_not_allowed(req)),
    }
}

fn update(
    state: &mut State,
    req: &Req,
    existing: Value,
    op: &str,
    vmss_id: &str,
) -> Result<Reply, ArmError> {
    check_preconditions(req, Some(&existing))?;
    let mut body = req.json_object()?;
    if let Some(o) = body.as_object_mut() {
        for ro in ["id", "name", "type", "etag", "instanceId"] {
            o.remove(ro);
        }
        if let Some(p) = o.get_mut("properties").and_then(Value::as_object_mut) {
            for ro in [
                "provisioningState",
                "latestModelApplied",
                "vmId",
                "networkProfile",
                "osProfile",
            ] {
                p.remove(ro);
            }
        }
    }
    let id = id_of(&existing).to_owned();
    super::common::location_for(&body, Some(&existing), &id)?;
    let mut v = existing.clone();
    merge(&mut v, &body);
    let nics = v
        .pointer("/properties/networkProfileConfiguration/networkInterfaceConfigurations")
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
    refresh_latest_model(state, vmss_id);
    let headers = lro::begin(
        state,
        req,
        plan,
        LroKind::Put,
        LroStyle::Location,
        COMPUTE,
        targets,
    );
    let mut reply = Reply::empty(202);
    reply.headers.extend(headers);
    Ok(reply)
}

/// `GET .../virtualMachines/{i}/networkInterfaces/{nic}` (the Network provider's VMSS NIC API).
pub(crate) fn get_nic(
    state: &mut State,
    req: &Req,
    rg: &str,
    vmss: &str,
    inst: &str,
    nic: &str,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let id = format!(
        "{}/virtualMachines/{inst}/networkInterfaces/{nic}",
        vmss_id(state, rg, vmss)
    );
    let v = state
        .store
        .get(&id)
        .ok_or_else(|| not_found(NIC_TYPE, &format!("{vmss}/{inst}/{nic}"), rg))?;
    Ok(Reply::json(200, render(&state.store, v)).with_etag_header())
}
