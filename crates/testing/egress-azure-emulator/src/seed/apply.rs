//! Turns a `Seed` into stored resources: resource groups, VNets and subnets, BYO prefixes, scale
//! sets with instances and NICs, standalone NICs and VMs.

use super::Seed;
use super::SeedVirtualNetwork;
use crate::error::EmulatorError;
use crate::ids::{NETWORK, key, resource_id};
use crate::resources::resource_groups::rg_value;
use crate::resources::virtual_networks::{SUBNET_TYPE, VNET_TYPE};
use crate::resources::{network_interfaces, public_ip_prefixes, scale_sets, virtual_machines};
use crate::state::State;
use crate::store::new_etag;
use ipnet::IpNet;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn tags(t: &BTreeMap<String, String>) -> Value {
    json!(t)
}

/// Ensures a resource group exists and returns its canonical name.
fn ensure_rg(state: &mut State, name: &str) -> String {
    if let Some(v) = state.store.resource_group(name) {
        return v["name"].as_str().unwrap_or(name).to_owned();
    }
    let v = rg_value(
        &state.settings.subscription,
        name,
        &state.settings.location,
        json!({}),
    );
    state
        .store
        .resource_groups
        .insert(name.to_ascii_lowercase(), v);
    name.to_owned()
}

/// Resolves a seed subnet reference (`vnet/subnet`, a subnet name, a full ID, or none = first
/// subnet) to a subnet ID.
pub(crate) fn resolve_subnet(
    seed: &Seed,
    state: &State,
    r: Option<&str>,
) -> Result<String, EmulatorError> {
    let sub = &state.settings.subscription;
    let mut all = Vec::new();
    for vnet in &seed.virtual_networks {
        for s in &vnet.subnets {
            let vnet_id = resource_id(
                sub,
                &vnet.resource_group,
                NETWORK,
                "virtualNetworks",
                &vnet.name,
            );
            all.push((
                vnet.name.clone(),
                s.name.clone(),
                format!("{vnet_id}/subnets/{}", s.name),
            ));
        }
    }
    let found: Vec<&(String, String, String)> = match r {
        None => all.iter().take(1).collect(),
        Some(r) if r.starts_with('/') => {
            all.iter().filter(|(_, _, id)| key(id) == key(r)).collect()
        }
        Some(r) => match r.split_once('/') {
            Some((v, s)) => all
                .iter()
                .filter(|(vn, sn, _)| vn.eq_ignore_ascii_case(v) && sn.eq_ignore_ascii_case(s))
                .collect(),
            None => all
                .iter()
                .filter(|(_, sn, _)| sn.eq_ignore_ascii_case(r))
                .collect(),
        },
    };
    match found.as_slice() {
        [(_, _, id)] => Ok(id.clone()),
        [] => Err(EmulatorError::InvalidSeed(format!(
            "subnet '{}' is not defined in virtualNetworks",
            r.unwrap_or("<first subnet>")
        ))),
        _ => Err(EmulatorError::InvalidSeed(format!(
            "subnet '{}' is ambiguous; write it as vnet/subnet",
            r.unwrap_or_default()
        ))),
    }
}

/// Applies the seed to an empty state.
pub(crate) fn apply(seed: &Seed, state: &mut State) -> Result<(), EmulatorError> {
    for rg in &seed.resource_groups {
        let v = rg_value(
            &state.settings.subscription,
            &rg.name,
            rg.location.as_deref().unwrap_or(&state.settings.location),
            tags(&rg.tags),
        );
        state
            .store
            .resource_groups
            .insert(rg.name.to_ascii_lowercase(), v);
    }
    let mut nets: Vec<(String, IpNet)> = Vec::new();
    for vnet in &seed.virtual_networks {
        seed_vnet(state, vnet, &mut nets)?;
    }
    for p in &seed.public_ip_prefixes {
        let rg = ensure_rg(state, &p.resource_group);
        public_ip_prefixes::seed_prefix(state, &rg, &p.name, p.ip_prefix.trunc(), tags(&p.tags))?;
    }
    for s in &seed.scale_sets {
        let rg = ensure_rg(state, &s.resource_group);
        let subnet = resolve_subnet(seed, state, s.subnet.as_deref())?;
        scale_sets::seed_scale_set(state, &rg, s, &subnet)?;
    }
    for n in &seed.network_interfaces {
        let rg = ensure_rg(state, &n.resource_group);
        let subnet = resolve_subnet(seed, state, n.subnet.as_deref())?;
        network_interfaces::seed_nic(
            state,
            &rg,
            &n.name,
            &subnet,
            n.private_ip,
            n.dual_stack,
            tags(&n.tags),
        )?;
    }
    for vm in &seed.virtual_machines {
        let rg = ensure_rg(state, &vm.resource_group);
        let subnet = if vm.network_interfaces.is_empty() {
            Some(resolve_subnet(seed, state, vm.subnet.as_deref())?)
        } else {
            None
        };
        virtual_machines::seed_vm(state, &rg, vm, subnet.as_deref())?;
    }
    Ok(())
}

