//! Virtual machine scale sets: LIST in a resource group, GET, PUT/PATCH of the model (merged
//! into the stored model, as Compute does for partial bodies), and `manualupgrade`, which applies
//! the model to instances. Changing the model never changes instances by itself.

use super::common::{check_preconditions, list_reply, not_found};
use super::instance_nics::{self, canonical};
use super::method_not_allowed;
use super::scale_set_vms::{INSTANCE_TYPE, instance_value};
use crate::error::{ArmError, EmulatorError};
use crate::http::{Reply, Req};
use crate::ids::{COMPUTE, key, resource_id};
use crate::lro::{self, LroKind, LroStyle};
use crate::seed::SeedScaleSet;
use crate::state::State;
use crate::store::{id_of, merge};
use serde_json::{Value, json};

/// ARM type of scale sets.
pub(crate) const VMSS_TYPE: &str = "Microsoft.Compute/virtualMachineScaleSets";

const MODEL_NICS: &str =
    "/properties/virtualMachineProfile/networkProfile/networkInterfaceConfigurations";

/// Compute ETags are quoted counters.
pub(crate) fn next_etag(v: &Value) -> String {
    let n: u64 = v
        .get("etag")
        .and_then(Value::as_str)
        .and_then(|e| e.trim_matches('"').parse().ok())
        .unwrap_or(0);
    format!("\"{}\"", n + 1)
}

fn vmss_id(state: &State, rg: &str, name: &str) -> String {
    resource_id(
        &state.settings.subscription,
        rg,
        COMPUTE,
        "virtualMachineScaleSets",
        name,
    )
}

pub(crate) fn list(state: &mut State, req: &Req, rg: &str) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    Ok(list_reply(
        state.store.of_type_in_rg(VMSS_TYPE, rg).cloned().collect(),
    ))
}

pub(crate) fn handle(
    state: &mut State,
    req: &Req,
    rg: &str,
    name: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    let id = vmss_id(state, rg, name);
    let existing = state.store.get(&id).cloned();
    match req.method.as_str() {
        "GET" => existing
            .map(|v| Reply::json(200, v).with_etag_header())
            .ok_or_else(|| not_found(VMSS_TYPE, name, rg)),
        "PUT" | "PATCH" => {
            let existing = existing.ok_or_else(|| {
                ArmError::not_found(
                    "ResourceNotFound",
                    format!("The Resource '{VMSS_TYPE}/{name}' under resource group '{rg}' was not found. The emulator creates scale sets from its seed only."),
                )
            })?;
            update(state, req, existing, op)
        }
        _ => Err(method_not_allowed(req)),
    }
}

fn update(state: &mut State, req: &Req, existing: Value, op: &str) -> Result<Reply, ArmError> {
    check_preconditions(req, Some(&existing))?;
    let mut body = req.json_object()?;
    if let Some(o) = body.as_object_mut() {
        for ro in ["id", "name", "type", "etag"] {
            o.remove(ro);
        }
        if let Some(p) = o.get_mut("properties").and_then(Value::as_object_mut) {
            for ro in ["provisioningState", "uniqueId", "timeCreated"] {
                p.remove(ro);
            }
        }
    }
    let id = id_of(&existing).to_owned();
    super::common::location_for(&body, Some(&existing), &id)?;
    let mut v = existing.clone();
    merge(&mut v, &body);
    let nics = v.pointer(MODEL_NICS).cloned().unwrap_or_else(|| json!([]));
    instance_nics::validate(state, &nics, &id)?;
    v["etag"] = json!(next_etag(&existing));
    v["properties"]["provisioningState"] = json!("Updating");
    let plan = lro::plan(state, req, op);
    state.store.put(v);
    refresh_latest_model(state, &id);
    let headers = lro::begin(
        state,
        req,
        plan,
        LroKind::Put,
        LroStyle::Location,
        COMPUTE,
        vec![key(&id)],
    );
    let mut reply = Reply::empty(202);
    reply.headers.extend(headers);
    Ok(reply)
}

/// Instances whose network configuration equals the model's have the latest model.
pub(crate) fn refresh_latest_model(state: &mut State, vmss_id: &str) {
    let model = state
        .store
        .get(vmss_id)
        .and_then(|v| v.pointer(MODEL_NICS))
        .map(canonical);
    let prefix = format!("{}/virtualmachines/", key(vmss_id));
    let ids: Vec<String> = state
        .store
        .of_type(INSTANCE_TYPE)
        .map(|v| key(id_of(v)))
        .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
        .collect();
    for k in ids {
        if let Some(inst) = state.store.get_mut(&k) {
            let mine = inst
                .pointer("/properties/networkProfileConfiguration/networkInterfaceConfigurations")
                .map(canonical);
            inst["properties"]["latestModelApplied"] = json!(mine == model);
        }
    }
}

