//! The plan of one pool pass, as one value decided from what the pass observed (the pool, its
//! members, their prefixes as Azure has them) and nothing else: which gateways are blocked
//! and why, where each gateway's egress comes from (a prefix that fits, a managed prefix to
//! create, or private IPs), the load-balancer rules to have and to remove, the gateway
//! ipConfigs every NIC of the pool carries and the ones to remove, and the prefixes that go.
//!
//! A gateway is decided on its own: one bad spec blocks only itself. Two steps of apply can
//! still block a gateway (Azure refusing its managed prefix, no port left on the frontend);
//! [`PoolPlan::rules_to_have`] and [`PoolPlan::ip_configs_to_have`] then leave it out, as the
//! plan leaves out the gateways it blocked itself.

use std::collections::BTreeMap;

use egress_api::constants::azure_resource_name;
use egress_azure::ResourceId;
use egress_azure::models::PublicIpPrefix;

use crate::config::AzureSettings;
use crate::pool::error::{MemberError, PoolError};
use crate::pool::gateway_pool::{GatewayPool, PoolKind};
use crate::pool::plan::family::Family;
use crate::pool::plan::ipv6::{self, Ipv6Plan};
use crate::pool::plan::load_balancer::RuleWant;
use crate::pool::plan::members::Member;
use crate::pool::plan::prefixes::{self, PrefixInfo, PrefixNeed, PrefixTarget};
use crate::target::Egress;

/// What a pass read, and all its plan is decided from.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The pool as Azure has it.
    pub pool: GatewayPool,
    /// Its gateways, oldest LB configuration first.
    pub members: Vec<Member>,
    /// The prefix each gateway needs as Azure has it (`None`: not found), by LB configuration
    /// UID, for the prefixes [`prefixes_to_read`] lists.
    pub prefixes: BTreeMap<String, Option<PublicIpPrefix>>,
    /// The IPv6 prefix each dual-stack gateway needs as Azure has it, by LB configuration
    /// UID, for the prefixes [`ipv6::prefixes_to_read`] lists.
    pub prefixes6: BTreeMap<String, Option<PublicIpPrefix>>,
    /// The pool's nodes (instances or gateway NICs), when a public gateway needs the count.
    pub node_count: Option<usize>,
    /// The pool's subnet, read when a gateway wants IPv6 and found without an IPv6 range.
    pub subnet_without_ipv6: Option<String>,
}

/// Where a gateway's egress comes from in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressStep {
    /// The gateway nodes' secondary private IPs.
    Private,
    /// A prefix that exists and fits.
    Ready(PrefixInfo),
    /// The gateway's managed prefix, to create.
    Create(PrefixTarget),
}

/// A gateway ipConfig every NIC of the pool carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfigStep {
    /// The gateway (LB configuration UID).
    pub lb_uid: String,
    /// `egressgateway-<VM config UID>` (IPv6: with `-ipv6`).
    pub name: String,
    /// IPv4, or the IPv6 ipConfig of a dual-stack gateway.
    pub family: Family,
}

/// A gateway ipConfig to have, with the prefix its public IPs come from (none: private mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIpConfig {
    /// `egressgateway-<VM config UID>` (IPv6: with `-ipv6`).
    pub name: String,
    /// The gateway's prefix of this family (public mode).
    pub prefix: Option<PrefixInfo>,
    /// IPv4 or IPv6.
    pub family: Family,
}

/// A managed prefix no gateway uses any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedPrefix {
    /// The gateway it was made for (`namespace/name`), for logs.
    pub gateway: String,
    /// Its LB configuration UID.
    pub lb_uid: String,
    /// Its VM configuration UID (the prefix is `egressgateway-<vm_uid>`, IPv6 `...-ipv6`).
    pub vm_uid: String,
    /// The prefix's family.
    pub family: Family,
    /// Kept when apply blocks the gateway (it switched to BYO or private mode, but its new
    /// egress is not in place).
    pub unless_blocked: bool,
}

