//! The NICs of a VirtualMachines node pool in a pool pass: the NICs AKS pre-created for the
//! pool (tags `aks-managed-static-gateway-nic` and `aks-managed-poolName`, also those of VMs
//! that do not exist yet) each get their per-gateway public IPs created when missing (not
//! re-PUT every pass, as the original does), then at most one PUT with `If-Match` for every
//! gateway change of the batch (412 → re-read, re-plan). Public IPs we created that a NIC no
//! longer uses are deleted once detached, including inside BYO prefixes.

use std::collections::BTreeSet;

use egress_azure::models::{NetworkInterface, PublicIpAddress, PublicIpAddressProperties, Sku};
use egress_azure::{AzureApi, ErrorCategory, ResourceId};
use futures::StreamExt;

use crate::config::AzureSettings;
use crate::pool::apply::ETAG_ATTEMPTS;
use crate::pool::apply::prefixes::PrefixInfo;
use crate::pool::apply::scale_set::InstanceIps;
use crate::pool::error::PoolError;
use crate::pool::gateway_pool::is_gateway_nic;
use crate::pool::plan;
use crate::pool::plan::vm_nics::{NicIpConfigWant, nic_hash, public_ip_name};

/// One gateway ipConfig to have on every NIC of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmGatewayWant {
    /// `egressgateway-<VM config UID>`.
    pub name: String,
    /// The gateway's prefix (public mode).
    pub prefix: Option<PrefixInfo>,
}

/// What the pool's NICs should carry in this pass.
#[derive(Debug, Clone, Copy)]
pub struct NicPass<'a> {
    /// Node pool name.
    pub pool: &'a str,
    /// Gateways to have.
    pub want: &'a [VmGatewayWant],
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
        delete_leftover_ips(azure, settings, prefix, &names, &in_use).await?;
    }
    Ok(out)
}

fn wants_for(
    settings: &AzureSettings,
    nic_name: &str,
    want: &[VmGatewayWant],
) -> Result<Vec<(NicIpConfigWant, Option<PrefixInfo>)>, PoolError> {
    want.iter()
        .map(|w| {
            let pip = match &w.prefix {
                None => None,
                Some(p) => {
                    let prefix = ResourceId::parse(&p.id)
                        .map_err(|_| PoolError::NoUniqueId { id: p.id.clone() })?;
                    Some(
                        settings
                            .resource_group_id()
                            .public_ip_address(&public_ip_name(&prefix, nic_name))
                            .to_string(),
                    )
                }
            };
            Ok((
                NicIpConfigWant {
                    name: w.name.clone(),
                    public_ip_id: pip,
                },
                w.prefix.clone(),
            ))
        })
        .collect()
}

