//! Pure plan of the gateway ipConfigs on one standalone NIC of a VirtualMachines node pool: one
//! secondary ipConfig `egressgateway-<VM config UID>` per gateway in the primary ipConfig's
//! subnet, with the NIC's own public IP (public mode); the primary ipConfig in the gateway
//! backend pool exactly while any `egressgateway-` ipConfig exists (the original only ever adds
//! it). Other ipConfigs and unknown fields are kept. The NIC's public IPs are `public_ips`.

use egress_azure::models::{
    NetworkInterface, NetworkInterfaceIpConfiguration, NetworkInterfaceIpConfigurationProperties,
    SubResource,
};

use crate::pool::plan::family::Family;
use crate::pool::plan::ip_config::{
    NicPlanError, ensure_secondary, ip_config_shape, is_ours, plan_ip_configs,
};

/// One gateway ipConfig to have on a NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIpConfigWant {
    /// `egressgateway-<VM config UID>`.
    pub name: String,
    /// The NIC's public IP for this gateway (public mode), else none (private mode).
    pub public_ip_id: Option<String>,
    /// IPv4, or the IPv6 ipConfig of a dual-stack gateway.
    pub family: Family,
}

/// IDs of the public IPs the NIC's gateway ipConfigs use.
pub fn gateway_public_ips(nic: &NetworkInterface) -> Vec<String> {
    nic.properties
        .ip_configurations
        .iter()
        .filter(|c| is_ours(&c.name))
        .filter_map(|c| {
            c.properties
                .public_ip_address
                .as_ref()
                .map(|p| p.id.clone())
        })
        .collect()
}

/// Applies the wanted and removed gateway ipConfigs and the backend pool membership to `nic`.
/// Returns whether anything changed.
pub fn plan(
    nic: &mut NetworkInterface,
    want: &[NicIpConfigWant],
    remove: &[String],
    backend_pool_id: &str,
) -> Result<bool, NicPlanError> {
    let nic_name = nic.name.clone().unwrap_or_default();
    let before = serde_json::to_value(&nic.properties.ip_configurations).ok();
    plan_ip_configs(
        &mut nic.properties.ip_configurations,
        &nic_name,
        want,
        remove,
        backend_pool_id,
    )?;
    Ok(serde_json::to_value(&nic.properties.ip_configurations).ok() != before)
}

ip_config_shape!(
    NetworkInterfaceIpConfiguration,
    NetworkInterfaceIpConfigurationProperties,
    NicIpConfigWant,
    ensure_ip_config
);

