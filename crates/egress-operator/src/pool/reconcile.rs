//! One pass over one gateway pool: dereference (scale set or VM pool, members), validate (per
//! member), apply (prefixes, load balancer, model and instances or the VM pool's NICs, cleanup;
//! see `azure`, `vm_nics`), then status (see `status`). Everything the pass writes is derived
//! from what Azure returned.

use std::collections::BTreeMap;

use egress_api::conditions::{LOAD_BALANCER_READY, PREFIX_READY};
use egress_api::constants::azure_resource_name;
use egress_api::{GatewayLBConfigurationStatus, GatewayVMConfigurationStatus, GatewayVMProfile};

use crate::context::Context;
use crate::pool::Caches;
use crate::pool::apply::kubernetes::{self as status, GATEWAY_VMS_READY, PoolCondition};
use crate::pool::apply::load_balancer::{self as lb_apply, LbApplied};
use crate::pool::apply::prefixes::{self, PrefixInfo};
use crate::pool::apply::scale_set::{self, InstanceIps};
use crate::pool::apply::vm_nics::{self, NicPass, VmGatewayWant};
use crate::pool::error::{Affects, MemberError, PoolError};
use crate::pool::gateway_pool::{self, GatewayPool, PoolKind};
use crate::pool::plan::load_balancer::RuleWant;
use crate::pool::plan::members::{self, Member};
use crate::pool::plan::scale_set::IpConfigWant;
use crate::target::{Egress, PoolKey};

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// The pool is as wanted.
    Done,
    /// New SGCs of the pool still lack their internal objects; try again shortly.
    Waiting,
}

