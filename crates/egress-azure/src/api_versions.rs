//! Pinned ARM api-versions. One place so the emulator, the docs and the client agree; bump them
//! deliberately (response shapes differ between versions).

/// `Microsoft.Network` (load balancers, subnets, NICs, public IP prefixes and addresses).
pub const NETWORK: &str = "2024-05-01";

/// `Microsoft.Compute` (virtual machine scale sets and their instances).
pub const COMPUTE: &str = "2024-07-01";

/// NICs of scale-set instances (`.../virtualMachineScaleSets/{vmss}/virtualMachines/{i}/networkInterfaces/{nic}`).
/// These paths live in the Network spec but the service only accepts this older version for them
/// (the Azure SDKs and cloud-provider-azure pin it too).
pub const VMSS_NETWORK_INTERFACE: &str = "2018-10-01";
