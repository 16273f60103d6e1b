//! What a pool key resolves to in Azure: a scale set (by ID, or by the node pool tag), or an AKS
//! "VirtualMachines" node pool (standalone VMs tagged with the pool name, whose NICs AKS
//! pre-creates). A node pool name is looked up among VMs first, then scale sets, as the
//! original does.

use std::collections::BTreeMap;

use egress_azure::models::{VirtualMachine, VirtualMachineScaleSet};
use egress_azure::{AzureApi, ResourceId};

use crate::config::AzureSettings;
use crate::pool::error::PoolError;
use crate::target::PoolKey;

/// Tag carrying a node pool's name.
pub const POOL_NAME_TAG: &str = "aks-managed-poolName";
/// Tag carrying a node pool's public IP prefix length.
pub const PREFIX_SIZE_TAG: &str = "aks-managed-gatewayIPPrefixSize";
/// Tag AKS puts on the NICs it pre-creates for a VirtualMachines gateway pool.
pub const STATIC_GATEWAY_NIC_TAG: &str = "aks-managed-static-gateway-nic";
/// UUID namespace the original names a VM pool's frontend and backend pool in (v3 UUID of the
/// pool name), so that both operators agree on the names.
const VM_POOL_NAMESPACE: uuid::Uuid = uuid::uuid!("2c96e82c-842f-11f0-8ea5-6bee14278ecd");

/// The Azure side of a pool.
#[derive(Debug, Clone)]
pub enum PoolKind {
    /// A scale set: gateway ipConfigs go on its model and every instance.
    ScaleSet {
        /// Its ID.
        id: ResourceId,
        /// As read (boxed: far larger than the VM variant).
        vmss: Box<VirtualMachineScaleSet>,
    },
    /// A VirtualMachines node pool: gateway ipConfigs go on the pre-created NICs.
    Vms {
        /// Node pool name (lower case).
        name: String,
        /// The pool's VMs as listed (for the prefix size tag).
        vms: Vec<VirtualMachine>,
    },
}

/// A resolved gateway pool.
#[derive(Debug, Clone)]
pub struct GatewayPool {
    /// Scale set or VMs.
    pub kind: PoolKind,
    /// The frontend and backend pool name: the scale set's `uniqueId`, or for a VM pool the v3
    /// UUID of its name (as the original).
    pub unique_id: String,
}

fn tag<'a>(tags: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    tags?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

fn in_pool(tags: Option<&BTreeMap<String, String>>, pool: &str) -> bool {
    tag(tags, POOL_NAME_TAG).is_some_and(|t| t.eq_ignore_ascii_case(pool))
}

/// Whether a NIC (by its tags) is one AKS pre-created for the VM pool `pool`.
pub fn is_gateway_nic(tags: Option<&BTreeMap<String, String>>, pool: &str) -> bool {
    tag(tags, STATIC_GATEWAY_NIC_TAG).is_some() && in_pool(tags, pool)
}

impl GatewayPool {
    /// A VM pool named `name` with its VMs.
    pub fn vm_pool(name: &str, vms: Vec<VirtualMachine>) -> Self {
        let name = name.to_ascii_lowercase();
        Self {
            unique_id: uuid::Uuid::new_v3(&VM_POOL_NAMESPACE, name.as_bytes()).to_string(),
            kind: PoolKind::Vms { name, vms },
        }
    }

    /// Every key that names this pool: by scale set, and by node pool name when it is tagged
    /// and in the node resource group.
    pub fn aliases(&self, settings: &AzureSettings) -> Vec<PoolKey> {
        match &self.kind {
            PoolKind::Vms { name, .. } => vec![PoolKey::Nodepool(name.clone())],
            PoolKind::ScaleSet { id, vmss } => {
                let mut out = vec![PoolKey::Vmss {
                    resource_group: id.resource_group().unwrap_or_default().to_ascii_lowercase(),
                    name: id.name().to_ascii_lowercase(),
                }];
                let in_node_group = id
                    .resource_group()
                    .is_some_and(|rg| rg.eq_ignore_ascii_case(&settings.resource_group));
                if let (true, Some(pool)) = (in_node_group, vmss.tag(POOL_NAME_TAG)) {
                    out.push(PoolKey::Nodepool(pool.to_ascii_lowercase()));
                }
                out
            }
        }
    }

