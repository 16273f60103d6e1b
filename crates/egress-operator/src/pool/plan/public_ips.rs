//! Pure decisions about the per-gateway public IPs of a VM pool's NICs: their names (as the
//! original: `<prefix name>-<FNV-1a 64 of the NIC name, hex>` in `resourceGroup`), which to
//! create before a NIC write (only those Azure does not have: the original re-PUTs every one
//! every pass), and which to delete once no NIC uses them (only ours: in `resourceGroup`,
//! named with that NIC's hash).

use std::collections::BTreeSet;
use std::hash::Hasher;

use egress_azure::{ResourceGroupId, ResourceId};

use crate::pool::error::PoolError;
use crate::pool::plan::family::Family;
use crate::pool::plan::pass::GatewayIpConfig;
use crate::pool::plan::prefixes::PrefixInfo;
use crate::pool::plan::vm_nics::NicIpConfigWant;

/// The original's name of a NIC's public IP in a prefix: `<prefix name>-<FNV-1a 64 of the NIC
/// name, lower-case hex>`.
pub fn public_ip_name(prefix: &ResourceId, nic_name: &str) -> String {
    format!("{}-{}", prefix.name(), nic_hash(nic_name))
}

/// The hash suffix of the public IPs of `nic_name`.
pub fn nic_hash(nic_name: &str) -> String {
    let mut h = fnv::FnvHasher::default();
    h.write(nic_name.as_bytes());
    format!("{:x}", h.finish())
}

/// The gateway ipConfigs of the NIC `nic_name`, each with its gateway's prefix: in public mode
/// the ipConfig uses the NIC's own public IP in `group`.
pub fn nic_wants(
    group: &ResourceGroupId,
    nic_name: &str,
    gateways: &[GatewayIpConfig],
) -> Result<Vec<(NicIpConfigWant, Option<PrefixInfo>)>, PoolError> {
    gateways
        .iter()
        .map(|g| {
            let public_ip_id = match &g.prefix {
                None => None,
                Some(p) => {
                    let prefix = ResourceId::parse(&p.id)
                        .map_err(|_| PoolError::NoUniqueId { id: p.id.clone() })?;
                    let name = public_ip_name(&prefix, nic_name);
                    Some(group.public_ip_address(&name).to_string())
                }
            };
            let want = NicIpConfigWant {
                name: g.name.clone(),
                public_ip_id,
                family: g.family,
            };
            Ok((want, g.prefix.clone()))
        })
        .collect()
}

/// The public IPs to create before the NIC write, `(public IP ID, prefix ID, family)`: those
/// neither their prefix lists (it lists the public IPs allocated from it) nor the NIC uses
/// already.
pub fn to_create(
    wants: &[(NicIpConfigWant, Option<PrefixInfo>)],
    nic_uses: &[String],
) -> Vec<(String, String, Family)> {
    let known = |ids: &[String], pip: &str| ids.iter().any(|i| i.eq_ignore_ascii_case(pip));
    wants
        .iter()
        .filter_map(|(w, prefix)| Some((w.public_ip_id.as_ref()?, prefix.as_ref()?, w.family)))
        .filter(|(pip, prefix, _)| !known(&prefix.public_ips, pip) && !known(nic_uses, pip))
        .map(|(pip, prefix, family)| (pip.clone(), prefix.id.clone(), family))
        .collect()
}

/// The public IPs the NIC `nic_name` stopped using in its write (`before` → `after`) that are
/// ours to delete: in `resource_group`, named with this NIC's hash.
pub fn stale(
    resource_group: &str,
    nic_name: &str,
    before: &[String],
    after: &[String],
) -> Vec<ResourceId> {
    let suffix = format!("-{}", nic_hash(nic_name));
    before
        .iter()
        .filter(|old| !after.iter().any(|u| u.eq_ignore_ascii_case(old)))
        .filter_map(|old| ResourceId::parse(old).ok())
        .filter(|pip| {
            pip.expect_type("Microsoft.Network/publicIPAddresses")
                .is_ok()
                && pip
                    .resource_group()
                    .is_some_and(|rg| rg.eq_ignore_ascii_case(resource_group))
                && pip.name().to_ascii_lowercase().ends_with(&suffix)
        })
        .collect()
}

