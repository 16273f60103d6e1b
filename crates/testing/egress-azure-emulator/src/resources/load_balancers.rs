//! Load balancers: PUT with frontendIPConfigurations (dynamic private IPs from the subnet),
//! backendAddressPools, probes and loadBalancingRules (validated in `lb_validate`), and the
//! DELETE guard (a load balancer whose children a scale set uses cannot be deleted). GET,
//! DELETE and lists are `top_level`'s.

use super::common::{
    check_preconditions, envelope, exists, invalid_reference, location_for, normalise_children,
    ref_at,
};
use super::ip_version::{IpVersion, subnet_range};
use super::lb_validate;
use super::scale_set_model::{MODEL_NICS, VMSS_TYPE};
use super::top_level::{Resolved, store_write};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::key;
use crate::ipam::Ipam;
use crate::schema;
use crate::state::State;
use crate::store::{id_of, new_etag, walk_objects};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// ARM type of load balancers.
pub(crate) const LB_TYPE: &str = "Microsoft.Network/loadBalancers";

const CHILDREN: &[(&str, &str)] = &[
    (
        "frontendIPConfigurations",
        "Microsoft.Network/loadBalancers/frontendIPConfigurations",
    ),
    (
        "backendAddressPools",
        "Microsoft.Network/loadBalancers/backendAddressPools",
    ),
    (
        "loadBalancingRules",
        "Microsoft.Network/loadBalancers/loadBalancingRules",
    ),
    ("probes", "Microsoft.Network/loadBalancers/probes"),
    (
        "inboundNatRules",
        "Microsoft.Network/loadBalancers/inboundNatRules",
    ),
    (
        "inboundNatPools",
        "Microsoft.Network/loadBalancers/inboundNatPools",
    ),
    (
        "outboundRules",
        "Microsoft.Network/loadBalancers/outboundRules",
    ),
];

/// `LoadBalancers.CreateOrUpdate`.
pub(crate) fn put(state: &mut State, req: &Req, r: &Resolved, op: &str) -> Result<Reply, ArmError> {
    let (id, name) = (r.id.as_str(), r.name.as_str());
    let existing = r.existing.clone();
    check_preconditions(req, existing.as_ref())?;
    let mut body = req.json_object()?;
    schema::prune_request(LB_TYPE, &mut body);
    let location = location_for(&body, existing.as_ref(), id)?;
    let etag = new_etag();
    let mut v = envelope(&body, id, name, LB_TYPE, &location, &etag);
    lb_validate::sku(&mut v, id)?;
    let props = &mut v["properties"];
    for (field, child_type) in CHILDREN {
        normalise_children(props, field, id, child_type, &etag, "Updating")?;
    }
    assign_frontend_ips(state, props, existing.as_ref(), id)?;
    lb_validate::probes(props)?;
    lb_validate::rules(props)?;
    if let Some(old) = &existing {
        pools_still_used(state, old, props, id)?;
    }
    Ok(store_write(state, req, op, r, v))
}

/// Scale sets (model or instance NICs) that reference children of the load balancer `lb_id`,
/// with the names of those children.
fn scale_set_users(state: &State, lb_id: &str) -> BTreeMap<String, BTreeSet<String>> {
    let prefix = format!("{}/", key(lb_id));
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut note = |owner: &str, v: &Value| {
        walk_objects(v, &mut |o| {
            if let Some(id) = o.get("id").and_then(Value::as_str)
                && key(id).starts_with(&prefix)
                && o.as_object().is_some_and(|m| m.len() == 1)
            {
                let child = id.rsplit('/').next().unwrap_or(id).to_owned();
                users.entry(owner.to_owned()).or_default().insert(child);
            }
        });
    };
    for vmss in state.store.of_type(VMSS_TYPE) {
        if let Some(nics) = vmss.pointer(MODEL_NICS) {
            note(id_of(vmss), nics);
        }
    }
    // Instance NICs live below their scale set: `.../virtualMachineScaleSets/{vmss}/virtualMachines/...`.
    for nic in state.store.of_type("Microsoft.Network/networkInterfaces") {
        let nid = id_of(nic);
        let k = key(nid);
        if k.contains("/microsoft.compute/virtualmachinescalesets/")
            && let Some(pos) = k.find("/virtualmachines/")
        {
            note(&nid[..pos], &nic["properties"]["ipConfigurations"]);
        }
    }
    users
}

