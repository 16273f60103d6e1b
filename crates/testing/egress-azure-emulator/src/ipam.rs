//! Address management: private IPs (IPv4 and IPv6) from subnets, public IP prefixes and
//! standalone public IPs (IPv4 and IPv6) from the emulator's public pools, public IPs inside a
//! prefix.
//!
//! Which addresses are in use is always computed from the store (so deleting a resource frees its
//! addresses without bookkeeping that could drift). Allocation is next-fit: it continues after the
//! last address handed out in a pool, so a freed address is reused only after the pool wraps.
//! Candidates are indexed arithmetically rather than listed, because an IPv6 subnet (/64) or
//! prefix pool (/48 carved into /124s) has far too many to enumerate.

use crate::error::ArmError;
use crate::ids::key;
use crate::store::{Store, walk_objects};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Pools and next-fit cursors.
#[derive(Debug, Clone)]
pub(crate) struct Ipam {
    cursors: BTreeMap<String, u128>,
    /// Ranges new (managed) public IP prefixes are carved from (IPv4 and IPv6).
    pub prefix_pools: Vec<IpNet>,
    /// Ranges standalone public IPs (no prefix) come from (IPv4 and IPv6).
    pub address_pools: Vec<IpNet>,
}

/// The address at `offset` from the start of `net` (the caller keeps `offset` inside it).
pub(crate) fn nth(net: IpNet, offset: u128) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(
            u32::from(n.network()).wrapping_add(offset as u32),
        )),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).wrapping_add(offset))),
    }
}

