//! Public IP prefixes in a pool pass: read (observe), a gateway's managed prefix created before
//! anything uses it, and managed prefixes deleted, with the standalone public IPs in them, once
//! nothing uses them. BYO prefixes are only read, never written. What to create or delete, and
//! whether a prefix fits, is `plan::prefixes` / `plan::pass`.

use egress_azure::models::PublicIpPrefix;
use egress_azure::{AzureApi, ErrorCategory, ResourceId};

use crate::config::AzureSettings;
use crate::pool::error::{MemberError, PoolError};
use crate::pool::plan::family::Family;
use crate::pool::plan::prefixes::{self, PrefixTarget};

/// Reads a prefix; `None` when it does not exist.
pub async fn read_prefix(
    azure: &dyn AzureApi,
    id: &ResourceId,
) -> Result<Option<PublicIpPrefix>, PoolError> {
    match azure.get_public_ip_prefix(id).await {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(PoolError::azure(format!("read public IP prefix {id}"), e)),
    }
}

/// Creates the managed prefix `target`. Azure refusing it (quota, policy: a permanent error)
/// blocks this gateway only: `Ok(Err(..))`.
pub async fn create_prefix(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    target: &PrefixTarget,
) -> Result<Result<PublicIpPrefix, MemberError>, PoolError> {
    let id = &target.id;
    let body = prefixes::new_managed_prefix(settings, target);
    match azure.create_public_ip_prefix(id, &body).await {
        Ok(p) => Ok(Ok(p)),
        Err(e) if e.category() == ErrorCategory::Permanent => {
            Ok(Err(MemberError::PrefixRejected {
                id: id.to_string(),
                message: e.body().to_string(),
            }))
        }
        Err(e) => Err(PoolError::azure(format!("create public IP prefix {id}"), e)),
    }
}

/// Deletes the managed prefix of `family` of the gateway with VM configuration `vm_uid`
/// (`egressgateway-<vm_uid>`, IPv6 `egressgateway-<vm_uid>-ipv6`) and the standalone public IPs
/// in it. Returns whether it existed. Never called with a BYO prefix.
pub async fn delete_managed_prefix(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    vm_uid: &str,
    family: Family,
) -> Result<bool, PoolError> {
    let id = prefixes::managed_prefix_id(settings, vm_uid, family);
    let Some(prefix) = read_prefix(azure, &id).await? else {
        return Ok(false);
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
