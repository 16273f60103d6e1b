//! Network interfaces (standalone, e.g. AKS VirtualMachines pools): PUT (dynamic/static
//! private IPs, public IP and backend pool references) and the DELETE guard (a NIC attached to
//! a VM cannot be deleted). GET, DELETE and lists are `top_level`'s.

use super::common::{
    check_preconditions, envelope, exists, invalid_reference, location_for, normalise_children,
    ref_at,
};
use super::instance_nics::{IPCONFIG_TYPE, NIC_TYPE, new_mac};
use super::ip_version::{IpVersion, check_primary, check_public_matches_config, subnet_range};
use super::load_balancers::static_address;
use super::render;
use super::top_level::{Resolved, store_write};
use crate::error::{ArmError, EmulatorError};
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, ParsedId, key, resource_id};
use crate::ipam::Ipam;
use crate::schema;
use crate::state::State;
use crate::store::{id_of, new_etag};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// `NetworkInterfaces.Delete` guard: a NIC attached to a VM cannot be deleted.
pub(crate) fn delete_guard(state: &State, r: &Resolved) -> Result<(), ArmError> {
    match state
        .store
        .get(&r.id)
        .and_then(|n| ref_at(n, "/properties/virtualMachine/id"))
    {
        None => Ok(()),
        Some(vm) => Err(ArmError::bad_request(
            "NicInUse",
            format!(
                "Network Interface {} is used by existing resource {vm}. In order to delete the network interface, it must be dissociated from the resource.",
                r.id
            ),
        )),
    }
}

/// `NetworkInterfaces.CreateOrUpdate`.
pub(crate) fn put(state: &mut State, req: &Req, r: &Resolved, op: &str) -> Result<Reply, ArmError> {
    let (id, name) = (r.id.as_str(), r.name.as_str());
    let existing = r.existing.clone();
    check_preconditions(req, existing.as_ref())?;
    let mut body = req.json_object()?;
    schema::prune_request(NIC_TYPE, &mut body);
    let location = location_for(&body, existing.as_ref(), id)?;
    let etag = new_etag();
    let mut v = envelope(&body, id, name, NIC_TYPE, &location, &etag);
    let props = &mut v["properties"];
    if props
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(ArmError::bad_request(
            "InvalidRequestFormat",
            format!(
                "Cannot parse the request: network interface {id} needs at least one ipConfiguration."
            ),
        ));
    }
    normalise_children(
        props,
        "ipConfigurations",
        id,
        IPCONFIG_TYPE,
        &etag,
        "Updating",
    )?;
    assign_ip_configurations(state, props, existing.as_ref(), id)?;
    // `virtualMachine` is read-only (pruned from the body): the attachment stays as it was.
    if let (Some(o), Some(vm)) = (
        props.as_object_mut(),
        existing
            .as_ref()
            .and_then(|e| e.pointer("/properties/virtualMachine")),
    ) {
        o.insert("virtualMachine".into(), vm.clone());
    }
    props["macAddress"] = json!(
        existing
            .as_ref()
            .and_then(|e| ref_at(e, "/properties/macAddress"))
            .unwrap_or_else(new_mac)
    );
    Ok(store_write(state, req, op, r, v))
}

