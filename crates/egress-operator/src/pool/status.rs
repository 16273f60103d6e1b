//! Pure status of a pool pass, computed from what apply returned (ports, frontend IP,
//! prefixes, the IPs each NIC has), never from the plan: for each gateway, its LB and VM
//! configuration status and the pool's conditions on its SGC (`LoadBalancerReady`,
//! `PrefixReady`, `GatewayVMsReady`, and `IPv6Ready` for dual-stack gateways) with the SGC's
//! `egressIpv6Prefix`. Writing them is `apply::kubernetes`.

use egress_api::conditions::{LOAD_BALANCER_READY, PREFIX_READY};
use egress_api::constants::azure_resource_name;
use egress_api::{GatewayLBConfigurationStatus, GatewayVMConfigurationStatus, GatewayVMProfile};

use crate::pool::apply::{Applied, InstanceIps};
use crate::pool::error::{Affects, MemberError, PoolError};
use crate::pool::gateway_pool::GatewayPool;
use crate::pool::plan::family::Family;
use crate::pool::plan::members::Member;
use crate::pool::plan::prefixes::PrefixInfo;

/// The gateway VMs of the pool carry this gateway's ipConfig.
pub const GATEWAY_VMS_READY: &str = "GatewayVMsReady";
/// The IPv6 egress of a dual-stack gateway (`IPv6` in `ipFamilies`) is provisioned: True,
/// reason `IPv6Provisioned`; False with the reason (`InvalidPrefixId`, `PrefixNotFound`,
/// `PrefixTooSmall`, ...). Absent on gateways without IPv6. It does not change `Ready`: the
/// IPv4 egress works either way.
pub const IPV6_READY: &str = "IPv6Ready";

/// One pool-owned condition to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCondition {
    /// Condition type.
    pub type_: &'static str,
    /// Status True / False.
    pub ok: bool,
    /// PascalCase reason (also the Event reason when it changes).
    pub reason: String,
    /// Message.
    pub message: String,
}

impl PoolCondition {
    fn new(type_: &'static str, ok: bool, reason: &str, message: String) -> Self {
        Self {
            type_,
            ok,
            reason: reason.to_string(),
            message,
        }
    }
}

/// What a pass writes for one gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberStatus {
    /// The VM configuration's status, once the gateway has one.
    pub vm: Option<GatewayVMConfigurationStatus>,
    /// The LB configuration's status (none for a blocked gateway: left as it was).
    pub lb: Option<GatewayLBConfigurationStatus>,
    /// The pool's conditions on the SGC.
    pub conditions: Vec<PoolCondition>,
    /// The SGC's `egressIpv6Prefix` to write (`None`: leave it as it is).
    pub sgc_ipv6_prefix: Option<Option<String>>,
}

/// The status of gateway `m` after a pass; `None` when it is being removed (its objects are
/// released, not updated). `blocked` is why the plan or apply left it out, if they did;
/// `blocked6` why they left out (or did not use) its IPv6 egress.
pub fn of_member(
    m: &Member,
    blocked: Option<&MemberError>,
    blocked6: Option<&MemberError>,
    applied: &Applied,
    pool: &GatewayPool,
) -> Option<MemberStatus> {
    if m.removing_lb {
        return None;
    }
    Some(match blocked {
        Some(e) => MemberStatus {
            conditions: std::iter::once(blocked_condition(e))
                .chain(kept_ipv6_condition(m))
                .collect(),
            ..MemberStatus::default()
        },
        None => provisioned(m, blocked6, applied, pool),
    })
}

/// A blocked gateway gets nothing new, IPv6 included: its `IPv6Ready` stays as it was (while
/// IPv6 is still wanted).
fn kept_ipv6_condition(m: &Member) -> Option<PoolCondition> {
    if !m.lb.spec.target.ipv6() {
        return None;
    }
    let sgc = m.sgc.as_ref()?.status.as_ref()?;
    let c = sgc.conditions.iter().find(|c| c.type_ == IPV6_READY)?;
    Some(PoolCondition::new(
        IPV6_READY,
        c.status == "True",
        &c.reason,
        c.message.clone(),
    ))
}

