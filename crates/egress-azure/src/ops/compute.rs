//! [`ArmClient`] implementations of the `Microsoft.Compute` traits (api-version
//! [`api_versions::COMPUTE`]; instance NICs use [`api_versions::VMSS_NETWORK_INTERFACE`]).

use async_trait::async_trait;
use serde_json::json;

use super::{ScaleSetVms, ScaleSets, VirtualMachines, check_type};
use crate::api_versions::{COMPUTE, VMSS_NETWORK_INTERFACE};
use crate::client::ArmClient;
use crate::error::ArmError;
use crate::models::{
    NetworkInterface, VirtualMachine, VirtualMachineScaleSet, VmssNetworkProfile, VmssVm,
    VmssVmNetworkProfileConfiguration,
};
use crate::resource_id::{ResourceGroupId, ResourceId};

const VMSS: &str = "Microsoft.Compute/virtualMachineScaleSets";
const VMSS_VM: &str = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines";
const VMSS_NIC: &str =
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces";

#[async_trait]
impl ScaleSets for ArmClient {
    async fn get_scale_set(&self, id: &ResourceId) -> Result<VirtualMachineScaleSet, ArmError> {
        const OP: &str = "scale_sets.get";
        self.get_json(OP, &check_type(OP, id, VMSS)?, COMPUTE).await
    }

    async fn list_scale_sets(
        &self,
        group: &ResourceGroupId,
    ) -> Result<Vec<VirtualMachineScaleSet>, ArmError> {
        let path = format!("{group}/providers/Microsoft.Compute/virtualMachineScaleSets");
        self.list_json("scale_sets.list", &path, COMPUTE).await
    }

    async fn update_scale_set_network_profile(
        &self,
        id: &ResourceId,
        profile: &VmssNetworkProfile,
        if_match: Option<&str>,
    ) -> Result<VirtualMachineScaleSet, ArmError> {
        const OP: &str = "scale_sets.update_network_profile";
        let body = json!({"properties": {"virtualMachineProfile": {"networkProfile": profile}}});
        self.patch_json(OP, &check_type(OP, id, VMSS)?, COMPUTE, &body, if_match)
            .await
    }
}

#[async_trait]
impl ScaleSetVms for ArmClient {
    async fn list_scale_set_vms(&self, scale_set: &ResourceId) -> Result<Vec<VmssVm>, ArmError> {
        const OP: &str = "scale_set_vms.list";
        let path = format!("{}/virtualMachines", check_type(OP, scale_set, VMSS)?);
        self.list_json(OP, &path, COMPUTE).await
    }

    async fn update_scale_set_vm_network_profile(
        &self,
        instance: &ResourceId,
        location: &str,
        config: &VmssVmNetworkProfileConfiguration,
        if_match: Option<&str>,
    ) -> Result<VmssVm, ArmError> {
        const OP: &str = "scale_set_vms.update_network_profile";
        // Instances have no PATCH; a PUT with only these fields is what the original sends.
        let body =
            json!({"location": location, "properties": {"networkProfileConfiguration": config}});
        self.put_json(
            OP,
            &check_type(OP, instance, VMSS_VM)?,
            COMPUTE,
            &body,
            if_match,
        )
        .await
    }

    async fn get_scale_set_vm_network_interface(
        &self,
        nic: &ResourceId,
    ) -> Result<NetworkInterface, ArmError> {
        const OP: &str = "scale_set_vms.get_network_interface";
        self.get_json(OP, &check_type(OP, nic, VMSS_NIC)?, VMSS_NETWORK_INTERFACE)
            .await
    }
}

#[async_trait]
impl VirtualMachines for ArmClient {
    async fn list_virtual_machines(
        &self,
        group: &ResourceGroupId,
    ) -> Result<Vec<VirtualMachine>, ArmError> {
        let path = format!("{group}/providers/Microsoft.Compute/virtualMachines");
        self.list_json("virtual_machines.list", &path, COMPUTE)
            .await
    }
}
