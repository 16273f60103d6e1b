//! The gateway load balancer in a pool pass: written at most once (re-read and re-planned on
//! 412), and the pool's frontend and backend pool dropped once no rule uses them. The plan
//! comes from `plan::load_balancer`; this module only reads, writes and retries.

use std::collections::BTreeMap;

use egress_azure::{AzureApi, ErrorCategory};

use crate::config::AzureSettings;
use crate::pool::apply::ETAG_ATTEMPTS;
use crate::pool::error::PoolError;
use crate::pool::gateway_pool::GatewayPool;
use crate::pool::plan::load_balancer::{self as lb_plan, LbInput, RuleWant, Shrink};

/// The load balancer after this pass.
#[derive(Debug, Clone, Default)]
pub struct LbApplied {
    /// Frontend IP of the pool.
    pub frontend_ip: Option<String>,
    /// Port per LB configuration UID.
    pub ports: BTreeMap<String, u16>,
    /// LB configuration UIDs that got no port.
    pub exhausted: Vec<String>,
    /// Whether it was written.
    pub written: bool,
}

/// Writes the load balancer once (re-reading and re-planning on 412).
pub async fn apply_load_balancer(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pool: &GatewayPool,
    want: &[RuleWant],
    remove: &[String],
) -> Result<LbApplied, PoolError> {
    let id = &settings.load_balancer_id;
    let input = LbInput {
        lb_id: id,
        pool_name: &pool.unique_id,
        subnet_id: &settings.subnet_id,
        location: &settings.location,
        probe_port: settings.probe_port,
        want,
        remove,
    };
    let mut last = None;
    for _ in 0..ETAG_ATTEMPTS {
        let current = match azure.get_load_balancer(id).await {
            Ok(lb) => Some(lb),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(PoolError::azure(format!("read load balancer {id}"), e)),
        };
        let plan = lb_plan::plan(current.as_ref(), &input);
        let mut out = LbApplied {
            frontend_ip: None,
            ports: plan.ports.clone(),
            exhausted: plan.exhausted.clone(),
            written: false,
        };
        if !plan.changed {
            out.frontend_ip = current
                .as_ref()
                .and_then(|lb| lb_plan::frontend_ip(lb, &pool.unique_id));
            return Ok(out);
        }
        if plan.new_frontend {
            azure.get_subnet(&settings.subnet_id).await.map_err(|e| {
                PoolError::azure(
                    format!(
                        "read subnet {} for the load balancer frontend",
                        settings.subnet_id
                    ),
                    e,
                )
            })?;
        }
        let etag = current.as_ref().and_then(|c| c.etag.clone());
        match azure
            .create_or_update_load_balancer(id, &plan.lb, etag.as_deref())
            .await
        {
            Ok(lb) => {
                out.written = true;
                out.frontend_ip = lb_plan::frontend_ip(&lb, &pool.unique_id);
                if out.frontend_ip.is_none() {
                    let lb = azure
                        .get_load_balancer(id)
                        .await
                        .map_err(|e| PoolError::azure(format!("read load balancer {id}"), e))?;
                    out.frontend_ip = lb_plan::frontend_ip(&lb, &pool.unique_id);
                }
                return Ok(out);
            }
            Err(e) if e.category() == ErrorCategory::Conflict => {
                tracing::debug!(lb = %id, error = %e, "load balancer changed meanwhile, re-reading");
                last = Some(e);
            }
            Err(e) => return Err(PoolError::azure(format!("update load balancer {id}"), e)),
        }
    }
    Err(match last {
        Some(e) => PoolError::azure(format!("update load balancer {id}"), e),
        None => PoolError::NoUniqueId { id: id.to_string() },
    })
}

/// Drops the pool's frontend and backend pool once no rule uses them (deleting the load
/// balancer when nothing else is in it).
pub async fn shrink_load_balancer(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pool: &GatewayPool,
) -> Result<bool, PoolError> {
    let id = &settings.load_balancer_id;
    for _ in 0..ETAG_ATTEMPTS {
        let lb = match azure.get_load_balancer(id).await {
            Ok(lb) => lb,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(PoolError::azure(format!("read load balancer {id}"), e)),
        };
        match lb_plan::plan_shrink(&lb, id, &pool.unique_id) {
            Shrink::Keep => return Ok(false),
            Shrink::Delete => {
                azure
                    .delete_load_balancer(id)
                    .await
                    .map_err(|e| PoolError::azure(format!("delete load balancer {id}"), e))?;
                return Ok(true);
            }
            Shrink::Put(out) => match azure
                .create_or_update_load_balancer(id, &out, lb.etag.as_deref())
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) if e.category() == ErrorCategory::Conflict => continue,
                Err(e) => return Err(PoolError::azure(format!("update load balancer {id}"), e)),
            },
        }
    }
    Ok(false)
}
