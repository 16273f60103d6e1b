//! Virtual machine scale sets: PUT (create, or update merged into the stored model) and PATCH
//! (merged, as Compute does for partial bodies), `sku.capacity` changes that add or remove
//! instances, and `manualupgrade`, which applies the model to instances. Changing the model
//! never changes existing instances by itself (upgrade policy Manual).

use super::common::{check_preconditions, location_for};
use super::instance_nics;
use super::network_interfaces::IPV6_IPCONFIG;
use super::scale_set_model::{
    MODEL_NICS, VMSS_TYPE, computer_name, instance_keys, instance_value, next_etag,
    refresh_latest_model, scale_set, vmss_id,
};
use super::top_level::{Resolved, write_reply};
use crate::error::{ArmError, EmulatorError};
use crate::http::{Reply, Req};
use crate::ids::key;
use crate::lro;
use crate::schema;
use crate::seed::SeedScaleSet;
use crate::state::State;
use crate::store::{id_of, merge};
use serde_json::{Value, json};

/// Most instances one scale set may have (Azure's limit for a single placement group off).
const MAX_CAPACITY: u64 = 1000;

fn invalid(target: &str, message: String) -> ArmError {
    ArmError::bad_request("InvalidParameter", message).with_target(target)
}

/// `VirtualMachineScaleSets.CreateOrUpdate`.
pub(crate) fn put(state: &mut State, req: &Req, r: &Resolved, op: &str) -> Result<Reply, ArmError> {
    match r.existing.clone() {
        Some(existing) => update(state, req, existing, op),
        None => create(state, req, r, op),
    }
}

/// `VirtualMachineScaleSets.Update` (PATCH).
pub(crate) fn patch(
    state: &mut State,
    req: &Req,
    r: &Resolved,
    op: &str,
) -> Result<Reply, ArmError> {
    let existing = r
        .existing
        .clone()
        .ok_or_else(|| super::common::not_found(VMSS_TYPE, &r.name, &r.rg))?;
    update(state, req, existing, op)
}

fn request_body(req: &Req) -> Result<Value, ArmError> {
    let mut body = req.json_object()?;
    schema::prune_request(VMSS_TYPE, &mut body);
    Ok(body)
}

fn create(state: &mut State, req: &Req, r: &Resolved, op: &str) -> Result<Reply, ArmError> {
    check_preconditions(req, None)?;
    let body = request_body(req)?;
    let location = location_for(&body, None, &r.id)?;
    let nics = body.pointer(MODEL_NICS).cloned().ok_or_else(|| {
        invalid(
            "virtualMachineProfile.networkProfile",
            "Required parameter 'networkProfile.networkInterfaceConfigurations' is missing (null)."
                .into(),
        )
    })?;
    instance_nics::validate(state, &nics, &r.id)?;
    let mut v = json!({
        "id": r.id, "name": r.name, "type": VMSS_TYPE, "location": location, "etag": "\"1\"",
        "tags": {}, "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": 0},
        "properties": {
            "uniqueId": uuid::Uuid::new_v4().to_string(),
            "orchestrationMode": "Uniform",
            "upgradePolicy": {"mode": "Manual"},
            "timeCreated": jiff::Timestamp::now().to_string(),
        }
    });
    merge(&mut v, &body);
    v["properties"]["provisioningState"] = json!("Updating");
    let plan = lro::plan(state, req, op);
    state.store.put(v);
    let mut targets = vec![key(&r.id)];
    targets.extend(scale(state, &r.id, "Updating")?);
    Ok(write_reply(state, req, op, plan, targets, true))
}

fn update(state: &mut State, req: &Req, existing: Value, op: &str) -> Result<Reply, ArmError> {
    check_preconditions(req, Some(&existing))?;
    let body = request_body(req)?;
    let id = id_of(&existing).to_owned();
    location_for(&body, Some(&existing), &id)?;
    let mut v = existing.clone();
    merge(&mut v, &body);
    if let Some(tags) = body.get("tags") {
        // Tags are one value in ARM: a write replaces them, never merges key by key.
        v["tags"] = tags.clone();
    }
    let nics = v.pointer(MODEL_NICS).cloned().unwrap_or_else(|| json!([]));
    instance_nics::validate(state, &nics, &id)?;
    capacity(&v)?;
    v["etag"] = json!(next_etag(&existing));
    v["properties"]["provisioningState"] = json!("Updating");
    let plan = lro::plan(state, req, op);
    state.store.put(v);
    let mut targets = vec![key(&id)];
    targets.extend(scale(state, &id, "Updating")?);
    refresh_latest_model(state, &id);
    Ok(write_reply(state, req, op, plan, targets, false))
}

