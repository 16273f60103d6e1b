//! One pass over one gateway pool, in phases: observe (the cached configurations, the pool and
//! the prefixes its gateways need, as Azure has them), plan (pure: `plan::plan`, one value),
//! apply (Azure, in the order `apply::apply` documents), then status (pure:
//! `status::of_member`, from what apply returned) written to Kubernetes with the releases of
//! removed gateways.

use std::collections::BTreeMap;

use crate::context::Context;
use crate::pool::Caches;
use crate::pool::apply::{self, Azure, kubernetes, prefixes};
use crate::pool::error::PoolError;
use crate::pool::gateway_pool::{self, GatewayPool, PoolKind};
use crate::pool::plan::family::Family;
use crate::pool::plan::members::{self, Gathered, Member};
use crate::pool::plan::{self, Observed, ipv6};
use crate::pool::status;
use crate::target::PoolKey;

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
    let observed = match observe(ctx, caches, key, impatient).await {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(PassOutcome::Waiting),
        Err(e @ PoolError::PoolNotFound { .. }) => {
            orphaned_pool(ctx, caches, key, &e).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let plan = plan::plan(&ctx.config.azure, &observed)?;
    let azure = Azure {
        api: ctx.azure.as_ref(),
        settings: &ctx.config.azure,
        concurrency: ctx.config.instance_concurrency,
    };
    let applied = apply::apply(azure, &observed.pool, &plan).await?;
    tracing::info!(
        pool = %key,
        members = observed.members.len(),
        lb_written = applied.lb.written,
        model_written = applied.model_written,
        instances_written = applied.nodes.iter().filter(|i| i.written).count(),
        "gateway pool reconciled"
    );
    for m in &observed.members {
        let blocked = plan
            .blocked
            .get(&m.lb_uid)
            .or_else(|| applied.blocked.get(&m.lb_uid));
        let blocked6 = plan
            .ipv6
            .blocked
            .get(&m.lb_uid)
            .or_else(|| applied.blocked6.get(&m.lb_uid));
        let status = status::of_member(m, blocked, blocked6, &applied, &observed.pool);
        kubernetes::write_member(ctx, m, status).await?;
    }
    Ok(PassOutcome::Done)
}

fn gather(ctx: &Context, caches: &Caches, aliases: &[PoolKey]) -> Gathered {
    members::gather(
        aliases,
        &caches.sgcs.state(),
        &caches.lbs.state(),
        &caches.vms.state(),
        &ctx.config.azure.subscription_id,
    )
}

/// Reads what the plan needs: the pool's members (cached), the pool and their prefixes
/// (Azure). `None` while SGCs of the pool still wait for their internal objects.
async fn observe(
    ctx: &Context,
    caches: &Caches,
    key: &PoolKey,
    impatient: bool,
) -> Result<Option<Observed>, PoolError> {
    let settings = &ctx.config.azure;
    let azure = ctx.azure.as_ref();
    // Cheap first look (no Azure call) while new SGCs of this key are still being chained.
    if !impatient
        && !gather(ctx, caches, std::slice::from_ref(key))
            .pending
            .is_empty()
    {
        return Ok(None);
    }
    let pool = gateway_pool::resolve_pool(azure, settings, key).await?;
    let gathered = gather(ctx, caches, &pool.aliases(settings));
    if !gathered.pending.is_empty() && !impatient {
        tracing::debug!(pool = %key, pending = ?gathered.pending, "waiting for internal objects");
        return Ok(None);
    }
    let mut found = BTreeMap::new();
    for (lb_uid, id) in plan::prefixes_to_read(settings, &pool, &gathered.members) {
        found.insert(lb_uid, prefixes::read_prefix(azure, &id).await?);
    }
    let mut found6 = BTreeMap::new();
    for (lb_uid, id) in ipv6::prefixes_to_read(settings, &pool, &gathered.members) {
        found6.insert(lb_uid, prefixes::read_prefix(azure, &id).await?);
    }
    // Public gateways need an address per node: count them (one list, read again by apply).
    let node_count = if found.is_empty() && found6.is_empty() {
        None
    } else {
        Some(gateway_pool::node_count(azure, settings, &pool).await?)
    };
    let subnet_without_ipv6 = if ipv6::wanted(&gathered.members) {
        subnet_without_ipv6(ctx, &pool).await?
    } else {
        None
    };
    Ok(Some(Observed {
        pool,
        members: gathered.members,
        prefixes: found,
        prefixes6: found6,
        node_count,
        subnet_without_ipv6,
    }))
}

/// The pool's subnet if it has no IPv6 range (a pool whose subnet is unknown is left to the
/// ipConfig plan, which reports it).
async fn subnet_without_ipv6(
    ctx: &Context,
    pool: &GatewayPool,
) -> Result<Option<String>, PoolError> {
    let Some(id) = pool.gateway_subnet_id(&ctx.config.azure) else {
        return Ok(None);
    };
    let Ok(parsed) = egress_azure::ResourceId::parse(&id) else {
        return Ok(None);
    };
    let subnet = ctx
        .azure
        .get_subnet(&parsed)
        .await
        .map_err(|e| PoolError::azure(format!("read subnet {id}"), e))?;
    let p = &subnet.properties;
    let has_ipv6 = p
        .address_prefix
        .iter()
        .chain(p.address_prefixes.iter().flatten())
        .any(|c| c.contains(':'));
    Ok((!has_ipv6).then_some(id))
}

/// The pool's scale set (or VMs and NICs) does not exist: nothing of ours can be on it, so
/// gateways being removed only need their rules and managed prefixes gone; the others get a
/// `False` condition.
async fn orphaned_pool(
    ctx: &Context,
    caches: &Caches,
    key: &PoolKey,
    error: &PoolError,
) -> Result<(), PoolError> {
    let settings = &ctx.config.azure;
    let azure = ctx.azure.as_ref();
    let gathered = gather(ctx, caches, std::slice::from_ref(key));
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
        apply::load_balancer::apply_load_balancer(azure, settings, &nowhere, &[], &rules).await?;
        for m in &removing {
            if let Some(vm_uid) = &m.vm_uid {
                prefixes::delete_managed_prefix(azure, settings, vm_uid, Family::V4).await?;
                if ipv6::had_ipv6(m) || m.lb.spec.target.ipv6() {
                    prefixes::delete_managed_prefix(azure, settings, vm_uid, Family::V6).await?;
                }
            }
            kubernetes::release(ctx, m).await?;
        }
    }
    let not_found = [status::pool_not_found(error)];
    for m in gathered.members.iter().filter(|m| !m.removing_lb) {
        kubernetes::write_conditions(ctx, m, &not_found, None).await?;
    }
    Ok(())
}
