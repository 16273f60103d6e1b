//! The top-level resource types the emulator serves below a resource group, with what each is
//! called in paths, ARM types, operation names and api-version errors.

use crate::api_versions::ApiFamily;
use crate::ids::{COMPUTE, NETWORK};

/// A top-level (tracked) resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopType {
    LoadBalancer,
    PublicIpPrefix,
    PublicIpAddress,
    NetworkInterface,
    VirtualNetwork,
    ScaleSet,
    VirtualMachine,
}

impl TopType {
    pub const ALL: [TopType; 7] = [
        Self::LoadBalancer,
        Self::PublicIpPrefix,
        Self::PublicIpAddress,
        Self::NetworkInterface,
        Self::VirtualNetwork,
        Self::ScaleSet,
        Self::VirtualMachine,
    ];

    /// Provider namespace.
    pub fn provider(self) -> &'static str {
        match self {
            Self::ScaleSet | Self::VirtualMachine => COMPUTE,
            _ => NETWORK,
        }
    }

    /// The collection segment of paths (`loadBalancers`).
    pub fn collection(self) -> &'static str {
        match self {
            Self::LoadBalancer => "loadBalancers",
            Self::PublicIpPrefix => "publicIPPrefixes",
            Self::PublicIpAddress => "publicIPAddresses",
            Self::NetworkInterface => "networkInterfaces",
            Self::VirtualNetwork => "virtualNetworks",
            Self::ScaleSet => "virtualMachineScaleSets",
            Self::VirtualMachine => "virtualMachines",
        }
    }

    /// The ARM type (`Microsoft.Network/loadBalancers`).
    pub fn arm_type(self) -> &'static str {
        match self {
            Self::LoadBalancer => "Microsoft.Network/loadBalancers",
            Self::PublicIpPrefix => "Microsoft.Network/publicIPPrefixes",
            Self::PublicIpAddress => "Microsoft.Network/publicIPAddresses",
            Self::NetworkInterface => "Microsoft.Network/networkInterfaces",
            Self::VirtualNetwork => "Microsoft.Network/virtualNetworks",
            Self::ScaleSet => "Microsoft.Compute/virtualMachineScaleSets",
            Self::VirtualMachine => "Microsoft.Compute/virtualMachines",
        }
    }

    /// The operation-group name the SDKs use (`LoadBalancers`).
    pub fn op_group(self) -> &'static str {
        match self {
            Self::LoadBalancer => "LoadBalancers",
            Self::PublicIpPrefix => "PublicIPPrefixes",
            Self::PublicIpAddress => "PublicIPAddresses",
            Self::NetworkInterface => "NetworkInterfaces",
            Self::VirtualNetwork => "VirtualNetworks",
            Self::ScaleSet => "VirtualMachineScaleSets",
            Self::VirtualMachine => "VirtualMachines",
        }
    }

    /// Which api-versions the type accepts.
    pub fn family(self) -> ApiFamily {
        match self.provider() {
            COMPUTE => ApiFamily::Compute(self.collection()),
            _ => ApiFamily::Network(self.collection()),
        }
    }

    /// The type for a (lower-cased) provider and collection segment.
    pub fn from_segments(provider: &str, collection: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| {
            t.provider().eq_ignore_ascii_case(provider)
                && t.collection().eq_ignore_ascii_case(collection)
        })
    }
}
