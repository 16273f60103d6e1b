//! Small value types of the data plane: marks, peers, addresses, routes, rules, sysctls and
//! SNAT rules. Pure data with parsing and `Display`; nothing here touches the system.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::key::PublicKey;
use crate::names::InterfaceName;

/// Why a value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A firewall mark of zero means "no mark" to the kernel.
    #[error(
        "failed to parse firewall mark {0:?}: expected a non-zero decimal or 0x-hex 32-bit value"
    )]
    FwMark(String),
    /// A sysctl key outside `net.` or with an unsafe component.
    #[error(
        "failed to parse sysctl key {0:?}: expected dot-separated components under net. without '/' or '..'"
    )]
    SysctlKey(String),
}

/// A non-zero firewall / connection mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FwMark(u32);

impl FwMark {
    /// A mark from its value; zero is rejected because the kernel reads it as "unmarked".
    pub fn new(value: u32) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// The mark of a gateway tunnel: its listen port, like the original (`0x1770` for 6000).
    pub fn for_gateway_port(port: u16) -> Option<Self> {
        Self::new(u32::from(port))
    }

    /// The numeric value.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl FromStr for FwMark {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => s.parse::<u32>(),
        };
        parsed
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| SpecError::FwMark(s.to_owned()))
    }
}

impl fmt::Display for FwMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// One WireGuard peer as we program it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's public key (its identity on the device).
    pub public_key: PublicKey,
    /// Inner addresses accepted from and routed to this peer.
    pub allowed_ips: BTreeSet<IpNet>,
    /// Where to send handshakes; `None` for peers that roam to us (pods on a gateway).
    pub endpoint: Option<SocketAddr>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {} allowed-ips ", self.public_key)?;
        write_list(f, self.allowed_ips.iter())?;
        if let Some(endpoint) = self.endpoint {
            write!(f, " endpoint {endpoint}")?;
        }
        Ok(())
    }
}

/// An address on an interface, optionally with a label (`eth0:egress`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressSpec {
    /// Address and prefix length.
    pub addr: IpNet,
    /// IPv4 address label; must start with the interface name followed by `:`.
    pub label: Option<String>,
}

impl AddressSpec {
    /// An address without a label.
    pub fn plain(addr: IpNet) -> Self {
        Self { addr, label: None }
    }
}

impl fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(label) = &self.label {
            write!(f, " label {label}")?;
        }
        Ok(())
    }
}

/// The main routing table.
pub const MAIN_TABLE: u32 = 254;

/// Next hop of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop {
    /// Directly on the link (`scope link`).
    OnLink,
    /// Through a gateway of the route's own family.
    Gateway(IpAddr),
    /// An IPv4 route through an IPv6 next hop (`via inet6 fe80::1`, RTA_VIA), as the pod
    /// default route into `wg0` uses.
    ViaInet6(std::net::Ipv6Addr),
}

/// A unicast route (IPv4 or IPv6) we own or observe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteSpec {
    /// Routing table id ([`MAIN_TABLE`] unless policy routing is used).
    pub table: u32,
    /// Destination prefix.
    pub destination: IpNet,
    /// Output interface.
    pub device: InterfaceName,
    /// How the destination is reached.
    pub next_hop: NextHop,
}

impl RouteSpec {
    /// `destination dev device scope link` in the main table.
    pub fn on_link(destination: IpNet, device: InterfaceName) -> Self {
        Self {
            table: MAIN_TABLE,
            destination,
            device,
            next_hop: NextHop::OnLink,
        }
    }

