//! Pure: where a pod's packet to a destination goes, by the same rules the CNI plugin installs
//! (`staticEgressGateway`: everything through the tunnel except the SGC's `excludeCidrs` and
//! the node exception CIDRs; `azureNetworking`: only `excludeCidrs` through it). IPv6 follows
//! the same rules with the IPv6 CIDRs when the gateway has IPv6 in `spec.ipFamilies` and the
//! pod registered an IPv6 address (its PodEndpoint's `podIpv6Address`); otherwise IPv6 never
//! uses the tunnel. The inputs come from what the plugin reported for the pod (its
//! PodEndpoint's `status.tunnel`), else from the SGC's current spec and the chart's default
//! exceptions.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

/// The node exception CIDRs of the chart's default (`cniManager.exceptionCidrs`), used when the
/// pod's own report is missing.
pub const DEFAULT_NODE_EXCEPTIONS: [&str; 2] = ["169.254.169.254/32", "169.254.10.11/32"];

/// Why a pod's IPv6 is not tunnelled when its gateway has no IPv6 (routing and explain).
pub const IPV6_NOT_ENABLED: &str = "the gateway carries IPv4 only (no IPv6 in spec.ipFamilies), so IPv6 leaves through the pod's eth0 as the node or cluster address";

/// The routing a pod has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRouting {
    /// `true`: `azureNetworking`; `false`: `staticEgressGateway`.
    pub azure_networking: bool,
    /// The SGC's `excludeCidrs` (unparseable entries left out).
    pub exclude_cidrs: Vec<IpNet>,
    /// The node exception CIDRs.
    pub node_exclude_cidrs: Vec<IpNet>,
    /// Where these came from: `the plugin's report at ADD` or `the SGC spec (no report)`.
    pub source: String,
    /// IPv6 goes through the gateway too, by the same rules with the IPv6 CIDRs.
    pub ipv6: bool,
    /// Why IPv6 does not, when the gateway has IPv6 but this pod's IPv6 does not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_off: Option<String>,
}

/// Where one destination goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The destination.
    pub ip: IpAddr,
    /// Through the gateway (tunnel) or not.
    pub tunnelled: bool,
    /// The CIDR that decided, if one did.
    pub matched: Option<String>,
    /// Why, in words.
    pub why: String,
}

fn parse_all<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<IpNet> {
    items
        .into_iter()
        .filter_map(|s| s.trim().parse::<IpNet>().ok())
        .collect()
}