fn capacity(v: &Value) -> Result<u64, ArmError> {
    match v.pointer("/sku/capacity") {
        None => Ok(0),
        Some(c) => c
            .as_u64()
            .filter(|c| *c <= MAX_CAPACITY)
            .ok_or_else(|| {
                invalid(
                    "sku.capacity",
                    format!("The value {c} of parameter 'sku.capacity' is not valid: it must be a whole number from 0 to {MAX_CAPACITY}."),
                )
            }),
    }
}

/// Makes the number of instances equal `sku.capacity`: new instances (next free IDs) take the
/// model; scale-in removes the highest instance IDs (Azure's default scale-in policy without
/// zones) with their NICs and public IPs. Returns the keys of what it wrote.
fn scale(state: &mut State, vmss_id: &str, provisioning: &str) -> Result<Vec<String>, ArmError> {
    let Some(vmss) = state.store.get(vmss_id).cloned() else {
        return Ok(Vec::new());
    };
    let want = usize::try_from(capacity(&vmss)?).unwrap_or(usize::MAX);
    let have = instance_keys(state, vmss_id);
    let mut written = Vec::new();
    for k in have.iter().skip(want) {
        for child in state.store.children_of(k) {
            state.store.remove(&child);
        }
        state.store.remove(k);
    }
    let prefix = vmss
        .pointer("/properties/virtualMachineProfile/osProfile/computerNamePrefix")
        .and_then(Value::as_str)
        .unwrap_or_else(|| vmss["name"].as_str().unwrap_or_default())
        .to_owned();
    let first = have
        .last()
        .and_then(|k| k.rsplit('/').next())
        .and_then(|i| i.parse::<u32>().ok())
        .map_or(0, |i| i + 1);
    let missing = u32::try_from(want.saturating_sub(have.len())).unwrap_or(u32::MAX);
    for next in first..first.saturating_add(missing) {
        let mut inst = instance_value(&vmss, next, &computer_name(&prefix, next));
        inst["properties"]["provisioningState"] = json!(provisioning);
        let inst_id = id_of(&inst).to_owned();
        let m = instance_nics::materialise(state, &inst, provisioning)?;
        written.push(key(&inst_id));
        written.extend(m.keys());
        state.store.put(inst);
        instance_nics::commit(state, &inst_id, m);
    }
    Ok(written)
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
        return Err(super::method_not_allowed(req));
    }
    let vmss = scale_set(state, rg, name)?.clone();
    let id = id_of(&vmss).to_owned();
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
        return Err(invalid(
            "instanceIds",
            "instanceIds must list at least one instance.".into(),
        ));
    }
    let model = vmss
        .pointer(MODEL_NICS)
        .cloned()
        .unwrap_or_else(|| json!([]));
    let mut instances = Vec::new();
    for iid in &ids {
        let inst = state
            .store
            .get(&format!("{id}/virtualMachines/{iid}"))
            .cloned()
            .ok_or_else(|| {
                invalid(
                    "instanceIds",
                    format!("Instance '{iid}' does not exist in scale set '{name}'."),
                )
            })?;
        instances.push(inst);
    }
    let plan = lro::plan(state, req, op);
    let mut targets = Vec::new();
    for mut inst in instances {
        let inst_id = id_of(&inst).to_owned();
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
    Ok(write_reply(state, req, op, plan, targets, false))
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
    let mut ipcs = vec![json!({
        "name": "ipconfig1",
        "properties": {"primary": true, "privateIPAddressVersion": "IPv4", "subnet": {"id": subnet}}
    })];
    if s.dual_stack {
        ipcs.push(json!({
            "name": IPV6_IPCONFIG,
            "properties": {"primary": false, "privateIPAddressVersion": "IPv6", "subnet": {"id": subnet}}
        }));
    }
    let model = json!([{
        "name": nic,
        "properties": {"primary": true, "enableIPForwarding": true, "ipConfigurations": ipcs}
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
    state.store.put(vmss);
    scale(state, &id, "Succeeded")
        .map_err(|e| EmulatorError::InvalidSeed(format!("scale set {}: {}", s.name, e.message)))?;
    Ok(())
}