/// Everything a pass will do, decided before it does any of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolPlan {
    /// Gateways that get nothing new, by LB configuration UID, with the reason.
    pub blocked: BTreeMap<String, MemberError>,
    /// Where the egress of each gateway that gets an ipConfig comes from, by LB config UID.
    pub egress: BTreeMap<String, EgressStep>,
    /// Load-balancer rules to have, in port-allocation order (oldest first).
    pub rules: Vec<RuleWant>,
    /// Rules (and probes) of removed gateways, by LB configuration UID.
    pub remove_rules: Vec<String>,
    /// Gateway ipConfigs every NIC of the pool carries.
    pub ip_configs: Vec<IpConfigStep>,
    /// ipConfig names of gateways being removed.
    pub remove_ip_configs: Vec<String>,
    /// VM pools: BYO prefixes of removed gateways, searched for our per-NIC public IPs.
    pub removed_byo_prefixes: Vec<ResourceId>,
    /// Managed prefixes (both families) to delete once the NICs released them.
    pub unused_prefixes: Vec<UnusedPrefix>,
    /// The IPv6 egress of dual-stack gateways.
    pub ipv6: Ipv6Plan,
}

/// What a gateway's egress needs: nothing to decide (`None`: being removed, or no VM
/// configuration yet), its invalid target, or a prefix need.
fn gateway_need(
    settings: &AzureSettings,
    pool: &GatewayPool,
    m: &Member,
) -> Option<Result<PrefixNeed, MemberError>> {
    if m.removing_lb {
        return None;
    }
    let target = match &m.target {
        Ok(t) => t,
        Err(e) => return Some(Err(e.clone().into())),
    };
    let vm_uid = m.live_vm_uid()?;
    Some(Ok(prefixes::need(settings, pool, vm_uid, target)))
}

/// The prefixes the pass reads before planning: `(LB configuration UID, prefix ID)`.
pub fn prefixes_to_read(
    settings: &AzureSettings,
    pool: &GatewayPool,
    members: &[Member],
) -> Vec<(String, ResourceId)> {
    members
        .iter()
        .filter_map(|m| match gateway_need(settings, pool, m)? {
            Ok(PrefixNeed::Prefix(t)) => Some((m.lb_uid.clone(), t.id)),
            _ => None,
        })
        .collect()
}

/// Plans the pass. Fails only when a prefix the pass needs has no address range yet.
pub fn plan(settings: &AzureSettings, observed: &Observed) -> Result<PoolPlan, PoolError> {
    let (blocked, egress) = plan_egress(settings, observed)?;
    let members = &observed.members;
    let is_blocked = |m: &Member| blocked.contains_key(&m.lb_uid);
    let removing_vm = || members.iter().filter(|m| m.removing_vm);
    let rules = members
        .iter()
        .filter(|m| !m.removing_lb && !is_blocked(m))
        .map(|m| RuleWant {
            lb_uid: m.lb_uid.clone(),
            sgc_uid: m.sgc_uid.clone(),
        })
        .collect();
    let ipv6 = ipv6::plan(settings, observed, &blocked, &egress)?;
    // Each gateway's IPv6 ipConfig right after its IPv4 one.
    let ip_configs = members
        .iter()
        .filter(|m| !m.removing_vm && egress.contains_key(&m.lb_uid) && !is_blocked(m))
        .filter_map(|m| Some((m, m.vm_uid.as_deref()?)))
        .flat_map(|(m, vm_uid)| {
            let v6 = ipv6.egress.contains_key(&m.lb_uid).then_some(Family::V6);
            std::iter::once(Family::V4)
                .chain(v6)
                .map(move |family| IpConfigStep {
                    lb_uid: m.lb_uid.clone(),
                    name: family.resource_name(vm_uid),
                    family,
                })
        })
        .collect();
    let removed_byo_prefixes = match observed.pool.kind {
        // Only VM pools name public IPs after their prefix: a scale set's go with its ipConfigs.
        PoolKind::Vms { .. } => removing_vm()
            .filter_map(byo_prefix)
            .chain(ipv6.removed_byo_prefixes.iter().cloned())
            .collect(),
        PoolKind::ScaleSet { .. } => Vec::new(),
    };
    let unused_prefixes = members
        .iter()
        .filter_map(|m| unused_prefix(m, is_blocked(m)))
        .chain(ipv6.unused_prefixes.iter().cloned())
        .collect();
    let remove_ip_configs = removing_vm()
        .filter_map(|m| m.vm_uid.as_deref().map(azure_resource_name))
        .chain(ipv6.remove_ip_configs.iter().cloned())
        .collect();
    Ok(PoolPlan {
        rules,
        remove_rules: members
            .iter()
            .filter(|m| m.removing_lb)
            .map(|m| m.lb_uid.clone())
            .collect(),
        ip_configs,
        remove_ip_configs,
        removed_byo_prefixes,
        unused_prefixes,
        blocked,
        egress,
        ipv6,
    })
}

