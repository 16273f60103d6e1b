//! Who this node is, as the operator names it in `GatewayVMConfiguration.status.gatewayVMProfiles[].nodeName`:
//! the VMSS instance's computer name, or (VirtualMachines pools) the NIC name from the IMDS tag
//! `aks-managed-nic-name`. Loaded once from IMDS at start-up.

use egress_imds::{ImdsClient, ImdsError, InstanceMetadata};

/// IMDS tag holding the NIC name of a VM in a VirtualMachines pool.
pub const NIC_NAME_TAG: &str = "aks-managed-nic-name";

/// The names this node answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// `compute.osProfile.computerName`.
    pub computer_name: String,
    /// The `aks-managed-nic-name` tag, if the VM has one.
    pub nic_name: Option<String>,
}

impl NodeIdentity {
    /// A node known by its computer name only.
    pub fn computer(name: impl Into<String>) -> Self {
        Self {
            computer_name: name.into(),
            nic_name: None,
        }
    }

    /// From IMDS compute metadata.
    pub fn from_metadata(meta: &InstanceMetadata) -> Self {
        Self {
            computer_name: meta.computer_name.clone(),
            nic_name: meta
                .tags
                .get(NIC_NAME_TAG)
                .filter(|v| !v.is_empty())
                .cloned(),
        }
    }

    /// Reads the metadata from IMDS at `base_url`.
    pub async fn from_imds(base_url: &str) -> Result<Self, ImdsError> {
        let meta = ImdsClient::new(base_url)?.instance().await?;
        Ok(Self::from_metadata(&meta))
    }

    /// True if a profile's `nodeName` designates this node (host names are case-insensitive).
    pub fn is_named(&self, node_name: &str) -> bool {
        (!self.computer_name.is_empty() && node_name.eq_ignore_ascii_case(&self.computer_name))
            || self
                .nic_name
                .as_deref()
                .is_some_and(|nic| node_name.eq_ignore_ascii_case(nic))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn matches_the_computer_name_or_the_nic_tag() {
        let mut meta = InstanceMetadata {
            computer_name: "gw-vmss000001".into(),
            ..Default::default()
        };
        let vmss = NodeIdentity::from_metadata(&meta);
        assert!(vmss.is_named("GW-VMSS000001"));
        assert!(!vmss.is_named("gw-vmss000000"));
        assert!(!vmss.is_named(""));

        meta.tags.insert(NIC_NAME_TAG.into(), "aks-gw-nic-3".into());
        let vm = NodeIdentity::from_metadata(&meta);
        assert!(vm.is_named("aks-gw-nic-3"));
        assert!(vm.is_named("gw-vmss000001"));
    }
}
