//! ARM resource models: the fields the operator reads or writes, typed; everything else kept in
//! `extra` maps (`#[serde(flatten)]`) at each level, so a GET-modify-PUT never drops properties
//! this crate does not model. Optional fields are omitted when `None`, never sent as `null`.

mod common;
mod compute;
mod load_balancer;
mod network;

pub use common::{Child, Extra, Resource, Sku, SubResource};
pub use compute::{
    NetworkInterfaceReference, NetworkInterfaceReferenceProperties, OsProfile, VirtualMachine,
    VirtualMachineProperties, VirtualMachineScaleSet, VirtualMachineScaleSetProperties,
    VmNetworkProfile, VmProfile, VmssIpConfiguration, VmssIpConfigurationProperties,
    VmssNetworkInterfaceConfiguration, VmssNetworkInterfaceConfigurationProperties,
    VmssNetworkProfile, VmssPublicIpAddressConfiguration,
    VmssPublicIpAddressConfigurationProperties, VmssVm, VmssVmNetworkProfileConfiguration,
    VmssVmProperties,
};
pub use load_balancer::{
    BackendAddressPool, FrontendIpConfiguration, FrontendIpConfigurationProperties, LoadBalancer,
    LoadBalancerProperties, LoadBalancingRule, LoadBalancingRuleProperties, Probe, ProbeProperties,
};
pub use network::{
    NetworkInterface, NetworkInterfaceIpConfiguration, NetworkInterfaceIpConfigurationProperties,
    NetworkInterfaceProperties, PublicIpAddress, PublicIpAddressProperties, PublicIpPrefix,
    PublicIpPrefixProperties, Subnet, SubnetProperties,
};

#[cfg(test)]
mod tests;