type EgressPlan = (BTreeMap<String, MemberError>, BTreeMap<String, EgressStep>);

/// Each gateway's egress, or why it is blocked.
fn plan_egress(settings: &AzureSettings, observed: &Observed) -> Result<EgressPlan, PoolError> {
    let mut blocked = BTreeMap::new();
    let mut egress = BTreeMap::new();
    // VM pools name per-NIC public IPs by prefix and NIC: one BYO prefix per gateway.
    let mut byo_users: BTreeMap<String, String> = BTreeMap::new();
    for m in &observed.members {
        let step = match gateway_need(settings, &observed.pool, m) {
            None => continue,
            Some(Err(e) | Ok(PrefixNeed::SizeUnknown(e))) => Err(e),
            Some(Ok(PrefixNeed::None)) => Ok(EgressStep::Private),
            Some(Ok(PrefixNeed::Prefix(t))) => {
                let found = observed.prefixes.get(&m.lb_uid).and_then(Option::as_ref);
                let length = t.length.unwrap_or(t.family.bits());
                match too_small(&t, length, &observed.pool, observed.node_count) {
                    Some(e) => Err(e),
                    None => prefix_step(t, found)?,
                }
            }
        };
        match step.and_then(|s| claim_byo(&mut byo_users, &observed.pool, m, s)) {
            Ok(s) => {
                egress.insert(m.lb_uid.clone(), s);
            }
            Err(e) => {
                blocked.insert(m.lb_uid.clone(), e);
            }
        }
    }
    Ok((blocked, egress))
}

/// A prefix of `length` cannot give every node of the pool an address: blocked with the
/// numbers (Azure would refuse the instance or NIC writes one by one, and the gateway would
/// look like it is still provisioning).
pub(crate) fn too_small(
    target: &PrefixTarget,
    length: u8,
    pool: &GatewayPool,
    nodes: Option<usize>,
) -> Option<MemberError> {
    let nodes = nodes?;
    let family = target.family;
    let capacity = family.capacity(length);
    (nodes as u128 > capacity).then(|| {
        let needed = (0..=family.bits())
            .rev()
            .find(|l| family.capacity(*l) >= nodes as u128)
            .unwrap_or(0);
        MemberError::PrefixTooSmall {
            id: target.id.to_string(),
            length,
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            pool: pool.describe(),
            nodes,
            unit: pool.unit(),
            needed,
        }
    })
}

/// A prefix the gateway needs, as Azure has it: create it (managed), use it, or block.
pub(crate) fn prefix_step(
    target: PrefixTarget,
    found: Option<&PublicIpPrefix>,
) -> Result<Result<EgressStep, MemberError>, PoolError> {
    Ok(match found {
        None if target.managed => Ok(EgressStep::Create(target)),
        None => Err(MemberError::PrefixNotFound {
            id: target.id.to_string(),
        }),
        Some(p) => prefixes::check(p, &target)?.map(EgressStep::Ready),
    })
}