/// The per-NIC public IPs of a removed gateway's BYO `prefix` that no NIC uses any more (left
/// behind when the operator stopped between a NIC write and the deletion): of the IDs the
/// prefix `lists`, those named for one of `nic_names` in `group` and not `in_use`
/// (lower-cased IDs).
pub fn leftovers(
    group: &ResourceGroupId,
    prefix: &ResourceId,
    lists: &[String],
    nic_names: &[String],
    in_use: &BTreeSet<String>,
) -> Vec<ResourceId> {
    let expected: BTreeSet<String> = nic_names
        .iter()
        .map(|n| {
            let name = public_ip_name(prefix, n);
            group
                .public_ip_address(&name)
                .to_string()
                .to_ascii_lowercase()
        })
        .collect();
    lists
        .iter()
        .filter(|id| {
            let lower = id.to_ascii_lowercase();
            expected.contains(&lower) && !in_use.contains(&lower)
        })
        .filter_map(|id| ResourceId::parse(id).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SUB: &str = "s";

    fn group() -> ResourceGroupId {
        ResourceGroupId::new(SUB, "rg")
    }

    fn prefix(name: &str, public_ips: Vec<String>) -> PrefixInfo {
        PrefixInfo {
            id: group().public_ip_prefix(name).to_string(),
            cidr: "203.0.113.0/30".into(),
            public_ips,
        }
    }

    #[test]
    fn public_ip_names_are_the_originals() {
        // Values computed independently (Python FNV-1a 64).
        let prefix = ResourceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/egressgateway-u1").unwrap();
        assert_eq!(
            public_ip_name(&prefix, "gwvm-0-nic"),
            "egressgateway-u1-1d942cc418a8ebe4"
        );
        assert_eq!(nic_hash("aks-gwpool-12345678-nic-0"), "fecc4d96552bbcbe");
    }

    #[test]
    fn only_public_ips_azure_does_not_have_are_created() {
        let pip = |p: &str| {
            group()
                .public_ip_address(&format!("{p}-1d942cc418a8ebe4"))
                .to_string()
        };
        let gateways = [
            GatewayIpConfig {
                name: "egressgateway-a".into(),
                prefix: Some(prefix("pa", vec![])),
                family: Family::V4,
            },
            GatewayIpConfig {
                name: "egressgateway-b".into(),
                prefix: Some(prefix("pb", vec![pip("pb").to_uppercase()])),
                family: Family::V4,
            },
            GatewayIpConfig {
                name: "egressgateway-c".into(),
                prefix: Some(prefix("pc", vec![])),
                family: Family::V4,
            },
            GatewayIpConfig {
                name: "egressgateway-d".into(),
                prefix: None,
                family: Family::V4,
            },
        ];
        let wants = nic_wants(&group(), "gwvm-0-nic", &gateways).unwrap();
        assert_eq!(wants[0].0.public_ip_id.as_deref(), Some(pip("pa").as_str()));
        assert_eq!(wants[3].0.public_ip_id, None);
        // b is listed by its prefix, c already used by the NIC, d is private.
        let created = to_create(&wants, &[pip("pc")]);
        assert_eq!(created, [(pip("pa"), prefix("pa", vec![]).id, Family::V4)]);
    }

    #[test]
    fn only_our_public_ips_the_nic_stopped_using_are_stale() {
        let hash = nic_hash("nic-0");
        let ours = group().public_ip_address(&format!("p-{hash}")).to_string();
        let kept = group().public_ip_address(&format!("q-{hash}")).to_string();
        let elsewhere = ResourceGroupId::new(SUB, "other")
            .public_ip_address(&format!("p-{hash}"))
            .to_string();
        let foreign = group().public_ip_address("someone-elses").to_string();
        let before = [ours.clone(), kept.clone(), elsewhere, foreign];
        let stale = stale("RG", "nic-0", &before, &[kept.to_uppercase()]);
        assert_eq!(stale, [ResourceId::parse(&ours).unwrap()]);
    }

    #[test]
    fn leftovers_are_our_names_in_the_prefix_that_no_nic_uses() {
        let byo = group().public_ip_prefix("byo");
        let id = |nic: &str| {
            group()
                .public_ip_address(&public_ip_name(&byo, nic))
                .to_string()
        };
        let lists = [
            id("nic-0"),
            id("nic-1"),
            id("other-pool-nic"),
            "/bad".into(),
        ];
        let in_use = BTreeSet::from([id("nic-1").to_ascii_lowercase()]);
        let nics = ["nic-0".to_string(), "nic-1".to_string()];
        assert_eq!(
            leftovers(&group(), &byo, &lists, &nics, &in_use),
            [ResourceId::parse(&id("nic-0")).unwrap()]
        );
    }
}
