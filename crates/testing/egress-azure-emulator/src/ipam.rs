//! Address management: private IPs from subnets, public IP prefixes from the emulator's public
//! pools, public IPs inside a prefix or from the standalone pool.
//!
//! Which addresses are in use is always computed from the store (so deleting a resource frees its
//! addresses without bookkeeping that could drift). Allocation is next-fit: it continues after the
//! last address handed out in a pool, so a freed address is reused only after the pool wraps.

use crate::error::ArmError;
use crate::ids::key;
use crate::store::{Store, walk_objects};
use ipnet::Ipv4Net;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Pools and next-fit cursors.
#[derive(Debug, Clone)]
pub(crate) struct Ipam {
    cursors: BTreeMap<String, u64>,
    /// Ranges new (managed) public IP prefixes are carved from.
    pub prefix_pools: Vec<Ipv4Net>,
    /// Ranges standalone public IPs (no prefix) come from.
    pub address_pools: Vec<Ipv4Net>,
}

impl Ipam {
    pub fn new(prefix_pools: Vec<Ipv4Net>, address_pools: Vec<Ipv4Net>) -> Self {
        Self {
            cursors: BTreeMap::new(),
            prefix_pools,
            address_pools,
        }
    }

    /// Picks the next free candidate after the pool's cursor.
    fn next_fit<T: Copy>(
        &mut self,
        pool: &str,
        candidates: &[T],
        is_free: impl Fn(T) -> bool,
    ) -> Option<T> {
        let n = candidates.len() as u64;
        if n == 0 {
            return None;
        }
        let start = self.cursors.get(pool).map_or(0, |c| (c + 1) % n);
        for step in 0..n {
            let idx = (start + step) % n;
            let cand = candidates[idx as usize];
            if is_free(cand) {
                self.cursors.insert(pool.to_owned(), idx);
                return Some(cand);
            }
        }
        None
    }

