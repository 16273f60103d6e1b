//! The metadata documents as the gateway uses them, decoded from IMDS JSON.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Compute metadata of this VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceMetadata {
    /// VM name (`compute.name`), e.g. `aks-gw-12345-vmss_0`.
    pub name: String,
    /// Host name (`compute.osProfile.computerName`), the Kubernetes node name.
    pub computer_name: String,
    /// Scale set name; empty for a standalone VM.
    pub vm_scale_set_name: String,
    /// Resource group.
    pub resource_group_name: String,
    /// Subscription.
    pub subscription_id: String,
    /// Region.
    pub location: String,
    /// VM tags (from `tagsList`, else the `k:v;k:v` string).
    pub tags: BTreeMap<String, String>,
    /// Every IPv4 address of the VM's NICs (`network.interface[].ipv4.ipAddress[]`).
    pub ipv4_addresses: Vec<IpAddressPair>,
}

/// A private IPv4 address of the VM and the public IP Azure maps it to, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpAddressPair {
    /// Private address.
    pub private_ip_address: String,
    /// Public address (empty when none).
    pub public_ip_address: String,
}

/// One frontend of the load balancer metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerIp {
    /// Frontend address.
    pub frontend_ip_address: String,
    /// This VM's address behind it.
    pub private_ip_address: String,
}

/// Load balancer metadata of this VM (`/metadata/loadbalancer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerMetadata {
    /// Public frontends.
    pub public_ip_addresses: Vec<LoadBalancerIp>,
    /// Outbound rules' frontends.
    pub outbound_rules: Vec<LoadBalancerIp>,
    /// Inbound rules, kept raw (not used by the gateway).
    pub inbound_rules: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Instance {
    compute: Compute,
    #[serde(default)]
    network: Network,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Network {
    interface: Vec<Interface>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Interface {
    ipv4: Ipv4,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Ipv4 {
    ip_address: Vec<IpAddressPair>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Compute {
    name: String,
    vm_scale_set_name: String,
    resource_group_name: String,
    subscription_id: String,
    location: String,
    tags: String,
    tags_list: Option<Vec<Tag>>,
    os_profile: OsProfile,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct OsProfile {
    computer_name: String,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct LbEnvelope {
    loadbalancer: Option<LoadBalancerMetadata>,
}

/// Decodes `/metadata/instance`.
pub(crate) fn instance(body: &[u8]) -> Result<InstanceMetadata, serde_json::Error> {
    let doc = serde_json::from_slice::<Instance>(body)?;
    let c = doc.compute;
    let ipv4_addresses = doc
        .network
        .interface
        .into_iter()
        .flat_map(|i| i.ipv4.ip_address)
        .collect();
    // tagsList is unambiguous; the legacy string cannot carry ';' or ':' in keys.
    let tags = match c.tags_list {
        Some(list) => list.into_iter().map(|t| (t.name, t.value)).collect(),
        None => parse_tag_string(&c.tags),
    };
    Ok(InstanceMetadata {
        name: c.name,
        computer_name: c.os_profile.computer_name,
        vm_scale_set_name: c.vm_scale_set_name,
        resource_group_name: c.resource_group_name,
        subscription_id: c.subscription_id,
        location: c.location,
        tags,
        ipv4_addresses,
    })
}

/// Decodes `/metadata/loadbalancer` (empty when the VM is behind no load balancer).
pub(crate) fn load_balancer(body: &[u8]) -> Result<LoadBalancerMetadata, serde_json::Error> {
    Ok(serde_json::from_slice::<LbEnvelope>(body)?
        .loadbalancer
        .unwrap_or_default())
}

/// Parses the legacy `tags` string `k1:v1;k2:v2` (values may contain `:`).
fn parse_tag_string(s: &str) -> BTreeMap<String, String> {
    s.split(';')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tag_string_parsing_keeps_colons_in_values() {
        let t = parse_tag_string("aks-managed-poolName:gw;url:http://x;empty");
        assert_eq!(t["aks-managed-poolName"], "gw");
        assert_eq!(t["url"], "http://x");
        assert_eq!(t["empty"], "");
        assert!(parse_tag_string("").is_empty());
    }

    #[test]
    fn tags_list_wins_over_the_tag_string() {
        let md = instance(
            br#"{"compute": {"tags": "a:1", "tagsList": [{"name": "b", "value": "x;y:z"}]}}"#,
        )
        .unwrap();
        assert_eq!(md.tags.len(), 1);
        assert_eq!(md.tags["b"], "x;y:z");
        let md = instance(br#"{"compute": {"tags": "a:1"}}"#).unwrap();
        assert_eq!(md.tags["a"], "1");
    }

    #[test]
    fn every_nic_address_pair_is_read() {
        let md = instance(br#"{"compute": {}, "network": {"interface": [
            {"ipv4": {"ipAddress": [{"privateIpAddress": "10.0.1.4", "publicIpAddress": ""},
                                    {"privateIpAddress": "10.0.1.9", "publicIpAddress": "203.0.113.1"}]}}]}}"#)
        .unwrap();
        assert_eq!(md.ipv4_addresses.len(), 2);
        assert_eq!(md.ipv4_addresses[1].public_ip_address, "203.0.113.1");
        assert!(
            instance(br#"{"compute": {}}"#)
                .unwrap()
                .ipv4_addresses
                .is_empty()
        );
    }

    #[test]
    fn no_load_balancer_is_empty_metadata() {
        assert_eq!(
            load_balancer(b"{}").unwrap(),
            LoadBalancerMetadata::default()
        );
    }
}
