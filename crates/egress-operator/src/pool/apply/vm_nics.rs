//! The NICs of a VirtualMachines node pool in a pool pass: the NICs AKS pre-created for the
//! pool (tags `aks-managed-static-gateway-nic` and `aks-managed-poolName`, also those of VMs
//! that do not exist yet) each get their per-gateway public IPs created when missing (not
//! re-PUT every pass, as the original does), then at most one PUT with `If-Match` for every
//! gateway change of the batch (412 → re-read, re-plan). Public IPs we created that a NIC no
//! longer uses are deleted once detached, including inside BYO prefixes. Which public IPs to
//! create or delete is decided in `plan::public_ips`.

use std::collections::BTreeSet;

use egress_azure::models::{NetworkInterface, PublicIpAddress, PublicIpAddressProperties, Sku};
use egress_azure::{AzureApi, ErrorCategory, ResourceId};
use futures::StreamExt;

use crate::config::AzureSettings;
use crate::pool::apply::ETAG_ATTEMPTS;
use crate::pool::apply::node_ips::InstanceIps;
use crate::pool::apply::prefixes::read_prefix;
use crate::pool::error::PoolError;
use crate::pool::gateway_pool::is_gateway_nic;
use crate::pool::plan::family::Family;
use crate::pool::plan::pass::GatewayIpConfig;
use crate::pool::plan::public_ips;
use crate::pool::plan::vm_nics::{self as nic_plan, NicIpConfigWant};

/// What the pool's NICs should carry in this pass.
#[derive(Debug, Clone, Copy)]
pub struct NicPass<'a> {
    /// Node pool name.
    pub pool: &'a str,
    /// Gateways to have.
    pub want: &'a [GatewayIpConfig],
    /// ipConfig names of gateways being removed.
    pub remove: &'a [String],
    /// Prefixes of gateways being removed: their per-NIC public IPs go too (a restart after the
    /// NIC write must not leak them).
    pub removed_prefixes: &'a [ResourceId],
    /// The pool's backend pool.
    pub backend_pool_id: &'a str,
    /// NICs written at once.
    pub concurrency: usize,
}