    /// A dynamic private IP in `subnet` not used by any stored resource except `exclude`
    /// (the resource being replaced) and not in `pending` (addresses taken earlier in this request).
    pub fn allocate_private(
        &mut self,
        store: &Store,
        subnet_id: &str,
        subnet: Ipv4Net,
        exclude: &str,
        pending: &BTreeSet<Ipv4Addr>,
    ) -> Result<Ipv4Addr, ArmError> {
        let used = used_private(store, subnet_id, exclude);
        let hosts = usable_subnet_hosts(subnet);
        self.next_fit(&key(subnet_id), &hosts, |a| {
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
        subnet: Ipv4Net,
        addr: Ipv4Addr,
        exclude: &str,
        pending: &BTreeSet<Ipv4Addr>,
    ) -> Result<(), ArmError> {
        if !usable_subnet_hosts(subnet).contains(&addr) {
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

    /// A free, aligned prefix of length `len` from the prefix pools.
    pub fn allocate_prefix(&mut self, store: &Store, len: u8) -> Result<Ipv4Net, ArmError> {
        let taken = used_prefixes(store);
        let used_addrs = used_public(store, "");
        let mut candidates = Vec::new();
        for pool in &self.prefix_pools {
            if let Ok(subnets) = pool.subnets(len) {
                candidates.extend(subnets);
            }
        }
        self.next_fit("prefixes", &candidates, |c| {
            !taken.iter().any(|t| overlaps(*t, c)) && !used_addrs.iter().any(|a| c.contains(a))
        })
        .ok_or_else(|| {
            ArmError::bad_request(
                "PublicIpPrefixAllocationFailed",
                format!(
                    "No free /{len} range is left in the emulator's public prefix pools ({}).",
                    join(&self.prefix_pools)
                ),
            )
        })
    }

    /// A free address inside a prefix, for a public IP that references it.
    pub fn allocate_in_prefix(
        &mut self,
        store: &Store,
        prefix_id: &str,
        prefix: Ipv4Net,
        exclude: &str,
        pending: &BTreeSet<Ipv4Addr>,
    ) -> Result<Ipv4Addr, ArmError> {
        let used = used_public(store, exclude);
        let hosts: Vec<Ipv4Addr> = all_addresses(prefix);
        self.next_fit(&key(prefix_id), &hosts, |a| {
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

    /// A free standalone public IP (not in any prefix).
    pub fn allocate_standalone(
        &mut self,
        store: &Store,
        exclude: &str,
    ) -> Result<Ipv4Addr, ArmError> {
        let used = used_public(store, exclude);
        let prefixes = used_prefixes(store);
        let mut candidates = Vec::new();
        for pool in &self.address_pools {
            candidates.extend(pool.hosts());
        }
        self.next_fit("standalone", &candidates, |a| {
            !used.contains(&a) && !prefixes.iter().any(|p| p.contains(&a))
        })
        .ok_or_else(|| {
            ArmError::bad_request(
                "PublicIPCountLimitReached",
                format!(
                    "No free address is left in the emulator's standalone public IP pools ({}).",
                    join(&self.address_pools)
                ),
            )
        })
    }
}

fn join(nets: &[Ipv4Net]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Every address of a network (prefixes: all of them are usable in Azure).
pub(crate) fn all_addresses(net: Ipv4Net) -> Vec<Ipv4Addr> {
    let start = u32::from(net.network());
    let end = u32::from(net.broadcast());
    (start..=end).map(Ipv4Addr::from).collect()
}

/// Azure reserves the first four addresses and the last one of every subnet.
pub(crate) fn usable_subnet_hosts(net: Ipv4Net) -> Vec<Ipv4Addr> {
    let start = u32::from(net.network()).saturating_add(4);
    let end = u32::from(net.broadcast());
    (start..end).map(Ipv4Addr::from).collect()
}

/// Private IPs in use in a subnet: every object with `properties.subnet.id == subnet` and a
/// `properties.privateIPAddress` (NIC ipConfigurations, LB frontends), outside `exclude`.
pub(crate) fn used_private(store: &Store, subnet_id: &str, exclude: &str) -> BTreeSet<Ipv4Addr> {
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
                .and_then(|s| s.parse::<Ipv4Addr>().ok());
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
pub(crate) fn used_public(store: &Store, exclude: &str) -> BTreeSet<Ipv4Addr> {
    let exclude = key(exclude);
    store
        .of_type("Microsoft.Network/publicIPAddresses")
        .filter(|v| exclude.is_empty() || key(crate::store::id_of(v)) != exclude)
        .filter_map(|v| v.pointer("/properties/ipAddress").and_then(Value::as_str))
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Ranges of all stored public IP prefixes.
pub(crate) fn used_prefixes(store: &Store) -> Vec<Ipv4Net> {
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

    #[test]
    fn subnet_hosts_skip_azure_reserved_addresses() {
        let hosts = usable_subnet_hosts("10.0.0.0/29".parse().unwrap());
        assert_eq!(
            hosts,
            vec![
                Ipv4Addr::new(10, 0, 0, 4),
                Ipv4Addr::new(10, 0, 0, 5),
                Ipv4Addr::new(10, 0, 0, 6)
            ]
        );
    }

    #[test]
    fn next_fit_does_not_immediately_reuse_a_freed_address() {
        let store = Store::default();
        let mut ipam = Ipam::new(vec![], vec![]);
        let net: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        let a = ipam
            .allocate_private(&store, "/s", net, "", &BTreeSet::new())
            .unwrap();
        // `a` is not stored, so it is free again, but next-fit moves on.
        let b = ipam
            .allocate_private(&store, "/s", net, "", &BTreeSet::new())
            .unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(b, Ipv4Addr::new(10, 0, 0, 5));
    }

    #[test]
    fn full_subnet_is_reported() {
        let store = Store::default();
        let mut ipam = Ipam::new(vec![], vec![]);
        let net: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let pending: BTreeSet<_> = usable_subnet_hosts(net).into_iter().collect();
        let err = ipam
            .allocate_private(&store, "/s", net, "", &pending)
            .unwrap_err();
        assert_eq!(err.code, "SubnetIsFull");
    }
}
