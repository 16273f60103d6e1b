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
    /// `publicIpv6PrefixId` unusable: not a prefix ID, in another subscription, or set where
    /// it cannot be used (without IPv6 in `ipFamilies`, or in private mode).
    #[error("spec.publicIpv6PrefixId: {why}")]
    InvalidIpv6PrefixId {
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
            Self::InvalidIpv6PrefixId { .. } => "InvalidPrefixId",
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
            Egress::ByoPrefix(parse_prefix_id(id, subscription).map_err(|e| match e {
                PrefixIdProblem::Invalid(why) => TargetError::InvalidPrefixId { why },
                PrefixIdProblem::OtherSubscription(found) => {
                    TargetError::PrefixInOtherSubscription {
                        found,
                        expected: subscription.to_string(),
                    }
                }
            })?)
        }
    };
    Ok(ValidTarget {
        pool,
        prefix_size,
        egress,
    })
}

/// Why a BYO prefix ID cannot be used.
enum PrefixIdProblem {
    /// Not a public IP prefix resource ID (why).
    Invalid(String),
    /// In this other subscription.
    OtherSubscription(String),
}

/// Parses a BYO public IP prefix ID: a `publicIPPrefixes` ID with a resource group, in the
/// operator's `subscription`.
fn parse_prefix_id(id: &str, subscription: &str) -> Result<ResourceId, PrefixIdProblem> {
    let parsed =
        ResourceId::parse(id.trim()).map_err(|e| PrefixIdProblem::Invalid(e.to_string()))?;
    parsed
        .expect_type("Microsoft.Network/publicIPPrefixes")
        .map_err(|e| PrefixIdProblem::Invalid(e.to_string()))?;
    if parsed.resource_group().is_none() {
        return Err(PrefixIdProblem::Invalid(
            "the ID has no resource group".to_string(),
        ));
    }
    if !parsed.subscription().eq_ignore_ascii_case(subscription) {
        return Err(PrefixIdProblem::OtherSubscription(
            parsed.subscription().to_string(),
        ));
    }
    Ok(parsed)
}

/// Where a gateway's IPv6 egress comes from (`IPv6` in `ipFamilies`); it follows the IPv4
/// mode: private IPs with `provisionPublicIps: false`, else a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ipv6Egress {
    /// No IPv6 egress (`ipFamilies` without `IPv6`).
    Off,
    /// The gateway nodes' secondary private IPv6 addresses.
    Private,
    /// An IPv6 public IP prefix the operator creates and deletes.
    ManagedPrefix,
    /// An IPv6 public IP prefix the user owns (never deleted).
    ByoPrefix(ResourceId),
}

/// Validates the IPv6 half of a target. An error blocks only the IPv6 egress (the IPv4 one
/// is provisioned): a bad `publicIpv6PrefixId`, or one set where it is not used (the warning
/// policy announces `IPv6Ready=False/InvalidPrefixId` for both).
pub fn validate_ipv6(
    target: &GatewayTarget,
    subscription: &str,
) -> Result<Ipv6Egress, TargetError> {
    let invalid = |why: String| TargetError::InvalidIpv6PrefixId { why };
    match (
        target.ipv6(),
        target.provision_public_ips,
        target.byo_ipv6_prefix_id(),
    ) {
        (false, _, None) => Ok(Ipv6Egress::Off),
        (false, _, Some(_)) => Err(invalid(
            "set without IPv6 in spec.ipFamilies, so it is not used".to_string(),
        )),
        (true, false, None) => Ok(Ipv6Egress::Private),
        (true, false, Some(_)) => Err(invalid(
            "must be empty with provisionPublicIps: false (private IP mode has no public IP prefix)"
                .to_string(),
        )),
        (true, true, None) => Ok(Ipv6Egress::ManagedPrefix),
        (true, true, Some(id)) => parse_prefix_id(id, subscription)
            .map(Ipv6Egress::ByoPrefix)
            .map_err(|e| match e {
                PrefixIdProblem::Invalid(why) => invalid(why),
                PrefixIdProblem::OtherSubscription(found) => invalid(format!(
                    "the prefix is in subscription {found}, the cluster uses {subscription}"
                )),
            }),
    }
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
    fn ipv6_egress_follows_the_ipv4_mode_and_checks_its_byo_prefix() {
        let pool = "gatewayNodepoolName: p\n";
        let v6 = |rest: &str| validate_ipv6(&target(&format!("{pool}{rest}")), SUB);
        let id = format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/v6"
        );
        assert_eq!(v6("provisionPublicIps: true").unwrap(), Ipv6Egress::Off);
        let dual = "ipFamilies: [IPv4, IPv6]\n";
        assert_eq!(
            v6(&format!("{dual}provisionPublicIps: true")).unwrap(),
            Ipv6Egress::ManagedPrefix
        );
        assert_eq!(
            v6(&format!("{dual}provisionPublicIps: false")).unwrap(),
            Ipv6Egress::Private
        );
        assert!(matches!(
            v6(&format!("{dual}provisionPublicIps: true\npublicIpv6PrefixId: {id}")).unwrap(),
            Ipv6Egress::ByoPrefix(p) if p.name() == "v6"
        ));
        for bad in [
            format!("provisionPublicIps: true\npublicIpv6PrefixId: {id}"),
            format!("{dual}provisionPublicIps: false\npublicIpv6PrefixId: {id}"),
            format!("{dual}provisionPublicIps: true\npublicIpv6PrefixId: not-an-id"),
            format!(
                "{dual}provisionPublicIps: true\npublicIpv6PrefixId: {}",
                id.replace(SUB, "11111111-1111-1111-1111-111111111111")
            ),
        ] {
            let e = v6(&bad).unwrap_err();
            assert_eq!(e.reason(), "InvalidPrefixId", "{bad}");
            assert!(
                e.to_string().starts_with("spec.publicIpv6PrefixId: "),
                "{e}"
            );
        }
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
