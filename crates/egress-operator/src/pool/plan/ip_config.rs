//! The ipConfig plan both gateway NIC shapes share (a scale set's NIC configuration and a
//! standalone NIC): keep everything not ours, drop the ipConfigs named in `remove`, add or
//! repair one secondary ipConfig per wanted gateway in the primary ipConfig's subnet, and keep
//! the primary ipConfig in the gateway backend pool exactly while any `egressgateway-` ipConfig
//! exists. What differs per shape (how the public IP is attached) is `IpConfigShape::ensure`,
//! implemented next to each shape (`scale_set`, `vm_nics`) with `ip_config_shape!`; this base
//! imports nothing from them.

use egress_api::constants::AZURE_RESOURCE_PREFIX;
use egress_azure::models::SubResource;

use crate::pool::plan::family::Family;

/// Why the NIC configurations cannot carry gateway ipConfigs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NicPlanError {
    /// No NIC configuration is marked primary (and there is not exactly one).
    #[error("failed to find the primary NIC configuration of the scale set")]
    NoPrimaryNic,
    /// The primary NIC has no primary ipConfig.
    #[error("failed to find the primary ipConfiguration of NIC configuration {nic}")]
    NoPrimaryIpConfig {
        /// NIC configuration name.
        nic: String,
    },
    /// The primary ipConfig has no subnet to put gateway ipConfigs in.
    #[error("failed to find the subnet of the primary ipConfiguration of NIC configuration {nic}")]
    NoSubnet {
        /// NIC configuration name.
        nic: String,
    },
}

/// Whether an Azure name is `want` (Azure names are case-insensitive).
pub(crate) fn named(name: &Option<String>, want: &str) -> bool {
    name.as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case(want))
}

/// Whether an ipConfig is a gateway ipConfig (`egressgateway-...`).
pub(crate) fn is_ours(name: &Option<String>) -> bool {
    name.as_deref().is_some_and(|n| {
        n.len() > AZURE_RESOURCE_PREFIX.len()
            && n[..AZURE_RESOURCE_PREFIX.len()].eq_ignore_ascii_case(AZURE_RESOURCE_PREFIX)
    })
}

/// An Azure ipConfiguration shape the shared plan can work on.
pub(crate) trait IpConfigShape {
    /// What one wanted gateway ipConfig looks like for this shape.
    type Want;
    /// The wanted ipConfig's name (`egressgateway-<uid>`).
    fn want_name(want: &Self::Want) -> &str;
    /// A new, empty ipConfig with this name.
    fn new_named(name: &str) -> Self;
    /// The ipConfig's name.
    fn name(&self) -> &Option<String>;
    /// Whether it is marked primary.
    fn is_primary(&self) -> bool;
    /// Its subnet ID, if any.
    fn subnet_id(&self) -> Option<&str>;
    /// Its backend pool references.
    fn backend_pools(&mut self) -> &mut Vec<SubResource>;
    /// Makes a gateway ipConfig match `want` in `subnet`, writing only what differs.
    fn ensure(&mut self, want: &Self::Want, subnet: &str);
}

/// Applies the shared plan to the ipConfigs of the NIC named `nic`.
pub(crate) fn plan_ip_configs<C: IpConfigShape>(
    cfgs: &mut Vec<C>,
    nic: &str,
    want: &[C::Want],
    remove: &[String],
    backend_pool_id: &str,
) -> Result<(), NicPlanError> {
    let primary_idx = cfgs
        .iter()
        .position(C::is_primary)
        .or_else(|| (cfgs.len() == 1).then_some(0))
        .ok_or_else(|| NicPlanError::NoPrimaryIpConfig {
            nic: nic.to_string(),
        })?;
    let subnet = cfgs[primary_idx]
        .subnet_id()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| NicPlanError::NoSubnet {
            nic: nic.to_string(),
        })?;
    let primary_name = cfgs[primary_idx].name().clone();

    cfgs.retain(|c| !remove.iter().any(|r| named(c.name(), r)));
    for w in want {
        let name = C::want_name(w);
        let idx = match cfgs.iter().position(|c| named(c.name(), name)) {
            Some(i) => i,
            None => {
                cfgs.push(C::new_named(name));
                cfgs.len() - 1
            }
        };
        cfgs[idx].ensure(w, &subnet);
    }

    let any_ours = cfgs.iter().any(|c| is_ours(c.name()));
    if let Some(primary) = cfgs.iter_mut().find(|c| *c.name() == primary_name) {
        let pools = primary.backend_pools();
        let member = pools.iter().any(|p| p.refers_to(backend_pool_id));
        if any_ours && !member {
            pools.push(SubResource::new(backend_pool_id));
        } else if !any_ours && member {
            pools.retain(|p| !p.refers_to(backend_pool_id));
        }
    }
    Ok(())
}

/// The settings every gateway ipConfig has in both shapes: secondary, of its `family`, in
/// `subnet` (the primary ipConfig's: a dual-stack subnet has both ranges).
pub(crate) fn ensure_secondary(
    primary: &mut Option<bool>,
    version: &mut Option<String>,
    subnet_ref: &mut Option<SubResource>,
    subnet: &str,
    family: Family,
) {
    if *primary != Some(false) {
        *primary = Some(false);
    }
    if !version
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case(family.version()))
    {
        *version = Some(family.version().into());
    }
    if !subnet_ref.as_ref().is_some_and(|s| s.refers_to(subnet)) {
        *subnet_ref = Some(SubResource::new(subnet));
    }
}

/// Both shapes keep the same fields under the same names; only the types differ.
macro_rules! ip_config_shape {
    ($cfg:ty, $props:ty, $want:ty, $ensure:path) => {
        impl $crate::pool::plan::ip_config::IpConfigShape for $cfg {
            type Want = $want;

            fn want_name(want: &Self::Want) -> &str {
                &want.name
            }
            fn new_named(name: &str) -> Self {
                Self {
                    name: Some(name.to_string()),
                    properties: <$props>::default(),
                    ..Default::default()
                }
            }
            fn name(&self) -> &Option<String> {
                &self.name
            }
            fn is_primary(&self) -> bool {
                self.properties.primary == Some(true)
            }
            fn subnet_id(&self) -> Option<&str> {
                self.properties.subnet.as_ref().map(|s| s.id.as_str())
            }
            fn backend_pools(&mut self) -> &mut Vec<egress_azure::models::SubResource> {
                &mut self.properties.load_balancer_backend_address_pools
            }
            fn ensure(&mut self, want: &Self::Want, subnet: &str) {
                $ensure(&mut self.properties, want, subnet);
            }
        }
    };
}
pub(crate) use ip_config_shape;
