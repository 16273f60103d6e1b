//! The operations the operator needs, as narrow consumer-shaped traits (so reconcilers can take
//! a stateful fake) implemented by [`ArmClient`](crate::ArmClient). [`AzureApi`] bundles them.
//! Every call takes full [`ResourceId`]s (or a [`ResourceGroupId`] for lists) and checks the
//! resource type before sending anything.

mod compute;
mod network;

use async_trait::async_trait;

use crate::error::{ArmError, ArmErrorBody};
use crate::models::{
    LoadBalancer, NetworkInterface, PublicIpAddress, PublicIpPrefix, Subnet, VirtualMachine,
    VirtualMachineScaleSet, VmssNetworkProfile, VmssVm, VmssVmNetworkProfileConfiguration,
};
use crate::resource_id::{ResourceGroupId, ResourceId};

/// `Microsoft.Network/loadBalancers`.
#[async_trait]
pub trait LoadBalancers: Send + Sync {
    /// GET a load balancer (`NotFound` if absent).
    async fn get_load_balancer(&self, id: &ResourceId) -> Result<LoadBalancer, ArmError>;
    /// PUT a load balancer (whole object), optionally guarded by `If-Match: etag`; waits for the
    /// operation and returns the resulting resource (with allocated frontend IPs).
    async fn create_or_update_load_balancer(
        &self,
        id: &ResourceId,
        lb: &LoadBalancer,
        if_match: Option<&str>,
    ) -> Result<LoadBalancer, ArmError>;
    /// DELETE a load balancer; absent counts as deleted.
    async fn delete_load_balancer(&self, id: &ResourceId) -> Result<(), ArmError>;
}

/// `Microsoft.Compute/virtualMachineScaleSets` (the model).
#[async_trait]
pub trait ScaleSets: Send + Sync {
    /// GET a scale set.
    async fn get_scale_set(&self, id: &ResourceId) -> Result<VirtualMachineScaleSet, ArmError>;
    /// LIST scale sets in a resource group (all pages).
    async fn list_scale_sets(
        &self,
        group: &ResourceGroupId,
    ) -> Result<Vec<VirtualMachineScaleSet>, ArmError>;
    /// Replace the model's network profile only (PATCH with just that subtree; other model
    /// properties are untouched), optionally guarded by `If-Match`; waits for the operation.
    async fn update_scale_set_network_profile(
        &self,
        id: &ResourceId,
        profile: &VmssNetworkProfile,
        if_match: Option<&str>,
    ) -> Result<VirtualMachineScaleSet, ArmError>;
}

/// Scale set instances (`.../virtualMachineScaleSets/{vmss}/virtualMachines/{id}`).
#[async_trait]
pub trait ScaleSetVms: Send + Sync {
    /// LIST the instances of a scale set (all pages).
    async fn list_scale_set_vms(&self, scale_set: &ResourceId) -> Result<Vec<VmssVm>, ArmError>;
    /// PUT an instance with only `location` and its network profile configuration; waits.
    async fn update_scale_set_vm_network_profile(
        &self,
        instance: &ResourceId,
        location: &str,
        config: &VmssVmNetworkProfileConfiguration,
        if_match: Option<&str>,
    ) -> Result<VmssVm, ArmError>;
    /// GET an instance NIC by its ID (as listed in the instance's `networkProfile`).
    async fn get_scale_set_vm_network_interface(
        &self,
        nic: &ResourceId,
    ) -> Result<NetworkInterface, ArmError>;
}

/// `Microsoft.Compute/virtualMachines` (pool discovery in VM node pools).
#[async_trait]
pub trait VirtualMachines: Send + Sync {
    /// LIST VMs in a resource group (all pages).
    async fn list_virtual_machines(
        &self,
        group: &ResourceGroupId,
    ) -> Result<Vec<VirtualMachine>, ArmError>;
}

/// `Microsoft.Network/networkInterfaces` (standalone NICs of VM node pools).
#[async_trait]
pub trait NetworkInterfaces: Send + Sync {
    /// LIST NICs in a resource group (all pages).
    async fn list_network_interfaces(
        &self,
        group: &ResourceGroupId,
    ) -> Result<Vec<NetworkInterface>, ArmError>;
    /// GET a NIC.
    async fn get_network_interface(&self, id: &ResourceId) -> Result<NetworkInterface, ArmError>;
    /// PUT a NIC (whole object), optionally guarded by `If-Match`; waits.
    async fn create_or_update_network_interface(
        &self,
        id: &ResourceId,
        nic: &NetworkInterface,
        if_match: Option<&str>,
    ) -> Result<NetworkInterface, ArmError>;
}

/// `Microsoft.Network/publicIPPrefixes`.
#[async_trait]
pub trait PublicIpPrefixes: Send + Sync {
    /// GET a prefix (with `ipPrefix` and the public IPs allocated from it).
    async fn get_public_ip_prefix(&self, id: &ResourceId) -> Result<PublicIpPrefix, ArmError>;
    /// PUT a prefix; waits until it is allocated and returns it.
    async fn create_public_ip_prefix(
        &self,
        id: &ResourceId,
        prefix: &PublicIpPrefix,
    ) -> Result<PublicIpPrefix, ArmError>;
    /// DELETE a prefix; absent counts as deleted. Fails (`Permanent`, code
    /// `InUsePublicIpPrefixCannotBeDeleted`) while public IPs still use it.
    async fn delete_public_ip_prefix(&self, id: &ResourceId) -> Result<(), ArmError>;
}

/// `Microsoft.Network/publicIPAddresses`.
#[async_trait]
pub trait PublicIpAddresses: Send + Sync {
    /// PUT a public IP (e.g. static, from a prefix); waits and returns it with its address.
    async fn create_or_update_public_ip_address(
        &self,
        id: &ResourceId,
        ip: &PublicIpAddress,
    ) -> Result<PublicIpAddress, ArmError>;
    /// DELETE a public IP; absent counts as deleted.
    async fn delete_public_ip_address(&self, id: &ResourceId) -> Result<(), ArmError>;
}

/// `Microsoft.Network/virtualNetworks/subnets`.
#[async_trait]
pub trait Subnets: Send + Sync {
    /// GET a subnet.
    async fn get_subnet(&self, id: &ResourceId) -> Result<Subnet, ArmError>;
}

/// Everything the operator uses, for `Arc<dyn AzureApi>` in reconciler contexts.
pub trait AzureApi:
    LoadBalancers
    + ScaleSets
    + ScaleSetVms
    + VirtualMachines
    + NetworkInterfaces
    + PublicIpPrefixes
    + PublicIpAddresses
    + Subnets
    + std::fmt::Debug
{
}

impl<T> AzureApi for T where
    T: LoadBalancers
        + ScaleSets
        + ScaleSetVms
        + VirtualMachines
        + NetworkInterfaces
        + PublicIpPrefixes
        + PublicIpAddresses
        + Subnets
        + std::fmt::Debug
{
}

/// Rejects an ID of the wrong type before any request is sent (a caller bug, so `Permanent`).
fn check_type(
    operation: &'static str,
    id: &ResourceId,
    expected: &str,
) -> Result<String, ArmError> {
    id.expect_type(expected)
        .map(ToString::to_string)
        .map_err(|e| ArmError::Permanent {
            operation,
            status: None,
            body: ArmErrorBody::new("InvalidResourceId", e.to_string()),
            source: Some(Box::new(e)),
        })
}