    /// `destination via gateway dev device` in the main table.
    pub fn via(destination: IpNet, gateway: IpAddr, device: InterfaceName) -> Self {
        Self {
            table: MAIN_TABLE,
            destination,
            device,
            next_hop: NextHop::Gateway(gateway),
        }
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.destination.prefix_len() == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.destination)?;
        }
        match self.next_hop {
            NextHop::OnLink if self.destination.addr().is_ipv4() => {
                write!(f, " dev {} scope link", self.device)?
            }
            // IPv6 routes have no scope.
            NextHop::OnLink => write!(f, " dev {}", self.device)?,
            NextHop::Gateway(gw) => write!(f, " via {gw} dev {}", self.device)?,
            NextHop::ViaInet6(gw) => write!(f, " via inet6 {gw} dev {}", self.device)?,
        }
        if self.table != MAIN_TABLE {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

/// A policy-routing rule that looks up a table (`RuleAction::ToTable`), IPv4 or IPv6.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleSpec {
    /// An IPv6 rule (`ip -6 rule`); IPv4 otherwise. Each family has its own rule list.
    pub ipv6: bool,
    /// Rule preference; rules are identified by it together with their selector.
    pub priority: u32,
    /// Match packets with this firewall mark.
    pub fwmark: Option<FwMark>,
    /// Match packets from this source prefix.
    pub source: Option<IpNet>,
    /// Table to look up.
    pub table: u32,
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ipv6 {
            f.write_str("inet6 ")?;
        }
        write!(f, "{}: from ", self.priority)?;
        match self.source {
            Some(src) => write!(f, "{src}")?,
            None => f.write_str("all")?,
        }
        if let Some(mark) = self.fwmark {
            write!(f, " fwmark {mark}")?;
        }
        write!(f, " lookup {}", self.table)
    }
}

/// A sysctl under `net.`, e.g. `net.ipv4.ip_forward`, `net.ipv4.conf.eth0.rp_filter` or
/// `net.ipv6.conf.all.forwarding`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SysctlKey(Vec<String>);

impl SysctlKey {
    /// `net.ipv4.ip_forward`.
    pub fn ipv4_forwarding() -> Self {
        Self(vec!["net".into(), "ipv4".into(), "ip_forward".into()])
    }

    /// `net.ipv6.conf.all.forwarding`: IPv6 forwarding on every interface (IPv6 has no
    /// global switch like `ip_forward`).
    pub fn ipv6_forwarding() -> Self {
        Self(
            ["net", "ipv6", "conf", "all", "forwarding"]
                .map(str::to_owned)
                .to_vec(),
        )
    }

    /// `net.ipv4.conf.<scope>.<knob>` where scope is `all`, `default` or an interface.
    pub fn ipv4_conf(scope: &str, knob: &str) -> Result<Self, SpecError> {
        Self::conf("ipv4", scope, knob)
    }

    /// `net.ipv6.conf.<scope>.<knob>` where scope is `all`, `default` or an interface.
    pub fn ipv6_conf(scope: &str, knob: &str) -> Result<Self, SpecError> {
        Self::conf("ipv6", scope, knob)
    }

    fn conf(family: &str, scope: &str, knob: &str) -> Result<Self, SpecError> {
        let parts = ["net", family, "conf", scope, knob]
            .map(str::to_owned)
            .to_vec();
        if parts.iter().all(|p| valid_component(p)) {
            Ok(Self(parts))
        } else {
            Err(SpecError::SysctlKey(parts.join(".")))
        }
    }

    /// `net.ipv4.conf.<interface>.rp_filter` (interface names are always valid components).
    pub fn rp_filter(scope: &InterfaceName) -> Self {
        Self(vec![
            "net".into(),
            "ipv4".into(),
            "conf".into(),
            scope.as_str().into(),
            "rp_filter".into(),
        ])
    }

    /// `net.ipv4.conf.all.rp_filter`.
    pub fn rp_filter_all() -> Self {
        Self(vec![
            "net".into(),
            "ipv4".into(),
            "conf".into(),
            "all".into(),
            "rp_filter".into(),
        ])
    }

    /// Path under `/proc/sys`.
    pub fn proc_path(&self) -> std::path::PathBuf {
        let mut path = std::path::PathBuf::from("/proc/sys");
        path.extend(self.0.iter());
        path
    }
}

fn valid_component(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".." && !part.contains('/')
}

impl FromStr for SysctlKey {
    type Err = SpecError;

    /// Dot-separated; interface names containing dots cannot be written this way, use
    /// [`SysctlKey::ipv4_conf`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<String> = s.split('.').map(str::to_owned).collect();
        if parts.len() < 2 || parts[0] != "net" || !parts.iter().all(|p| valid_component(p)) {
            return Err(SpecError::SysctlKey(s.to_owned()));
        }
        Ok(Self(parts))
    }
}

