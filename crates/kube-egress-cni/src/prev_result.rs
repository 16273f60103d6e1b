//! Reads what the main plugin set up from `prevResult`: the pod's IPv4 address on the
//! container interface and its gateway (from the address entry or the default route), and
//! for a dual-stack pod its IPv6 address and gateway likewise (the gateway may be absent).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rscni_plugin::types::CNIResult;

/// Problems with `prevResult` (CNI error 7: we must be chained after a main plugin).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrevResultError {
    /// No `prevResult` at all.
    #[error("kube-egress-cni must be chained after a main plugin: prevResult is missing")]
    Missing,
    /// The result names interfaces, but not `CNI_IFNAME`.
    #[error(
        "prevResult has no interface {ifname} (CNI_IFNAME); it lists {listed}: the main plugin configured another interface"
    )]
    NoInterface {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The interfaces it names.
        listed: String,
    },
    /// No IPv4 address on the container interface.
    #[error("prevResult has no IPv4 address for interface {0}")]
    NoIpv4(String),
    /// No gateway for that address.
    #[error(
        "prevResult has no IPv4 gateway for {0} (neither on the address nor as a default route)"
    )]
    NoGateway(Ipv4Addr),
}

/// The pod side of the main plugin's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodAddress {
    /// Pod IPv4 address.
    pub ip: Ipv4Addr,
    /// Its gateway (next hop of the default route via the container interface).
    pub gateway: Ipv4Addr,
    /// The pod's IPv6 address and gateway, when the main plugin gave it one.
    pub ipv6: Option<PodIpv6Address>,
}

/// A dual-stack pod's IPv6 side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodIpv6Address {
    /// The first IPv6 address on the interface that can be an egress source
    /// ([`egress_cni_proto::usable_pod_ipv6`]).
    pub ip: Ipv6Addr,
    /// Its gateway (from the address entry, else a `::/0` route), if any.
    pub gateway: Option<Ipv6Addr>,
}

