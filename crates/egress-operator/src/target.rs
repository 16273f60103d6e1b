//! Validation of a gateway target (the four spec fields an SGC shares with its internal LB and
//! VM configurations) into a [`ValidTarget`]: which pool ([`PoolKey`]) and which egress mode.
//! Pure: no client. Admission (CRD schema + CEL) already rejects most of this; the operator
//! checks again because objects written by the original project or with an older CRD may not
//! have passed those rules.

use std::fmt;

use egress_api::target::GatewayTarget;
use egress_azure::ResourceId;

/// A gateway pool: an AKS node pool by name or an explicit scale set. Names are lower-cased
/// (Azure names are case-insensitive) so equal pools have equal keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoolKey {
    /// AKS node pool, matched against the tag `aks-managed-poolName` in `resourceGroup`.
    Nodepool(String),
    /// Explicit scale set.
    Vmss {
        /// Resource group.
        resource_group: String,
        /// Scale set name.
        name: String,
    },
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nodepool(p) => write!(f, "nodepool/{p}"),
            Self::Vmss {
                resource_group,
                name,
            } => write!(f, "vmss/{resource_group}/{name}"),
        }
    }
}

/// Where a gateway's egress traffic leaves from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Egress {
    /// The gateway nodes' secondary private IPs (`provisionPublicIps: false`).
    Private,
    /// A public IP prefix the operator creates and deletes.
    ManagedPrefix,
    /// A public IP prefix the user owns (never deleted).
    ByoPrefix(ResourceId),
}

/// A target that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidTarget {
    /// The pool.
    pub pool: PoolKey,
    /// `publicIpPrefixSize` of a VMSS profile (node pools take it from a tag instead).
    pub prefix_size: Option<u8>,
    /// Egress mode.
    pub egress: Egress,
}

/// Why a target is invalid. Messages name the field, as admission errors do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Neither a node pool nor a profile.
    #[error(
        "spec: exactly one of gatewayNodepoolName and gatewayVmssProfile must be set, found neither"
    )]
    NoPool,
    /// Both a node pool and a profile.
    #[error(
        "spec: exactly one of gatewayNodepoolName and gatewayVmssProfile must be set, found both"
    )]
    BothPools,
    /// A profile field is missing or blank.
    #[error("spec.gatewayVmssProfile.{field}: required when gatewayVmssProfile is used")]
    ProfileFieldMissing {
        /// `vmssResourceGroup` or `vmssName`.
        field: &'static str,
    },
    /// A prefix size Azure does not accept.
    #[error(
        "spec.gatewayVmssProfile.publicIpPrefixSize: {0} is outside 28-31, the lengths Azure accepts"
    )]
    PrefixSizeOutOfRange(i32),
    /// Public mode on a profile without a size.
    #[error("spec.gatewayVmssProfile.publicIpPrefixSize: required with provisionPublicIps: true")]
    PrefixSizeMissing,
    /// BYO prefix in private mode.
    #[error("spec.publicIpPrefixId: must be empty with provisionPublicIps: false")]
    PrefixIdWithPrivateIps,
    /// Not a public IP prefix resource ID.
    #[error("spec.publicIpPrefixId: {why}")]
    InvalidPrefixId {
        /// Why.
        why: String,
    },
    /// A prefix in another subscription.
    #[error(
        "spec.publicIpPrefixId: the prefix is in subscription {found}, the cluster uses {expected}"
    )]
    PrefixInOtherSubscription {
        /// The ID's subscription.
        found: String,
        /// The operator's subscription.
        expected: String,
    },
}

impl TargetError {
    /// PascalCase condition / Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoPool | Self::BothPools | Self::ProfileFieldMissing { .. } => {
                "InvalidGatewayPool"
            }
            Self::PrefixSizeOutOfRange(_) | Self::PrefixSizeMissing => "InvalidPrefixSize",
            Self::PrefixIdWithPrivateIps
            | Self::InvalidPrefixId { .. }
            | Self::PrefixInOtherSubscription { .. } => "InvalidPrefixId",
        }
    }
}

fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The pool a target names, without checking the rest (to route objects to a pool reconcile,
/// including ones that are being deleted).
pub fn pool_key(target: &GatewayTarget) -> Option<PoolKey> {
    match (
        non_blank(&target.gateway_nodepool_name),
        target.vmss_profile(),
    ) {
        (Some(p), None) => Some(PoolKey::Nodepool(p.to_ascii_lowercase())),
        (None, Some(p)) => Some(PoolKey::Vmss {
            resource_group: non_blank(&p.vmss_resource_group)?.to_ascii_lowercase(),
            name: non_blank(&p.vmss_name)?.to_ascii_lowercase(),
        }),
        _ => None,
    }
}

/// Validates a target; `subscription` is the operator's (BYO prefixes must be in it).
pub fn validate(target: &GatewayTarget, subscription: &str) -> Result<ValidTarget, TargetError> {
    let nodepool = non_blank(&target.gateway_nodepool_name);
    let profile = target.vmss_profile();
    let (pool, prefix_size) = match (nodepool, profile) {
        (None, None) => return Err(TargetError::NoPool),
        (Some(_), Some(_)) => return Err(TargetError::BothPools),
        (Some(p), None) => (PoolKey::Nodepool(p.to_ascii_lowercase()), None),
        (None, Some(p)) => {
            let rg = non_blank(&p.vmss_resource_group).ok_or(TargetError::ProfileFieldMissing {
                field: "vmssResourceGroup",
            })?;
            let name = non_blank(&p.vmss_name)
                .ok_or(TargetError::ProfileFieldMissing { field: "vmssName" })?;
            let size = match p.public_ip_prefix_size {
                // The original writes 0 for "unset".
                None | Some(0) => None,
                Some(s @ 28..=31) => Some(u8::try_from(s).unwrap_or(31)),
                Some(s) => return Err(TargetError::PrefixSizeOutOfRange(s)),
            };
            if size.is_none() && target.provision_public_ips {
                return Err(TargetError::PrefixSizeMissing);
            }
            (
                PoolKey::Vmss {
                    resource_group: rg.to_ascii_lowercase(),
                    name: name.to_ascii_lowercase(),
                },
                size,
            )
        }
    };
    let egress = match (target.provision_public_ips, target.byo_prefix_id()) {
        (false, Some(_)) => return Err(TargetError::PrefixIdWithPrivateIps),
        (false, None) => Egress::Private,
        (true, None) => Egress::ManagedPrefix,
        (true, Some(id)) => {
            let parsed = ResourceId::parse(id.trim())
                .map_err(|e| TargetError::InvalidPrefixId { why: e.to_string() })?;
            parsed
                .expect_type("Microsoft.Network/publicIPPrefixes")
                .map_err(|e| TargetError::InvalidPrefixId { why: e.to_string() })?;
            if parsed.resource_group().is_none() {
                return Err(TargetError::InvalidPrefixId {
                    why: "the ID has no resource group".to_string(),
                });
            }
            if !parsed.subscription().eq_ignore_ascii_case(subscription) {
                return Err(TargetError::PrefixInOtherSubscription {
                    found: parsed.subscription().to_string(),
                    expected: subscription.to_string(),
                });
            }
            Egress::ByoPrefix(parsed)
        }
    };
    Ok(ValidTarget {
        pool,
        prefix_size,
        egress,
    })
}

/// Why the spec's `excludeCidrs` cannot be used, if it cannot: pods naming the gateway cannot
/// start (the CNI manager refuses them with `gatewayInvalid`), although the gateway itself is
/// provisioned. The original's CRD accepts any string here.
pub fn exclude_cidrs_problem(spec: &egress_api::StaticGatewayConfigurationSpec) -> Option<String> {
    let bad: Vec<String> = spec
        .exclude_cidrs
        .iter()
        .flatten()
        .filter(|c| c.parse().is_none())
        .map(|c| format!("{:?}", c.0))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "spec.excludeCidrs: {} {} an IPv4 or IPv6 CIDR such as 10.0.0.0/8: pods naming this gateway cannot start (the CNI manager refuses them) until the entry is fixed",
            bad.join(", "),
            if bad.len() == 1 { "is not" } else { "are not" }
        )
    })
}