    /// The prefix length a node pool's tag asks for (on the scale set, or on any of its VMs).
    pub fn tagged_prefix_size(&self) -> Option<u8> {
        let parse = |v: &str| {
            v.trim()
                .parse::<u8>()
                .ok()
                .filter(|n| (28..=31).contains(n))
        };
        match &self.kind {
            PoolKind::ScaleSet { vmss, .. } => vmss.tag(PREFIX_SIZE_TAG).and_then(parse),
            PoolKind::Vms { vms, .. } => vms
                .iter()
                .find_map(|vm| tag(vm.tags.as_ref(), PREFIX_SIZE_TAG).and_then(parse)),
        }
    }

    /// The subnet the pool's gateway ipConfigs go in: a scale set's primary ipConfig's (of the
    /// model), or for a VM pool the cluster's (`settings.subnet_id`: AKS puts the pre-created
    /// NICs there).
    pub fn gateway_subnet_id(&self, settings: &AzureSettings) -> Option<String> {
        match &self.kind {
            PoolKind::Vms { .. } => Some(settings.subnet_id.to_string()),
            PoolKind::ScaleSet { vmss, .. } => {
                let nics = &vmss.network_profile()?.network_interface_configurations;
                let nic = nics
                    .iter()
                    .find(|n| n.properties.primary == Some(true))
                    .or_else(|| nics.first().filter(|_| nics.len() == 1))?;
                let ipcs = &nic.properties.ip_configurations;
                let ipc = ipcs
                    .iter()
                    .find(|c| c.properties.primary == Some(true))
                    .or_else(|| ipcs.first().filter(|_| ipcs.len() == 1))?;
                Some(ipc.properties.subnet.as_ref()?.id.clone())
            }
        }
    }

    /// The gateway backend pool's ID in `lb`.
    pub fn backend_pool_id(&self, lb: &ResourceId) -> String {
        lb.child("backendAddressPools", &self.unique_id).to_string()
    }

    /// What carries the gateway ipConfigs, for messages.
    pub fn unit(&self) -> &'static str {
        match self.kind {
            PoolKind::ScaleSet { .. } => "instances",
            PoolKind::Vms { .. } => "gateway NICs",
        }
    }

    /// For messages: `scale set gw-vmss` or `VM node pool gwpool`.
    pub fn describe(&self) -> String {
        match &self.kind {
            PoolKind::ScaleSet { id, .. } => format!("scale set {}", id.name()),
            PoolKind::Vms { name, .. } => format!("VM node pool {name}"),
        }
    }
}

/// How many nodes the pool has: scale-set instances, or the gateway NICs AKS pre-created for a
/// VM pool (each needs an address of a public gateway's prefix).
pub async fn node_count(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    pool: &GatewayPool,
) -> Result<usize, PoolError> {
    match &pool.kind {
        PoolKind::ScaleSet { id, .. } => azure
            .list_scale_set_vms(id)
            .await
            .map(|v| v.len())
            .map_err(|e| PoolError::azure(format!("list instances of scale set {id}"), e)),
        PoolKind::Vms { name, .. } => {
            let group = settings.resource_group_id();
            azure
                .list_network_interfaces(&group)
                .await
                .map(|nics| {
                    nics.iter()
                        .filter(|n| is_gateway_nic(n.tags.as_ref(), name))
                        .count()
                })
                .map_err(|e| PoolError::azure(format!("list network interfaces in {group}"), e))
        }
    }
}

