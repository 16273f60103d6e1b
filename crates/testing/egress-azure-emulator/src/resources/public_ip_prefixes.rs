//! Public IP prefixes: GET/PUT/DELETE. New prefixes get a range from the emulator's prefix pools;
//! the length must be 28–31; a prefix that still holds public IPs cannot be deleted.

use super::common::{check_preconditions, envelope, location_for};
use super::{delete_stored, get_stored, method_not_allowed, put_reply, render};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, resource_id};
use crate::lro;
use crate::state::State;
use crate::store::new_etag;
use serde_json::{Value, json};

/// ARM type of public IP prefixes.
pub(crate) const PREFIX_TYPE: &str = "Microsoft.Network/publicIPPrefixes";

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
        "publicIPPrefixes",
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
        "GET" => get_stored(state, &id, PREFIX_TYPE, &name, rg),
        "PUT" => put(state, req, &id, &name, op),
        "DELETE" => {
            let prefix_id = id.clone();
            delete_stored(state, req, &id, op, NETWORK, move |st| {
                let users = render::prefix_users(&st.store, &prefix_id);
                if users.is_empty() {
                    Ok(())
                } else {
                    Err(ArmError::bad_request(
                        "InUsePublicIpPrefixCannotBeDeleted",
                        format!(
                            "Public IP prefix {prefix_id} cannot be deleted because it has allocated IP addresses: {}.",
                            users.join(", ")
                        ),
                    ))
                }
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}

fn put(state: &mut State, req: &Req, id: &str, name: &str, op: &str) -> Result<Reply, ArmError> {
    let existing = state.store.get(id).cloned();
    check_preconditions(req, existing.as_ref())?;
    let body = req.json_object()?;
    let location = location_for(&body, existing.as_ref(), id)?;
    let len = body
        .pointer("/properties/prefixLength")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            ArmError::bad_request(
                "InvalidRequestFormat",
                format!(
                    "Cannot parse the request: public IP prefix {id} needs properties.prefixLength."
                ),
            )
        })?;
    if !(28..=31).contains(&len) {
        return Err(ArmError::bad_request(
            "SpecifiedPrefixLengthNotSupported",
            format!(
                "Specified PrefixLength {len} for PublicIpPrefix {id} is outside limits. Minimum PrefixLength 28 Maximum PrefixLength 31."
            ),
        ));
    }
    let version = body
        .pointer("/properties/publicIPAddressVersion")
        .and_then(Value::as_str)
        .unwrap_or("IPv4");
    if !version.eq_ignore_ascii_case("IPv4") {
        return Err(ArmError::bad_request(
            "InvalidRequestFormat",
            format!(
                "Cannot parse the request: publicIPAddressVersion '{version}' is not supported by the emulator (IPv4 only)."
            ),
        ));
    }
    let ip_prefix = match &existing {
        Some(e) => {
            let old_len = e
                .pointer("/properties/prefixLength")
                .and_then(Value::as_u64);
            if old_len != Some(len) {
                return Err(ArmError::bad_request(
                    "PublicIpPrefixLengthCannotBeChanged",
                    format!(
                        "The prefixLength of public IP prefix {id} cannot be changed from {} to {len}.",
                        old_len.unwrap_or_default()
                    ),
                ));
            }
            e.pointer("/properties/ipPrefix")
                .cloned()
                .unwrap_or_default()
        }
        None => json!(
            state
                .ipam
                .allocate_prefix(&state.store, len as u8)?
                .to_string()
        ),
    };
    let etag = new_etag();
    let mut v = envelope(&body, id, name, PREFIX_TYPE, &location, &etag);
    if !v.get("sku").is_some_and(Value::is_object) {
        v["sku"] = json!({"name": "Standard", "tier": "Regional"});
    }
    let p = &mut v["properties"];
    if let Some(o) = p.as_object_mut() {
        o.remove("publicIPAddresses");
    }
    p["prefixLength"] = json!(len);
    p["publicIPAddressVersion"] = json!("IPv4");
    p["ipPrefix"] = ip_prefix;
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

/// Stores a pre-existing (BYO) prefix from the seed.
pub(crate) fn seed_prefix(
    state: &mut State,
    rg: &str,
    name: &str,
    net: ipnet::Ipv4Net,
    tags: Value,
) -> Result<(), crate::error::EmulatorError> {
    if let Some(other) = crate::ipam::used_prefixes(&state.store)
        .into_iter()
        .find(|o| o.contains(&net.network()) || net.contains(&o.network()))
    {
        return Err(crate::error::EmulatorError::InvalidSeed(format!(
            "public IP prefix {name} ({net}) overlaps prefix {other}"
        )));
    }
    let id = resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "publicIPPrefixes",
        name,
    );
    state.store.put(json!({
        "id": id, "name": name, "type": PREFIX_TYPE, "location": state.settings.location,
        "etag": new_etag(), "tags": tags,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "prefixLength": net.prefix_len(), "publicIPAddressVersion": "IPv4",
            "ipPrefix": net.to_string(), "provisioningState": "Succeeded",
            "resourceGuid": uuid::Uuid::new_v4().to_string(),
        }
    }));
    Ok(())
}
