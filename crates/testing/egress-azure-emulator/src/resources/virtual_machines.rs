//! Standalone virtual machines (AKS VirtualMachines pools): the instance view (GET and lists
//! are `top_level`'s). They come from the seed; their NICs are standalone NICs.

use super::common::not_found;
use super::method_not_allowed;
use super::network_interfaces::seed_nic;
use crate::error::{ArmError, EmulatorError};
use crate::http::{Reply, Req};
use crate::ids::{COMPUTE, NETWORK, resource_id};
use crate::seed::SeedVirtualMachine;
use crate::state::State;
use serde_json::{Value, json};

/// ARM type of VMs.
pub(crate) const VM_TYPE: &str = "Microsoft.Compute/virtualMachines";

/// `.../virtualMachines/{name}/instanceView`.
pub(crate) fn instance_view(
    state: &mut State,
    req: &Req,
    rg: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    if req.method != "GET" {
        return Err(method_not_allowed(req));
    }
    let id = resource_id(
        &state.settings.subscription,
        rg,
        COMPUTE,
        "virtualMachines",
        name,
    );
    let vm = state
        .store
        .get(&id)
        .ok_or_else(|| not_found(VM_TYPE, name, rg))?;
    Ok(Reply::json(200, super::instance_view::of(vm)))
}

/// Creates a VM from the seed and attaches its NICs.
pub(crate) fn seed_vm(
    state: &mut State,
    rg: &str,
    vm: &SeedVirtualMachine,
    subnet: Option<&str>,
) -> Result<(), EmulatorError> {
    let id = resource_id(
        &state.settings.subscription,
        rg,
        COMPUTE,
        "virtualMachines",
        &vm.name,
    );
    let mut nic_ids = Vec::new();
    if vm.network_interfaces.is_empty() {
        let subnet = subnet.unwrap_or_default();
        nic_ids.push(seed_nic(
            state,
            rg,
            &format!("{}-nic", vm.name),
            subnet,
            None,
            vm.dual_stack,
            json!({}),
        )?);
    }
    for n in &vm.network_interfaces {
        let nic_id = resource_id(
            &state.settings.subscription,
            rg,
            NETWORK,
            "networkInterfaces",
            n,
        );
        if state.store.get(&nic_id).is_none() {
            return Err(EmulatorError::InvalidSeed(format!(
                "virtual machine {}: network interface {n} is not defined in networkInterfaces (resource group {rg})",
                vm.name
            )));
        }
        nic_ids.push(nic_id);
    }
    for (i, nic_id) in nic_ids.iter().enumerate() {
        if let Some(nic) = state.store.get_mut(nic_id) {
            if nic.pointer("/properties/virtualMachine").is_some() {
                return Err(EmulatorError::InvalidSeed(format!(
                    "virtual machine {}: network interface {nic_id} is already attached to another VM",
                    vm.name
                )));
            }
            nic["properties"]["virtualMachine"] = json!({ "id": id });
            nic["properties"]["primary"] = json!(i == 0);
        }
    }
    let refs: Vec<Value> = nic_ids
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": n, "properties": {"primary": i == 0}}))
        .collect();
    state.store.put(json!({
        "id": id, "name": vm.name, "type": VM_TYPE, "location": state.settings.location,
        "tags": vm.tags,
        "properties": {
            "vmId": uuid::Uuid::new_v4().to_string(),
            "hardwareProfile": {"vmSize": vm.vm_size},
            "osProfile": {"computerName": vm.computer_name.clone().unwrap_or_else(|| vm.name.clone()), "adminUsername": "azureuser"},
            "networkProfile": {"networkInterfaces": refs},
            "provisioningState": "Succeeded",
        }
    }));
    Ok(())
}