/// Reads the pool: a scale set by ID for a profile; for a node pool the VMs tagged with its
/// name in `resourceGroup`, else the scale set tagged with it.
pub async fn resolve_pool(
    azure: &dyn AzureApi,
    settings: &AzureSettings,
    key: &PoolKey,
) -> Result<GatewayPool, PoolError> {
    let vmss = match key {
        PoolKey::Vmss {
            resource_group,
            name,
        } => {
            let id = egress_azure::ResourceGroupId::new(&settings.subscription_id, resource_group)
                .scale_set(name);
            match azure.get_scale_set(&id).await {
                Ok(v) => v,
                Err(e) if e.is_not_found() => {
                    return Err(PoolError::PoolNotFound {
                        pool: key.to_string(),
                        why: format!("scale set {id} does not exist"),
                    });
                }
                Err(e) => return Err(PoolError::azure(format!("read scale set {id}"), e)),
            }
        }
        PoolKey::Nodepool(pool) => {
            let group = settings.resource_group_id();
            let vms: Vec<VirtualMachine> = azure
                .list_virtual_machines(&group)
                .await
                .map_err(|e| PoolError::azure(format!("list virtual machines in {group}"), e))?
                .into_iter()
                .filter(|vm| in_pool(vm.tags.as_ref(), pool))
                .collect();
            if !vms.is_empty() {
                return Ok(GatewayPool::vm_pool(pool, vms));
            }
            let all = azure
                .list_scale_sets(&group)
                .await
                .map_err(|e| PoolError::azure(format!("list scale sets in {group}"), e))?;
            match all.into_iter().find(|v| in_pool(v.tags.as_ref(), pool)) {
                Some(v) => v,
                None => {
                    // A VM pool scaled to zero keeps its pre-created NICs (and our ipConfigs).
                    let nics = azure.list_network_interfaces(&group).await.map_err(|e| {
                        PoolError::azure(format!("list network interfaces in {group}"), e)
                    })?;
                    if nics.iter().any(|n| is_gateway_nic(n.tags.as_ref(), pool)) {
                        return Ok(GatewayPool::vm_pool(pool, Vec::new()));
                    }
                    return Err(PoolError::PoolNotFound {
                        pool: key.to_string(),
                        why: format!(
                            "no virtual machine, scale set or gateway NIC in {group} has the tag {POOL_NAME_TAG}={pool}"
                        ),
                    });
                }
            }
        }
    };
    let id_text = vmss.id.clone().unwrap_or_default();
    let id = ResourceId::parse(&id_text).map_err(|_| PoolError::NoUniqueId {
        id: id_text.clone(),
    })?;
    let unique_id = vmss
        .properties
        .unique_id
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or(PoolError::NoUniqueId { id: id_text })?;
    Ok(GatewayPool {
        kind: PoolKind::ScaleSet {
            id,
            vmss: Box::new(vmss),
        },
        unique_id,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_vm_pool_is_named_as_the_original_names_it() {
        // uuid.NewMD5(namespaceAgentPool, []byte("gwpool")) in the original (value computed
        // independently with Python's uuid.uuid3).
        let p = GatewayPool::vm_pool("GWPool", vec![]);
        assert_eq!(p.unique_id, "0ac85383-8182-3559-8e40-dd91da42e59e");
        assert_eq!(p.describe(), "VM node pool gwpool");
    }

    #[test]
    fn the_gateway_subnet_is_the_primary_ipconfigs_or_the_clusters() {
        use crate::pool::plan::fixtures::{scale_set_pool, settings};
        let s = settings();
        let vms = GatewayPool::vm_pool("vmpool", vec![]);
        assert_eq!(vms.gateway_subnet_id(&s), Some(s.subnet_id.to_string()));
        let mut pool = scale_set_pool(Some("31"));
        assert_eq!(pool.gateway_subnet_id(&s), None, "no network profile");
        let PoolKind::ScaleSet { vmss, .. } = &mut pool.kind else {
            panic!()
        };
        **vmss = serde_json::from_value(serde_json::json!({"properties": {"virtualMachineProfile":
            {"networkProfile": {"networkInterfaceConfigurations": [
                {"name": "other", "properties": {"primary": false, "ipConfigurations": []}},
                {"name": "main", "properties": {"primary": true, "ipConfigurations": [
                    {"name": "x", "properties": {"subnet": {"id": "/s/x"}}},
                    {"name": "p", "properties": {"primary": true, "subnet": {"id": "/s/p"}}}]}}]}}}}))
        .unwrap();
        assert_eq!(pool.gateway_subnet_id(&s).as_deref(), Some("/s/p"));
    }

    #[test]
    fn gateway_nics_need_both_tags() {
        let t = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let both = t(&[(STATIC_GATEWAY_NIC_TAG, "true"), (POOL_NAME_TAG, "VMPool")]);
        assert!(is_gateway_nic(Some(&both), "vmpool"));
        assert!(!is_gateway_nic(Some(&both), "other"));
        assert!(!is_gateway_nic(
            Some(&t(&[(POOL_NAME_TAG, "vmpool")])),
            "vmpool"
        ));
        assert!(!is_gateway_nic(None, "vmpool"));
    }
}
