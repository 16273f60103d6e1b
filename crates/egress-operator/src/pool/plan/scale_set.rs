//! Pure plan of the gateway ipConfigs on a scale set's NIC configurations (the same shape for
//! the model and for each instance): one secondary ipConfig `egressgateway-<VM config UID>` per
//! gateway on the primary NIC, in the primary ipConfig's subnet, with a per-instance public IP
//! from the gateway's prefix in public mode; and the primary ipConfig in the gateway backend
//! pool exactly while any `egressgateway-` ipConfig exists. Other ipConfigs, NICs and unknown
//! fields are left as read; only ipConfigs named in `remove` are dropped.

use egress_azure::models::{
    SubResource, VmssIpConfiguration, VmssIpConfigurationProperties,
    VmssNetworkInterfaceConfiguration, VmssPublicIpAddressConfiguration,
    VmssPublicIpAddressConfigurationProperties,
};

use crate::pool::plan::family::Family;
use crate::pool::plan::ip_config::{
    NicPlanError, ensure_secondary, ip_config_shape, named, plan_ip_configs,
};
use crate::pool::plan::pass::GatewayIpConfig;

/// One gateway ipConfig to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfigWant {
    /// `egressgateway-<VM config UID>`.
    pub name: String,
    /// Public IP prefix of the per-instance public IP (public mode), else none (private mode).
    pub prefix_id: Option<String>,
    /// IPv4, or the IPv6 ipConfig of a dual-stack gateway.
    pub family: Family,
}

impl From<&GatewayIpConfig> for IpConfigWant {
    /// Every instance takes its public IP from the gateway's prefix.
    fn from(g: &GatewayIpConfig) -> Self {
        Self {
            name: g.name.clone(),
            prefix_id: g.prefix.as_ref().map(|p| p.id.clone()),
            family: g.family,
        }
    }
}

fn primary_index<T>(items: &[T], is_primary: impl Fn(&T) -> bool) -> Option<usize> {
    items
        .iter()
        .position(is_primary)
        .or_else(|| (items.len() == 1).then_some(0))
}

/// Applies the wanted and removed gateway ipConfigs and the backend pool membership to `nics`.
/// Returns whether anything changed.
pub fn plan(
    nics: &mut [VmssNetworkInterfaceConfiguration],
    want: &[IpConfigWant],
    remove: &[String],
    backend_pool_id: &str,
) -> Result<bool, NicPlanError> {
    let before = serde_json::to_value(&*nics).ok();
    let nic_idx = primary_index(nics, |n| n.properties.primary == Some(true))
        .ok_or(NicPlanError::NoPrimaryNic)?;
    let nic = &mut nics[nic_idx];
    let nic_name = nic.name.clone().unwrap_or_default();
    plan_ip_configs(
        &mut nic.properties.ip_configurations,
        &nic_name,
        want,
        remove,
        backend_pool_id,
    )?;
    Ok(serde_json::to_value(&*nics).ok() != before)
}

ip_config_shape!(
    VmssIpConfiguration,
    VmssIpConfigurationProperties,
    IpConfigWant,
    ensure_ip_config
);

