//! IP versions (IPv4 / IPv6) of ipConfigurations, public IPs and prefixes, and the rules ARM
//! applies between them: an IPv6 ipConfiguration needs a subnet with an IPv6 range and cannot
//! be primary; a public IP has its ipConfiguration's version and its prefix's version; prefix
//! lengths depend on the version. Codes and their sources: docs/azure-emulator.md.

use super::common::invalid_reference;
use crate::error::ArmError;
use crate::ids::ParsedId;
use crate::store::Store;
use ipnet::IpNet;
use serde_json::Value;
use std::ops::RangeInclusive;

/// Prefix lengths Azure offers for IPv4 public IP prefixes.
pub(crate) const IPV4_PREFIX_LENGTHS: RangeInclusive<u64> = 28..=31;
/// Prefix lengths Azure offers for IPv6 public IP prefixes.
pub(crate) const IPV6_PREFIX_LENGTHS: RangeInclusive<u64> = 124..=127;

/// `IPVersion` of the Network schema (`privateIPAddressVersion`, `publicIPAddressVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    /// The spelling ARM answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    /// The version of a network.
    pub fn of_net(net: IpNet) -> Self {
        match net {
            IpNet::V4(_) => Self::V4,
            IpNet::V6(_) => Self::V6,
        }
    }

    /// Prefix lengths a public IP prefix of this version may have.
    pub fn prefix_lengths(self) -> RangeInclusive<u64> {
        match self {
            Self::V4 => IPV4_PREFIX_LENGTHS,
            Self::V6 => IPV6_PREFIX_LENGTHS,
        }
    }

    /// The version at `pointer` in `v` (absent: IPv4, the schema's default). Another value is
    /// outside the enum, which the Network provider fails to parse.
    pub fn at(v: &Value, pointer: &str) -> Result<Self, ArmError> {
        match v.pointer(pointer).and_then(Value::as_str) {
            None => Ok(Self::V4),
            Some(s) if s.eq_ignore_ascii_case("IPv4") => Ok(Self::V4),
            Some(s) if s.eq_ignore_ascii_case("IPv6") => Ok(Self::V6),
            Some(s) => Err(ArmError::bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request.",
            )
            .with_detail(
                "InvalidJson",
                format!(
                    "Error converting value \"{s}\" to type 'IPVersion'. Path '{}'.",
                    pointer.trim_start_matches('/').replace('/', ".")
                ),
            )),
        }
    }
}

/// The ranges of a subnet: `addressPrefix` and `addressPrefixes` (dual-stack subnets).
fn subnet_ranges(subnet: &Value) -> Vec<IpNet> {
    let single = subnet.pointer("/properties/addressPrefix");
    let many = subnet
        .pointer("/properties/addressPrefixes")
        .and_then(Value::as_array);
    let mut out: Vec<IpNet> = single
        .into_iter()
        .chain(many.into_iter().flatten())
        .filter_map(Value::as_str)
        .filter_map(|s| s.parse().ok())
        .collect();
    out.dedup();
    out
}