impl PodRouting {
    /// From text (report or spec) values.
    pub fn new<'a>(
        azure_networking: bool,
        exclude: impl IntoIterator<Item = &'a str>,
        node_exclude: impl IntoIterator<Item = &'a str>,
        source: &str,
    ) -> Self {
        Self {
            azure_networking,
            exclude_cidrs: parse_all(exclude),
            node_exclude_cidrs: parse_all(node_exclude),
            source: source.to_string(),
            ipv6: false,
            ipv6_off: None,
        }
    }

    /// With IPv6 through the gateway (`Ok`), or not for the given reason.
    pub fn with_ipv6(mut self, ipv6: Result<(), String>) -> Self {
        self.ipv6 = ipv6.is_ok();
        self.ipv6_off = ipv6.err();
        self
    }

    /// The pod's IPv6 routes in words, when IPv6 goes through the gateway.
    pub fn ipv6_summary(&self) -> Option<String> {
        if !self.ipv6 {
            return None;
        }
        let v6 = |list: &[IpNet]| -> Vec<String> {
            list.iter()
                .filter(|n| matches!(n, IpNet::V6(_)))
                .map(ToString::to_string)
                .collect()
        };
        let sgc = v6(&self.exclude_cidrs);
        Some(if self.azure_networking {
            if sgc.is_empty() {
                "azureNetworking: no IPv6 CIDR in spec.excludeCidrs, so no IPv6 uses the gateway"
                    .into()
            } else {
                format!("azureNetworking: only {} via wg0", sgc.join(", "))
            }
        } else {
            let mut all = sgc;
            all.extend(v6(&self.node_exclude_cidrs));
            if all.is_empty() {
                "::/0 via wg0, nothing excluded".into()
            } else {
                format!("::/0 via wg0, except {} via eth0", all.join(", "))
            }
        })
    }

    fn most_specific(list: &[IpNet], ip: IpAddr) -> Option<&IpNet> {
        list.iter()
            .filter(|n| n.contains(&ip))
            .max_by_key(|n| n.prefix_len())
    }

    /// Where a packet to `ip` goes.
    pub fn destination(&self, ip: IpAddr) -> Destination {
        let mode = if self.azure_networking {
            "azureNetworking"
        } else {
            "staticEgressGateway"
        };
        if ip.is_ipv6() && !self.ipv6 {
            return Destination {
                ip,
                tunnelled: false,
                matched: None,
                why: format!(
                    "not tunnelled: {}",
                    self.ipv6_off.as_deref().unwrap_or(IPV6_NOT_ENABLED)
                ),
            };
        }
        let sgc = Self::most_specific(&self.exclude_cidrs, ip);
        let node = Self::most_specific(&self.node_exclude_cidrs, ip);
        let (tunnelled, matched, why) = match (self.azure_networking, sgc, node) {
            (false, Some(n), _) => (
                false,
                Some(n.to_string()),
                format!(
                    "excluded: {n} is in the gateway's spec.excludeCidrs, so it leaves through the pod's eth0 as the node or cluster address, not the egress IP"
                ),
            ),
            (false, None, Some(n)) => (
                false,
                Some(n.to_string()),
                format!(
                    "excluded: {n} is a node exception CIDR (CNI manager --exception-cidrs), which always bypasses the tunnel"
                ),
            ),
            (false, None, None) => (
                true,
                None,
                format!(
                    "tunnelled: defaultRoute {mode} sends everything not excluded through the gateway"
                ),
            ),
            (true, Some(n), _) => (
                true,
                Some(n.to_string()),
                format!(
                    "tunnelled: with defaultRoute {mode} only spec.excludeCidrs use the gateway, and {n} is one"
                ),
            ),
            (true, None, _) => (
                false,
                None,
                format!(
                    "not tunnelled: with defaultRoute {mode} only spec.excludeCidrs use the gateway, and none contains it"
                ),
            ),
        };
        Destination {
            ip,
            tunnelled,
            matched,
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn static_egress_gateway_tunnels_all_but_exclusions() {
        let r = PodRouting::new(false, ["10.0.0.0/8", "bogus"], DEFAULT_NODE_EXCEPTIONS, "t");
        assert_eq!(r.exclude_cidrs.len(), 1);
        let d = r.destination("198.51.100.7".parse().unwrap());
        assert!(d.tunnelled && d.matched.is_none());
        let d = r.destination("10.1.2.3".parse().unwrap());
        assert!(!d.tunnelled);
        assert_eq!(d.matched.as_deref(), Some("10.0.0.0/8"));
        assert!(d.why.contains("spec.excludeCidrs"), "{}", d.why);
        let d = r.destination("169.254.169.254".parse().unwrap());
        assert!(!d.tunnelled && d.why.contains("node exception"));
        let d = r.destination("2001:db8::1".parse().unwrap());
        assert!(!d.tunnelled && d.why.contains("IPv4 only"), "{}", d.why);
        assert_eq!(r.ipv6_summary(), None);
    }

    #[test]
    fn ipv6_follows_the_same_rules_once_the_pod_uses_it() {
        let r = PodRouting::new(
            false,
            ["10.0.0.0/8", "2001:db8:e::/48"],
            ["fd00:10:96::/112", "169.254.169.254/32"],
            "t",
        )
        .with_ipv6(Ok(()));
        assert!(r.destination("2001:db8:f::1".parse().unwrap()).tunnelled);
        let d = r.destination("2001:db8:e::1".parse().unwrap());
        assert!(!d.tunnelled);
        assert_eq!(d.matched.as_deref(), Some("2001:db8:e::/48"));
        let d = r.destination("fd00:10:96::5".parse().unwrap());
        assert!(
            !d.tunnelled && d.why.contains("node exception"),
            "{}",
            d.why
        );
        assert_eq!(
            r.ipv6_summary().unwrap(),
            "::/0 via wg0, except 2001:db8:e::/48, fd00:10:96::/112 via eth0"
        );
        // IPv4 is unchanged by it.
        assert!(!r.destination("10.1.2.3".parse().unwrap()).tunnelled);

        let az = PodRouting::new(true, ["2001:db8:e::/48"], [], "t").with_ipv6(Ok(()));
        assert!(az.destination("2001:db8:e::1".parse().unwrap()).tunnelled);
        assert!(!az.destination("2001:db8:f::1".parse().unwrap()).tunnelled);
        assert_eq!(
            az.ipv6_summary().unwrap(),
            "azureNetworking: only 2001:db8:e::/48 via wg0"
        );

        let off = PodRouting::new(false, ["2001:db8:e::/48"], [], "t")
            .with_ipv6(Err("the pod registered no IPv6 address".into()));
        let d = off.destination("2001:db8:f::1".parse().unwrap());
        assert!(
            !d.tunnelled && d.why.contains("registered no IPv6"),
            "{}",
            d.why
        );
    }

    #[test]
    fn azure_networking_tunnels_only_exclusions() {
        let r = PodRouting::new(true, ["203.0.113.0/24"], DEFAULT_NODE_EXCEPTIONS, "t");
        assert!(r.destination("203.0.113.9".parse().unwrap()).tunnelled);
        let d = r.destination("198.51.100.7".parse().unwrap());
        assert!(!d.tunnelled && d.why.contains("only spec.excludeCidrs"));
    }
}
