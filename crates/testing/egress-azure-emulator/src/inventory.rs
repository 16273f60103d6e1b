//! Views for tests and the simulator: the whole inventory, the private → public IP map, and the
//! load-balancing view (frontend IP:port → backend private IPs, probe).

use crate::ids::key;
use crate::resources::render::{pool_members, render};
use crate::state::State;
use crate::store::{Store, id_of, type_of};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Everything stored, rendered as GET would answer it.
pub(crate) fn inventory(st: &State) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let resources: Vec<Value> = st
        .store
        .all()
        .map(|v| {
            *counts.entry(type_of(v).to_owned()).or_default() += 1;
            render(&st.store, v)
        })
        .collect();
    json!({
        "subscriptionId": st.settings.subscription,
        "location": st.settings.location,
        "resourceGroups": st.store.resource_groups.values().cloned().collect::<Vec<_>>(),
        "resources": resources,
        "counts": counts,
        "pendingOperations": st.lros.pending(),
    })
}

/// One private IP that has a public IP (secondary ipConfigurations with a prefix IP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpMapping {
    /// Private IP of the ipConfiguration.
    pub private_ip: String,
    /// Public IP associated with it.
    pub public_ip: String,
    /// ID of the ipConfiguration.
    pub ip_configuration_id: String,
    /// Whether it is the NIC's primary ipConfiguration.
    pub primary: bool,
    /// ID of the public IP address resource.
    pub public_ip_address_id: String,
    /// ID of the prefix the public IP comes from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip_prefix_id: Option<String>,
    /// ID of the NIC.
    pub network_interface_id: String,
    /// Computer name of the VM the NIC belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
}

/// Computer name of the VM (or scale-set instance) a NIC belongs to.
pub(crate) fn nic_computer_name(store: &Store, nic: &Value) -> Option<String> {
    let nic_id = id_of(nic);
    let vm_id = match nic
        .pointer("/properties/virtualMachine/id")
        .and_then(Value::as_str)
    {
        Some(vm) => vm.to_owned(),
        None => {
            let k = key(nic_id);
            let pos = k.find("/networkinterfaces/")?;
            nic_id[..pos].to_owned()
        }
    };
    store
        .get(&vm_id)?
        .pointer("/properties/osProfile/computerName")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Every ipConfiguration that has a public IP, with both addresses.
pub(crate) fn ip_map(store: &Store) -> Vec<IpMapping> {
    let mut out = Vec::new();
    for nic in store.of_type("Microsoft.Network/networkInterfaces") {
        for ipc in nic
            .pointer("/properties/ipConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(pip_id) = ipc
                .pointer("/properties/publicIPAddress/id")
                .and_then(Value::as_str)
            else {
                continue;
            };
            let Some(pip) = store.get(pip_id) else {
                continue;
            };
            let (Some(private), Some(public)) = (
                ipc.pointer("/properties/privateIPAddress")
                    .and_then(Value::as_str),
                pip.pointer("/properties/ipAddress").and_then(Value::as_str),
            ) else {
                continue;
            };
            out.push(IpMapping {
                private_ip: private.to_owned(),
                public_ip: public.to_owned(),
                ip_configuration_id: id_of(ipc).to_owned(),
                primary: ipc
                    .pointer("/properties/primary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                public_ip_address_id: id_of(pip).to_owned(),
                public_ip_prefix_id: pip
                    .pointer("/properties/publicIPPrefix/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                network_interface_id: id_of(nic).to_owned(),
                computer_name: nic_computer_name(store, nic),
            });
        }
    }
    out
}

/// An ipConfiguration by ID (inside a stored NIC).
pub(crate) fn find_ip_configuration<'a>(
    store: &'a Store,
    id: &str,
) -> Option<(&'a Value, &'a Value)> {
    let k = key(id);
    let pos = k.rfind("/ipconfigurations/")?;
    let nic = store.get(&id[..pos])?;
    let ipc = nic
        .pointer("/properties/ipConfigurations")
        .and_then(Value::as_array)?
        .iter()
        .find(|i| key(id_of(i)) == k)?;
    Some((nic, ipc))
}

/// Load-balancing view: per LB rule, the frontend address, ports, probe and pool members.
pub(crate) fn lb_map(store: &Store) -> Value {
    let mut lbs = Vec::new();
    for lb in store.of_type("Microsoft.Network/loadBalancers") {
        let props = &lb["properties"];
        let find = |field: &str, id: Option<&str>| -> Option<Value> {
            let k = key(id?);
            props
                .get(field)?
                .as_array()?
                .iter()
                .find(|i| key(id_of(i)) == k)
                .cloned()
        };
        let mut rules = Vec::new();
        for rule in props
            .get("loadBalancingRules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rp = &rule["properties"];
            let fe = find(
                "frontendIPConfigurations",
                rp.pointer("/frontendIPConfiguration/id")
                    .and_then(Value::as_str),
            );
            let probe = find("probes", rp.pointer("/probe/id").and_then(Value::as_str));
            let pool_id = rp.pointer("/backendAddressPool/id").and_then(Value::as_str);
            let backends: Vec<Value> = pool_id
                .map(|p| pool_members(store, p))
                .unwrap_or_default()
                .iter()
                .filter_map(|ipc_id| {
                    let (nic, ipc) = find_ip_configuration(store, ipc_id)?;
                    Some(json!({
                        "privateIp": ipc.pointer("/properties/privateIPAddress"),
                        "ipConfigurationId": ipc_id,
                        "networkInterfaceId": id_of(nic),
                        "computerName": nic_computer_name(store, nic),
                    }))
                })
                .collect();
            rules.push(json!({
                "id": id_of(rule),
                "name": rule["name"],
                "frontendIp": fe.as_ref().and_then(|f| f.pointer("/properties/privateIPAddress")).cloned(),
                "protocol": rp["protocol"],
                "frontendPort": rp["frontendPort"],
                "backendPort": rp["backendPort"],
                "enableFloatingIP": rp["enableFloatingIP"],
                "backendPoolId": pool_id,
                "probe": probe.map(|p| p["properties"].clone()),
                "backends": backends,
            }));
        }
        lbs.push(json!({"id": id_of(lb), "name": lb["name"], "rules": rules}));
    }
    json!({ "loadBalancers": lbs })
}