/// Looks up a subnet by ID and returns its ID and its range of `version`:
/// `InvalidResourceReference` when it does not exist, `SubnetDoesNotHaveIPv6AddressPrefix` when
/// an IPv6 ipConfiguration names a subnet without an IPv6 range.
pub(crate) fn subnet_range(
    store: &Store,
    subnet_id: &str,
    by: &str,
    version: IpVersion,
) -> Result<(String, IpNet), ArmError> {
    let subnet = store
        .get(subnet_id)
        .filter(|_| {
            ParsedId::parse(subnet_id)
                .is_some_and(|p| p.is_kind(crate::ids::NETWORK, &["virtualNetworks", "subnets"]))
        })
        .ok_or_else(|| invalid_reference(subnet_id, by))?;
    let ranges = subnet_ranges(subnet);
    let id = crate::store::id_of(subnet).to_owned();
    match ranges.iter().find(|n| IpVersion::of_net(**n) == version) {
        Some(n) => Ok((id, *n)),
        None if version == IpVersion::V6 => Err(ArmError::bad_request(
            "SubnetDoesNotHaveIPv6AddressPrefix",
            format!(
                "IP configuration {by} has privateIPAddressVersion IPv6, but subnet {id} has no IPv6 address prefix ({}). Add an IPv6 range to the subnet's addressPrefixes first.",
                ranges
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Err(invalid_reference(subnet_id, by)),
    }
}

/// An IPv6 ipConfiguration cannot be the primary one (the primary carries the NIC's IPv4).
pub(crate) fn check_primary(version: IpVersion, primary: bool, by: &str) -> Result<(), ArmError> {
    if version == IpVersion::V6 && primary {
        return Err(ArmError::bad_request(
            "IPv6IpConfigurationCannotBePrimary",
            format!(
                "IP configuration {by} has privateIPAddressVersion IPv6 and is primary; the primary IP configuration of a network interface must be IPv4."
            ),
        ));
    }
    Ok(())
}

/// A public IP has the version of the ipConfiguration it is attached to.
pub(crate) fn check_public_matches_config(
    public: IpVersion,
    public_id: &str,
    config: IpVersion,
    config_id: &str,
) -> Result<(), ArmError> {
    if public != config {
        return Err(ArmError::bad_request(
            "IPVersionForPublicIpAndNicIpConfigurationMustMatch",
            format!(
                "IP version for publicIPAddress '{public_id}', version '{}' and network interface ipConfiguration '{config_id}', version '{}' must match.",
                public.as_str(),
                config.as_str()
            ),
        ));
    }
    Ok(())
}

/// A public IP taken from a prefix has the prefix's version.
pub(crate) fn check_public_matches_prefix(
    public: IpVersion,
    public_id: &str,
    prefix: IpNet,
    prefix_id: &str,
) -> Result<(), ArmError> {
    let pv = IpVersion::of_net(prefix);
    if public != pv {
        return Err(ArmError::bad_request(
            "PublicIPAddressVersionDoesNotMatchPublicIPPrefix",
            format!(
                "Public IP address {public_id} has publicIPAddressVersion {} but its public IP prefix {prefix_id} ({prefix}) is {}; they must match.",
                public.as_str(),
                pv.as_str()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    const SUBNET: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/";

    fn store() -> Store {
        let mut s = Store::default();
        s.put(json!({"id": format!("{SUBNET}v4"), "name": "v4",
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": {"addressPrefix": "10.0.0.0/24"}}));
        s.put(json!({"id": format!("{SUBNET}ds"), "name": "ds",
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": {"addressPrefix": "10.1.0.0/24", "addressPrefixes": ["10.1.0.0/24", "fd00:1::/64"]}}));
        s
    }

    #[test]
    fn versions_parse_case_insensitively_default_to_ipv4_and_refuse_others() {
        let v = json!({"p": {"a": "ipv6", "b": "IPv4", "c": "IPv5"}});
        assert_eq!(IpVersion::at(&v, "/p/a").unwrap(), IpVersion::V6);
        assert_eq!(IpVersion::at(&v, "/p/b").unwrap(), IpVersion::V4);
        assert_eq!(IpVersion::at(&v, "/p/missing").unwrap(), IpVersion::V4);
        let e = IpVersion::at(&v, "/p/c").unwrap_err();
        assert_eq!(e.code, "InvalidRequestFormat");
    }

    #[test]
    fn an_ipv6_config_needs_a_subnet_with_an_ipv6_range() {
        let s = store();
        let (_, n) = subnet_range(&s, &format!("{SUBNET}ds"), "ipc", IpVersion::V6).unwrap();
        assert_eq!(n, "fd00:1::/64".parse::<IpNet>().unwrap());
        let (_, n) = subnet_range(&s, &format!("{SUBNET}ds"), "ipc", IpVersion::V4).unwrap();
        assert_eq!(n, "10.1.0.0/24".parse::<IpNet>().unwrap());
        let e = subnet_range(&s, &format!("{SUBNET}v4"), "ipc", IpVersion::V6).unwrap_err();
        assert_eq!(e.code, "SubnetDoesNotHaveIPv6AddressPrefix");
        assert!(e.message.contains("10.0.0.0/24"), "{}", e.message);
        let e = subnet_range(&s, &format!("{SUBNET}nope"), "ipc", IpVersion::V6).unwrap_err();
        assert_eq!(e.code, "InvalidResourceReference");
    }

    #[test]
    fn ipv6_primary_and_version_mismatches_are_refused() {
        assert!(check_primary(IpVersion::V6, false, "c").is_ok());
        assert!(check_primary(IpVersion::V4, true, "c").is_ok());
        let e = check_primary(IpVersion::V6, true, "c").unwrap_err();
        assert_eq!(e.code, "IPv6IpConfigurationCannotBePrimary");
        assert!(check_public_matches_config(IpVersion::V6, "p", IpVersion::V6, "c").is_ok());
        let e = check_public_matches_config(IpVersion::V6, "p", IpVersion::V4, "c").unwrap_err();
        assert_eq!(e.code, "IPVersionForPublicIpAndNicIpConfigurationMustMatch");
        let v6: IpNet = "2001:db8::/127".parse().unwrap();
        assert!(check_public_matches_prefix(IpVersion::V6, "p", v6, "x").is_ok());
        let e = check_public_matches_prefix(IpVersion::V4, "p", v6, "x").unwrap_err();
        assert_eq!(e.code, "PublicIPAddressVersionDoesNotMatchPublicIPPrefix");
    }
}