async fn apply_nic(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pass: &NicPass<'_>,
    mut nic: NetworkInterface,
) -> Result<(InstanceIps, Vec<String>), PoolError> {
    let id_text = nic.id.clone().unwrap_or_default();
    let id = ResourceId::parse(&id_text).map_err(|_| PoolError::NoNetworkProfile {
        what: format!("network interface {id_text:?}"),
    })?;
    let nic_name = id.name().to_string();
    let wants = wants_for(settings, &nic_name, pass.want)?;
    // The NIC's public IPs, created only when Azure does not have them (the prefix lists
    // the public IPs allocated from it).
    let used_before = plan::vm_nics::gateway_public_ips(&nic);
    for (w, prefix) in &wants {
        let (Some(pip), Some(prefix)) = (&w.public_ip_id, prefix) else {
            continue;
        };
        let known = |ids: &[String]| ids.iter().any(|i| i.eq_ignore_ascii_case(pip));
        let listed: Vec<String> = prefix.public_ips.clone();
        if !known(&listed) && !known(&used_before) {
            create_public_ip(azure, settings, pip, &prefix.id).await?;
        }
    }
    let nic_wants: Vec<NicIpConfigWant> = wants.into_iter().map(|(w, _)| w).collect();
    let mut written = false;
    for attempt in 0..ETAG_ATTEMPTS {
        if attempt > 0 {
            nic = azure
                .get_network_interface(&id)
                .await
                .map_err(|e| PoolError::azure(format!("read network interface {id}"), e))?;
        }
        let before = nic.clone();
        let changed = plan::vm_nics::plan(&mut nic, &nic_wants, pass.remove, pass.backend_pool_id)
            .map_err(|source| PoolError::Nic {
                what: format!("network interface {id}"),
                source,
            })?;
        let failed = before
            .properties
            .provisioning_state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Failed"));
        if !changed && !failed && !missing(&ips_of(&before), &nic_wants) {
            nic = before;
            break;
        }
        match azure
            .create_or_update_network_interface(&id, &nic, before.etag.as_deref())
            .await
        {
            Ok(n) => {
                nic = n;
                written = true;
                break;
            }
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
    let mut ips = ips_of(&nic);
    if missing(&ips, &nic_wants) {
        // Addresses may be filled in only after the write settled.
        nic = azure
            .get_network_interface(&id)
            .await
            .map_err(|e| PoolError::azure(format!("read network interface {id}"), e))?;
        ips = ips_of(&nic);
        if missing(&ips, &nic_wants) {
            return Err(PoolError::MissingIp {
                instance: nic_name,
                why: "a gateway ipConfiguration has no private IP".to_string(),
            });
        }
    }
    ips.written = written;
    let used_after = plan::vm_nics::gateway_public_ips(&nic);
    let suffix = format!("-{}", nic_hash(&nic_name));
    for old in used_before {
        if used_after.iter().any(|u| u.eq_ignore_ascii_case(&old)) {
            continue;
        }
        let Ok(pip) = ResourceId::parse(&old) else {
            continue;
        };
        if ours(settings, &pip, &suffix) {
            delete_public_ip(azure, &pip).await?;
        }
    }
    Ok((ips, used_after))
}

/// A public IP this operator names: in `resourceGroup`, ending in the NIC's hash.
fn ours(settings: &AzureSettings, pip: &ResourceId, suffix: &str) -> bool {
    pip.expect_type("Microsoft.Network/publicIPAddresses")
        .is_ok()
        && pip
            .resource_group()
            .is_some_and(|rg| rg.eq_ignore_ascii_case(&settings.resource_group))
        && pip.name().to_ascii_lowercase().ends_with(suffix)
}

fn missing(ips: &InstanceIps, want: &[NicIpConfigWant]) -> bool {
    ips.primary_ip.is_none()
        || want
            .iter()
            .any(|w| !ips.secondary.contains_key(&w.name.to_ascii_lowercase()))
}

fn ips_of(nic: &NetworkInterface) -> InstanceIps {
    InstanceIps {
        node_name: nic.name.clone().unwrap_or_default(),
        primary_ip: nic
            .primary_ip_configuration()
            .and_then(|c| c.properties.private_ip_address.clone()),
        secondary: nic
            .properties
            .ip_configurations
            .iter()
            .filter(|c| c.properties.primary != Some(true))
            .filter_map(|c| {
                Some((
                    c.name.as_deref()?.to_ascii_lowercase(),
                    c.properties.private_ip_address.clone()?,
                ))
            })
            .collect(),
        written: false,
    }
}

async fn create_public_ip(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    id: &str,
    prefix_id: &str,
) -> Result<(), PoolError> {
    let pip = ResourceId::parse(id).map_err(|_| PoolError::NoUniqueId { id: id.to_string() })?;
    let body = PublicIpAddress {
        location: Some(settings.location.clone()),
        sku: Some(Sku::standard_regional()),
        properties: PublicIpAddressProperties {
            public_ip_allocation_method: Some("Static".into()),
            public_ip_address_version: Some("IPv4".into()),
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

/// Deletes the per-NIC public IPs of `prefix` that no NIC uses any more (left behind when the
/// operator stopped between a NIC write and the deletion).
async fn delete_leftover_ips(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    prefix: &ResourceId,
    nic_names: &[String],
    in_use: &BTreeSet<String>,
) -> Result<(), PoolError> {
    let found = match azure.get_public_ip_prefix(prefix).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => {
            return Err(PoolError::azure(
                format!("read public IP prefix {prefix}"),
                e,
            ));
        }
    };
    let expected: BTreeSet<String> = nic_names
        .iter()
        .map(|n| {
            settings
                .resource_group_id()
                .public_ip_address(&public_ip_name(prefix, n))
                .to_string()
                .to_ascii_lowercase()
        })
        .collect();
    for ip in &found.properties.public_ip_addresses {
        let lower = ip.id.to_ascii_lowercase();
        if !expected.contains(&lower) || in_use.contains(&lower) {
            continue;
        }
        if let Ok(pip) = ResourceId::parse(&ip.id) {
            delete_public_ip(azure, &pip).await?;
        }
    }
    Ok(())
}
