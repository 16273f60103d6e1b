//! Whether a PodEndpoint's IPv6 address (`spec.podIpv6Address`) joins its peer (pure). It
//! does only when the PodEndpoint's IPv4 claim is valid (`trust`), its gateway egresses IPv6
//! from this node, the address is an IPv6 `/128`, and it is one of the pod's `status.podIPs`
//! (or the pod has no IP yet, the rule `trust` applies to the IPv4 address). Two claims of
//! one IPv6 address are decided by the serving order that decides IPv4 ones (`placement`).
//!
//! Whatever is wrong with the IPv6 address, the IPv4 peer is programmed as if the field were
//! absent: an [`Ipv6Refusal`] is reported on its own, never as a refusal of the PodEndpoint.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::pods::PodFacts;
use crate::translate::{Ipv6Egress, ObjectKey};

/// Why a PodEndpoint's IPv6 address is left out of its peer. Each variant is one value of
/// the metric label `reason` (prefixed `ipv6_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv6Refusal {
    /// Not an IPv6 `/128`.
    BadAddress {
        /// The rejected value.
        value: String,
    },
    /// The StaticGatewayConfiguration egresses IPv4 only.
    NotEnabled {
        /// The SGC.
        sgc: ObjectKey,
    },
    /// This node has no usable secondary IPv6 for the gateway.
    NoSecondary {
        /// The SGC.
        sgc: ObjectKey,
        /// Why, when the node has one that cannot be used.
        why: Option<String>,
    },
    /// The address is not the pod's.
    NotPods {
        /// The Pod.
        pod: ObjectKey,
        /// The claimed address.
        ip: IpNet,
        /// The Pod's IPs.
        pod_ips: BTreeSet<IpAddr>,
    },
    /// A stronger (or incumbent) claim holds the address.
    Taken {
        /// The claimed address.
        ip: IpNet,
        /// The PodEndpoint holding it.
        holder: ObjectKey,
    },
}

impl Ipv6Refusal {
    /// Every metric label, registered at zero when the daemon starts.
    pub const REASONS: [&'static str; 5] = [
        "ipv6_bad_address",
        "ipv6_not_enabled",
        "ipv6_no_secondary",
        "ipv6_not_pods",
        "ipv6_taken",
    ];

    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Ipv6Refusal::BadAddress { .. } => "ipv6_bad_address",
            Ipv6Refusal::NotEnabled { .. } => "ipv6_not_enabled",
            Ipv6Refusal::NoSecondary { .. } => "ipv6_no_secondary",
            Ipv6Refusal::NotPods { .. } => "ipv6_not_pods",
            Ipv6Refusal::Taken { .. } => "ipv6_taken",
        }
    }
}

impl fmt::Display for Ipv6Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("its IPv4 peer is programmed without spec.podIpv6Address: ")?;
        match self {
            Ipv6Refusal::BadAddress { value } => write!(
                f,
                "{value:?} is not an IPv6 /128 such as fd00:10:244::5/128"
            ),
            Ipv6Refusal::NotEnabled { sgc } => write!(
                f,
                "StaticGatewayConfiguration {sgc} egresses IPv4 only (no IPv6 in spec.ipFamilies)"
            ),
            Ipv6Refusal::NoSecondary { sgc, why: None } => write!(
                f,
                "this node has no secondary IPv6 for StaticGatewayConfiguration {sgc} yet"
            ),
            Ipv6Refusal::NoSecondary {
                sgc,
                why: Some(why),
            } => write!(
                f,
                "this node's secondary IPv6 for StaticGatewayConfiguration {sgc} cannot be used: {why}"
            ),
            Ipv6Refusal::NotPods { pod, ip, pod_ips } => write!(
                f,
                "{ip} is not an IP of pod {pod} (status.podIPs: {pod_ips:?})"
            ),
            Ipv6Refusal::Taken { ip, holder } => {
                write!(f, "{ip} is already held by PodEndpoint {holder}")
            }
        }
    }
}

/// Checks an IPv6 `/128` (already parsed by `translate::peer_spec`) of a PodEndpoint whose
/// IPv4 claim `trust` accepted: its gateway's IPv6 egress here, then the pod's IPs.
pub fn check(
    ip: IpNet,
    sgc: &ObjectKey,
    egress: &Ipv6Egress,
    pod_key: &ObjectKey,
    pod: Option<&PodFacts>,
) -> Result<IpNet, Ipv6Refusal> {
    match egress {
        Ipv6Egress::Disabled => return Err(Ipv6Refusal::NotEnabled { sgc: sgc.clone() }),
        Ipv6Egress::Pending => {
            return Err(Ipv6Refusal::NoSecondary {
                sgc: sgc.clone(),
                why: None,
            });
        }
        Ipv6Egress::Unusable(why) => {
            return Err(Ipv6Refusal::NoSecondary {
                sgc: sgc.clone(),
                why: Some(why.clone()),
            });
        }
        Ipv6Egress::Ready(_) => {}
    }
    // `trust::check` passed, so the pod exists; no IPs yet is the provisional case.
    let pod_ips = pod.map(|p| p.ips.clone()).unwrap_or_default();
    if !pod_ips.is_empty() && !pod_ips.contains(&ip.addr()) {
        return Err(Ipv6Refusal::NotPods {
            pod: pod_key.clone(),
            ip,
            pod_ips,
        });
    }
    Ok(ip)
}