/// `POST .../manualupgrade {"instanceIds": [...]}`: instances take the model's network configuration.
pub(crate) fn manual_upgrade(
    state: &mut State,
    req: &Req,
    rg: &str,
    name: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    if req.method != "POST" {
        return Err(method_not_allowed(req));
    }
    let id = vmss_id(state, rg, name);
    let vmss = state
        .store
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found(VMSS_TYPE, name, rg))?;
    let body = req.json_object()?;
    let ids: Vec<String> = body
        .get("instanceIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(ArmError::bad_request(
            "InvalidParameter",
            "instanceIds must list at least one instance.",
        )
        .with_target("instanceIds"));
    }
    let model = vmss
        .pointer(MODEL_NICS)
        .cloned()
        .unwrap_or_else(|| json!([]));
    let plan = lro::plan(state, req, op);
    let mut targets = Vec::new();
    for iid in &ids {
        let inst_id = format!("{id}/virtualMachines/{iid}");
        let mut inst = state.store.get(&inst_id).cloned().ok_or_else(|| {
            ArmError::bad_request(
                "InvalidParameter",
                format!("Instance '{iid}' does not exist in scale set '{name}'."),
            )
            .with_target("instanceIds")
        })?;
        inst["properties"]["networkProfileConfiguration"] =
            json!({ "networkInterfaceConfigurations": model });
        inst["properties"]["provisioningState"] = json!("Updating");
        inst["etag"] = json!(next_etag(&inst));
        let m = instance_nics::materialise(state, &inst, "Updating")?;
        targets.push(key(&inst_id));
        targets.extend(m.keys());
        state.store.put(inst);
        instance_nics::commit(state, &inst_id, m);
    }
    refresh_latest_model(state, &id);
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

/// AKS computer names: prefix + instance ID in six base-36 digits.
pub(crate) fn computer_name(prefix: &str, instance: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = instance;
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    format!("{prefix}{}", String::from_utf8_lossy(&out))
}

/// Creates a scale set with its instances from the seed.
pub(crate) fn seed_scale_set(
    state: &mut State,
    rg: &str,
    s: &SeedScaleSet,
    subnet: &str,
) -> Result<(), EmulatorError> {
    let id = vmss_id(state, rg, &s.name);
    let nic = s.nic_name.clone().unwrap_or_else(|| s.name.clone());
    let prefix = s
        .computer_name_prefix
        .clone()
        .unwrap_or_else(|| s.name.clone());
    let model = json!([{
        "name": nic,
        "properties": {
            "primary": true,
            "enableIPForwarding": true,
            "ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {"primary": true, "privateIPAddressVersion": "IPv4", "subnet": {"id": subnet}}
            }]
        }
    }]);
    let vmss = json!({
        "id": id, "name": s.name, "type": VMSS_TYPE, "location": state.settings.location,
        "tags": s.tags, "etag": "\"1\"",
        "sku": {"name": s.vm_size, "tier": "Standard", "capacity": s.instances},
        "properties": {
            "uniqueId": s.unique_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            "provisioningState": "Succeeded",
            "orchestrationMode": "Uniform",
            "singlePlacementGroup": false,
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": prefix, "adminUsername": "azureuser",
                    "linuxConfiguration": {"disablePasswordAuthentication": true}},
                "storageProfile": {"imageReference": {"publisher": "microsoft-aks", "offer": "aks", "sku": "aks-ubuntu-2204", "version": "latest"}},
                "networkProfile": {"networkInterfaceConfigurations": model},
            }
        }
    });
    state.store.put(vmss.clone());
    for i in 0..s.instances {
        let inst = instance_value(&vmss, i, &computer_name(&prefix, i));
        let inst_id = id_of(&inst).to_owned();
        let m = instance_nics::materialise(state, &inst, "Succeeded").map_err(|e| {
            EmulatorError::InvalidSeed(format!("scale set {}: {}", s.name, e.message))
        })?;
        state.store.put(inst);
        instance_nics::commit(state, &inst_id, m);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn computer_names_use_six_base36_digits() {
        assert_eq!(computer_name("gw-vmss", 0), "gw-vmss000000");
        assert_eq!(computer_name("gw-vmss", 37), "gw-vmss000011");
    }
}