/// The gateway target to provision, given what the spec wants and what was provisioned (the
/// LB configuration's copy): the pool (node pool name, or scale set resource group and name)
/// and the public IP prefix length stay as provisioned, because moving would strand the Azure
/// resources on the old pool and Azure cannot resize a prefix; the other fields follow the
/// spec. Also returns a message per pinned field that the spec changed (empty: satisfied).
/// The original's CRD lets these fields change, so admission only warns; this is where the
/// operator keeps the gateway working and says why the spec is not applied.
pub fn pinned_target(
    wanted: &GatewayTarget,
    provisioned: Option<&GatewayTarget>,
) -> (GatewayTarget, Vec<String>) {
    let Some(old) = provisioned else {
        return (wanted.clone(), Vec::new());
    };
    let mut out = wanted.clone();
    let mut changed = Vec::new();
    let text = |s: Option<&str>| s.map(str::trim).unwrap_or_default().to_ascii_lowercase();
    let mut pin = |field: &str, new: String, was: String| {
        if new != was {
            changed.push(format!(
                "spec.{field} changed from {was:?} to {new:?} after the gateway was provisioned: the operator keeps the gateway on what it was provisioned with ({}); revert the change, or create a new StaticGatewayConfiguration",
                if field.ends_with("publicIpPrefixSize") {
                    "Azure cannot resize a public IP prefix"
                } else {
                    "moving would strand its Azure resources on the old pool"
                }
            ));
        }
    };
    let (wp, op) = (wanted.vmss_profile(), old.vmss_profile());
    pin(
        "gatewayNodepoolName",
        text(wanted.gateway_nodepool_name.as_deref()),
        text(old.gateway_nodepool_name.as_deref()),
    );
    let field =
        |p: Option<&egress_api::GatewayVmssProfile>,
         f: fn(&egress_api::GatewayVmssProfile) -> Option<&str>| { text(p.and_then(f)) };
    pin(
        "gatewayVmssProfile.vmssResourceGroup",
        field(wp, |p| p.vmss_resource_group.as_deref()),
        field(op, |p| p.vmss_resource_group.as_deref()),
    );
    pin(
        "gatewayVmssProfile.vmssName",
        field(wp, |p| p.vmss_name.as_deref()),
        field(op, |p| p.vmss_name.as_deref()),
    );
    let size = |p: Option<&egress_api::GatewayVmssProfile>| {
        p.and_then(|p| p.public_ip_prefix_size)
            .filter(|s| *s != 0)
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    pin("gatewayVmssProfile.publicIpPrefixSize", size(wp), size(op));
    if !changed.is_empty() {
        out.gateway_nodepool_name = old.gateway_nodepool_name.clone();
        out.gateway_vmss_profile = old.gateway_vmss_profile.clone();
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SUB: &str = "00000000-0000-0000-0000-000000000000";

    fn target(yaml: &str) -> GatewayTarget {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_nodepool_target_is_keyed_by_lowercase_pool_name() {
        let t = validate(&target("gatewayNodepoolName: GwPool\n"), SUB).unwrap();
        assert_eq!(t.pool, PoolKey::Nodepool("gwpool".into()));
        assert_eq!(t.egress, Egress::ManagedPrefix);
        assert_eq!(t.prefix_size, None);
    }

    #[test]
    fn an_empty_profile_next_to_a_nodepool_counts_as_unset() {
        let t = validate(
            &target(
                "gatewayNodepoolName: gwpool\ngatewayVmssProfile: {}\nprovisionPublicIps: false\n",
            ),
            SUB,
        )
        .unwrap();
        assert_eq!(t.egress, Egress::Private);
    }

    #[test]
    fn profile_targets_need_group_name_and_size_in_public_mode() {
        let ok = validate(
            &target("gatewayVmssProfile: {vmssResourceGroup: RG, vmssName: GW, publicIpPrefixSize: 30}\n"),
            SUB,
        )
        .unwrap();
        assert_eq!(
            ok.pool,
            PoolKey::Vmss {
                resource_group: "rg".into(),
                name: "gw".into()
            }
        );
        assert_eq!(ok.prefix_size, Some(30));
        let e = validate(
            &target("gatewayVmssProfile: {vmssName: gw, publicIpPrefixSize: 30}\n"),
            SUB,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.gatewayVmssProfile.vmssResourceGroup: required when gatewayVmssProfile is used"
        );
        let e = validate(&target("gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw, publicIpPrefixSize: 27}\n"), SUB)
            .unwrap_err();
        assert_eq!(e, TargetError::PrefixSizeOutOfRange(27));
        assert_eq!(e.reason(), "InvalidPrefixSize");
        let e = validate(
            &target("gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw}\n"),
            SUB,
        )
        .unwrap_err();
        assert_eq!(e, TargetError::PrefixSizeMissing);
        // Private mode needs no size.
        validate(&target("gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw}\nprovisionPublicIps: false\n"), SUB).unwrap();
    }

    #[test]
    fn pool_and_prefix_size_stay_as_provisioned_the_rest_follows_the_spec() {
        let old = target("gatewayNodepoolName: gwpool\n");
        let (t, changed) = pinned_target(
            &target("gatewayNodepoolName: GWPOOL\nprovisionPublicIps: false\n"),
            Some(&old),
        );
        assert!(changed.is_empty(), "case does not matter: {changed:?}");
        assert!(!t.provision_public_ips);
        let (t, changed) = pinned_target(
            &target("gatewayNodepoolName: other\nprovisionPublicIps: false\n"),
            Some(&old),
        );
        assert_eq!(t.gateway_nodepool_name.as_deref(), Some("gwpool"));
        assert!(!t.provision_public_ips, "mutable fields follow the spec");
        assert_eq!(changed.len(), 1);
        assert!(
            changed[0].starts_with("spec.gatewayNodepoolName changed from \"gwpool\" to \"other\""),
            "{changed:?}"
        );
        let vmss = target(
            "gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw, publicIpPrefixSize: 31}\n",
        );
        let (t, changed) = pinned_target(
            &target(
                "gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw, publicIpPrefixSize: 30}\n",
            ),
            Some(&vmss),
        );
        assert_eq!(t.vmss_profile().unwrap().public_ip_prefix_size, Some(31));
        assert!(changed[0].contains("Azure cannot resize"), "{changed:?}");
        // An empty profile, no profile and size 0 are all "unset".
        let (_, changed) = pinned_target(
            &target("gatewayNodepoolName: gwpool\ngatewayVmssProfile: {publicIpPrefixSize: 0}\n"),
            Some(&old),
        );
        assert!(changed.is_empty(), "{changed:?}");
        assert!(pinned_target(&old, None).1.is_empty());
    }

    #[test]
    fn pool_must_be_exactly_one() {
        assert_eq!(
            validate(&target("{}"), SUB).unwrap_err(),
            TargetError::NoPool
        );
        let both = "gatewayNodepoolName: p\ngatewayVmssProfile: {vmssResourceGroup: rg, vmssName: gw, publicIpPrefixSize: 31}\n";
        assert_eq!(
            validate(&target(both), SUB).unwrap_err(),
            TargetError::BothPools
        );
    }

    #[test]
    fn byo_prefix_ids_are_checked() {
        let id = format!(
            "/subscriptions/{SUB}/resourcegroups/rg/providers/Microsoft.Network/publicIPPrefixes/p"
        );
        let t = validate(
            &target(&format!("gatewayNodepoolName: p\npublicIpPrefixId: {id}\n")),
            SUB,
        )
        .unwrap();
        assert!(matches!(t.egress, Egress::ByoPrefix(ref r) if r.name() == "p"));
        let e = validate(
            &target(&format!(
                "gatewayNodepoolName: p\nprovisionPublicIps: false\npublicIpPrefixId: {id}\n"
            )),
            SUB,
        )
        .unwrap_err();
        assert_eq!(e, TargetError::PrefixIdWithPrivateIps);
        let other = id.replace(SUB, "11111111-0000-0000-0000-000000000000");
        let e = validate(
            &target(&format!(
                "gatewayNodepoolName: p\npublicIpPrefixId: {other}\n"
            )),
            SUB,
        )
        .unwrap_err();
        assert!(matches!(e, TargetError::PrefixInOtherSubscription { .. }));
        let lb = id.replace("publicIPPrefixes", "loadBalancers");
        let e = validate(
            &target(&format!("gatewayNodepoolName: p\npublicIpPrefixId: {lb}\n")),
            SUB,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("spec.publicIpPrefixId: "), "{e}");
    }
}