/// Reconciles the pool `key`. With `impatient`, SGCs still waiting for their internal objects
/// no longer hold the others back.
pub async fn reconcile(
    ctx: &Context,
    caches: &Caches,
    key: &PoolKey,
    impatient: bool,
) -> Result<PassOutcome, PoolError> {
    let settings = &ctx.config.azure;
    let azure = ctx.azure.as_ref();
    // Cheap first look (no Azure call) while new SGCs of this key are still being chained.
    let early = members::gather(
        std::slice::from_ref(key),
        &caches.sgcs.state(),
        &caches.lbs.state(),
        &caches.vms.state(),
        &settings.subscription_id,
    );
    if !early.pending.is_empty() && !impatient {
        return Ok(PassOutcome::Waiting);
    }
    let pool = match gateway_pool::resolve_pool(azure, settings, key).await {
        Ok(s) => s,
        Err(e @ PoolError::PoolNotFound { .. }) => {
            orphaned_pool(ctx, caches, key, &e).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let aliases = pool.aliases(settings);
    let gathered = members::gather(
        &aliases,
        &caches.sgcs.state(),
        &caches.lbs.state(),
        &caches.vms.state(),
        &settings.subscription_id,
    );
    if !gathered.pending.is_empty() && !impatient {
        tracing::debug!(pool = %key, pending = ?gathered.pending, "waiting for internal objects");
        return Ok(PassOutcome::Waiting);
    }
    let members = gathered.members;

    // Validate and ensure prefixes (each gateway on its own: one bad spec blocks only itself).
    let mut blocked: BTreeMap<String, MemberError> = BTreeMap::new();
    let mut prefixes: BTreeMap<String, Option<PrefixInfo>> = BTreeMap::new();
    // VM pools name per-NIC public IPs by prefix and NIC: one BYO prefix per gateway.
    let mut byo_users: BTreeMap<String, String> = BTreeMap::new();
    for m in members.iter().filter(|m| !m.removing_lb) {
        let target = match &m.target {
            Ok(t) => t,
            Err(e) => {
                blocked.insert(m.lb_uid.clone(), e.clone().into());
                continue;
            }
        };
        let Some(vm_uid) = m.vm_uid.as_deref().filter(|_| !m.removing_vm) else {
            continue;
        };
        let found = prefixes::ensure_prefix(
            azure,
            settings,
            &pool,
            vm_uid,
            &target.egress,
            target.prefix_size,
        )
        .await?;
        match found {
            Ok(p) => {
                if let (PoolKind::Vms { name, .. }, Egress::ByoPrefix(id)) =
                    (&pool.kind, &target.egress)
                {
                    let lower = id.to_string().to_ascii_lowercase();
                    if let Some(other) = byo_users.get(&lower) {
                        blocked.insert(
                            m.lb_uid.clone(),
                            MemberError::PrefixShared {
                                id: id.to_string(),
                                other: other.clone(),
                                pool: name.clone(),
                            },
                        );
                        continue;
                    }
                    byo_users.insert(lower, m.key());
                }
                prefixes.insert(m.lb_uid.clone(), p);
            }
            Err(e) => {
                blocked.insert(m.lb_uid.clone(), e);
            }
        }
    }

    let active = |m: &&Member| !m.removing_lb && !blocked.contains_key(&m.lb_uid);
    let want_rules: Vec<RuleWant> = members
        .iter()
        .filter(active)
        .map(|m| RuleWant {
            lb_uid: m.lb_uid.clone(),
            sgc_uid: m.sgc_uid.clone(),
        })
        .collect();
    let remove_rules: Vec<String> = members
        .iter()
        .filter(|m| m.removing_lb)
        .map(|m| m.lb_uid.clone())
        .collect();
    let lb =
        lb_apply::apply_load_balancer(azure, settings, &pool, &want_rules, &remove_rules).await?;
    for uid in &lb.exhausted {
        blocked.insert(uid.clone(), MemberError::PortsExhausted);
    }

    let with_ipconfig = |m: &&Member| {
        !m.removing_vm
            && m.vm_uid.is_some()
            && prefixes.contains_key(&m.lb_uid)
            && !blocked.contains_key(&m.lb_uid)
    };
    let want_ips: Vec<IpConfigWant> = members
        .iter()
        .filter(with_ipconfig)
        .filter_map(|m| {
            Some(IpConfigWant {
                name: azure_resource_name(m.vm_uid.as_deref()?),
                prefix_id: prefixes.get(&m.lb_uid)?.as_ref().map(|p| p.id.clone()),
            })
        })
        .collect();
    let remove_ips: Vec<String> = members
        .iter()
        .filter(|m| m.removing_vm)
        .filter_map(|m| m.vm_uid.as_deref().map(azure_resource_name))
        .collect();
    let backend = pool.backend_pool_id(&settings.load_balancer_id);
    let (model_written, instances) = match &pool.kind {
        PoolKind::ScaleSet { id, vmss } => {
            let written =
                scale_set::apply_model(azure, id, vmss, &want_ips, &remove_ips, &backend).await?;
            let instances = scale_set::apply_instances(
                azure,
                settings,
                id,
                &want_ips,
                &remove_ips,
                &backend,
                ctx.config.instance_concurrency,
            )
            .await?;
            (written, instances)
        }
        PoolKind::Vms { name, .. } => {
            let want: Vec<VmGatewayWant> = members
                .iter()
                .filter(with_ipconfig)
                .filter_map(|m| {
                    Some(VmGatewayWant {
                        name: azure_resource_name(m.vm_uid.as_deref()?),
                        prefix: prefixes.get(&m.lb_uid)?.clone(),
                    })
                })
                .collect();
            // Managed prefixes of removed gateways are deleted with their public IPs below.
            let removed_prefixes: Vec<egress_azure::ResourceId> = members
                .iter()
                .filter(|m| m.removing_vm)
                .filter_map(|m| match &m.target {
                    Ok(t) => match &t.egress {
                        Egress::ByoPrefix(id) => Some(id.clone()),
                        _ => None,
                    },
                    Err(_) => None,
                })
                .collect();
            let nics = vm_nics::apply_nics(
                azure,
                settings,
                NicPass {
                    pool: name,
                    want: &want,
                    remove: &remove_ips,
                    removed_prefixes: &removed_prefixes,
                    backend_pool_id: &backend,
                    concurrency: ctx.config.instance_concurrency,
                },
            )
            .await?;
            (false, nics)
        }
    };
    tracing::info!(
        pool = %key,
        members = members.len(),
        lb_written = lb.written,
        model_written,
        instances_written = instances.iter().filter(|i| i.written).count(),
        "gateway pool reconciled"
    );

    // Managed prefixes no longer used: removed gateways, and gateways now in BYO/private mode.
    for m in &members {
        let Some(vm_uid) = m.vm_uid.as_deref() else {
            continue;
        };
        let unused = m.removing_vm
            || matches!(&m.target, Ok(t) if t.egress != Egress::ManagedPrefix)
                && !blocked.contains_key(&m.lb_uid);
        if unused && prefixes::delete_managed_prefix(azure, settings, vm_uid).await? {
            tracing::info!(pool = %key, gateway = %m.key(), "deleted managed public IP prefix");
        }
    }
    if want_rules.is_empty() {
        lb_apply::shrink_load_balancer(azure, settings, &pool).await?;
    }

    for m in &members {
        if m.removing_lb || m.removing_vm {
            status::release(ctx, m).await?;
        }
        if m.removing_lb {
            continue;
        }
        if let Some(e) = blocked.get(&m.lb_uid) {
            let type_ = match e.affects() {
                Affects::LoadBalancer => LOAD_BALANCER_READY,
                Affects::Prefix => PREFIX_READY,
            };
            status::write_conditions(
                ctx,
                m,
                &[PoolCondition {
                    type_,
                    ok: false,
                    reason: e.reason().to_string(),
                    message: e.to_string(),
                }],
            )
            .await?;
            continue;
        }
        write_member(ctx, m, &lb, prefixes.get(&m.lb_uid), &instances, &pool).await?;
    }
    Ok(PassOutcome::Done)
}

/// Status of a provisioned gateway, from what Azure returned.
async fn write_member(
    ctx: &Context,
    m: &Member,
    lb: &LbApplied,
    prefix: Option<&Option<PrefixInfo>>,
    instances: &[InstanceIps],
    pool: &GatewayPool,
) -> Result<(), PoolError> {
    let none_message = format!("{} has no {}", pool.describe(), pool.unit());
    let port = lb.ports.get(&m.lb_uid).copied();
    let mut conditions = vec![match (&lb.frontend_ip, port) {
        (Some(ip), Some(port)) => PoolCondition {
            type_: LOAD_BALANCER_READY,
            ok: true,
            reason: "LoadBalancerRuleProvisioned".into(),
            message: format!("gateway endpoint {ip}:{port}"),
        },
        _ => PoolCondition {
            type_: LOAD_BALANCER_READY,
            ok: false,
            reason: "Provisioning".into(),
            message: "waiting for the load balancer frontend IP".into(),
        },
    }];
    let vm_status = match (m.vm_uid.as_deref().filter(|_| !m.removing_vm), prefix) {
        (Some(vm_uid), Some(prefix)) => {
            let name = azure_resource_name(vm_uid).to_ascii_lowercase();
            let profiles: Vec<GatewayVMProfile> = instances
                .iter()
                .map(|i| GatewayVMProfile {
                    node_name: Some(i.node_name.clone()),
                    primary_ip: i.primary_ip.clone(),
                    secondary_ip: i.secondary.get(&name).cloned(),
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
            conditions.push(match (&egress, prefix) {
                (Some(e), Some(_)) => PoolCondition {
                    type_: PREFIX_READY,
                    ok: true,
                    reason: "PrefixProvisioned".into(),
                    message: format!("egress from public IP prefix {e}"),
                },
                (Some(e), None) => PoolCondition {
                    type_: PREFIX_READY,
                    ok: true,
                    reason: "PrivateIPsProvisioned".into(),
                    message: format!("egress from private IPs {e}"),
                },
                (None, _) => PoolCondition {
                    type_: PREFIX_READY,
                    ok: false,
                    reason: "NoGatewayInstances".into(),
                    message: none_message.clone(),
                },
            });
            conditions.push(if instances.is_empty() {
                PoolCondition {
                    type_: GATEWAY_VMS_READY,
                    ok: false,
                    reason: "NoGatewayInstances".into(),
                    message: none_message.clone(),
                }
            } else {
                PoolCondition {
                    type_: GATEWAY_VMS_READY,
                    ok: true,
                    reason: "IpConfigurationsProvisioned".into(),
                    message: format!(
                        "{} of {} {} of {} have ipConfiguration {}",
                        secondary.len(),
                        instances.len(),
                        pool.unit(),
                        pool.describe(),
                        azure_resource_name(vm_uid)
                    ),
                }
            });
            Some(GatewayVMConfigurationStatus {
                egress_ip_prefix: egress,
                gateway_vm_profiles: Some(profiles),
            })
        }
        _ => None,
    };
    if let Some(vs) = &vm_status {
        status::write_vm_status(ctx, m, vs.clone()).await?;
    }
    let lb_status = GatewayLBConfigurationStatus {
        frontend_ip: lb.frontend_ip.clone(),
        server_port: port.map(i32::from),
        egress_ip_prefix: vm_status.as_ref().and_then(|v| v.egress_ip_prefix.clone()),
    };
    status::write_lb_status(ctx, m, lb_status).await?;
    status::write_conditions(ctx, m, &conditions).await
}

/// The pool's scale set (or VMs and NICs) does not exist: nothing of ours can be on it, so gateways being removed
/// only need their rules and managed prefixes gone; the others get a `False` condition.
async fn orphaned_pool(
    ctx: &Context,
    caches: &Caches,
    key: &PoolKey,
    error: &PoolError,
) -> Result<(), PoolError> {
    let settings = &ctx.config.azure;
    let azure = ctx.azure.as_ref();
    let gathered = members::gather(
        std::slice::from_ref(key),
        &caches.sgcs.state(),
        &caches.lbs.state(),
        &caches.vms.state(),
        &settings.subscription_id,
    );
    let removing: Vec<&Member> = gathered
        .members
        .iter()
        .filter(|m| m.removing_lb || m.removing_vm)
        .collect();
    if !removing.is_empty() {
        let rules: Vec<String> = removing
            .iter()
            .filter(|m| m.removing_lb)
            .map(|m| m.lb_uid.clone())
            .collect();
        let nowhere = GatewayPool {
            kind: PoolKind::Vms {
                name: String::new(),
                vms: Vec::new(),
            },
            // No frontend is added when nothing is wanted, so the name is never used.
            unique_id: String::new(),
        };
        lb_apply::apply_load_balancer(azure, settings, &nowhere, &[], &rules).await?;
        for m in &removing {
            if let Some(vm_uid) = &m.vm_uid {
                prefixes::delete_managed_prefix(azure, settings, vm_uid).await?;
            }
            status::release(ctx, m).await?;
        }
    }
    for m in gathered.members.iter().filter(|m| !m.removing_lb) {
        status::write_conditions(
            ctx,
            m,
            &[PoolCondition {
                type_: LOAD_BALANCER_READY,
                ok: false,
                reason: "GatewayPoolNotFound".into(),
                message: error.to_string(),
            }],
        )
        .await?;
    }
    Ok(())
}