/// Number of addresses in `net` (saturating for an IPv6 /0, never used here).
pub(crate) fn size(net: IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// A pool of candidates addressed by index: `count` of them, the `i`-th from `nth`.
struct Candidates<F> {
    count: u128,
    nth: F,
}

impl Ipam {
    pub fn new(prefix_pools: Vec<IpNet>, address_pools: Vec<IpNet>) -> Self {
        Self {
            cursors: BTreeMap::new(),
            prefix_pools,
            address_pools,
        }
    }

    /// Picks the next free candidate after the pool's cursor. At most `max_tries` candidates
    /// are looked at: callers pass one more than the number of candidates that can be taken,
    /// so a free one is always found when it exists.
    fn next_fit<T: Copy, F: Fn(u128) -> T>(
        &mut self,
        pool: &str,
        c: &Candidates<F>,
        max_tries: u128,
        is_free: impl Fn(T) -> bool,
    ) -> Option<T> {
        let n = c.count;
        if n == 0 {
            return None;
        }
        let start = self.cursors.get(pool).map_or(0, |c| (c + 1) % n);
        for step in 0..n.min(max_tries) {
            let idx = (start + step) % n;
            let cand = (c.nth)(idx);
            if is_free(cand) {
                self.cursors.insert(pool.to_owned(), idx);
                return Some(cand);
            }
        }
        None
    }

    /// A dynamic private IP in `subnet` (of its family) not used by any stored resource except
    /// `exclude` (the resource being replaced) and not in `pending` (addresses taken earlier in
    /// this request).
    pub fn allocate_private(
        &mut self,
        store: &Store,
        subnet_id: &str,
        subnet: IpNet,
        exclude: &str,
        pending: &BTreeSet<IpAddr>,
    ) -> Result<IpAddr, ArmError> {
        let used = used_private(store, subnet_id, exclude);
        let hosts = usable_subnet_hosts(subnet);
        let tries = (used.len() + pending.len() + 1) as u128;
        self.next_fit(&pool_key(subnet_id, subnet), &hosts, tries, |a| {
            !used.contains(&a) && !pending.contains(&a)
        })
        .ok_or_else(|| {
            ArmError::bad_request(
                "SubnetIsFull",
                format!(
                    "Subnet {subnet_id} with address prefix {subnet} does not have enough capacity for 1 IP addresses."
                ),
            )
        })
    }

    /// Checks that a static private IP can be taken in `subnet`.
    pub fn check_static_private(
        store: &Store,
        subnet_id: &str,
        subnet: IpNet,
        addr: IpAddr,
        exclude: &str,
        pending: &BTreeSet<IpAddr>,
    ) -> Result<(), ArmError> {
        if !is_usable_subnet_host(subnet, addr) {
            return Err(ArmError::bad_request(
                "PrivateIPAddressNotInSubnet",
                format!(
                    "IP address {addr} does not belong to subnet {subnet_id} (usable range of {subnet})."
                ),
            ));
        }
        if used_private(store, subnet_id, exclude).contains(&addr) || pending.contains(&addr) {
            return Err(ArmError::bad_request(
                "PrivateIPAddressInUse",
                format!("IP address {addr} is already in use in subnet {subnet_id}."),
            ));
        }
        Ok(())
    }

    /// A free, aligned prefix of length `len` from the prefix pools of the family of `v6`.
    pub fn allocate_prefix(&mut self, store: &Store, len: u8, v6: bool) -> Result<IpNet, ArmError> {
        let taken = used_prefixes(store);
        let used_addrs = used_public(store, "");
        let pools: Vec<IpNet> = self
            .prefix_pools
            .iter()
            .copied()
            .filter(|p| matches!(p, IpNet::V6(_)) == v6 && p.prefix_len() <= len)
            .collect();
        // Each pool holds 2^(len - pool length) blocks, laid end to end.
        let per_pool: Vec<u128> = pools
            .iter()
            .map(|p| {
                1u128
                    .checked_shl(u32::from(len - p.prefix_len()))
                    .unwrap_or(u128::MAX)
            })
            .collect();
        let count = per_pool.iter().fold(0u128, |a, b| a.saturating_add(*b));
        let block = |i: u128| -> IpNet {
            let mut i = i;
            for (p, n) in pools.iter().zip(&per_pool) {
                if i < *n {
                    let step = size(IpNet::new(p.network(), len).unwrap_or(*p));
                    return IpNet::new(nth(*p, i.saturating_mul(step)), len).unwrap_or(*p);
                }
                i -= n;
            }
            pools[0]
        };
        // A taken prefix or address blocks at most the blocks it overlaps.
        let tries = taken
            .iter()
            .map(|t| {
                1u128
                    .checked_shl(u32::from(len.saturating_sub(t.prefix_len())))
                    .unwrap_or(u128::MAX)
            })
            .fold(used_addrs.len() as u128 + 1, u128::saturating_add);
        let c = Candidates { count, nth: block };
        let family = if v6 { "prefixes6" } else { "prefixes" };
        self.next_fit(family, &c, tries, |c| {
            !taken.iter().any(|t| overlaps(*t, c)) && !used_addrs.iter().any(|a| c.contains(a))
        })
        .ok_or_else(|| {
            ArmError::bad_request(
                "PublicIpPrefixAllocationFailed",
                format!(
                    "No free /{len} range is left in the emulator's {} public prefix pools ({}).",
                    if v6 { "IPv6" } else { "IPv4" },
                    join(&pools)
                ),
            )
        })
    }

    /// A free address inside a prefix, for a public IP that references it.
    pub fn allocate_in_prefix(
        &mut self,
        store: &Store,
        prefix_id: &str,
        prefix: IpNet,
        exclude: &str,
        pending: &BTreeSet<IpAddr>,
    ) -> Result<IpAddr, ArmError> {
        let used = used_public(store, exclude);
        let c = Candidates {
            count: size(prefix),
            nth: |i| nth(prefix, i),
        };
        let tries = (used.len() + pending.len() + 1) as u128;
        self.next_fit(&key(prefix_id), &c, tries, |a| {
            !used.contains(&a) && !pending.contains(&a)
        })
        .ok_or_else(|| {
            ArmError::bad_request(
                "PublicIpPrefixOutOfIpAddressesForPublicIp",
                format!(
                    "Public IP prefix {prefix_id} ({prefix}) has no free IP addresses left for a new public IP address."
                ),
            )
        })
    }

    /// A free standalone public IP (not in any prefix) of the family of `v6`.
    pub fn allocate_standalone(
        &mut self,
        store: &Store,
        exclude: &str,
        v6: bool,
    ) -> Result<IpAddr, ArmError> {
        let used = used_public(store, exclude);
        let prefixes = used_prefixes(store);
        let pools: Vec<IpNet> = self
            .address_pools
            .iter()
            .copied()
            .filter(|p| matches!(p, IpNet::V6(_)) == v6)
            .collect();
        // IPv4 pools skip their network and broadcast addresses, as `hosts()` does.
        let skip = u128::from(!v6);
        let per_pool: Vec<u128> = pools
            .iter()
            .map(|p| size(*p).saturating_sub(2 * skip).max(1))
            .collect();
        let count = per_pool.iter().fold(0u128, |a, b| a.saturating_add(*b));
        let addr = |i: u128| -> IpAddr {
            let mut i = i;
            for (p, n) in pools.iter().zip(&per_pool) {
                if i < *n {
                    return nth(*p, i + skip);
                }
                i -= n;
            }
            nth(pools[0], 0)
        };
        let tries = prefixes
            .iter()
            .map(|p| size(*p))
            .fold(used.len() as u128 + 1, u128::saturating_add);
        let c = Candidates { count, nth: addr };
        let family = if v6 { "standalone6" } else { "standalone" };
        self.next_fit(family, &c, tries, |a| {
            !used.contains(&a) && !prefixes.iter().any(|p| p.contains(&a))
        })
        .ok_or_else(|| {
            ArmError::bad_request(
                "PublicIPCountLimitReached",
                format!(
                    "No free address is left in the emulator's standalone {} public IP pools ({}).",
                    if v6 { "IPv6" } else { "IPv4" },
                    join(&pools)
                ),
            )
        })
    }
}

/// Cursor key of a subnet's pool: one per family, since a dual-stack subnet has two ranges.
fn pool_key(subnet_id: &str, subnet: IpNet) -> String {
    match subnet {
        IpNet::V4(_) => key(subnet_id),
        IpNet::V6(_) => format!("{}#v6", key(subnet_id)),
    }
}

fn join(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Azure reserves the first four addresses and the last one of every subnet (IPv6 too).
fn usable_subnet_hosts(net: IpNet) -> Candidates<impl Fn(u128) -> IpAddr> {
    Candidates {
        count: size(net).saturating_sub(5),
        nth: move |i| nth(net, i + 4),
    }
}

/// True when `addr` is one of the usable (not reserved) addresses of `net`.
fn is_usable_subnet_host(net: IpNet, addr: IpAddr) -> bool {
    let offset = match (net, addr) {
        (IpNet::V4(n), IpAddr::V4(a)) if n.contains(&a) => {
            u128::from(u32::from(a) - u32::from(n.network()))
        }
        (IpNet::V6(n), IpAddr::V6(a)) if n.contains(&a) => u128::from(a) - u128::from(n.network()),
        _ => return false,
    };
    offset >= 4 && offset < size(net).saturating_sub(1)
}

/// Private IPs in use in a subnet (either family): every object with
/// `properties.subnet.id == subnet` and a `properties.privateIPAddress` (NIC ipConfigurations,
/// LB frontends), outside `exclude`.
pub(crate) fn used_private(store: &Store, subnet_id: &str, exclude: &str) -> BTreeSet<IpAddr> {
    let subnet_key = key(subnet_id);
    let exclude = key(exclude);
    let mut used = BTreeSet::new();
    for res in store.all() {
        let id = key(crate::store::id_of(res));
        if !exclude.is_empty() && (id == exclude || id.starts_with(&format!("{exclude}/"))) {
            continue;
        }
        walk_objects(res, &mut |o| {
            let sub = o.pointer("/properties/subnet/id").and_then(Value::as_str);
            let ip = o
                .pointer("/properties/privateIPAddress")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok());
            if let (Some(sub), Some(ip)) = (sub, ip)
                && key(sub) == subnet_key
            {
                used.insert(ip);
            }
        });
    }
    used
}

/// Public IPs in use (all public IP address resources, prefix or not), outside `exclude`.
pub(crate) fn used_public(store: &Store, exclude: &str) -> BTreeSet<IpAddr> {
    let exclude = key(exclude);
    store
        .of_type("Microsoft.Network/publicIPAddresses")
        .filter(|v| exclude.is_empty() || key(crate::store::id_of(v)) != exclude)
        .filter_map(|v| v.pointer("/properties/ipAddress").and_then(Value::as_str))
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Ranges of all stored public IP prefixes (both families).
pub(crate) fn used_prefixes(store: &Store) -> Vec<IpNet> {
    store
        .of_type("Microsoft.Network/publicIPPrefixes")
        .filter_map(|v| v.pointer("/properties/ipPrefix").and_then(Value::as_str))
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_hosts_skip_azure_reserved_addresses() {
        let c = usable_subnet_hosts(net("10.0.0.0/29"));
        let hosts: Vec<IpAddr> = (0..c.count).map(|i| (c.nth)(i)).collect();
        assert_eq!(hosts, vec![ip("10.0.0.4"), ip("10.0.0.5"), ip("10.0.0.6")]);
        let v6 = net("fd00:10::/64");
        assert!(!is_usable_subnet_host(v6, ip("fd00:10::3")));
        assert!(is_usable_subnet_host(v6, ip("fd00:10::4")));
        assert!(!is_usable_subnet_host(
            v6,
            ip("fd00:10::ffff:ffff:ffff:ffff")
        ));
        assert!(
            !is_usable_subnet_host(v6, ip("10.0.0.4")),
            "family mismatch"
        );
    }

    #[test]
    fn next_fit_does_not_immediately_reuse_a_freed_address() {
        let store = Store::default();
        let mut ipam = Ipam::new(vec![], vec![]);
        let n = net("10.0.0.0/24");
        let none = BTreeSet::new();
        let a = ipam.allocate_private(&store, "/s", n, "", &none).unwrap();
        // `a` is not stored, so it is free again, but next-fit moves on.
        let b = ipam.allocate_private(&store, "/s", n, "", &none).unwrap();
        assert_eq!((a, b), (ip("10.0.0.4"), ip("10.0.0.5")));
    }

    #[test]
    fn ipv6_private_addresses_come_from_the_subnets_ipv6_range_with_their_own_cursor() {
        let store = Store::default();
        let mut ipam = Ipam::new(vec![], vec![]);
        let none = BTreeSet::new();
        let v4 = ipam
            .allocate_private(&store, "/s", net("10.0.0.0/24"), "", &none)
            .unwrap();
        let a = ipam
            .allocate_private(&store, "/s", net("fd00:10::/64"), "", &none)
            .unwrap();
        let pending = BTreeSet::from([a]);
        let b = ipam
            .allocate_private(&store, "/s", net("fd00:10::/64"), "", &pending)
            .unwrap();
        assert_eq!(v4, ip("10.0.0.4"));
        assert_eq!((a, b), (ip("fd00:10::4"), ip("fd00:10::5")));
    }

    #[test]
    fn full_subnet_is_reported() {
        let store = Store::default();
        let mut ipam = Ipam::new(vec![], vec![]);
        let n = net("10.0.0.0/29");
        let c = usable_subnet_hosts(n);
        let pending: BTreeSet<_> = (0..c.count).map(|i| (c.nth)(i)).collect();
        let err = ipam
            .allocate_private(&store, "/s", n, "", &pending)
            .unwrap_err();
        assert_eq!(err.code, "SubnetIsFull");
    }

    #[test]
    fn prefixes_are_carved_from_the_pool_of_their_family() {
        let store = Store::default();
        let mut ipam = Ipam::new(
            vec![net("203.0.113.0/24"), net("2001:db8:fffe::/48")],
            vec![net("198.51.100.0/24"), net("2001:db8:ffff::/64")],
        );
        assert_eq!(
            ipam.allocate_prefix(&store, 31, false).unwrap(),
            net("203.0.113.0/31")
        );
        assert_eq!(
            ipam.allocate_prefix(&store, 127, true).unwrap(),
            net("2001:db8:fffe::/127")
        );
        assert_eq!(
            ipam.allocate_prefix(&store, 124, true).unwrap(),
            net("2001:db8:fffe::10/124"),
            "next-fit moves on, aligned to the block size"
        );
        assert_eq!(
            ipam.allocate_standalone(&store, "", true).unwrap(),
            ip("2001:db8:ffff::")
        );
        assert_eq!(
            ipam.allocate_standalone(&store, "", false).unwrap(),
            ip("198.51.100.1")
        );
        let mut v4_only = Ipam::new(vec![net("203.0.113.0/24")], vec![]);
        let e = v4_only.allocate_prefix(&store, 126, true).unwrap_err();
        assert_eq!(e.code, "PublicIpPrefixAllocationFailed");
    }

    #[test]
    fn addresses_in_an_ipv6_prefix_are_all_usable_then_exhausted() {
        let store = Store::default();
        let mut ipam = Ipam::new(vec![], vec![]);
        let p = net("2001:db8:fffe::/127");
        let mut pending = BTreeSet::new();
        for want in ["2001:db8:fffe::", "2001:db8:fffe::1"] {
            let a = ipam
                .allocate_in_prefix(&store, "/p", p, "", &pending)
                .unwrap();
            assert_eq!(a, ip(want));
            pending.insert(a);
        }
        let e = ipam
            .allocate_in_prefix(&store, "/p", p, "", &pending)
            .unwrap_err();
        assert_eq!(e.code, "PublicIpPrefixOutOfIpAddressesForPublicIp");
    }
}