/// Brings every gateway NIC of the pool to the wanted ipConfigs and returns their IPs (node
/// name = NIC name, as the original; the gateway daemon matches it with the VM's
/// `aks-managed-nic-name` tag).
pub async fn apply_nics(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pass: NicPass<'_>,
) -> Result<Vec<InstanceIps>, PoolError> {
    let group = settings.resource_group_id();
    let nics: Vec<NetworkInterface> = azure
        .list_network_interfaces(&group)
        .await
        .map_err(|e| PoolError::azure(format!("list network interfaces in {group}"), e))?
        .into_iter()
        .filter(|n| is_gateway_nic(n.tags.as_ref(), pass.pool))
        .collect();
    let results: Vec<Result<(InstanceIps, Vec<String>), PoolError>> = futures::stream::iter(nics)
        .map(|nic| apply_nic(azure, settings, &pass, nic))
        .buffer_unordered(pass.concurrency.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    let mut in_use: BTreeSet<String> = BTreeSet::new();
    for r in results {
        let (ips, used) = r?;
        in_use.extend(used.into_iter().map(|u| u.to_ascii_lowercase()));
        out.push(ips);
    }
    out.sort_by(|a, b| a.node_name.cmp(&b.node_name));
    let names: Vec<String> = out.iter().map(|i| i.node_name.clone()).collect();
    for prefix in pass.removed_prefixes {
        let Some(found) = read_prefix(azure, prefix).await? else {
            continue;
        };
        let lists: Vec<String> = found
            .properties
            .public_ip_addresses
            .iter()
            .map(|ip| ip.id.clone())
            .collect();
        for pip in public_ips::leftovers(&group, prefix, &lists, &names, &in_use) {
            delete_public_ip(azure, &pip).await?;
        }
    }
    Ok(out)
}

/// One NIC: its public IPs created, then written; returns what it has and the public IPs its
/// gateway ipConfigs use after the write.
async fn apply_nic(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pass: &NicPass<'_>,
    nic: NetworkInterface,
) -> Result<(InstanceIps, Vec<String>), PoolError> {
    let id_text = nic.id.clone().unwrap_or_default();
    let id = ResourceId::parse(&id_text).map_err(|_| PoolError::NoNetworkProfile {
        what: format!("network interface {id_text:?}"),
    })?;
    let nic_name = id.name().to_string();
    let wants = public_ips::nic_wants(&settings.resource_group_id(), &nic_name, pass.want)?;
    let used_before = nic_plan::gateway_public_ips(&nic);
    for (pip, prefix_id, family) in public_ips::to_create(&wants, &used_before) {
        create_public_ip(azure, settings, &pip, &prefix_id, family).await?;
    }
    let wants: Vec<NicIpConfigWant> = wants.into_iter().map(|(w, _)| w).collect();
    let (mut nic, written) = write_nic(azure, &id, nic, &wants, pass).await?;
    let mut ips = node_ips(&nic);
    let lacks = |ips: &InstanceIps| ips.lacks(wants.iter().map(|w| w.name.as_str()));
    if lacks(&ips) {
        // Addresses may be filled in only after the write settled.
        nic = azure
            .get_network_interface(&id)
            .await
            .map_err(|e| PoolError::azure(format!("read network interface {id}"), e))?;
        ips = node_ips(&nic);
        if lacks(&ips) {
            return Err(PoolError::MissingIp {
                instance: nic_name,
                why: "a gateway ipConfiguration has no private IP".to_string(),
            });
        }
    }
    ips.written = written;
    let used_after = nic_plan::gateway_public_ips(&nic);
    let stale = public_ips::stale(
        &settings.resource_group,
        &nic_name,
        &used_before,
        &used_after,
    );
    for pip in stale {
        delete_public_ip(azure, &pip).await?;
    }
    Ok((ips, used_after))
}

/// What a VM pool NIC has: the node name is the NIC's name, as the original (the gateway
/// daemon matches it with the VM's `aks-managed-nic-name` tag).
fn node_ips(nic: &NetworkInterface) -> InstanceIps {
    InstanceIps::read(nic.name.as_deref().unwrap_or_default(), nic)
}

/// Writes the NIC once if the plan changes it (or it is `Failed`, or lacks a wanted address),
/// re-reading and re-planning on 412. Returns the NIC as it is now and whether it was written.
async fn write_nic(
    azure: &dyn AzureApi,
    id: &ResourceId,
    mut nic: NetworkInterface,
    wants: &[NicIpConfigWant],
    pass: &NicPass<'_>,
) -> Result<(NetworkInterface, bool), PoolError> {
    for attempt in 0..ETAG_ATTEMPTS {
        if attempt > 0 {
            nic = azure
                .get_network_interface(id)
                .await
                .map_err(|e| PoolError::azure(format!("read network interface {id}"), e))?;
        }
        let before = nic.clone();
        let changed = nic_plan::plan(&mut nic, wants, pass.remove, pass.backend_pool_id).map_err(
            |source| PoolError::Nic {
                what: format!("network interface {id}"),
                source,
            },
        )?;
        let failed = before
            .properties
            .provisioning_state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Failed"));
        let lacks = node_ips(&before).lacks(wants.iter().map(|w| w.name.as_str()));
        if !changed && !failed && !lacks {
            return Ok((before, false));
        }
        match azure
            .create_or_update_network_interface(id, &nic, before.etag.as_deref())
            .await
        {
            Ok(written) => return Ok((written, true)),
            Err(e) if e.category() == ErrorCategory::Conflict && attempt + 1 < ETAG_ATTEMPTS => {
                tracing::debug!(nic = %id, error = %e, "network interface changed meanwhile, re-reading");
            }
            Err(e) => {
                return Err(PoolError::azure(
                    format!("update network interface {id}"),
                    e,
                ));
            }
        }
    }
    Ok((nic, false))
}

async fn create_public_ip(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    id: &str,
    prefix_id: &str,
    family: Family,
) -> Result<(), PoolError> {
    let pip = ResourceId::parse(id).map_err(|_| PoolError::NoUniqueId { id: id.to_string() })?;
    let body = PublicIpAddress {
        location: Some(settings.location.clone()),
        sku: Some(Sku::standard_regional()),
        properties: PublicIpAddressProperties {
            public_ip_allocation_method: Some("Static".into()),
            public_ip_address_version: Some(family.version().into()),
            public_ip_prefix: Some(egress_azure::models::SubResource::new(prefix_id)),
            ..Default::default()
        },
        ..Default::default()
    };
    azure
        .create_or_update_public_ip_address(&pip, &body)
        .await
        .map(|_| ())
        .map_err(|e| PoolError::azure(format!("create public IP {pip}"), e))
}

async fn delete_public_ip(azure: &dyn AzureApi, pip: &ResourceId) -> Result<(), PoolError> {
    tracing::info!(public_ip = %pip, "deleting a gateway NIC's public IP no longer used");
    azure
        .delete_public_ip_address(pip)
        .await
        .map_err(|e| PoolError::azure(format!("delete public IP {pip}"), e))
}
