//! Public IP prefixes: PUT (a range from the emulator's prefix pools of its version; length
//! 28–31 for IPv4, 124–127 for IPv6; Standard SKU only) and the DELETE guard (a prefix that still holds public IPs cannot be deleted).

use super::common::{check_preconditions, envelope, location_for, standard_sku};
use super::ip_version::IpVersion;
use super::render;
use super::top_level::{Resolved, store_write};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, resource_id};
use crate::schema;
use crate::state::State;
use crate::store::new_etag;
use serde_json::{Value, json};

/// ARM type of public IP prefixes.
pub(crate) const PREFIX_TYPE: &str = "Microsoft.Network/publicIPPrefixes";

/// `PublicIPPrefixes.Delete` guard: a prefix that still holds public IPs cannot be deleted.
pub(crate) fn delete_guard(state: &State, r: &Resolved) -> Result<(), ArmError> {
    let users = render::prefix_users(&state.store, &r.id);
    if users.is_empty() {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "InUsePublicIpPrefixCannotBeDeleted",
        format!(
            "Public IP prefix {} cannot be deleted because it has allocated IP addresses: {}.",
            r.id,
            users.join(", ")
        ),
    ))
}

/// The SKU of a prefix: Standard (the default) or StandardV2; `Basic` is not a prefix SKU, so
/// the Network provider fails to parse it.
fn sku(v: &mut Value) -> Result<(), ArmError> {
    let name = standard_sku(v);
    if !["Standard", "StandardV2"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&name))
    {
        return Err(ArmError::bad_request("InvalidRequestFormat", "Cannot parse the request.")
            .with_detail(
                "InvalidJson",
                format!(
                    "Error converting value \"{name}\" to type 'PublicIpPrefixSkuName'. Path 'sku.name'. Public IP prefixes are Standard only."
                ),
            ));
    }
    Ok(())
}

/// `PublicIPPrefixes.CreateOrUpdate`.
pub(crate) fn put(state: &mut State, req: &Req, r: &Resolved, op: &str) -> Result<Reply, ArmError> {
    let (id, name) = (r.id.as_str(), r.name.as_str());
    let existing = r.existing.clone();
    check_preconditions(req, existing.as_ref())?;
    let mut body = req.json_object()?;
    schema::prune_request(PREFIX_TYPE, &mut body);
    sku(&mut body)?;
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
    let version = IpVersion::at(&body, "/properties/publicIPAddressVersion")?;
    let lengths = version.prefix_lengths();
    if !lengths.contains(&len) {
        return Err(ArmError::bad_request(
            "SpecifiedPrefixLengthNotSupported",
            format!(
                "Specified PrefixLength {len} for {} PublicIpPrefix {id} is outside limits. Minimum PrefixLength {} Maximum PrefixLength {}.",
                version.as_str(),
                lengths.start(),
                lengths.end()
            ),
        ));
    }
    if let Some(e) = &existing
        && IpVersion::at(e, "/properties/publicIPAddressVersion")? != version
    {
        return Err(ArmError::bad_request(
            "PublicIpPrefixVersionCannotBeChanged",
            format!("The publicIPAddressVersion of public IP prefix {id} cannot be changed."),
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
                .allocate_prefix(&state.store, len as u8, version == IpVersion::V6)?
                .to_string()
        ),
    };
    let etag = new_etag();
    let mut v = envelope(&body, id, name, PREFIX_TYPE, &location, &etag);
    let p = &mut v["properties"];
    p["prefixLength"] = json!(len);
    p["publicIPAddressVersion"] = json!(version.as_str());
    p["ipPrefix"] = ip_prefix;
    Ok(store_write(state, req, op, r, v))
}

/// Stores a pre-existing (BYO) prefix from the seed.
pub(crate) fn seed_prefix(
    state: &mut State,
    rg: &str,
    name: &str,
    net: ipnet::IpNet,
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
            "prefixLength": net.prefix_len(),
            "publicIPAddressVersion": IpVersion::of_net(net).as_str(),
            "ipPrefix": net.to_string(), "provisioningState": "Succeeded",
            "resourceGuid": uuid::Uuid::new_v4().to_string(),
        }
    }));
    Ok(())
}