/// A scale-set gateway ipConfig: the shared settings, and a per-instance public IP from the
/// gateway's prefix (public mode) or none (private mode).
fn ensure_ip_config(p: &mut VmssIpConfigurationProperties, w: &IpConfigWant, subnet: &str) {
    ensure_secondary(
        &mut p.primary,
        &mut p.private_ip_address_version,
        &mut p.subnet,
        subnet,
        w.family,
    );
    match &w.prefix_id {
        None => p.public_ip_address_configuration = None,
        Some(prefix) => {
            let pip = p.public_ip_address_configuration.get_or_insert_with(|| {
                VmssPublicIpAddressConfiguration {
                    name: Some(w.name.clone()),
                    properties: VmssPublicIpAddressConfigurationProperties::default(),
                    ..Default::default()
                }
            });
            if !named(&pip.name, &w.name) {
                pip.name = Some(w.name.clone());
            }
            if !pip
                .properties
                .public_ip_prefix
                .as_ref()
                .is_some_and(|s| s.refers_to(prefix))
            {
                pip.properties.public_ip_prefix = Some(SubResource::new(prefix));
            }
            // ARM's default is IPv4: only IPv6 needs saying (IPv4 bodies stay as the original's).
            let version = &mut pip.properties.public_ip_address_version;
            if w.family == Family::V6 && !Family::V6.is(version.as_deref()) {
                *version = Some(Family::V6.version().into());
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

    fn nics() -> Vec<VmssNetworkInterfaceConfiguration> {
        serde_json::from_value(json!([{
            "name": "gw-vmss",
            "properties": {"primary": true, "enableAcceleratedNetworking": true, "ipConfigurations": [
                {"name": "ipconfig1", "properties": {"primary": true, "subnet": {"id": "/sub/aks-subnet"},
                  "loadBalancerBackendAddressPools": [{"id": "/other-pool"}], "applicationSecurityGroups": []}},
                {"name": "someone-elses", "properties": {"subnet": {"id": "/sub/aks-subnet"}}}
            ]}
        }]))
        .unwrap()
    }

    fn w(uid: &str, prefix: Option<&str>) -> IpConfigWant {
        IpConfigWant {
            name: format!("egressgateway-{uid}"),
            prefix_id: prefix.map(str::to_string),
            family: Family::V4,
        }
    }

    #[test]
    fn adds_gateway_ipconfigs_and_pool_membership_keeping_everything_else() {
        let mut n = nics();
        let changed = plan(
            &mut n,
            &[w("a", Some("/prefix-a")), w("b", None)],
            &[],
            POOL,
        )
        .unwrap();
        assert!(changed);
        let v = serde_json::to_value(&n).unwrap();
        let cfgs = &v[0]["properties"]["ipConfigurations"];
        assert_eq!(cfgs.as_array().unwrap().len(), 4);
        assert_eq!(
            cfgs[0]["properties"]["applicationSecurityGroups"],
            json!([])
        );
        assert_eq!(
            cfgs[0]["properties"]["loadBalancerBackendAddressPools"],
            json!([{"id": "/other-pool"}, {"id": POOL}])
        );
        assert_eq!(cfgs[1]["name"], "someone-elses");
        assert_eq!(cfgs[2]["name"], "egressgateway-a");
        assert_eq!(cfgs[2]["properties"]["primary"], false);
        assert_eq!(cfgs[2]["properties"]["subnet"]["id"], "/sub/aks-subnet");
        assert_eq!(
            cfgs[2]["properties"]["publicIPAddressConfiguration"],
            json!({"name": "egressgateway-a", "properties": {"publicIPPrefix": {"id": "/prefix-a"}}})
        );
        assert!(
            cfgs[3]["properties"]
                .get("publicIPAddressConfiguration")
                .is_none()
        );
        assert_eq!(v[0]["properties"]["enableAcceleratedNetworking"], true);
        // Applying the same again changes nothing.
        assert!(
            !plan(
                &mut n,
                &[w("a", Some("/prefix-a")), w("b", None)],
                &[],
                POOL
            )
            .unwrap()
        );
    }

    #[test]
    fn switching_a_gateway_to_private_mode_drops_only_its_public_ip() {
        let mut n = nics();
        plan(&mut n, &[w("a", Some("/prefix-a"))], &[], POOL).unwrap();
        assert!(plan(&mut n, &[w("a", None)], &[], POOL).unwrap());
        let c = &n[0].properties.ip_configurations[2];
        assert!(c.properties.public_ip_address_configuration.is_none());
        assert_eq!(c.name.as_deref(), Some("egressgateway-a"));
    }

    #[test]
    fn removing_the_last_gateway_also_leaves_the_backend_pool() {
        let mut n = nics();
        plan(&mut n, &[w("a", None), w("b", None)], &[], POOL).unwrap();
        assert!(plan(&mut n, &[w("b", None)], &["egressgateway-a".into()], POOL).unwrap());
        assert_eq!(n[0].properties.ip_configurations.len(), 3);
        assert!(plan(&mut n, &[], &["egressgateway-b".into()], POOL).unwrap());
        let cfgs = &n[0].properties.ip_configurations;
        assert_eq!(cfgs.len(), 2);
        assert_eq!(
            cfgs[0].properties.load_balancer_backend_address_pools.len(),
            1
        );
        assert!(!plan(&mut n, &[], &["egressgateway-b".into()], POOL).unwrap());
    }

    #[test]
    fn drifted_gateway_ipconfigs_are_repaired() {
        let mut n = nics();
        plan(&mut n, &[w("a", Some("/prefix-a"))], &[], POOL).unwrap();
        n[0].properties.ip_configurations[2].properties.subnet =
            Some(SubResource::new("/elsewhere"));
        assert!(plan(&mut n, &[w("a", Some("/prefix-a"))], &[], POOL).unwrap());
        let s = n[0].properties.ip_configurations[2]
            .properties
            .subnet
            .clone()
            .unwrap();
        assert_eq!(s.id, "/sub/aks-subnet");
    }

    #[test]
    fn a_nic_without_primary_or_subnet_is_an_error() {
        let mut two: Vec<VmssNetworkInterfaceConfiguration> = serde_json::from_value(json!([
            {"name": "a", "properties": {"ipConfigurations": []}},
            {"name": "b", "properties": {"ipConfigurations": []}}]))
        .unwrap();
        assert_eq!(
            plan(&mut two, &[], &[], POOL).unwrap_err(),
            NicPlanError::NoPrimaryNic
        );
        let mut nosub: Vec<VmssNetworkInterfaceConfiguration> = serde_json::from_value(json!([
            {"name": "a", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {}}]}}]))
        .unwrap();
        assert_eq!(
            plan(&mut nosub, &[], &[], POOL).unwrap_err().to_string(),
            "failed to find the subnet of the primary ipConfiguration of NIC configuration a"
        );
    }
}