fn assign_ip_configurations(
    state: &mut State,
    props: &mut Value,
    existing: Option<&Value>,
    nic_id: &str,
) -> Result<(), ArmError> {
    let old: BTreeMap<String, (String, String)> = existing
        .and_then(|e| e.pointer("/properties/ipConfigurations"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("name")?.as_str()?.to_ascii_lowercase(),
                (
                    key(&ref_at(c, "/properties/subnet/id")?),
                    ref_at(c, "/properties/privateIPAddress")?,
                ),
            ))
        })
        .collect();
    let own_ipcs = format!("{}/ipconfigurations/", key(nic_id));
    let Some(ipcs) = props
        .get_mut("ipConfigurations")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let single = ipcs.len() == 1;
    let primaries = ipcs
        .iter()
        .filter(|c| c.pointer("/properties/primary").and_then(Value::as_bool) == Some(true))
        .count();
    if !single && primaries != 1 {
        return Err(ArmError::bad_request(
            "InvalidRequestFormat",
            format!(
                "Cannot parse the request: exactly one ipConfiguration of {nic_id} must be primary (found {primaries})."
            ),
        ));
    }
    let mut pending: BTreeSet<IpAddr> = BTreeSet::new();
    let mut to_allocate = Vec::new();
    for (idx, ipc) in ipcs.iter_mut().enumerate() {
        let ipc_id = id_of(ipc).to_owned();
        let ipc_name = ipc["name"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let p = &mut ipc["properties"];
        if single {
            p["primary"] = json!(true);
        } else if p.get("primary").is_none() {
            p["primary"] = json!(false);
        }
        let version = IpVersion::at(p, "/privateIPAddressVersion")?;
        check_primary(version, p["primary"].as_bool() == Some(true), &ipc_id)?;
        let subnet_ref = ref_at(p, "/subnet/id").ok_or_else(|| {
            ArmError::bad_request(
                "InvalidRequestFormat",
                format!("Cannot parse the request: ipConfiguration {ipc_id} has no subnet."),
            )
        })?;
        let (subnet_id, net) = subnet_range(&state.store, &subnet_ref, &ipc_id, version)?;
        p["privateIPAddressVersion"] = json!(version.as_str());
        if let Some(pip) = ref_at(p, "/publicIPAddress/id") {
            let is_pip =
                ParsedId::parse(&pip).is_some_and(|x| x.is_kind(NETWORK, &["publicIPAddresses"]));
            let Some(pip_value) = state.store.get(&pip).filter(|_| is_pip) else {
                return Err(invalid_reference(&pip, &ipc_id));
            };
            let pip_version = IpVersion::at(pip_value, "/properties/publicIPAddressVersion")?;
            check_public_matches_config(pip_version, &pip, version, &ipc_id)?;
            if let Some(other) = render::pip_users(&state.store, &pip)
                .into_iter()
                .find(|u| !key(u).starts_with(&own_ipcs))
            {
                return Err(ArmError::bad_request(
                    "PublicIPAddressInUse",
                    format!("Public IP address {pip} is already in use by {other}."),
                ));
            }
        }
        for pool in p
            .get("loadBalancerBackendAddressPools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pid = pool.get("id").and_then(Value::as_str).unwrap_or_default();
            if !exists(&state.store, pid) {
                return Err(invalid_reference(pid, &ipc_id));
            }
        }
        let method = p
            .get("privateIPAllocationMethod")
            .and_then(Value::as_str)
            .unwrap_or("Dynamic");
        if method.eq_ignore_ascii_case("Static") {
            p["privateIPAllocationMethod"] = json!("Static");
            let addr = static_address(p, &ipc_id, version)?;
            Ipam::check_static_private(&state.store, &subnet_id, net, addr, nic_id, &pending)?;
            pending.insert(addr);
        } else {
            p["privateIPAllocationMethod"] = json!("Dynamic");
            match old.get(&ipc_name) {
                Some((s, ip))
                    if *s == key(&subnet_id)
                        && ip
                            .parse::<IpAddr>()
                            .is_ok_and(|a| a.is_ipv6() == (version == IpVersion::V6)) =>
                {
                    if let Ok(a) = ip.parse() {
                        pending.insert(a);
                    }
                    p["privateIPAddress"] = json!(ip);
                }
                _ => to_allocate.push((idx, subnet_id, net)),
            }
        }
    }
    for (idx, subnet_id, net) in to_allocate {
        let a = state
            .ipam
            .allocate_private(&state.store, &subnet_id, net, nic_id, &pending)?;
        pending.insert(a);
        ipcs[idx]["properties"]["privateIPAddress"] = json!(a.to_string());
    }
    Ok(())
}

/// Name of the IPv6 ipConfiguration of a dual-stack node NIC, as AKS names it.
pub(crate) const IPV6_IPCONFIG: &str = "ipconfigv6";

/// Creates a standalone NIC from the seed: one primary ipConfiguration `ipconfig1` and, when
/// `dual_stack`, a secondary IPv6 one (`ipconfigv6`) from the subnet's IPv6 range.
pub(crate) fn seed_nic(
    state: &mut State,
    rg: &str,
    name: &str,
    subnet: &str,
    ip: Option<Ipv4Addr>,
    dual_stack: bool,
    tags: Value,
) -> Result<String, EmulatorError> {
    let id = resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "networkInterfaces",
        name,
    );
    let bad = |e: ArmError| {
        EmulatorError::InvalidSeed(format!("network interface {name}: {}", e.message))
    };
    let none = BTreeSet::new();
    let (subnet_id, net) = subnet_range(&state.store, subnet, &id, IpVersion::V4).map_err(bad)?;
    let (addr, method) = match ip {
        Some(a) => {
            let a = IpAddr::V4(a);
            Ipam::check_static_private(&state.store, &subnet_id, net, a, &id, &none)
                .map_err(bad)?;
            (a, "Static")
        }
        None => (
            state
                .ipam
                .allocate_private(&state.store, &subnet_id, net, &id, &none)
                .map_err(bad)?,
            "Dynamic",
        ),
    };
    let etag = new_etag();
    let ipc = |ipc_name: &str, primary: bool, a: IpAddr, method: &str, v: IpVersion| {
        json!({
            "name": ipc_name, "id": format!("{id}/ipConfigurations/{ipc_name}"),
            "type": IPCONFIG_TYPE, "etag": etag,
            "properties": {
                "primary": primary, "privateIPAddress": a.to_string(),
                "privateIPAllocationMethod": method, "privateIPAddressVersion": v.as_str(),
                "subnet": {"id": subnet_id}, "provisioningState": "Succeeded"
            }
        })
    };
    let mut ipcs = vec![ipc("ipconfig1", true, addr, method, IpVersion::V4)];
    if dual_stack {
        let (_, net6) = subnet_range(&state.store, subnet, &id, IpVersion::V6).map_err(bad)?;
        let a6 = state
            .ipam
            .allocate_private(&state.store, &subnet_id, net6, &id, &none)
            .map_err(bad)?;
        ipcs.push(ipc(IPV6_IPCONFIG, false, a6, "Dynamic", IpVersion::V6));
    }
    state.store.put(json!({
        "id": id, "name": name, "type": NIC_TYPE, "location": state.settings.location,
        "etag": etag, "tags": tags,
        "properties": {
            "primary": true,
            "enableIPForwarding": true,
            "macAddress": new_mac(),
            "provisioningState": "Succeeded",
            "resourceGuid": uuid::Uuid::new_v4().to_string(),
            "ipConfigurations": ipcs,
        }
    }));
    Ok(id)
}
