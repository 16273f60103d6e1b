//! Read-side rendering: adds the read-only back-references ARM computes (LB pool members and rule
//! references, a prefix's public IPs, a public IP's ipConfiguration, a VNet's subnets).

use super::instance_view;
use crate::http::Req;
use crate::ids::key;
use crate::store::{Store, id_of, type_of};
use serde_json::{Value, json};

/// A stored resource as a GET or list with this request's query answers it (`$expand`).
pub(crate) fn render_for(store: &Store, v: &Value, req: &Req) -> Value {
    let mut out = render(store, v);
    let vm_like = matches!(
        type_of(v).to_ascii_lowercase().as_str(),
        "microsoft.compute/virtualmachines"
            | "microsoft.compute/virtualmachinescalesets/virtualmachines"
    );
    if vm_like && instance_view::expanded(req) {
        out["properties"]["instanceView"] = instance_view::of(v);
    }
    out
}

/// A stored resource as GET returns it.
pub(crate) fn render(store: &Store, v: &Value) -> Value {
    let mut out = v.clone();
    let t = type_of(v).to_ascii_lowercase();
    match t.as_str() {
        "microsoft.network/loadbalancers" => render_lb(store, &mut out),
        "microsoft.network/publicipprefixes" => {
            let ids = prefix_users(store, id_of(v));
            out["properties"]["publicIPAddresses"] =
                Value::Array(ids.into_iter().map(|i| json!({ "id": i })).collect());
        }
        "microsoft.network/publicipaddresses" => {
            if let Some(user) = pip_users(store, id_of(v)).into_iter().next() {
                out["properties"]["ipConfiguration"] = json!({ "id": user });
            }
        }
        "microsoft.network/virtualnetworks" => {
            let subnets: Vec<Value> = store
                .children_of(id_of(v))
                .iter()
                .filter_map(|k| store.get(k))
                .cloned()
                .collect();
            out["properties"]["subnets"] = Value::Array(subnets);
        }
        _ => {}
    }
    out
}

/// IDs of public IPs allocated from a prefix.
pub(crate) fn prefix_users(store: &Store, prefix_id: &str) -> Vec<String> {
    let k = key(prefix_id);
    store
        .of_type("Microsoft.Network/publicIPAddresses")
        .filter(|p| {
            p.pointer("/properties/publicIPPrefix/id")
                .and_then(Value::as_str)
                .is_some_and(|i| key(i) == k)
        })
        .map(|p| id_of(p).to_owned())
        .collect()
}

/// IDs of ipConfigurations / LB frontends using a public IP.
pub(crate) fn pip_users(store: &Store, pip_id: &str) -> Vec<String> {
    let k = key(pip_id);
    let mut users = Vec::new();
    for res in store
        .of_type("Microsoft.Network/networkInterfaces")
        .chain(store.of_type("Microsoft.Network/loadBalancers"))
    {
        for field in [
            "/properties/ipConfigurations",
            "/properties/frontendIPConfigurations",
        ] {
            for item in res
                .pointer(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if item
                    .pointer("/properties/publicIPAddress/id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| key(i) == k)
                {
                    users.push(id_of(item).to_owned());
                }
            }
        }
    }
    users
}

/// IDs of NIC ipConfigurations that list a backend pool.
pub(crate) fn pool_members(store: &Store, pool_id: &str) -> Vec<String> {
    let k = key(pool_id);
    let mut members = Vec::new();
    for nic in store.of_type("Microsoft.Network/networkInterfaces") {
        for ipc in nic
            .pointer("/properties/ipConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let listed = ipc
                .pointer("/properties/loadBalancerBackendAddressPools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("id").and_then(Value::as_str))
                .any(|i| key(i) == k);
            if listed {
                members.push(id_of(ipc).to_owned());
            }
        }
    }
    members
}

fn render_lb(store: &Store, lb: &mut Value) {
    let rules: Vec<(String, Vec<String>)> = lb
        .pointer("/properties/loadBalancingRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let mut refs = Vec::new();
            for ptr in [
                "/properties/frontendIPConfiguration/id",
                "/properties/backendAddressPool/id",
                "/properties/probe/id",
            ] {
                if let Some(i) = r.pointer(ptr).and_then(Value::as_str) {
                    refs.push(key(i));
                }
            }
            for p in r
                .pointer("/properties/backendAddressPools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(i) = p.get("id").and_then(Value::as_str) {
                    refs.push(key(i));
                }
            }
            (id_of(r).to_owned(), refs)
        })
        .collect();
    for field in ["frontendIPConfigurations", "backendAddressPools", "probes"] {
        let Some(items) = lb["properties"]
            .get_mut(field)
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for item in items {
            let k = key(id_of(item));
            let users: Vec<Value> = rules
                .iter()
                .filter(|(_, refs)| refs.contains(&k))
                .map(|(id, _)| json!({ "id": id }))
                .collect();
            if !users.is_empty() {
                item["properties"]["loadBalancingRules"] = Value::Array(users);
            }
            if field == "backendAddressPools" {
                let members: Vec<Value> = pool_members(store, id_of(item))
                    .into_iter()
                    .map(|i| json!({ "id": i }))
                    .collect();
                item["properties"]["backendIPConfigurations"] = Value::Array(members);
            }
        }
    }
}
