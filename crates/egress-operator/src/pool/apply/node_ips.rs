//! What one gateway node (a scale-set instance, or a VM pool NIC) has after a pass, read from
//! its NIC as Azure returns it: the primary IP and the private IP of each gateway ipConfig.
//! The VM configuration status is made of these.

use std::collections::BTreeMap;

use egress_azure::models::NetworkInterface;

/// The IPs of one node after this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceIps {
    /// The Kubernetes node name (an instance's computer name; a VM pool NIC's name).
    pub node_name: String,
    /// Primary private IP.
    pub primary_ip: Option<String>,
    /// Private IP of each secondary ipConfig, by lower-cased ipConfig name.
    pub secondary: BTreeMap<String, String>,
    /// Whether the node was written.
    pub written: bool,
}

impl InstanceIps {
    /// The IPs `nic` has, for the node `node_name`.
    pub fn read(node_name: &str, nic: &NetworkInterface) -> Self {
        Self {
            node_name: node_name.to_string(),
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

    /// Whether the node lacks its primary IP or the IP of one of the ipConfigs `wanted`.
    pub fn lacks<'a>(&self, mut wanted: impl Iterator<Item = &'a str>) -> bool {
        self.primary_ip.is_none()
            || wanted.any(|name| !self.secondary.contains_key(&name.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_node_has_its_primary_and_gateway_ips_by_ipconfig_name() {
        let nic: NetworkInterface = serde_json::from_value(json!({"name": "nic-0", "properties": {
            "ipConfigurations": [
                {"name": "ipconfig1", "properties": {"primary": true, "privateIPAddress": "10.0.0.4"}},
                {"name": "EgressGateway-A", "properties": {"privateIPAddress": "10.0.0.9"}},
                {"name": "egressgateway-b", "properties": {}}]}}))
        .unwrap();
        let ips = InstanceIps::read("node-0", &nic);
        assert_eq!(ips.primary_ip.as_deref(), Some("10.0.0.4"));
        assert_eq!(
            ips.secondary,
            BTreeMap::from([("egressgateway-a".to_string(), "10.0.0.9".to_string())])
        );
        assert!(!ips.lacks(["egressgateway-a"].into_iter()));
        assert!(ips.lacks(["egressgateway-a", "egressgateway-b"].into_iter()));
        assert!(InstanceIps::default().lacks(std::iter::empty()));
    }
}
