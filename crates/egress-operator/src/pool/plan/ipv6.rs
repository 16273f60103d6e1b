//! The IPv6 half of dual-stack gateways (`ipFamilies: [IPv4, IPv6]`), decided beside the IPv4
//! plan and after it: a gateway whose IPv4 egress is blocked gets nothing new for IPv6 either;
//! an IPv6 problem (a bad `publicIpv6PrefixId`, a missing or too small IPv6 prefix) blocks only
//! the IPv6 egress (`IPv6Ready=False`) while IPv4 goes on.
//!
//! IPv6 egress follows the IPv4 mode: private mode gives each node a private IPv6 secondary
//! ipConfig; public mode also gives it a public IP from the gateway's IPv6 prefix, managed
//! (`egressgateway-<VM config UID>-ipv6`, length `ipv6_prefix_len_for` of the IPv4 length, so
//! both prefixes hold as many addresses) or BYO (any length Azure offers that holds the pool).
//! Removing IPv6 from `ipFamilies` or the gateway removes the IPv6 ipConfigs and the managed
//! IPv6 prefix, never a BYO one. A gateway that never had IPv6 costs no request: its managed
//! IPv6 prefix is only looked for when its status shows IPv6 egress or its spec asks for it.

use std::collections::BTreeMap;

use egress_api::target::ipv6_prefix_len_for;
use egress_azure::ResourceId;

use crate::config::AzureSettings;
use crate::pool::error::{MemberError, PoolError};
use crate::pool::gateway_pool::{GatewayPool, PoolKind};
use crate::pool::plan::family::Family;
use crate::pool::plan::members::Member;
use crate::pool::plan::pass::{EgressStep, Observed, UnusedPrefix, prefix_step, too_small};
use crate::pool::plan::prefixes::{self, PrefixNeed, PrefixTarget};
use crate::target::Ipv6Egress;

/// The IPv6 part of a pass plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipv6Plan {
    /// Where each dual-stack gateway's IPv6 egress comes from, by LB configuration UID.
    pub egress: BTreeMap<String, EgressStep>,
    /// Gateways whose IPv6 egress is blocked (or whose `publicIpv6PrefixId` is not used), with
    /// why: the `IPv6Ready=False` condition.
    pub blocked: BTreeMap<String, MemberError>,
    /// IPv6 ipConfig names to remove: of removed gateways and of gateways without IPv6.
    pub remove_ip_configs: Vec<String>,
    /// Managed IPv6 prefixes no gateway uses any more.
    pub unused_prefixes: Vec<UnusedPrefix>,
    /// VM pools: BYO IPv6 prefixes of removed gateways, searched for our per-NIC public IPs.
    pub removed_byo_prefixes: Vec<ResourceId>,
}

/// What a gateway's IPv6 egress needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// No IPv6 egress.
    Off,
    /// Private IPv6 secondary IPs.
    Private,
    /// This IPv6 prefix.
    Prefix(PrefixTarget),
}

/// The IPv6 need of gateway `m` (live, with a VM configuration).
fn need(
    settings: &AzureSettings,
    pool: &GatewayPool,
    m: &Member,
    vm_uid: &str,
) -> Result<Need, MemberError> {
    let egress = m.ipv6.clone().map_err(MemberError::from)?;
    let target = |id, managed, length| {
        Need::Prefix(PrefixTarget {
            id,
            managed,
            length,
            family: Family::V6,
        })
    };
    Ok(match egress {
        Ipv6Egress::Off => Need::Off,
        Ipv6Egress::Private => Need::Private,
        Ipv6Egress::ByoPrefix(id) => target(id, false, None),
        Ipv6Egress::ManagedPrefix => {
            // The IPv4 prefix's length decides; without one the IPv4 side is blocked anyway.
            let Ok(v4) = &m.target else {
                return Ok(Need::Off);
            };
            match prefixes::need(settings, pool, vm_uid, v4) {
                PrefixNeed::Prefix(t) => target(
                    prefixes::managed_prefix_id(settings, vm_uid, Family::V6),
                    true,
                    t.length.map(ipv6_prefix_len_for),
                ),
                PrefixNeed::None | PrefixNeed::SizeUnknown(_) => Need::Off,
            }
        }
    })
}

/// Whether a live gateway of the pool wants IPv6 egress (then the pass reads the pool's
/// subnet, to check it has an IPv6 range).
pub fn wanted(members: &[Member]) -> bool {
    members.iter().any(|m| {
        m.live_vm_uid().is_some()
            && matches!(
                m.ipv6,
                Ok(Ipv6Egress::Private | Ipv6Egress::ManagedPrefix | Ipv6Egress::ByoPrefix(_))
            )
    })
}

/// The IPv6 prefixes the pass reads before planning: `(LB configuration UID, prefix ID)`.
pub fn prefixes_to_read(
    settings: &AzureSettings,
    pool: &GatewayPool,
    members: &[Member],
) -> Vec<(String, ResourceId)> {
    members
        .iter()
        .filter_map(|m| match need(settings, pool, m, m.live_vm_uid()?) {
            Ok(Need::Prefix(t)) => Some((m.lb_uid.clone(), t.id)),
            _ => None,
        })
        .collect()
}

