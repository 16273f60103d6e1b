//! Public IP addresses: PUT (an address referencing a prefix gets a free address in it, and
//! has the prefix's IP version; others come from the standalone pool of their version; Standard SKU, static allocation, idle timeout 4–30) and the
//! DELETE guard (an address still attached cannot be deleted). The SKU and idle-timeout rules
//! also apply to the public IPs of scale-set NIC configurations (`instance_nics`).

use super::common::{check_preconditions, envelope, invalid_reference, location_for, ref_at};
use super::ip_version::{IpVersion, check_public_matches_prefix};
use super::render;
use super::top_level::{Resolved, store_write};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, ParsedId, key};
use crate::schema;
use crate::state::State;
use crate::store::new_etag;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// ARM type of public IP addresses.
pub(crate) const PIP_TYPE: &str = "Microsoft.Network/publicIPAddresses";

/// Idle timeout of public IPs: 4–30 minutes.
pub(crate) const PIP_IDLE_TIMEOUT: std::ops::RangeInclusive<u64> = 4..=30;

/// `PublicIPAddresses.Delete` guard.
pub(crate) fn delete_guard(state: &State, r: &Resolved) -> Result<(), ArmError> {
    match render::pip_users(&state.store, &r.id).first() {
        None => Ok(()),
        Some(user) => Err(ArmError::bad_request(
            "PublicIPAddressCannotBeDeleted",
            format!(
                "Public IP address {} can not be deleted since it is still allocated to resource {user}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.",
                r.id
            ),
        )),
    }
}

/// Resolves a prefix reference to (id, range), or `InvalidResourceReference`.
pub(crate) fn prefix_range(
    state: &State,
    prefix_ref: &str,
    by: &str,
) -> Result<(String, ipnet::IpNet), ArmError> {
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

/// The SKU and idle-timeout rules of a public IP (`sku` and `properties` of a public IP or of
/// a scale-set `publicIPAddressConfiguration`). Without a SKU Azure creates Basic, and Basic
/// public IPs were retired on 30 September 2025: new subscriptions have a quota of 0.
pub(crate) fn check_sku_and_timeout(
    sku: Option<&Value>,
    props: &Value,
    owner: &str,
) -> Result<(), ArmError> {
    let name = sku
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Basic");
    if name.eq_ignore_ascii_case("Basic") {
        return Err(ArmError::bad_request(
            "IPv4BasicSkuPublicIpCountLimitReached",
            format!(
                "Cannot create more than 0 IPv4 Basic SKU public IP addresses for this subscription in this region ({owner} has no SKU or the Basic SKU; use Standard)."
            ),
        ));
    }
    if let Some(t) = props.get("idleTimeoutInMinutes")
        && !t.as_u64().is_some_and(|t| PIP_IDLE_TIMEOUT.contains(&t))
    {
        return Err(ArmError::bad_request(
            "PublicIPAddressInvalidIdleTimeout",
            format!(
                "Public IP address {owner} has invalid Idle Timeout. The value must be between {} and {}.",
                PIP_IDLE_TIMEOUT.start(),
                PIP_IDLE_TIMEOUT.end()
            ),
        ));
    }
    Ok(())
}

/// Standard public IPs are static; the default follows.
fn allocation(v: &mut Value, id: &str) -> Result<(), ArmError> {
    let p = &mut v["properties"];
    match p.get("publicIPAllocationMethod").and_then(Value::as_str) {
        None => p["publicIPAllocationMethod"] = json!("Static"),
        Some(m) if m.eq_ignore_ascii_case("Static") => {
            p["publicIPAllocationMethod"] = json!("Static")
        }
        Some(_) => {
            return Err(ArmError::bad_request(
                "StandardSkuPublicIPAddressesMustBeStatic",
                format!("Standard sku publicIp {id} must have AllocationMethod set to Static."),
            ));
        }
    }
    Ok(())
}

fn address(
    state: &mut State,
    r: &Resolved,
    prefix_ref: Option<&str>,
    version: IpVersion,
) -> Result<Value, ArmError> {
    let id = r.id.as_str();
    if let Some(e) = &r.existing {
        let old_prefix = ref_at(e, "/properties/publicIPPrefix/id");
        if prefix_ref.map(key) != old_prefix.as_deref().map(key) {
            return Err(ArmError::bad_request(
                "PublicIPAddressPrefixCannotBeChanged",
                format!("The publicIPPrefix of public IP address {id} cannot be changed."),
            ));
        }
        return Ok(e
            .pointer("/properties/ipAddress")
            .cloned()
            .unwrap_or_default());
    }
    let a = match prefix_ref {
        Some(pref) => {
            let (pid, net) = prefix_range(state, pref, id)?;
            check_public_matches_prefix(version, id, net, &pid)?;
            state
                .ipam
                .allocate_in_prefix(&state.store, &pid, net, id, &BTreeSet::new())?
        }
        None => state
            .ipam
            .allocate_standalone(&state.store, id, version == IpVersion::V6)?,
    };
    Ok(json!(a.to_string()))
}

/// `PublicIPAddresses.CreateOrUpdate`.
pub(crate) fn put(state: &mut State, req: &Req, r: &Resolved, op: &str) -> Result<Reply, ArmError> {
    let (id, name) = (r.id.as_str(), r.name.as_str());
    check_preconditions(req, r.existing.as_ref())?;
    let mut body = req.json_object()?;
    schema::prune_request(PIP_TYPE, &mut body);
    let location = location_for(&body, r.existing.as_ref(), id)?;
    check_sku_and_timeout(body.get("sku"), &body["properties"], id)?;
    let prefix_ref = ref_at(&body, "/properties/publicIPPrefix/id");
    let etag = new_etag();
    let mut v = envelope(&body, id, name, PIP_TYPE, &location, &etag);
    allocation(&mut v, id)?;
    let version = IpVersion::at(&body, "/properties/publicIPAddressVersion")?;
    if let Some(e) = &r.existing
        && IpVersion::at(e, "/properties/publicIPAddressVersion")? != version
    {
        return Err(ArmError::bad_request(
            "PublicIPAddressVersionCannotBeChanged",
            format!("The publicIPAddressVersion of public IP address {id} cannot be changed."),
        ));
    }
    let address = address(state, r, prefix_ref.as_deref(), version)?;
    let p = &mut v["properties"];
    if p.get("idleTimeoutInMinutes").is_none() {
        p["idleTimeoutInMinutes"] = json!(4);
    }
    p["publicIPAddressVersion"] = json!(version.as_str());
    p["ipAddress"] = address;
    Ok(store_write(state, req, op, r, v))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn basic_or_missing_sku_and_bad_timeouts_are_refused() {
        let std = json!({"name": "Standard"});
        assert!(check_sku_and_timeout(Some(&std), &json!({}), "p").is_ok());
        for (sku, props) in [
            (None, json!({})),
            (Some(json!({"name": "Basic"})), json!({})),
            (Some(std.clone()), json!({"idleTimeoutInMinutes": 3})),
            (Some(std.clone()), json!({"idleTimeoutInMinutes": 31})),
        ] {
            assert!(
                check_sku_and_timeout(sku.as_ref(), &props, "p").is_err(),
                "{sku:?} {props}"
            );
        }
        let e = check_sku_and_timeout(None, &json!({}), "p").unwrap_err();
        assert_eq!(e.code, "IPv4BasicSkuPublicIpCountLimitReached");
    }
}
