//! Apply of one pool pass: carries out a [`PoolPlan`] on Azure in the documented order and
//! returns what Azure returned ([`Applied`]), which is all the status is computed from.
//! Nothing here decides: the order is fixed, and a gateway one step blocks (Azure refusing its
//! managed prefix, no port left) is left out of the later steps by the plan's own filters.

use std::collections::BTreeMap;

use egress_azure::AzureApi;

use crate::config::AzureSettings;
use crate::pool::apply::load_balancer::{self, LbApplied};
use crate::pool::apply::node_ips::InstanceIps;
use crate::pool::apply::vm_nics::{self, NicPass};
use crate::pool::apply::{prefixes, scale_set};
use crate::pool::error::{MemberError, PoolError};
use crate::pool::gateway_pool::{GatewayPool, PoolKind};
use crate::pool::plan::pass::{EgressStep, GatewayIpConfig, PoolPlan};
use crate::pool::plan::prefixes::{self as prefix_plan, PrefixInfo};
use crate::pool::plan::scale_set::IpConfigWant;

/// The Azure API and settings a pass writes with.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // `dyn AzureApi` is not Debug
pub struct Azure<'a> {
    /// The API.
    pub api: &'a dyn AzureApi,
    /// Where and how.
    pub settings: &'a AzureSettings,
    /// Instances or NICs written at once.
    pub concurrency: usize,
}

/// What a pass's writes returned.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Gateways a step blocked, by LB configuration UID (the plan's own are in the plan).
    pub blocked: BTreeMap<String, MemberError>,
    /// The egress each gateway with an ipConfig got: its prefix, or `None` (private mode).
    pub egress: BTreeMap<String, Option<PrefixInfo>>,
    /// Dual-stack gateways whose IPv6 egress a step blocked (Azure refusing the managed IPv6
    /// prefix), by LB configuration UID (the plan's own are in the plan).
    pub blocked6: BTreeMap<String, MemberError>,
    /// The IPv6 egress each dual-stack gateway got: its IPv6 prefix, or `None` (private mode).
    pub egress6: BTreeMap<String, Option<PrefixInfo>>,
    /// The load balancer.
    pub lb: LbApplied,
    /// Whether the scale-set model was written.
    pub model_written: bool,
    /// What each instance or VM pool NIC has, by node name.
    pub nodes: Vec<InstanceIps>,
}

/// Applies `plan` to `pool`, in this order: managed prefixes, IPv4 then IPv6 (before the
/// ipConfigs that reference them); the load balancer; the scale-set model and instances, or
/// the VM pool's NICs (IPv6 ipConfigs beside the IPv4 ones, and removed with them); managed
/// prefixes of both families no longer used (after the instances released their public IPs);
/// the pool's frontend once no rule uses it.
pub async fn apply(
    azure: Azure<'_>,
    pool: &GatewayPool,
    plan: &PoolPlan,
) -> Result<Applied, PoolError> {
    let mut out = Applied::default();
    for (lb_uid, step) in &plan.egress {
        match ensure_egress(azure, step).await? {
            Ok(prefix) => {
                out.egress.insert(lb_uid.clone(), prefix);
            }
            Err(e) => {
                out.blocked.insert(lb_uid.clone(), e);
            }
        }
    }
    for (lb_uid, step) in &plan.ipv6.egress {
        match ensure_egress(azure, step).await? {
            Ok(prefix) => {
                out.egress6.insert(lb_uid.clone(), prefix);
            }
            Err(e) => {
                out.blocked6.insert(lb_uid.clone(), e);
            }
        }
    }
    let rules = plan.rules_to_have(&out.blocked);
    out.lb = load_balancer::apply_load_balancer(
        azure.api,
        azure.settings,
        pool,
        &rules,
        &plan.remove_rules,
    )
    .await?;
    for uid in &out.lb.exhausted {
        out.blocked.insert(uid.clone(), MemberError::PortsExhausted);
    }
    let ip_configs =
        plan.ip_configs_to_have(&out.egress, &out.egress6, &out.blocked, &out.blocked6);
    (out.model_written, out.nodes) = apply_ip_configs(azure, pool, plan, &ip_configs).await?;
    for unused in &plan.unused_prefixes {
        if unused.unless_blocked && out.blocked.contains_key(&unused.lb_uid) {
            continue;
        }
        let (api, settings) = (azure.api, azure.settings);
        if prefixes::delete_managed_prefix(api, settings, &unused.vm_uid, unused.family).await? {
            let family = unused.family.version();
            tracing::info!(gateway = %unused.gateway, family, "deleted managed public IP prefix");
        }
    }
    if rules.is_empty() {
        load_balancer::shrink_load_balancer(azure.api, azure.settings, pool).await?;
    }
    Ok(out)
}

/// A gateway's egress in place: its prefix (created if the plan says so), or `None` in private
/// mode. `Ok(Err(..))` blocks this gateway only.
async fn ensure_egress(
    azure: Azure<'_>,
    step: &EgressStep,
) -> Result<Result<Option<PrefixInfo>, MemberError>, PoolError> {
    match step {
        EgressStep::Private => Ok(Ok(None)),
        EgressStep::Ready(p) => Ok(Ok(Some(p.clone()))),
        EgressStep::Create(target) => {
            match prefixes::create_prefix(azure.api, azure.settings, target).await? {
                Ok(created) => Ok(prefix_plan::check(&created, target)?.map(Some)),
                Err(e) => Ok(Err(e)),
            }
        }
    }
}

/// The gateway ipConfigs on every node of the pool: the scale-set model then each instance, or
/// each NIC of a VM pool. Returns whether the model was written and what each node has.
async fn apply_ip_configs(
    azure: Azure<'_>,
    pool: &GatewayPool,
    plan: &PoolPlan,
    ip_configs: &[GatewayIpConfig],
) -> Result<(bool, Vec<InstanceIps>), PoolError> {
    let backend = pool.backend_pool_id(&azure.settings.load_balancer_id);
    let remove = &plan.remove_ip_configs;
    match &pool.kind {
        PoolKind::ScaleSet { id, vmss } => {
            let want: Vec<IpConfigWant> = ip_configs.iter().map(IpConfigWant::from).collect();
            let written =
                scale_set::apply_model(azure.api, id, vmss, &want, remove, &backend).await?;
            let instances = scale_set::apply_instances(
                azure.api,
                azure.settings,
                id,
                &want,
                remove,
                &backend,
                azure.concurrency,
            )
            .await?;
            Ok((written, instances))
        }
        PoolKind::Vms { name, .. } => {
            let pass = NicPass {
                pool: name,
                want: ip_configs,
                remove,
                removed_prefixes: &plan.removed_byo_prefixes,
                backend_pool_id: &backend,
                concurrency: azure.concurrency,
            };
            Ok((
                false,
                vm_nics::apply_nics(azure.api, azure.settings, pass).await?,
            ))
        }
    }
}
