//! Public IP prefixes in a pool pass: a gateway's managed prefix created (or its BYO prefix
//! checked) before anything uses it, and managed prefixes deleted, with the standalone public
//! IPs in them, once nothing uses them. BYO prefixes are never deleted.

use egress_api::constants::azure_resource_name;
use egress_azure::models::{PublicIpPrefix, PublicIpPrefixProperties, Sku};
use egress_azure::{AzureApi, ErrorCategory, ResourceId};

use crate::config::AzureSettings;
use crate::pool::error::{MemberError, PoolError};
use crate::pool::gateway_pool::GatewayPool;
use crate::target::Egress;

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