/// A VM pool NIC's gateway ipConfig: the shared settings, and the NIC's own public IP
/// (public mode) or none (private mode).
fn ensure_ip_config(
    p: &mut NetworkInterfaceIpConfigurationProperties,
    w: &NicIpConfigWant,
    subnet: &str,
) {
    ensure_secondary(
        &mut p.primary,
        &mut p.private_ip_address_version,
        &mut p.subnet,
        subnet,
        w.family,
    );
    match &w.public_ip_id {
        None => p.public_ip_address = None,
        Some(id) => {
            if !p
                .public_ip_address
                .as_ref()
                .is_some_and(|s| s.refers_to(id))
            {
                p.public_ip_address = Some(SubResource::new(id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    const POOL: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/backendAddressPools/p";

    fn nic() -> NetworkInterface {
        serde_json::from_value(json!({
            "name": "gwvm-0-nic", "etag": "W/\"1\"", "tags": {"aks-managed-poolName": "vmpool"},
            "properties": {"enableIPForwarding": true, "macAddress": "00-0D-3A-00-00-01", "ipConfigurations": [
                {"name": "ipconfig1", "properties": {"primary": true, "privateIPAddress": "10.0.0.4",
                  "subnet": {"id": "/sub/aks-subnet"}, "loadBalancerBackendAddressPools": [{"id": "/other"}]}},
                {"name": "someone-elses", "properties": {"subnet": {"id": "/sub/aks-subnet"}}}
            ]}
        }))
        .unwrap()
    }

    fn w(uid: &str, pip: Option<&str>) -> NicIpConfigWant {
        NicIpConfigWant {
            name: format!("egressgateway-{uid}"),
            public_ip_id: pip.map(str::to_string),
            family: Family::V4,
        }
    }

    #[test]
    fn adds_gateway_ipconfigs_with_public_ips_and_pool_membership_keeping_the_rest() {
        let mut n = nic();
        assert!(plan(&mut n, &[w("a", Some("/pip-a")), w("b", None)], &[], POOL).unwrap());
        let v = serde_json::to_value(&n).unwrap();
        let cfgs = v["properties"]["ipConfigurations"].as_array().unwrap();
        assert_eq!(cfgs.len(), 4);
        assert_eq!(
            cfgs[0]["properties"]["loadBalancerBackendAddressPools"],
            json!([{"id": "/other"}, {"id": POOL}])
        );
        assert_eq!(cfgs[1]["name"], "someone-elses");
        assert_eq!(
            cfgs[2],
            json!({"name": "egressgateway-a", "properties": {"primary": false,
                "privateIPAddressVersion": "IPv4", "subnet": {"id": "/sub/aks-subnet"},
                "publicIPAddress": {"id": "/pip-a"}, "loadBalancerBackendAddressPools": []}})
        );
        assert!(cfgs[3]["properties"].get("publicIPAddress").is_none());
        assert_eq!(v["properties"]["enableIPForwarding"], true);
        assert_eq!(v["etag"], "W/\"1\"");
        assert_eq!(gateway_public_ips(&n), vec!["/pip-a".to_string()]);
        assert!(!plan(&mut n, &[w("a", Some("/pip-a")), w("b", None)], &[], POOL).unwrap());
    }

    #[test]
    fn removing_the_last_gateway_also_leaves_the_backend_pool() {
        let mut n = nic();
        plan(&mut n, &[w("a", Some("/pip-a"))], &[], POOL).unwrap();
        assert!(plan(&mut n, &[], &["EGRESSGATEWAY-A".into()], POOL).unwrap());
        let cfgs = &n.properties.ip_configurations;
        assert_eq!(cfgs.len(), 2);
        assert_eq!(
            cfgs[0].properties.load_balancer_backend_address_pools,
            vec![SubResource::new("/other")]
        );
        assert!(gateway_public_ips(&n).is_empty());
        assert!(!plan(&mut n, &[], &["egressgateway-a".into()], POOL).unwrap());
    }

    #[test]
    fn drift_and_mode_switches_are_applied_in_place() {
        let mut n = nic();
        plan(&mut n, &[w("a", Some("/pip-a"))], &[], POOL).unwrap();
        n.properties.ip_configurations[2]
            .properties
            .private_ip_address = Some("10.0.0.9".into());
        n.properties.ip_configurations[2].properties.subnet = Some(SubResource::new("/elsewhere"));
        assert!(plan(&mut n, &[w("a", None)], &[], POOL).unwrap());
        let c = &n.properties.ip_configurations[2].properties;
        assert_eq!(c.subnet, Some(SubResource::new("/sub/aks-subnet")));
        assert_eq!(c.public_ip_address, None);
        assert_eq!(c.private_ip_address.as_deref(), Some("10.0.0.9"));
    }

    #[test]
    fn a_nic_without_primary_or_subnet_is_an_error() {
        let mut two: NetworkInterface = serde_json::from_value(json!({"name": "n", "properties": {
            "ipConfigurations": [{"name": "a", "properties": {}}, {"name": "b", "properties": {}}]}}))
        .unwrap();
        assert_eq!(
            plan(&mut two, &[], &[], POOL).unwrap_err().to_string(),
            "failed to find the primary ipConfiguration of NIC configuration n"
        );
        let mut nosub: NetworkInterface =
            serde_json::from_value(json!({"name": "n", "properties": {
            "ipConfigurations": [{"name": "a", "properties": {"primary": true}}]}}))
            .unwrap();
        assert_eq!(
            plan(&mut nosub, &[], &[], POOL).unwrap_err(),
            NicPlanError::NoSubnet { nic: "n".into() }
        );
    }
}
