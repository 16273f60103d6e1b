//! Public IP addresses: GET/PUT/DELETE. An address referencing a prefix gets a free address in
//! it; others come from the standalone pool. An address still attached cannot be deleted.

use super::common::{check_preconditions, envelope, invalid_reference, location_for, ref_at};
use super::{delete_stored, get_stored, method_not_allowed, put_reply, render};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, ParsedId, key, resource_id};
use crate::lro;
use crate::state::State;
use crate::store::new_etag;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// ARM type of public IP addresses.
pub(crate) const PIP_TYPE: &str = "Microsoft.Network/publicIPAddresses";

pub(crate) fn handle(
    state: &mut State,
    req: &Req,
    rg: &str,
    name: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    let url_id = resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "publicIPAddresses",
        name,
    );
    let (id, name) = match state.store.get(&url_id) {
        Some(v) => (
            crate::store::id_of(v).to_owned(),
            v["name"].as_str().unwrap_or(name).to_owned(),
        ),
        None => (url_id, name.to_owned()),
    };
    match req.method.as_str() {
        "GET" => get_stored(state, &id, PIP_TYPE, &name, rg),
        "PUT" => put(state, req, &id, &name, op),
        "DELETE" => {
            let pip_id = id.clone();
            delete_stored(
                state,
                req,
                &id,
                op,
                NETWORK,
                move |st| match render::pip_users(&st.store, &pip_id).first() {
                    None => Ok(()),
                    Some(user) => Err(ArmError::bad_request(
                        "PublicIPAddressCannotBeDeleted",
                        format!(
                            "Public IP address {pip_id} can not be deleted since it is still allocated to resource {user}. In order to delete the public IP, disassociate/detach the Public IP address from the resource."
                        ),
                    )),
                },
            )
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// Resolves a prefix reference to (id, range), or `InvalidResourceReference`.
pub(crate) fn prefix_range(
    state: &State,
    prefix_ref: &str,
    by: &str,
) -> Result<(String, ipnet::Ipv4Net), ArmError> {
    let prefix = state
        .store
        .get(prefix_ref)
        .filter(|_| {
            ParsedId::parse(prefix_ref).is_some_and(|p| p.is_kind(NETWORK, &["publicIPPrefixes"]))
        })
        .ok_or_else(|| invalid_reference(prefix_ref, by))?;
    let net = prefix
        .pointer("/properties/ipPrefix")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid_reference(prefix_ref, by))?;
    Ok((crate::store::id_of(prefix).to_owned(), net))
}

fn put(state: &mut State, req: &Req, id: &str, name: &str, op: &str) -> Result<Reply, ArmError> {
    let existing = state.store.get(id).cloned();
    check_preconditions(req, existing.as_ref())?;
    let body = req.json_object()?;
    let location = location_for(&body, existing.as_ref(), id)?;
    let prefix_ref = ref_at(&body, "/properties/publicIPPrefix/id");
    let old_prefix = existing
        .as_ref()
        .and_then(|e| ref_at(e, "/properties/publicIPPrefix/id"));
    let address = match &existing {
        Some(e) => {
            if prefix_ref.as_deref().map(key) != old_prefix.as_deref().map(key) {
                return Err(ArmError::bad_request(
                    "PublicIPAddressPrefixCannotBeChanged",
                    format!("The publicIPPrefix of public IP address {id} cannot be changed."),
                ));
            }
            e.pointer("/properties/ipAddress")
                .cloned()
                .unwrap_or_default()
        }
        None => match &prefix_ref {
            Some(pref) => {
                let (pid, net) = prefix_range(state, pref, id)?;
                let a =
                    state
                        .ipam
                        .allocate_in_prefix(&state.store, &pid, net, id, &BTreeSet::new())?;
                json!(a.to_string())
            }
            None => json!(
                state
                    .ipam
                    .allocate_standalone(&state.store, id)?
                    .to_string()
            ),
        },
    };
    let etag = new_etag();
    let mut v = envelope(&body, id, name, PIP_TYPE, &location, &etag);
    if !v.get("sku").is_some_and(Value::is_object) {
        v["sku"] = json!({"name": "Standard", "tier": "Regional"});
    }
    let p = &mut v["properties"];
    if let Some(o) = p.as_object_mut() {
        o.remove("ipConfiguration");
    }
    for (f, d) in [
        ("publicIPAllocationMethod", json!("Static")),
        ("publicIPAddressVersion", json!("IPv4")),
        ("idleTimeoutInMinutes", json!(4)),
    ] {
        if p.get(f).is_none() {
            p[f] = d;
        }
    }
    p["ipAddress"] = address;
    p["provisioningState"] = json!("Updating");
    p["resourceGuid"] = existing
        .as_ref()
        .and_then(|e| e.pointer("/properties/resourceGuid"))
        .cloned()
        .unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string()));
    let plan = lro::plan(state, req, op);
    state.store.put(v);
    Ok(put_reply(state, req, id, existing.is_none(), plan))
}
