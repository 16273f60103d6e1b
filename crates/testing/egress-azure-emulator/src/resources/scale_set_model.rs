//! What the scale-set and instance handlers share: types and IDs, Compute ETags, a new
//! instance from the model, AKS computer names, instance lookup, and `latestModelApplied`.
//! Both `scale_sets` and `scale_set_vms` import from here, never from each other.

use super::common::not_found;
use super::instance_nics::canonical;
use crate::error::ArmError;
use crate::ids::{COMPUTE, key, resource_id};
use crate::state::State;
use crate::store::id_of;
use serde_json::{Value, json};

/// ARM type of scale sets.
pub(crate) const VMSS_TYPE: &str = "Microsoft.Compute/virtualMachineScaleSets";
/// ARM type of scale-set instances.
pub(crate) const INSTANCE_TYPE: &str = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines";
/// Where the model keeps its NIC configurations.
pub(crate) const MODEL_NICS: &str =
    "/properties/virtualMachineProfile/networkProfile/networkInterfaceConfigurations";
/// Where an instance keeps its own NIC configurations.
pub(crate) const INSTANCE_NICS: &str =
    "/properties/networkProfileConfiguration/networkInterfaceConfigurations";

/// Compute ETags are quoted counters.
pub(crate) fn next_etag(v: &Value) -> String {
    let n: u64 = v
        .get("etag")
        .and_then(Value::as_str)
        .and_then(|e| e.trim_matches('"').parse().ok())
        .unwrap_or(0);
    format!("\"{}\"", n + 1)
}

/// ID of a scale set.
pub(crate) fn vmss_id(state: &State, rg: &str, name: &str) -> String {
    resource_id(
        &state.settings.subscription,
        rg,
        COMPUTE,
        "virtualMachineScaleSets",
        name,
    )
}

/// The stored scale set, or `ResourceNotFound`.
pub(crate) fn scale_set<'a>(state: &'a State, rg: &str, name: &str) -> Result<&'a Value, ArmError> {
    state
        .store
        .get(&vmss_id(state, rg, name))
        .ok_or_else(|| not_found(VMSS_TYPE, name, rg))
}

/// ARM's not-found for an instance.
pub(crate) fn instance_not_found(vmss: &str, inst: &str, rg: &str) -> ArmError {
    not_found(
        &format!("{VMSS_TYPE}/virtualMachines"),
        &format!("{vmss}/{inst}"),
        rg,
    )
}

/// Keys of the instances of a scale set, ordered by instance ID.
pub(crate) fn instance_keys(state: &State, vmss_id: &str) -> Vec<String> {
    let prefix = format!("{}/virtualmachines/", key(vmss_id));
    let mut found: Vec<(u64, String)> = state
        .store
        .of_type(INSTANCE_TYPE)
        .map(|v| key(id_of(v)))
        .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
        .map(|k| (k[prefix.len()..].parse().unwrap_or(u64::MAX), k))
        .collect();
    found.sort();
    found.into_iter().map(|(_, k)| k).collect()
}

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
                "networkInterfaceConfigurations": vmss.pointer(MODEL_NICS).cloned().unwrap_or_else(|| json!([]))
            },
            "networkProfile": {"networkInterfaces": []},
        }
    })
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

/// Instances whose network configuration equals the model's have the latest model.
pub(crate) fn refresh_latest_model(state: &mut State, vmss_id: &str) {
    let model = state
        .store
        .get(vmss_id)
        .and_then(|v| v.pointer(MODEL_NICS))
        .map(canonical);
    for k in instance_keys(state, vmss_id) {
        if let Some(inst) = state.store.get_mut(&k) {
            let mine = inst.pointer(INSTANCE_NICS).map(canonical);
            inst["properties"]["latestModelApplied"] = json!(mine == model);
        }
    }
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

    #[test]
    fn compute_etags_count_up() {
        assert_eq!(next_etag(&json!({"etag": "\"7\""})), "\"8\"");
        assert_eq!(next_etag(&json!({})), "\"1\"");
    }
}