/// The `False` condition a blocked gateway shows.
pub fn blocked_condition(e: &MemberError) -> PoolCondition {
    let type_ = match e.affects() {
        Affects::LoadBalancer => LOAD_BALANCER_READY,
        Affects::Prefix => PREFIX_READY,
    };
    PoolCondition::new(type_, false, e.reason(), e.to_string())
}

/// The condition of every gateway of a pool Azure does not have.
pub fn pool_not_found(e: &PoolError) -> PoolCondition {
    PoolCondition::new(
        LOAD_BALANCER_READY,
        false,
        "GatewayPoolNotFound",
        e.to_string(),
    )
}

fn provisioned(
    m: &Member,
    blocked6: Option<&MemberError>,
    applied: &Applied,
    pool: &GatewayPool,
) -> MemberStatus {
    let port = applied.lb.ports.get(&m.lb_uid).copied();
    let mut conditions = vec![match (&applied.lb.frontend_ip, port) {
        (Some(ip), Some(port)) => PoolCondition::new(
            LOAD_BALANCER_READY,
            true,
            "LoadBalancerRuleProvisioned",
            format!("gateway endpoint {ip}:{port}"),
        ),
        _ => PoolCondition::new(
            LOAD_BALANCER_READY,
            false,
            "Provisioning",
            "waiting for the load balancer frontend IP".into(),
        ),
    }];
    let vm_uid = m.live_vm_uid();
    let vm = vm_uid
        .zip(applied.egress.get(&m.lb_uid))
        .map(|(vm_uid, prefix)| {
            let (mut status, vm_conditions) =
                vm_status(vm_uid, prefix.as_ref(), &applied.nodes, pool);
            conditions.extend(vm_conditions);
            let egress6 = applied.egress6.get(&m.lb_uid);
            let ipv6 = match (egress6, blocked6) {
                _ if !m.lb.spec.target.ipv6() => Ipv6::Off,
                (Some(prefix6), None) => Ipv6::Applied(prefix6.as_ref()),
                (_, Some(_)) => Ipv6::Kept(m.vm.as_ref().and_then(|v| v.status.as_ref())),
                (None, None) => Ipv6::Off,
            };
            conditions.extend(ipv6_status(vm_uid, ipv6, &mut status, &applied.nodes, pool));
            status
        });
    conditions
        .extend(blocked6.map(|e| PoolCondition::new(IPV6_READY, false, e.reason(), e.to_string())));
    let lb = GatewayLBConfigurationStatus {
        frontend_ip: applied.lb.frontend_ip.clone(),
        server_port: port.map(i32::from),
        egress_ip_prefix: vm.as_ref().and_then(|v| v.egress_ip_prefix.clone()),
    };
    MemberStatus {
        sgc_ipv6_prefix: vm.as_ref().map(|v| v.egress_ipv6_prefix.clone()),
        vm,
        lb: Some(lb),
        conditions,
    }
}