/// The DELETE guard: Azure refuses to delete a load balancer a scale set still uses.
pub(crate) fn delete_guard(state: &State, r: &Resolved) -> Result<(), ArmError> {
    match scale_set_users(state, &r.id).into_iter().next() {
        None => Ok(()),
        Some((vmss, children)) => Err(ArmError::bad_request(
            "LoadBalancerInUseByVirtualMachineScaleSet",
            format!(
                "Cannot delete load balancer {} since its child resources {} are in use by virtual machine scale set {vmss}.",
                r.id,
                children.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// A PUT may not drop a backend address pool a scale set still uses.
fn pools_still_used(
    state: &State,
    old: &Value,
    props: &Value,
    lb_id: &str,
) -> Result<(), ArmError> {
    let kept: BTreeSet<String> = ids_of(props, "backendAddressPools");
    let users = scale_set_users(state, lb_id);
    for pool in items(&old["properties"], "backendAddressPools") {
        let pid = id_of(pool);
        let name = pool["name"].as_str().unwrap_or_default();
        if kept.contains(&key(pid)) {
            continue;
        }
        if let Some((vmss, _)) = users
            .iter()
            .find(|(_, c)| c.iter().any(|n| n.eq_ignore_ascii_case(name)))
        {
            return Err(ArmError::bad_request(
                "CannotRemoveBackendAddressPoolInUseByVirtualMachineScaleSet",
                format!(
                    "Cannot remove backend address pool {name} from load balancer since it is in use by virtual machine scale set {vmss}."
                ),
            ));
        }
    }
    Ok(())
}

fn items<'a>(props: &'a Value, field: &str) -> &'a [Value] {
    props
        .get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn ids_of(props: &Value, field: &str) -> BTreeSet<String> {
    items(props, field)
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_str))
        .map(key)
        .collect()
}

/// Keeps the dynamic IP of an unchanged frontend, takes static IPs as given, allocates the rest.
fn assign_frontend_ips(
    state: &mut State,
    props: &mut Value,
    existing: Option<&Value>,
    lb_id: &str,
) -> Result<(), ArmError> {
    let old: BTreeMap<String, (String, String)> = existing
        .map(|e| items(&e["properties"], "frontendIPConfigurations"))
        .unwrap_or_default()
        .iter()
        .filter_map(|fe| {
            Some((
                fe.get("name")?.as_str()?.to_ascii_lowercase(),
                (
                    key(&ref_at(fe, "/properties/subnet/id")?),
                    ref_at(fe, "/properties/privateIPAddress")?,
                ),
            ))
        })
        .collect();
    let Some(fes) = props
        .get_mut("frontendIPConfigurations")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let mut pending: BTreeSet<IpAddr> = BTreeSet::new();
    let mut to_allocate = Vec::new();
    for (idx, fe) in fes.iter_mut().enumerate() {
        let fe_id = ref_at(fe, "/id").unwrap_or_default();
        let fe_name = fe["name"].as_str().unwrap_or_default().to_ascii_lowercase();
        let p = &mut fe["properties"];
        if let Some(subnet_ref) = ref_at(p, "/subnet/id") {
            let (subnet_id, net) = subnet_range(&state.store, &subnet_ref, &fe_id, IpVersion::V4)?;
            let method = p
                .get("privateIPAllocationMethod")
                .and_then(Value::as_str)
                .unwrap_or("Dynamic")
                .to_owned();
            // IPv6 frontends are not emulated (the gateway tunnel stays IPv4): refused, not
            // given an IPv4 address under an IPv6 label.
            if IpVersion::at(p, "/privateIPAddressVersion")? == IpVersion::V6 {
                return Err(ArmError::bad_request(
                    "InvalidRequestFormat",
                    format!(
                        "Cannot parse the request: frontend IP configuration {fe_id} asks for an IPv6 private address; the emulator serves IPv4 load balancer frontends only."
                    ),
                ));
            }
            p["privateIPAddressVersion"] = json!("IPv4");
            if method.eq_ignore_ascii_case("Static") {
                p["privateIPAllocationMethod"] = json!("Static");
                let addr = static_address(p, &fe_id, IpVersion::V4)?;
                Ipam::check_static_private(&state.store, &subnet_id, net, addr, lb_id, &pending)?;
                pending.insert(addr);
            } else {
                p["privateIPAllocationMethod"] = json!("Dynamic");
                match old.get(&fe_name) {
                    Some((old_subnet, ip)) if *old_subnet == key(&subnet_id) => {
                        let addr: IpAddr = ip.parse().map_err(|_| {
                            ArmError::new(500, "InternalServerError", "stored IP is corrupt")
                        })?;
                        p["privateIPAddress"] = json!(ip);
                        pending.insert(addr);
                    }
                    _ => to_allocate.push((idx, subnet_id, net)),
                }
            }
        } else if let Some(pip) = ref_at(p, "/publicIPAddress/id") {
            if !exists(&state.store, &pip) {
                return Err(invalid_reference(&pip, &fe_id));
            }
        } else {
            return Err(ArmError::bad_request(
                "InvalidRequestFormat",
                format!(
                    "Cannot parse the request: frontend IP configuration {fe_id} must reference a subnet or a public IP address."
                ),
            ));
        }
    }
    for (idx, subnet_id, net) in to_allocate {
        let addr = state
            .ipam
            .allocate_private(&state.store, &subnet_id, net, lb_id, &pending)?;
        pending.insert(addr);
        fes[idx]["properties"]["privateIPAddress"] = json!(addr.to_string());
    }
    Ok(())
}

/// The `privateIPAddress` of a Static ipConfiguration/frontend, of the family of `version`.
pub(crate) fn static_address(
    p: &Value,
    owner: &str,
    version: IpVersion,
) -> Result<IpAddr, ArmError> {
    let s = p
        .get("privateIPAddress")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ArmError::bad_request(
                "PrivateIPAddressIsRequired",
                format!("{owner} uses Static allocation but has no privateIPAddress."),
            )
        })?;
    s.parse::<IpAddr>()
        .ok()
        .filter(|a| a.is_ipv6() == (version == IpVersion::V6))
        .ok_or_else(|| {
            ArmError::bad_request(
                "InvalidPrivateIPAddressFormat",
                format!(
                    "Private IP address '{s}' of {owner} is not a valid {} address.",
                    version.as_str()
                ),
            )
        })
}
