//! Scale-set network configurations: validation of `networkInterfaceConfigurations` (model and
//! instances) and materialisation of an instance's configuration into NIC and public IP resources
//! (private IPs kept while an ipConfiguration keeps its subnet, prefix IPs kept while it keeps
//! its prefix; everything else allocated, and removed resources free their addresses).

use super::common::{exists, invalid_reference, ref_at};
use super::ip_version::{
    IpVersion, check_primary, check_public_matches_config, check_public_matches_prefix,
    subnet_range,
};
use super::public_ip_addresses::{PIP_TYPE, check_sku_and_timeout, prefix_range};
use crate::error::ArmError;
use crate::ids::key;
use crate::state::State;
use crate::store::{id_of, new_etag};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// ARM type of NICs.
pub(crate) const NIC_TYPE: &str = "Microsoft.Network/networkInterfaces";
/// ARM type of NIC ipConfigurations.
pub(crate) const IPCONFIG_TYPE: &str = "Microsoft.Network/networkInterfaces/ipConfigurations";

fn invalid_parameter(target: &str, message: String) -> ArmError {
    ArmError::bad_request("InvalidParameter", message).with_target(target)
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn one_primary(items: &[Value], what: &str, target: &str) -> Result<(), ArmError> {
    let primaries = items
        .iter()
        .filter(|i| i.pointer("/properties/primary").and_then(Value::as_bool) == Some(true))
        .count();
    if items.len() > 1 && primaries != 1 {
        return Err(invalid_parameter(
            target,
            format!(
                "Exactly one {what} must be marked primary when there are several; found {primaries} of {}.",
                items.len()
            ),
        ));
    }
    Ok(())
}

/// Validates `networkInterfaceConfigurations` (model or instance) against the store.
pub(crate) fn validate(state: &State, configs: &Value, owner: &str) -> Result<(), ArmError> {
    let target = "networkProfile.networkInterfaceConfigurations";
    let Some(list) = configs.as_array() else {
        return Err(invalid_parameter(
            target,
            "networkInterfaceConfigurations must be an array.".into(),
        ));
    };
    one_primary(list, "network interface configuration", target)?;
    let mut names = BTreeSet::new();
    for cfg in list {
        let name = cfg.get("name").and_then(Value::as_str).ok_or_else(|| {
            invalid_parameter(
                target,
                "A network interface configuration has no name.".into(),
            )
        })?;
        if !names.insert(name.to_ascii_lowercase()) {
            return Err(invalid_parameter(
                target,
                format!("Network interface configuration name '{name}' is used twice."),
            ));
        }
        let ipcs = arr(cfg, "/properties/ipConfigurations");
        if ipcs.is_empty() {
            return Err(invalid_parameter(
                target,
                format!("Network interface configuration '{name}' has no ipConfigurations."),
            ));
        }
        one_primary(ipcs, "IP configuration", target)?;
        let mut ipc_names = BTreeSet::new();
        for ipc in ipcs {
            let ipc_name = ipc.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid_parameter(
                    target,
                    format!("An IP configuration of '{name}' has no name."),
                )
            })?;
            if !ipc_names.insert(ipc_name.to_ascii_lowercase()) {
                return Err(invalid_parameter(
                    target,
                    format!("IP configuration name '{ipc_name}' is used twice in '{name}'."),
                ));
            }
            let by = format!(
                "{owner}/networkInterfaceConfigurations/{name}/ipConfigurations/{ipc_name}"
            );
            let subnet = ref_at(ipc, "/properties/subnet/id").ok_or_else(|| {
                invalid_parameter(
                    target,
                    format!("IP configuration '{ipc_name}' of '{name}' has no subnet."),
                )
            })?;
            let version = IpVersion::at(ipc, "/properties/privateIPAddressVersion")?;
            let primary = ipcs.len() == 1
                || ipc.pointer("/properties/primary").and_then(Value::as_bool) == Some(true);
            check_primary(version, primary, &by)?;
            subnet_range(&state.store, &subnet, &by, version)?;
            if let Some(pcfg) = ipc.pointer("/properties/publicIPAddressConfiguration") {
                let pip_version = IpVersion::at(pcfg, "/properties/publicIPAddressVersion")?;
                let pip_by = format!("{by}/publicIPAddressConfiguration");
                check_public_matches_config(pip_version, &pip_by, version, &by)?;
                if let Some(prefix) = ref_at(pcfg, "/properties/publicIPPrefix/id") {
                    let (pid, net) = prefix_range(state, &prefix, &by)?;
                    check_public_matches_prefix(pip_version, &pip_by, net, &pid)?;
                }
                if pcfg.get("name").and_then(Value::as_str).is_none() {
                    return Err(invalid_parameter(
                        target,
                        format!("publicIPAddressConfiguration of '{ipc_name}' has no name."),
                    ));
                }
                // Without a SKU a scale-set public IP takes its prefix's (Standard); only an
                // explicit Basic is refused (the original operator sends none, in production).
                let sku = pcfg
                    .get("sku")
                    .cloned()
                    .unwrap_or_else(|| json!({"name": "Standard"}));
                check_sku_and_timeout(Some(&sku), &pcfg["properties"], &by)?;
            }
            for pool in arr(ipc, "/properties/loadBalancerBackendAddressPools") {
                let pid = pool.get("id").and_then(Value::as_str).unwrap_or_default();
                if !exists(&state.store, pid) {
                    return Err(invalid_reference(pid, &by));
                }
            }
        }
    }
    Ok(())
}