/// A dual-stack gateway's IPv6 egress in this pass.
#[derive(Debug, Clone, Copy)]
enum Ipv6<'a> {
    /// Not wanted: no IPv6 fields, no condition.
    Off,
    /// Blocked: the IPv6 fields stay as the status had them (the ipConfigs stay too).
    Kept(Option<&'a GatewayVMConfigurationStatus>),
    /// In place, from this prefix (`None`: private mode).
    Applied(Option<&'a PrefixInfo>),
}

/// Fills the IPv6 fields of `status` (each profile's `secondaryIPv6` from the node's
/// `egressgateway-<vm_uid>-ipv6` ipConfig, the egress: the IPv6 prefix, or the private IPv6
/// addresses joined by `,`) and returns the `IPv6Ready` condition when IPv6 is applied.
fn ipv6_status(
    vm_uid: &str,
    ipv6: Ipv6<'_>,
    status: &mut GatewayVMConfigurationStatus,
    nodes: &[InstanceIps],
    pool: &GatewayPool,
) -> Option<PoolCondition> {
    let profiles = status.gateway_vm_profiles.iter_mut().flatten();
    let prefix = match ipv6 {
        Ipv6::Off => return None,
        Ipv6::Kept(old) => {
            status.egress_ipv6_prefix = old.and_then(|o| o.egress_ipv6_prefix.clone());
            let old_profiles = old.and_then(|o| o.gateway_vm_profiles.as_ref());
            for p in profiles {
                p.secondary_ipv6 = old_profiles
                    .into_iter()
                    .flatten()
                    .find(|o| o.node_name == p.node_name)
                    .and_then(|o| o.secondary_ipv6.clone());
            }
            return None;
        }
        Ipv6::Applied(prefix) => prefix,
    };
    let key = Family::V6.resource_name(vm_uid).to_ascii_lowercase();
    let mut secondary = Vec::new();
    for (p, node) in profiles.zip(nodes) {
        p.secondary_ipv6 = node.secondary.get(&key).cloned();
        secondary.extend(p.secondary_ipv6.clone());
    }
    status.egress_ipv6_prefix = match prefix {
        Some(p) => Some(p.cidr.clone()),
        None => Some(secondary.join(",")).filter(|s| !s.is_empty()),
    };
    let on = format!("{} of {} {}", secondary.len(), nodes.len(), pool.unit());
    Some(match (&status.egress_ipv6_prefix, prefix) {
        (Some(e), Some(_)) => PoolCondition::new(
            IPV6_READY,
            true,
            "IPv6Provisioned",
            format!("egress IPv6 from public IPv6 prefix {e} ({on})"),
        ),
        (Some(e), None) => PoolCondition::new(
            IPV6_READY,
            true,
            "IPv6Provisioned",
            format!("egress IPv6 from private IPv6 addresses {e}"),
        ),
        (None, _) => PoolCondition::new(
            IPV6_READY,
            false,
            "NoGatewayInstances",
            format!("{} has no {} with IPv6", pool.describe(), pool.unit()),
        ),
    })
}

/// The VM configuration status of the gateway whose ipConfig is `egressgateway-<vm_uid>`:
/// one profile per node (instance or VM pool NIC); its egress is the prefix, or in private
/// mode the nodes' secondary IPs joined by `,`.
fn vm_status(
    vm_uid: &str,
    prefix: Option<&PrefixInfo>,
    nodes: &[InstanceIps],
    pool: &GatewayPool,
) -> (GatewayVMConfigurationStatus, [PoolCondition; 2]) {
    let ip_config = azure_resource_name(vm_uid);
    let key = ip_config.to_ascii_lowercase();
    let profiles: Vec<GatewayVMProfile> = nodes
        .iter()
        .map(|i| GatewayVMProfile {
            node_name: Some(i.node_name.clone()),
            primary_ip: i.primary_ip.clone(),
            secondary_ip: i.secondary.get(&key).cloned(),
            secondary_ipv6: None,
        })
        .collect();
    let secondary: Vec<String> = profiles
        .iter()
        .filter_map(|p| p.secondary_ip.clone())
        .collect();
    let egress = match prefix {
        Some(p) => Some(p.cidr.clone()),
        None => Some(secondary.join(",")).filter(|s| !s.is_empty()),
    };
    let none = || format!("{} has no {}", pool.describe(), pool.unit());
    let prefix_ready = match (&egress, prefix) {
        (Some(e), Some(_)) => PoolCondition::new(
            PREFIX_READY,
            true,
            "PrefixProvisioned",
            format!("egress from public IP prefix {e}"),
        ),
        (Some(e), None) => PoolCondition::new(
            PREFIX_READY,
            true,
            "PrivateIPsProvisioned",
            format!("egress from private IPs {e}"),
        ),
        (None, _) => PoolCondition::new(PREFIX_READY, false, "NoGatewayInstances", none()),
    };
    let vms_ready = if nodes.is_empty() {
        PoolCondition::new(GATEWAY_VMS_READY, false, "NoGatewayInstances", none())
    } else {
        let message = format!(
            "{} of {} {} of {} have ipConfiguration {ip_config}",
            secondary.len(),
            nodes.len(),
            pool.unit(),
            pool.describe(),
        );
        PoolCondition::new(
            GATEWAY_VMS_READY,
            true,
            "IpConfigurationsProvisioned",
            message,
        )
    };
    let status = GatewayVMConfigurationStatus {
        egress_ip_prefix: egress,
        egress_ipv6_prefix: None,
        gateway_vm_profiles: Some(profiles),
    };
    (status, [prefix_ready, vms_ready])
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