/// In a VM pool, the first gateway (oldest first) with a usable BYO prefix keeps it; a later
/// one naming the same prefix is blocked.
fn claim_byo(
    users: &mut BTreeMap<String, String>,
    pool: &GatewayPool,
    m: &Member,
    step: EgressStep,
) -> Result<EgressStep, MemberError> {
    match byo_prefix(m) {
        Some(id) => claim(users, pool, m, &id).map(|()| step),
        None => Ok(step),
    }
}

/// In a VM pool, BYO prefix `id` (either family) goes to the first gateway claiming it, here
/// `m`, unless an earlier one (`users`, by lower-cased ID) holds it: their per-NIC public IPs
/// would have the same names. Scale-set pools share prefixes freely.
pub(crate) fn claim(
    users: &mut BTreeMap<String, String>,
    pool: &GatewayPool,
    m: &Member,
    id: &ResourceId,
) -> Result<(), MemberError> {
    let PoolKind::Vms { name, .. } = &pool.kind else {
        return Ok(());
    };
    let lower = id.to_string().to_ascii_lowercase();
    if let Some(other) = users.get(&lower) {
        return Err(MemberError::PrefixShared {
            id: id.to_string(),
            other: other.clone(),
            pool: name.clone(),
        });
    }
    users.insert(lower, m.key());
    Ok(())
}

fn byo_prefix(m: &Member) -> Option<ResourceId> {
    match &m.target {
        Ok(t) => match &t.egress {
            Egress::ByoPrefix(id) => Some(id.clone()),
            _ => None,
        },
        Err(_) => None,
    }
}

/// The gateway's managed prefix, when nothing uses it any more: the gateway is removed, or in
/// BYO or private mode (unless blocked: its new egress is not in place yet).
fn unused_prefix(m: &Member, blocked: bool) -> Option<UnusedPrefix> {
    let vm_uid = m.vm_uid.clone()?;
    let switched = matches!(&m.target, Ok(t) if t.egress != Egress::ManagedPrefix);
    (m.removing_vm || switched && !blocked).then(|| UnusedPrefix {
        gateway: m.key(),
        lb_uid: m.lb_uid.clone(),
        vm_uid,
        family: Family::V4,
        unless_blocked: !m.removing_vm,
    })
}

impl PoolPlan {
    /// The rules to write, leaving out gateways apply has `blocked` so far.
    pub fn rules_to_have(&self, blocked: &BTreeMap<String, MemberError>) -> Vec<RuleWant> {
        self.rules
            .iter()
            .filter(|r| !blocked.contains_key(&r.lb_uid))
            .cloned()
            .collect()
    }

    /// The gateway ipConfigs to write, with the prefixes apply ensured (`egress`, and
    /// `egress6` for IPv6), leaving out gateways apply has `blocked` (and IPv6 ipConfigs of
    /// gateways whose IPv6 egress it has `blocked6`).
    pub fn ip_configs_to_have(
        &self,
        egress: &BTreeMap<String, Option<PrefixInfo>>,
        egress6: &BTreeMap<String, Option<PrefixInfo>>,
        blocked: &BTreeMap<String, MemberError>,
        blocked6: &BTreeMap<String, MemberError>,
    ) -> Vec<GatewayIpConfig> {
        self.ip_configs
            .iter()
            .filter(|c| !blocked.contains_key(&c.lb_uid))
            .filter(|c| c.family == Family::V4 || !blocked6.contains_key(&c.lb_uid))
            .filter_map(|c| {
                let egress = match c.family {
                    Family::V4 => egress,
                    Family::V6 => egress6,
                };
                Some(GatewayIpConfig {
                    name: c.name.clone(),
                    prefix: egress.get(&c.lb_uid)?.clone(),
                    family: c.family,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "pass_tests.rs"]
mod tests;
