//! The IP family of a gateway ipConfig and of the prefix its public IPs come from. A gateway
//! has an IPv4 ipConfig `egressgateway-<VM config UID>` on every node and, with `IPv6` in
//! `ipFamilies`, an IPv6 one `egressgateway-<VM config UID>-ipv6` beside it; its managed
//! prefixes are named the same way.

use egress_api::constants::azure_resource_name;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4: the original's only family.
    #[default]
    V4,
    /// IPv6 (`ipFamilies: [IPv4, IPv6]`).
    V6,
}

/// Suffix of the IPv6 ipConfig and managed prefix names.
pub const IPV6_SUFFIX: &str = "-ipv6";

impl Family {
    /// `IPv4` / `IPv6`, as ARM spells `privateIPAddressVersion` and `publicIPAddressVersion`.
    pub fn version(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    /// Address bits (prefix capacities are `2^(bits - length)`).
    pub fn bits(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }

    /// The name of the gateway's ipConfig and managed prefix of this family.
    pub fn resource_name(self, vm_uid: &str) -> String {
        match self {
            Self::V4 => azure_resource_name(vm_uid),
            Self::V6 => format!("{}{IPV6_SUFFIX}", azure_resource_name(vm_uid)),
        }
    }

    /// Whether an ARM version string (absent: IPv4, the schema's default) is this family.
    pub fn is(self, version: Option<&str>) -> bool {
        version
            .unwrap_or("IPv4")
            .eq_ignore_ascii_case(self.version())
    }

    /// Addresses in a prefix of `length` (saturating).
    pub fn capacity(self, length: u8) -> u128 {
        let host_bits = self.bits().saturating_sub(length);
        1u128.checked_shl(u32::from(host_bits)).unwrap_or(u128::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_capacities() {
        assert_eq!(Family::V4.resource_name("u"), "egressgateway-u");
        assert_eq!(Family::V6.resource_name("u"), "egressgateway-u-ipv6");
        assert!(Family::V4.is(None) && Family::V6.is(Some("ipv6")) && !Family::V6.is(None));
        assert_eq!(Family::V4.capacity(31), 2);
        assert_eq!(Family::V6.capacity(124), 16);
        assert_eq!(Family::V6.capacity(0), u128::MAX);
    }
}
