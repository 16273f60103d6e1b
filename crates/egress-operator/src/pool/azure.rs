//! Side effects of a pool reconcile on Azure, in this order: ensure public IP prefixes, write
//! the load balancer, the scale-set model and each instance (`instances`) or each NIC of a VM
//! pool (`vm_nics`) (each at most once per pass; with `If-Match` and a re-read on 412), read
//! their IPs, delete prefixes no longer used, and drop the pool's frontend once unused.
//! Plans come from `lb_plan` / `nic_plan`; this module only reads, writes and retries.

use std::collections::BTreeMap;

use egress_api::constants::azure_resource_name;
use egress_azure::models::{PublicIpPrefix, PublicIpPrefixProperties, Sku, VirtualMachineScaleSet};
use egress_azure::{AzureApi, ErrorCategory, ResourceId};

use crate::config::AzureSettings;
use crate::pool::error::{MemberError, PoolError};
use crate::pool::gateway_pool::GatewayPool;
use crate::pool::lb_plan::{self, LbInput, Shrink};
use crate::pool::nic_plan::{self, IpConfigWant};

pub use crate::pool::instances::{InstanceIps, apply_instances};
use crate::target::Egress;

/// Writes retried after a 412 (someone else changed the resource between our read and write).
pub(crate) const ETAG_ATTEMPTS: usize = 3;
/// A gateway's egress prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixInfo {
    /// Prefix resource ID.
    pub id: String,
    /// Its CIDR.
    pub cidr: String,
    /// IDs of the public IPs allocated from it (as read).
    pub public_ips: Vec<String>,
}

/// Ensures the prefix of one gateway: creates its managed prefix, or checks the BYO one.
/// `Ok(Err(..))` blocks this gateway only.
pub async fn ensure_prefix(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pool: &GatewayPool,
    vm_uid: &str,
    egress: &Egress,
    profile_size: Option<u8>,
) -> Result<Result<Option<PrefixInfo>, MemberError>, PoolError> {
    let required = profile_size.or_else(|| pool.tagged_prefix_size());
    let (id, managed) = match egress {
        Egress::Private => return Ok(Ok(None)),
        Egress::ManagedPrefix => (
            settings
                .resource_group_id()
                .public_ip_prefix(&azure_resource_name(vm_uid)),
            true,
        ),
        Egress::ByoPrefix(id) => (id.clone(), false),
    };
    let Some(required) = required else {
        return Ok(Err(MemberError::PrefixSizeUnknown {
            pool: pool.describe(),
        }));
    };
    let prefix = match azure.get_public_ip_prefix(&id).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() && !managed => {
            return Ok(Err(MemberError::PrefixNotFound { id: id.to_string() }));
        }
        Err(e) if e.is_not_found() => {
            let body = PublicIpPrefix {
                location: Some(settings.location.clone()),
                sku: Some(Sku::standard_regional()),
                properties: PublicIpPrefixProperties {
                    prefix_length: Some(required),
                    public_ip_address_version: Some("IPv4".into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match azure.create_public_ip_prefix(&id, &body).await {
                Ok(p) => p,
                Err(e) if e.category() == ErrorCategory::Permanent => {
                    return Ok(Err(MemberError::PrefixRejected {
                        id: id.to_string(),
                        message: e.body().to_string(),
                    }));
                }
                Err(e) => return Err(PoolError::azure(format!("create public IP prefix {id}"), e)),
            }
        }
        Err(e) => return Err(PoolError::azure(format!("read public IP prefix {id}"), e)),
    };
    let found = prefix.properties.prefix_length.unwrap_or(0);
    if found != required {
        return Ok(Err(MemberError::PrefixLengthMismatch {
            id: id.to_string(),
            found,
            required,
        }));
    }
    let public_ips = prefix
        .properties
        .public_ip_addresses
        .iter()
        .map(|s| s.id.clone())
        .collect();
    match prefix.properties.ip_prefix.filter(|c| !c.is_empty()) {
        Some(cidr) => Ok(Ok(Some(PrefixInfo {
            id: prefix.id.unwrap_or_else(|| id.to_string()),
            cidr,
            public_ips,
        }))),
        None => Err(PoolError::MissingIp {
            instance: id.to_string(),
            why: "the public IP prefix has no address range yet".to_string(),
        }),
    }
}

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
    want: &[lb_plan::RuleWant],
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

/// Writes the scale-set model's network profile once if it needs gateway ipConfig changes.
pub async fn apply_model(
    azure: &dyn AzureApi,
    id: &ResourceId,
    read: &VirtualMachineScaleSet,
    want: &[IpConfigWant],
    remove: &[String],
    backend_pool_id: &str,
) -> Result<bool, PoolError> {
    let mut vmss = read.clone();
    for attempt in 0..ETAG_ATTEMPTS {
        if attempt > 0 {
            vmss = azure
                .get_scale_set(id)
                .await
                .map_err(|e| PoolError::azure(format!("read scale set {id}"), e))?;
        }
        let mut profile =
            vmss.network_profile()
                .cloned()
                .ok_or_else(|| PoolError::NoNetworkProfile {
                    what: format!("scale set {id}"),
                })?;
        let changed = nic_plan::plan(
            &mut profile.network_interface_configurations,
            want,
            remove,
            backend_pool_id,
        )
        .map_err(|source| PoolError::Nic {
            what: format!("scale set {id}"),
            source,
        })?;
        if !changed {
            return Ok(false);
        }
        match azure
            .update_scale_set_network_profile(id, &profile, vmss.etag.as_deref())
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if e.category() == ErrorCategory::Conflict && attempt + 1 < ETAG_ATTEMPTS => {
                tracing::debug!(vmss = %id, error = %e, "scale set changed meanwhile, re-reading");
            }
            Err(e) => return Err(PoolError::azure(format!("update scale set {id}"), e)),
        }
    }
    Ok(false)
}

/// Deletes the managed prefix `egressgateway-<vm_uid>` and the standalone public IPs in it.
/// Returns whether it existed. Never called with a BYO prefix.
pub async fn delete_managed_prefix(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    vm_uid: &str,
) -> Result<bool, PoolError> {
    let id = settings
        .resource_group_id()
        .public_ip_prefix(&azure_resource_name(vm_uid));
    let prefix = match azure.get_public_ip_prefix(&id).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(PoolError::azure(format!("read public IP prefix {id}"), e)),
    };
    for ip in &prefix.properties.public_ip_addresses {
        // Instance public IPs go with their ipConfigs; only standalone ones are deleted here.
        let Ok(ip_id) = ResourceId::parse(&ip.id) else {
            continue;
        };
        if ip_id
            .expect_type("Microsoft.Network/publicIPAddresses")
            .is_ok()
        {
            azure
                .delete_public_ip_address(&ip_id)
                .await
                .map_err(|e| PoolError::azure(format!("delete public IP {ip_id}"), e))?;
        }
    }
    azure
        .delete_public_ip_prefix(&id)
        .await
        .map_err(|e| PoolError::azure(format!("delete public IP prefix {id}"), e))?;
    Ok(true)
}