/// A stable-looking Azure MAC address.
pub(crate) fn new_mac() -> String {
    let b: Vec<String> = (0..3)
        .map(|_| format!("{:02X}", fastrand::u8(..)))
        .collect();
    format!("00-0D-3A-{}", b.join("-"))
}

/// The result of materialising one instance: resources to store and keys to remove.
#[derive(Debug, Default)]
pub(crate) struct Materialised {
    pub put: Vec<Value>,
    pub remove: Vec<String>,
    pub nic_refs: Vec<Value>,
}

impl Materialised {
    /// Keys of every stored resource it writes (LRO targets).
    pub fn keys(&self) -> Vec<String> {
        self.put.iter().map(|v| key(id_of(v))).collect()
    }
}

/// Computes the NICs and public IPs of a scale-set instance from its network configuration.
/// Nothing is changed until [`commit`].
pub(crate) fn materialise(
    state: &mut State,
    inst: &Value,
    provisioning: &str,
) -> Result<Materialised, ArmError> {
    let inst_id = id_of(inst).to_owned();
    let location = inst["location"].as_str().unwrap_or_default().to_owned();
    let configs = arr(
        inst,
        "/properties/networkProfileConfiguration/networkInterfaceConfigurations",
    )
    .to_vec();
    let mut out = Materialised::default();
    let mut pending_private: BTreeSet<IpAddr> = BTreeSet::new();
    let mut pending_public: BTreeSet<IpAddr> = BTreeSet::new();
    let old_children: Vec<String> = state.store.children_of(&inst_id);
    let mut keep: BTreeSet<String> = BTreeSet::new();
    for cfg in &configs {
        let nic_name = cfg["name"].as_str().unwrap_or_default();
        let nic_id = format!("{inst_id}/networkInterfaces/{nic_name}");
        keep.insert(key(&nic_id));
        let old_nic = state.store.get(&nic_id).cloned();
        let old_ipcs: BTreeMap<String, Value> = old_nic
            .as_ref()
            .map(|n| arr(n, "/properties/ipConfigurations").to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| Some((c.get("name")?.as_str()?.to_ascii_lowercase(), c)))
            .collect();
        let etag = new_etag();
        let mut ipconfigs = Vec::new();
        let ipcs = arr(cfg, "/properties/ipConfigurations").to_vec();
        // Kept addresses first, so new allocations in this request avoid them.
        let mut kept: Vec<Option<String>> = Vec::new();
        for ipc in &ipcs {
            let name = ipc["name"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let subnet = ref_at(ipc, "/properties/subnet/id").map(|s| key(&s));
            let version = ipc
                .pointer("/properties/privateIPAddressVersion")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            // An address is kept while the ipConfiguration keeps its subnet and version.
            let old = old_ipcs.get(&name).and_then(|o| {
                let same_subnet = ref_at(o, "/properties/subnet/id").map(|s| key(&s)) == subnet;
                let old_version = o
                    .pointer("/properties/privateIPAddressVersion")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase);
                let same_version = old_version.as_deref().unwrap_or("ipv4")
                    == version.as_deref().unwrap_or("ipv4");
                (same_subnet && same_version)
                    .then(|| ref_at(o, "/properties/privateIPAddress"))
                    .flatten()
            });
            if let Some(a) = old.as_deref().and_then(|a| a.parse().ok()) {
                pending_private.insert(a);
            }
            kept.push(old);
        }
        for (ipc, old_ip) in ipcs.iter().zip(kept) {
            let ipc_name = ipc["name"].as_str().unwrap_or_default();
            let ipc_id = format!("{nic_id}/ipConfigurations/{ipc_name}");
            let subnet_ref = ref_at(ipc, "/properties/subnet/id").unwrap_or_default();
            let version = IpVersion::at(ipc, "/properties/privateIPAddressVersion")?;
            let (subnet_id, net) = subnet_range(&state.store, &subnet_ref, &ipc_id, version)?;
            let ip = match old_ip {
                Some(ip) => ip,
                None => {
                    let a = state.ipam.allocate_private(
                        &state.store,
                        &subnet_id,
                        net,
                        &nic_id,
                        &pending_private,
                    )?;
                    pending_private.insert(a);
                    a.to_string()
                }
            };
            let mut props = json!({
                "primary": ipc.pointer("/properties/primary").and_then(Value::as_bool).unwrap_or(ipcs.len() == 1),
                "privateIPAddress": ip,
                "privateIPAllocationMethod": "Dynamic",
                "privateIPAddressVersion": version.as_str(),
                "subnet": {"id": subnet_id},
                "loadBalancerBackendAddressPools": arr(ipc, "/properties/loadBalancerBackendAddressPools"),
                "provisioningState": provisioning,
            });
            if let Some(pcfg) = ipc.pointer("/properties/publicIPAddressConfiguration") {
                let pip_name = pcfg["name"].as_str().unwrap_or_default();
                let pip_id = format!("{ipc_id}/publicIPAddresses/{pip_name}");
                let prefix = ref_at(pcfg, "/properties/publicIPPrefix/id");
                let pip_version = IpVersion::at(pcfg, "/properties/publicIPAddressVersion")?;
                let old_pip = state.store.get(&pip_id).filter(|p| {
                    ref_at(p, "/properties/publicIPPrefix/id").map(|x| key(&x))
                        == prefix.as_deref().map(key)
                });
                let address = match old_pip.and_then(|p| ref_at(p, "/properties/ipAddress")) {
                    Some(a) => a,
                    None => {
                        let a = match &prefix {
                            Some(pr) => {
                                let (pid, pnet) = prefix_range(state, pr, &ipc_id)?;
                                state.ipam.allocate_in_prefix(
                                    &state.store,
                                    &pid,
                                    pnet,
                                    &pip_id,
                                    &pending_public,
                                )?
                            }
                            None => state.ipam.allocate_standalone(
                                &state.store,
                                &pip_id,
                                pip_version == IpVersion::V6,
                            )?,
                        };
                        pending_public.insert(a);
                        a.to_string()
                    }
                };
                let mut pip = json!({
                    "id": pip_id, "name": pip_name, "type": PIP_TYPE, "location": location,
                    "etag": etag,
                    "sku": pcfg.get("sku").cloned().unwrap_or_else(|| json!({"name": "Standard", "tier": "Regional"})),
                    "properties": {
                        "ipAddress": address, "publicIPAddressVersion": pip_version.as_str(),
                        "publicIPAllocationMethod": "Static",
                        "idleTimeoutInMinutes": pcfg.pointer("/properties/idleTimeoutInMinutes").cloned().unwrap_or_else(|| json!(4)),
                        "provisioningState": provisioning,
                    }
                });
                if let Some(pr) = &prefix {
                    pip["properties"]["publicIPPrefix"] = json!({ "id": pr });
                }
                keep.insert(key(&pip_id));
                out.put.push(pip);
                props["publicIPAddress"] = json!({ "id": pip_id });
            }
            ipconfigs.push(json!({
                "name": ipc_name, "id": ipc_id, "type": IPCONFIG_TYPE, "etag": etag, "properties": props,
            }));
        }
        let primary = cfg
            .pointer("/properties/primary")
            .and_then(Value::as_bool)
            .unwrap_or(configs.len() == 1);
        out.put.push(json!({
            "id": nic_id, "name": nic_name, "type": NIC_TYPE, "location": location, "etag": etag,
            "tags": {},
            "properties": {
                "primary": primary,
                "enableIPForwarding": cfg.pointer("/properties/enableIPForwarding").and_then(Value::as_bool).unwrap_or(false),
                "enableAcceleratedNetworking": cfg.pointer("/properties/enableAcceleratedNetworking").and_then(Value::as_bool).unwrap_or(false),
                "macAddress": old_nic.as_ref().and_then(|n| ref_at(n, "/properties/macAddress")).unwrap_or_else(new_mac),
                "ipConfigurations": ipconfigs,
                "virtualMachine": {"id": inst_id},
                "provisioningState": provisioning,
            }
        }));
        out.nic_refs
            .push(json!({"id": nic_id, "properties": {"primary": primary}}));
    }
    out.remove = old_children
        .into_iter()
        .filter(|k| !keep.contains(k))
        .collect();
    Ok(out)
}

/// Stores a materialisation and points the instance's `networkProfile` at its NICs.
pub(crate) fn commit(state: &mut State, inst_id: &str, m: Materialised) {
    for k in &m.remove {
        state.store.remove(k);
    }
    for v in m.put {
        state.store.put(v);
    }
    if let Some(inst) = state.store.get_mut(inst_id) {
        inst["properties"]["networkProfile"] = json!({ "networkInterfaces": m.nic_refs });
    }
}

/// Canonical form for comparing network configurations (IDs compare case-insensitively).
pub(crate) fn canonical(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("/subscriptions/") => Value::String(key(s)),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| {
                    !v.is_null() && !matches!(k.as_str(), "etag" | "provisioningState")
                })
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