/// Whether the gateway's status shows IPv6 egress (so a managed IPv6 prefix may exist).
pub fn had_ipv6(m: &Member) -> bool {
    m.vm.as_ref()
        .and_then(|v| v.status.as_ref())
        .is_some_and(|s| {
            s.egress_ipv6_prefix.is_some()
                || s.gateway_vm_profiles
                    .iter()
                    .flatten()
                    .any(|p| p.secondary_ipv6.is_some())
        })
}

fn unused(m: &Member, vm_uid: &str, unless_blocked: bool) -> UnusedPrefix {
    UnusedPrefix {
        gateway: m.key(),
        lb_uid: m.lb_uid.clone(),
        vm_uid: vm_uid.to_string(),
        family: Family::V6,
        unless_blocked,
    }
}

/// Plans the IPv6 half, given the IPv4 plan's `blocked` gateways and `egress`.
pub fn plan(
    settings: &AzureSettings,
    observed: &Observed,
    blocked: &BTreeMap<String, MemberError>,
    egress: &BTreeMap<String, EgressStep>,
) -> Result<Ipv6Plan, PoolError> {
    let mut out = Ipv6Plan::default();
    // VM pools name per-NIC public IPs by prefix and NIC: one BYO IPv6 prefix per gateway.
    let mut byo_users: BTreeMap<String, String> = BTreeMap::new();
    for m in &observed.members {
        let Some(vm_uid) = m.vm_uid.as_deref() else {
            continue;
        };
        let name = Family::V6.resource_name(vm_uid);
        if m.removing_vm {
            out.remove_ip_configs.push(name);
            if had_ipv6(m) || m.lb.spec.target.ipv6() {
                out.unused_prefixes.push(unused(m, vm_uid, false));
            }
            // VM pools: the BYO IPv6 prefix is searched for our per-NIC public IPs, as the
            // IPv4 one is.
            if let (PoolKind::Vms { .. }, Ok(Ipv6Egress::ByoPrefix(id))) =
                (&observed.pool.kind, &m.ipv6)
            {
                out.removed_byo_prefixes.push(id.clone());
            }
            continue;
        }
        let wanted = m.lb.spec.target.ipv6();
        match need(settings, &observed.pool, m, vm_uid) {
            // IPv6 not wanted (a `publicIpv6PrefixId` without it is reported, not used).
            Err(e) if !wanted => {
                out.blocked.insert(m.lb_uid.clone(), e);
                out.off(m, vm_uid, name);
            }
            Ok(Need::Off) => out.off(m, vm_uid, name),
            Err(e) => {
                out.blocked.insert(m.lb_uid.clone(), e);
            }
            // The IPv4 side gets nothing new: neither does IPv6.
            Ok(_) if blocked.contains_key(&m.lb_uid) || !egress.contains_key(&m.lb_uid) => {}
            Ok(_) if observed.subnet_without_ipv6.is_some() => {
                let subnet = observed.subnet_without_ipv6.clone().unwrap_or_default();
                out.blocked
                    .insert(m.lb_uid.clone(), MemberError::SubnetWithoutIpv6 { subnet });
            }
            Ok(Need::Private) => {
                out.egress.insert(m.lb_uid.clone(), EgressStep::Private);
                out.unused_prefixes.push(unused(m, vm_uid, true));
            }
            Ok(Need::Prefix(t)) => {
                let managed = t.managed;
                // A BYO IPv6 prefix is claimed before it is read, as the IPv4 one is after.
                let claimed = if managed {
                    Ok(())
                } else {
                    super::pass::claim(&mut byo_users, &observed.pool, m, &t.id)
                };
                let step = match claimed {
                    Err(e) => Err(e),
                    Ok(()) => prefix(observed, m, t)?,
                };
                match step {
                    Ok(step) => {
                        out.egress.insert(m.lb_uid.clone(), step);
                        if !managed {
                            out.unused_prefixes.push(unused(m, vm_uid, true));
                        }
                    }
                    Err(e) => {
                        out.blocked.insert(m.lb_uid.clone(), e);
                    }
                }
            }
        }
    }
    Ok(out)
}

impl Ipv6Plan {
    /// Gateway `m` has no IPv6: its IPv6 ipConfig goes, and its managed IPv6 prefix if its
    /// status shows it had IPv6 egress.
    fn off(&mut self, m: &Member, vm_uid: &str, name: String) {
        self.remove_ip_configs.push(name);
        if had_ipv6(m) {
            self.unused_prefixes.push(unused(m, vm_uid, false));
        }
    }
}

/// The IPv6 prefix step of gateway `m`: create (managed), use, or block when it does not
/// exist (BYO), is not IPv6, has the wrong length (managed) or holds fewer addresses than the
/// pool has nodes.
fn prefix(
    observed: &Observed,
    m: &Member,
    target: PrefixTarget,
) -> Result<Result<EgressStep, MemberError>, PoolError> {
    let found = observed.prefixes6.get(&m.lb_uid).and_then(Option::as_ref);
    let found_is_v6 =
        found.is_some_and(|p| Family::V6.is(p.properties.public_ip_address_version.as_deref()));
    // A BYO prefix may have any length Azure offers: its own must hold the pool.
    let length = match (target.length, found) {
        (Some(l), _) => Some(l),
        (None, Some(p)) if found_is_v6 => p.properties.prefix_length,
        (None, _) => None,
    };
    if let Some(e) = length.and_then(|l| too_small(&target, l, &observed.pool, observed.node_count))
    {
        return Ok(Err(e));
    }
    prefix_step(target, found)
}

#[cfg(test)]
#[path = "ipv6_tests.rs"]
mod tests;