/// Stores a VNet and its subnets, checking each range (both families) against the address
/// space and the subnets seen so far (`nets`).
fn seed_vnet(
    state: &mut State,
    vnet: &SeedVirtualNetwork,
    nets: &mut Vec<(String, IpNet)>,
) -> Result<(), EmulatorError> {
    let rg = ensure_rg(state, &vnet.resource_group);
    let id = resource_id(
        &state.settings.subscription,
        &rg,
        NETWORK,
        "virtualNetworks",
        &vnet.name,
    );
    let space: Vec<IpNet> = if vnet.address_space.is_empty() {
        vnet.subnets
            .iter()
            .flat_map(|s| {
                std::iter::once(IpNet::V4(s.address_prefix))
                    .chain(s.ipv6_address_prefix.map(IpNet::V6))
            })
            .collect()
    } else {
        vnet.address_space.clone()
    };
    let etag = new_etag();
    state.store.put(json!({
        "id": id, "name": vnet.name, "type": VNET_TYPE, "location": state.settings.location,
        "etag": etag, "tags": {},
        "properties": {
            "addressSpace": {"addressPrefixes": space.iter().map(ToString::to_string).collect::<Vec<_>>()},
            "provisioningState": "Succeeded",
            "resourceGuid": uuid::Uuid::new_v4().to_string(),
        }
    }));
    for s in &vnet.subnets {
        let what = format!("subnet {}/{}", vnet.name, s.name);
        let v4 = IpNet::V4(s.address_prefix.trunc());
        let v6 = s.ipv6_address_prefix.map(|n| IpNet::V6(n.trunc()));
        if v4.prefix_len() > 29 {
            return Err(EmulatorError::InvalidSeed(format!(
                "{what} ({v4}) is smaller than /29, the smallest Azure subnet"
            )));
        }
        if let Some(n) = v6.filter(|n| n.prefix_len() != 64) {
            return Err(EmulatorError::InvalidSeed(format!(
                "{what} ({n}): Azure IPv6 subnets are /64"
            )));
        }
        for net in std::iter::once(v4).chain(v6) {
            check_subnet_range(&what, net, &space, nets)?;
            nets.push((format!("{}/{}", vnet.name, s.name), net));
        }
        let mut props = json!({"addressPrefix": v4.to_string(), "provisioningState": "Succeeded"});
        if let Some(n) = v6 {
            props["addressPrefixes"] = json!([v4.to_string(), n.to_string()]);
        }
        state.store.put(json!({
            "id": format!("{id}/subnets/{}", s.name), "name": s.name, "type": SUBNET_TYPE,
            "etag": etag, "properties": props
        }));
    }
    Ok(())
}

/// A subnet range must lie in the VNet's address space and overlap no other subnet.
fn check_subnet_range(
    what: &str,
    net: IpNet,
    space: &[IpNet],
    nets: &[(String, IpNet)],
) -> Result<(), EmulatorError> {
    if !space.iter().any(|a| a.contains(&net)) {
        return Err(EmulatorError::InvalidSeed(format!(
            "{what} ({net}) is outside the VNet address space"
        )));
    }
    if let Some((other, _)) = nets
        .iter()
        .find(|(_, n)| n.contains(&net.network()) || net.contains(&n.network()))
    {
        return Err(EmulatorError::InvalidSeed(format!(
            "{what} ({net}) overlaps subnet {other}"
        )));
    }
    Ok(())
}