impl fmt::Display for SysctlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// Source NAT of one gateway's tunnel traffic: connections arriving on `tunnel` are marked
/// with `mark` and leave `egress` with source `to`. One map entry each, so the rule count
/// stays constant however many pods or gateways there are. `A` is the family: IPv4 by
/// default, `Ipv6Addr` in the `ip6` table of dual-stack gateways.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnatRule<A = Ipv4Addr> {
    /// The gateway's WireGuard interface.
    pub tunnel: InterfaceName,
    /// Connection mark given to flows from the tunnel.
    pub mark: FwMark,
    /// The address flows are translated to (the node's secondary IP for this gateway).
    pub to: A,
}

impl<A: fmt::Display> fmt::Display for SnatRule<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iif {} -> ct mark {} -> snat to {}",
            self.tunnel, self.mark, self.to
        )
    }
}

pub(crate) fn write_list<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    let mut first = true;
    for item in items {
        if !first {
            f.write_str(",")?;
        }
        first = false;
        write!(f, "{item}")?;
    }
    if first {
        f.write_str("(none)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn fwmark_parses_decimal_and_hex_and_rejects_zero() {
        assert_eq!("6000".parse::<FwMark>().unwrap().value(), 6000);
        assert_eq!("0x1770".parse::<FwMark>().unwrap().value(), 6000);
        assert_eq!(
            FwMark::for_gateway_port(6000).unwrap().to_string(),
            "0x1770"
        );
        assert!("0".parse::<FwMark>().is_err());
        assert!("mark".parse::<FwMark>().is_err());
        assert!(FwMark::for_gateway_port(0).is_none());
    }

    #[test]
    fn sysctl_keys_map_to_proc_sys_and_reject_traversal() {
        let key: SysctlKey = "net.ipv4.ip_forward".parse().unwrap();
        assert_eq!(key, SysctlKey::ipv4_forwarding());
        assert_eq!(
            key.proc_path(),
            std::path::PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert!("kernel.panic".parse::<SysctlKey>().is_err());
        assert!("net..x".parse::<SysctlKey>().is_err());
        assert!(SysctlKey::ipv4_conf("../../x", "y").is_err());
        assert!(SysctlKey::ipv6_conf("all", "..").is_err());
        assert_eq!(
            SysctlKey::ipv6_forwarding(),
            SysctlKey::ipv6_conf("all", "forwarding").unwrap()
        );
        assert_eq!(
            SysctlKey::ipv6_forwarding().proc_path(),
            std::path::PathBuf::from("/proc/sys/net/ipv6/conf/all/forwarding")
        );
        let eth: InterfaceName = "eth0.100".parse().unwrap();
        assert_eq!(
            SysctlKey::rp_filter(&eth).proc_path(),
            std::path::PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
    }

    #[test]
    fn routes_and_rules_display_like_ip() {
        let wg: InterfaceName = "wg0".parse().unwrap();
        let r = RouteSpec {
            table: MAIN_TABLE,
            destination: "0.0.0.0/0".parse().unwrap(),
            device: wg,
            next_hop: NextHop::ViaInet6("fe80::1".parse().unwrap()),
        };
        assert_eq!(r.to_string(), "default via inet6 fe80::1 dev wg0");
        let rule = RuleSpec {
            ipv6: false,
            priority: 100,
            fwmark: FwMark::new(8738),
            source: None,
            table: 8738,
        };
        assert_eq!(rule.to_string(), "100: from all fwmark 0x2222 lookup 8738");
        let rule6 = RuleSpec { ipv6: true, ..rule };
        assert_eq!(
            rule6.to_string(),
            "inet6 100: from all fwmark 0x2222 lookup 8738"
        );
        let v6 = RouteSpec::via(
            "::/0".parse().unwrap(),
            "fe80::1".parse().unwrap(),
            "wg0".parse().unwrap(),
        );
        assert_eq!(v6.to_string(), "default via fe80::1 dev wg0");
        let host = RouteSpec::on_link("fd00::10/128".parse().unwrap(), "veth".parse().unwrap());
        assert_eq!(host.to_string(), "fd00::10/128 dev veth");
    }
}