/// Finds the pod's IPv4 address and gateway on `ifname`.
pub fn pod_address(prev: Option<&CNIResult>, ifname: &str) -> Result<PodAddress, PrevResultError> {
    let prev = prev.ok_or(PrevResultError::Missing)?;
    // Index of the container interface; addresses without an index are accepted only when the
    // result names no interfaces at all (some IPAM-only main plugins). A result that names
    // interfaces but not ours must not lend us another interface's address.
    let index = prev
        .interfaces
        .iter()
        .position(|i| i.name == ifname && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
        .or_else(|| prev.interfaces.iter().position(|i| i.name == ifname));
    if index.is_none() && !prev.interfaces.is_empty() {
        return Err(PrevResultError::NoInterface {
            ifname: ifname.to_string(),
            listed: prev
                .interfaces
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let on_iface = |i: Option<u32>| match (index, i) {
        (Some(idx), Some(i)) => usize::try_from(i).is_ok_and(|i| i == idx),
        (None, _) | (_, None) => true,
    };
    let ours = || prev.ips.iter().filter(|c| on_iface(c.interface));
    let (ip, gw) = ours()
        .find_map(|c| match c.address {
            IpNet::V4(n) => Some((n.addr(), c.gateway)),
            IpNet::V6(_) => None,
        })
        .ok_or_else(|| PrevResultError::NoIpv4(ifname.to_string()))?;
    let gateway = match gw {
        Some(IpAddr::V4(g)) => Some(g),
        _ => prev.routes.iter().find_map(|r| match (r.dst, r.gw) {
            (IpNet::V4(d), Some(IpAddr::V4(g))) if d.prefix_len() == 0 => Some(g),
            _ => None,
        }),
    }
    .ok_or(PrevResultError::NoGateway(ip))?;
    let ipv6 = ours()
        .find_map(|c| match c.address {
            IpNet::V6(n) if egress_cni_proto::usable_pod_ipv6(&n.addr()) => {
                Some((n.addr(), c.gateway))
            }
            _ => None,
        })
        .map(|(ip, gw)| PodIpv6Address {
            ip,
            gateway: match gw {
                Some(IpAddr::V6(g)) => Some(g),
                _ => prev.routes.iter().find_map(|r| match (r.dst, r.gw) {
                    (IpNet::V6(d), Some(IpAddr::V6(g))) if d.prefix_len() == 0 => Some(g),
                    _ => None,
                }),
            },
        });
    Ok(PodAddress { ip, gateway, ipv6 })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn result(json: &str) -> CNIResult {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ptp_result_gives_address_and_gateway() {
        // What the reference ptp plugin (host-local IPAM) returns.
        let r = result(
            r#"{"cniVersion":"1.0.0",
            "interfaces":[{"name":"veth1234","mac":"aa:bb:cc:dd:ee:01"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:02","sandbox":"/run/netns/p"}],
            "ips":[{"interface":1,"address":"10.244.1.10/24","gateway":"10.244.1.1"}],
            "routes":[{"dst":"0.0.0.0/0"}]}"#,
        );
        assert_eq!(
            pod_address(Some(&r), "eth0").unwrap(),
            PodAddress {
                ip: "10.244.1.10".parse().unwrap(),
                gateway: "10.244.1.1".parse().unwrap(),
                ipv6: None,
            }
        );
    }

    #[test]
    fn gateway_from_default_route_and_legacy_layout() {
        let r = result(
            r#"{"cniVersion":"0.4.0",
            "interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],
            "ips":[{"version":"6","interface":0,"address":"fd00::5/64"},{"version":"4","interface":0,"address":"10.1.0.5/16"}],
            "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]}"#,
        );
        let a = pod_address(Some(&r), "eth0").unwrap();
        assert_eq!(
            (a.ip.to_string(), a.gateway.to_string()),
            ("10.1.0.5".into(), "10.1.0.1".into())
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        assert_eq!(
            pod_address(None, "eth0").unwrap_err(),
            PrevResultError::Missing
        );
        let v6only = result(
            r#"{"interfaces":[{"name":"eth0","sandbox":"/p"}],"ips":[{"interface":0,"address":"fd00::5/64"}]}"#,
        );
        assert_eq!(
            pod_address(Some(&v6only), "eth0").unwrap_err(),
            PrevResultError::NoIpv4("eth0".into())
        );
        let other_if = result(
            r#"{"interfaces":[{"name":"eth0","sandbox":"/p"},{"name":"net1","sandbox":"/p"}],"ips":[{"interface":1,"address":"10.0.0.2/24","gateway":"10.0.0.1"}]}"#,
        );
        assert_eq!(
            pod_address(Some(&other_if), "eth0").unwrap_err(),
            PrevResultError::NoIpv4("eth0".into())
        );
        // CNI_IFNAME is not among the interfaces: named at once, never eth0's address.
        let err = pod_address(Some(&other_if), "net2").unwrap_err();
        assert_eq!(
            err,
            PrevResultError::NoInterface {
                ifname: "net2".into(),
                listed: "eth0, net1".into()
            }
        );
        assert!(
            err.to_string()
                .contains("no interface net2 (CNI_IFNAME); it lists eth0, net1")
        );
        let ptp = result(
            r#"{"interfaces":[{"name":"veth1"},{"name":"eth0","sandbox":"/p"}],"ips":[{"interface":1,"address":"10.0.0.2/24","gateway":"10.0.0.1"}]}"#,
        );
        assert!(matches!(
            pod_address(Some(&ptp), "eth1"),
            Err(PrevResultError::NoInterface { .. })
        ));
        let unindexed = result(r#"{"ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"}]}"#);
        assert_eq!(
            pod_address(Some(&unindexed), "eth1")
                .unwrap()
                .ip
                .to_string(),
            "10.0.0.2"
        );
        let nogw = result(
            r#"{"interfaces":[{"name":"eth0","sandbox":"/p"}],"ips":[{"interface":0,"address":"10.0.0.2/24"}]}"#,
        );
        assert!(
            pod_address(Some(&nogw), "eth0")
                .unwrap_err()
                .to_string()
                .contains("no IPv4 gateway for 10.0.0.2")
        );
    }

    #[test]
    fn dual_stack_results_give_the_ipv6_address_and_gateway() {
        // A ptp/bridge-style dual-stack result: the gateway on the address entry.
        let r = result(
            r#"{"cniVersion":"1.0.0",
            "interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],
            "ips":[{"interface":0,"address":"10.244.1.10/24","gateway":"10.244.1.1"},
                   {"interface":0,"address":"fe80::5/64"},
                   {"interface":0,"address":"fd00:10:244:1::a/64","gateway":"fd00:10:244:1::1"}],
            "routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}"#,
        );
        assert_eq!(
            pod_address(Some(&r), "eth0").unwrap().ipv6,
            Some(PodIpv6Address {
                ip: "fd00:10:244:1::a".parse().unwrap(),
                gateway: Some("fd00:10:244:1::1".parse().unwrap()),
            })
        );
        // The gateway from a `::/0` route (a link-local one, as Azure's), or none at all.
        let r = result(
            r#"{"interfaces":[{"name":"eth0","sandbox":"/p"}],
            "ips":[{"interface":0,"address":"10.1.0.5/16","gateway":"10.1.0.1"},
                   {"interface":0,"address":"fd00::5/64"}],
            "routes":[{"dst":"::/0","gw":"fe80::1234:5678:9abc"}]}"#,
        );
        let v6 = pod_address(Some(&r), "eth0").unwrap().ipv6.unwrap();
        assert_eq!(v6.gateway, Some("fe80::1234:5678:9abc".parse().unwrap()));
        let r = result(
            r#"{"ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1"},{"address":"2001:db8::5/64"}]}"#,
        );
        let v6 = pod_address(Some(&r), "eth0").unwrap().ipv6.unwrap();
        assert_eq!(
            (v6.ip.to_string(), v6.gateway),
            ("2001:db8::5".into(), None)
        );
        // Only link-local (or another interface's) IPv6: an IPv4-only pod.
        let r = result(
            r#"{"interfaces":[{"name":"eth0","sandbox":"/p"},{"name":"net1","sandbox":"/p"}],
            "ips":[{"interface":0,"address":"10.1.0.5/16","gateway":"10.1.0.1"},
                   {"interface":0,"address":"fe80::5/64"},
                   {"interface":1,"address":"fd00:1::5/64","gateway":"fd00:1::1"}]}"#,
        );
        assert_eq!(pod_address(Some(&r), "eth0").unwrap().ipv6, None);
    }
}
