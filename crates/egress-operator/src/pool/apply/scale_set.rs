//! A scale set in a pool pass: the model's network profile written at most once (`If-Match`,
//! re-read and re-planned on 412), then each instance's NIC configuration brought to the wanted
//! gateway ipConfigs with at most one write (plus one forced write when Azure lost an address),
//! and its NIC read for the primary and gateway IPs that go into the VM configuration status.

use egress_azure::models::{VirtualMachineScaleSet, VmssVm, VmssVmNetworkProfileConfiguration};
use egress_azure::{AzureApi, ErrorCategory, ResourceId};
use futures::StreamExt;

use crate::config::AzureSettings;
use crate::pool::apply::ETAG_ATTEMPTS;
use crate::pool::apply::node_ips::InstanceIps;
use crate::pool::error::PoolError;
use crate::pool::plan;
use crate::pool::plan::scale_set::IpConfigWant;

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
        let changed = plan::scale_set::plan(
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

/// Brings every instance to the wanted ipConfigs (one write per instance at most) and reads
/// their IPs.
pub async fn apply_instances(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    id: &ResourceId,
    want: &[IpConfigWant],
    remove: &[String],
    backend_pool_id: &str,
    concurrency: usize,
) -> Result<Vec<InstanceIps>, PoolError> {
    let vms = azure
        .list_scale_set_vms(id)
        .await
        .map_err(|e| PoolError::azure(format!("list instances of scale set {id}"), e))?;
    let results: Vec<Result<InstanceIps, PoolError>> = futures::stream::iter(vms)
        .map(|vm| apply_instance(azure, settings, vm, want, remove, backend_pool_id))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.node_name.cmp(&b.node_name));
    Ok(out)
}

async fn apply_instance(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    vm: VmssVm,
    want: &[IpConfigWant],
    remove: &[String],
    backend_pool_id: &str,
) -> Result<InstanceIps, PoolError> {
    let id_text = vm.id.clone().unwrap_or_default();
    let id = ResourceId::parse(&id_text).map_err(|_| PoolError::NoNetworkProfile {
        what: format!("instance {id_text:?}"),
    })?;
    let node_name = vm
        .computer_name()
        .map(str::to_string)
        .unwrap_or_else(|| id.name().to_string());
    let mut config = vm
        .properties
        .network_profile_configuration
        .clone()
        .ok_or_else(|| PoolError::NoNetworkProfile {
            what: format!("instance {id}"),
        })?;
    let changed = plan::scale_set::plan(
        &mut config.network_interface_configurations,
        want,
        remove,
        backend_pool_id,
    )
    .map_err(|source| PoolError::Nic {
        what: format!("instance {id}"),
        source,
    })?;
    let failed = vm
        .properties
        .provisioning_state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("Failed"));
    let location = vm
        .location
        .clone()
        .unwrap_or_else(|| settings.location.clone());
    let mut written = false;
    if changed || failed {
        update_instance(azure, &id, &location, &config, vm.etag.as_deref()).await?;
        written = true;
    }
    let nic_id = vm
        .primary_nic_id()
        .and_then(|n| ResourceId::parse(n).ok())
        .ok_or_else(|| PoolError::NoNetworkProfile {
            what: format!("instance {id} (no primary NIC)"),
        })?;
    let mut ips = read_ips(azure, &nic_id, &node_name).await?;
    let missing = |ips: &InstanceIps| ips.lacks(want.iter().map(|w| w.name.as_str()));
    if missing(&ips) && !written {
        // The instance NIC lost a wanted ipConfig or its address: force the instance update.
        update_instance(azure, &id, &location, &config, None).await?;
        written = true;
        ips = read_ips(azure, &nic_id, &node_name).await?;
    }
    if missing(&ips) {
        return Err(PoolError::MissingIp {
            instance: node_name,
            why: "a gateway ipConfiguration has no private IP".to_string(),
        });
    }
    ips.written = written;
    Ok(ips)
}

async fn update_instance(
    azure: &dyn AzureApi,
    id: &ResourceId,
    location: &str,
    config: &VmssVmNetworkProfileConfiguration,
    etag: Option<&str>,
) -> Result<(), PoolError> {
    azure
        .update_scale_set_vm_network_profile(id, location, config, etag)
        .await
        .map(|_| ())
        .map_err(|e| PoolError::azure(format!("update instance {id}"), e))
}

async fn read_ips(
    azure: &dyn AzureApi,
    nic_id: &ResourceId,
    node_name: &str,
) -> Result<InstanceIps, PoolError> {
    let nic = azure
        .get_scale_set_vm_network_interface(nic_id)
        .await
        .map_err(|e| PoolError::azure(format!("read NIC {nic_id}"), e))?;
    Ok(InstanceIps::read(node_name, &nic))
}
