//! Desired state: a whole gateway node ([`GatewayNodeState`]) and one pod's tunnel
//! ([`PodTunnelState`]). Constructors validate cross-field invariants (unique ports, secondary
//! IPs and allowed IPs), so `plan` only ever sees consistent input.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::key::{PrivateKey, PublicKey};
use crate::names::{InterfaceName, NetnsName, NetnsRef};
use crate::spec::{FwMark, Peer};

/// Name of the gateway network namespace on gateway nodes.
pub const GATEWAY_NETNS: &str = "ns-static-egress-gateway";
/// Host end of the veth pair into the gateway namespace.
pub const HOST_VETH: &str = "host-gateway";
/// Gateway-namespace end of the veth pair.
pub const GATEWAY_VETH: &str = "host0";
/// The link-local address of every gateway tunnel, and the pods' IPv6 next hop.
pub const TUNNEL_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// The link-local address of the host end of the veth pair: the gateway namespace's IPv6
/// next hop (IPv6 neighbour discovery only answers for addresses on the asked link, so the
/// host's primary address cannot serve as it does for IPv4). Only there when a gateway has
/// IPv6; link-local, so it never clashes with the tunnels' `fe80::1` on other links.
pub const HOST_VETH_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// Default tunnel MTU: 1500 minus the 80 bytes of WireGuard-over-IPv6 overhead, so outer
/// packets never need fragmenting on a 1500-byte underlay.
pub const DEFAULT_TUNNEL_MTU: u32 = 1420;
/// Smallest MTU accepted for a tunnel (IPv6 minimum).
pub const MIN_TUNNEL_MTU: u32 = 1280;
/// Largest MTU accepted for a tunnel.
pub const MAX_TUNNEL_MTU: u32 = 65_000;

/// Why a desired state was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Listen port 0 would let the kernel pick one at random.
    #[error("failed to add gateway {interface}: listen port 0 is not allowed")]
    ZeroPort {
        /// The gateway's interface.
        interface: InterfaceName,
    },
    /// Two gateways on one node share a listen port.
    #[error("failed to add gateway {interface}: listen port {port} is already used by {other}")]
    DuplicatePort {
        /// The gateway being added.
        interface: InterfaceName,
        /// The port.
        port: u16,
        /// The gateway already holding it.
        other: InterfaceName,
    },
    /// Two gateways on one node share an interface name.
    #[error("failed to add gateway {interface}: the interface name is already used")]
    DuplicateInterface {
        /// The interface.
        interface: InterfaceName,
    },
    /// Two gateways on one node share a secondary (SNAT) IP of either family.
    #[error("failed to add gateway {interface}: secondary IP {ip} is already used by {other}")]
    DuplicateSecondaryIp {
        /// The gateway being added.
        interface: InterfaceName,
        /// The IP.
        ip: IpAddr,
        /// The gateway already holding it.
        other: InterfaceName,
    },
    /// A secondary IPv6 that cannot be a node's global source address.
    #[error(
        "failed to configure {interface}: secondary IPv6 {ip} is not a unicast address outside link-local and loopback"
    )]
    InvalidSecondaryIpv6 {
        /// The gateway's interface.
        interface: InterfaceName,
        /// The rejected address.
        ip: Ipv6Addr,
    },
    /// An IPv6 allowed IP on a tunnel that has no secondary IPv6: nothing would translate
    /// it, and the pod's own address would leave the node.
    #[error(
        "failed to add {peer} to {interface}: allowed IP {ip} is IPv6 but the gateway has no secondary IPv6 to SNAT it to"
    )]
    Ipv6WithoutSecondary {
        /// The device.
        interface: InterfaceName,
        /// The peer being added.
        peer: PublicKey,
        /// The IPv6 prefix.
        ip: IpNet,
    },
    /// The MTU is outside what a tunnel can use.
    #[error(
        "failed to configure {interface}: MTU {mtu} is outside {MIN_TUNNEL_MTU}..={MAX_TUNNEL_MTU}"
    )]
    Mtu {
        /// The interface.
        interface: InterfaceName,
        /// The rejected MTU.
        mtu: u32,
    },
    /// An allowed IP is already routed to another peer of the same device; WireGuard would
    /// silently move it.
    #[error("failed to add {peer} to {interface}: allowed IP {ip} already belongs to peer {owner}")]
    AllowedIpTaken {
        /// The device.
        interface: InterfaceName,
        /// The peer being added.
        peer: PublicKey,
        /// The contested prefix.
        ip: IpNet,
        /// The peer already holding it.
        owner: PublicKey,
    },
    /// A peer with no allowed IPs would carry no traffic.
    #[error("failed to add peer {peer} to {interface}: it has no allowed IPs")]
    NoAllowedIps {
        /// The device.
        interface: InterfaceName,
        /// The peer.
        peer: PublicKey,
    },
    /// The gateway peer of a pod needs an endpoint: pods initiate every handshake.
    #[error("failed to build pod tunnel {interface}: the gateway peer has no endpoint")]
    NoEndpoint {
        /// The pod's tunnel interface.
        interface: InterfaceName,
    },
    /// IPv6 exclusions need a next hop on `eth`, and the pod has no IPv6 gateway.
    #[error(
        "failed to build pod tunnel {interface}: IPv6 exclusions (such as {first}) need an IPv6 gateway on {eth}, and the main plugin gave none"
    )]
    NoIpv6Gateway {
        /// The pod's tunnel interface.
        interface: InterfaceName,
        /// The pod's primary interface.
        eth: InterfaceName,
        /// The first exclusion.
        first: Ipv6Net,
    },
    /// An IPv6 gateway that cannot be a next hop (unspecified, loopback, multicast).
    #[error("failed to build pod tunnel {interface}: {gateway} is not a usable IPv6 gateway")]
    BadIpv6Gateway {
        /// The pod's tunnel interface.
        interface: InterfaceName,
        /// The rejected gateway.
        gateway: Ipv6Addr,
    },
}

/// The veth pair between the host and the gateway namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethPair {
    /// End in the host namespace (`host-gateway`).
    pub host: InterfaceName,
    /// End in the gateway namespace (`host0`).
    pub gateway: InterfaceName,
}

/// Everything one gateway (one StaticGatewayConfiguration) needs on a gateway node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTunnel {
    /// The WireGuard interface in the gateway namespace (`wg-<port>`).
    pub interface: InterfaceName,
    /// UDP port, bound in the host namespace (the ILB rule's port).
    pub listen_port: u16,
    /// The gateway's private key (shared by every node of the pool).
    pub private_key: PrivateKey,
    /// This node's secondary IP for the gateway: the SNAT source.
    pub secondary_ip: Ipv4Addr,
    /// This node's secondary IPv6 for the gateway, if the gateway is dual-stack: the SNAT
    /// source of IPv6 flows. Set with [`GatewayTunnel::with_secondary_ipv6`].
    secondary_ipv6: Option<Ipv6Addr>,
    /// Tunnel MTU.
    pub mtu: u32,
    mark: FwMark,
    /// Pod peers by public key.
    peers: BTreeMap<PublicKey, Peer>,
    /// Owner of every allowed IP, to reject overlaps.
    allowed_ip_owner: BTreeMap<IpNet, PublicKey>,
}

impl GatewayTunnel {
    /// A gateway with the conventional interface name `wg-<port>`, the default MTU and no peers.
    pub fn new(
        listen_port: u16,
        private_key: PrivateKey,
        secondary_ip: Ipv4Addr,
    ) -> Result<Self, StateError> {
        let interface = InterfaceName::for_gateway_port(listen_port);
        let Some(mark) = FwMark::for_gateway_port(listen_port) else {
            return Err(StateError::ZeroPort { interface });
        };
        Ok(Self {
            interface,
            listen_port,
            private_key,
            secondary_ip,
            secondary_ipv6: None,
            mtu: DEFAULT_TUNNEL_MTU,
            mark,
            peers: BTreeMap::new(),
            allowed_ip_owner: BTreeMap::new(),
        })
    }

    /// Sets the tunnel MTU.
    pub fn with_mtu(mut self, mtu: u32) -> Result<Self, StateError> {
        check_mtu(&self.interface, mtu)?;
        self.mtu = mtu;
        Ok(self)
    }

    /// Makes the gateway dual-stack: IPv6 flows leave as `ip`. Rejects addresses that cannot
    /// be a node's source address (unspecified, loopback, multicast, link-local).
    pub fn with_secondary_ipv6(mut self, ip: Ipv6Addr) -> Result<Self, StateError> {
        if ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || ip.is_unicast_link_local()
        {
            return Err(StateError::InvalidSecondaryIpv6 {
                interface: self.interface.clone(),
                ip,
            });
        }
        self.secondary_ipv6 = Some(ip);
        Ok(self)
    }

    /// This node's secondary IPv6 for the gateway, if it is dual-stack.
    pub fn secondary_ipv6(&self) -> Option<Ipv6Addr> {
        self.secondary_ipv6
    }

    /// The connection mark of this gateway's flows (its port, as in the original).
    pub fn mark(&self) -> FwMark {
        self.mark
    }

    /// Adds or replaces one peer. Rejects it, leaving the others untouched, if it has no
    /// allowed IPs or one of them belongs to another peer.
    pub fn upsert_peer(&mut self, peer: Peer) -> Result<(), StateError> {
        if peer.allowed_ips.is_empty() {
            return Err(StateError::NoAllowedIps {
                interface: self.interface.clone(),
                peer: peer.public_key,
            });
        }
        if self.secondary_ipv6.is_none()
            && let Some(ip) = peer
                .allowed_ips
                .iter()
                .find(|ip| matches!(ip, IpNet::V6(_)))
        {
            return Err(StateError::Ipv6WithoutSecondary {
                interface: self.interface.clone(),
                peer: peer.public_key,
                ip: *ip,
            });
        }
        for ip in &peer.allowed_ips {
            if let Some(owner) = self.allowed_ip_owner.get(ip)
                && *owner != peer.public_key
            {
                return Err(StateError::AllowedIpTaken {
                    interface: self.interface.clone(),
                    peer: peer.public_key,
                    ip: *ip,
                    owner: owner.clone(),
                });
            }
        }
        self.remove_peer(&peer.public_key);
        for ip in &peer.allowed_ips {
            self.allowed_ip_owner.insert(*ip, peer.public_key.clone());
        }
        self.peers.insert(peer.public_key.clone(), peer);
        Ok(())
    }

    /// Removes one peer; returns it if it was present.
    pub fn remove_peer(&mut self, key: &PublicKey) -> Option<Peer> {
        let old = self.peers.remove(key)?;
        for ip in &old.allowed_ips {
            self.allowed_ip_owner.remove(ip);
        }
        Some(old)
    }

    /// The peers, ordered by public key.
    pub fn peers(&self) -> &BTreeMap<PublicKey, Peer> {
        &self.peers
    }
}

fn check_mtu(interface: &InterfaceName, mtu: u32) -> Result<(), StateError> {
    if (MIN_TUNNEL_MTU..=MAX_TUNNEL_MTU).contains(&mtu) {
        Ok(())
    } else {
        Err(StateError::Mtu {
            interface: interface.clone(),
            mtu,
        })
    }
}

/// Desired data plane of a whole gateway node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayNodeState {
    /// The host namespace (the process's own in production; a named one in tests).
    pub host_netns: NetnsRef,
    /// The host's primary interface (`eth0`).
    pub host_interface: InterfaceName,
    /// The VM's primary IP: next hop from the gateway namespace.
    pub host_primary_ip: Ipv4Addr,
    /// ILB frontend IPs, added as /32 to the host interface with label `<if>:egress`.
    pub ilb_addresses: BTreeSet<Ipv4Addr>,
    /// The gateway namespace (created if missing, never deleted).
    pub gateway_netns: NetnsName,
    /// The veth pair between host and gateway namespace.
    pub veth: VethPair,
    gateways: BTreeMap<u16, GatewayTunnel>,
}

impl GatewayNodeState {
    /// A node with the conventional names (`ns-static-egress-gateway`, `host-gateway`/`host0`)
    /// and no gateways yet.
    pub fn new(
        host_netns: NetnsRef,
        host_interface: InterfaceName,
        host_primary_ip: Ipv4Addr,
    ) -> Result<Self, crate::names::NameError> {
        Ok(Self {
            host_netns,
            host_interface,
            host_primary_ip,
            ilb_addresses: BTreeSet::new(),
            gateway_netns: GATEWAY_NETNS.parse()?,
            veth: VethPair {
                host: HOST_VETH.parse()?,
                gateway: GATEWAY_VETH.parse()?,
            },
            gateways: BTreeMap::new(),
        })
    }

    /// Adds one gateway; rejects duplicate ports, interface names and secondary IPs.
    pub fn add_gateway(&mut self, gateway: GatewayTunnel) -> Result<(), StateError> {
        check_mtu(&gateway.interface, gateway.mtu)?;
        if let Some(other) = self.gateways.get(&gateway.listen_port) {
            return Err(StateError::DuplicatePort {
                interface: gateway.interface,
                port: gateway.listen_port,
                other: other.interface.clone(),
            });
        }
        for other in self.gateways.values() {
            if other.interface == gateway.interface {
                return Err(StateError::DuplicateInterface {
                    interface: gateway.interface,
                });
            }
            let v4 = (other.secondary_ip == gateway.secondary_ip)
                .then_some(IpAddr::V4(gateway.secondary_ip));
            let v6 = gateway
                .secondary_ipv6
                .filter(|ip| other.secondary_ipv6 == Some(*ip))
                .map(IpAddr::V6);
            if let Some(ip) = v4.or(v6) {
                return Err(StateError::DuplicateSecondaryIp {
                    interface: gateway.interface,
                    ip,
                    other: other.interface.clone(),
                });
            }
        }
        self.gateways.insert(gateway.listen_port, gateway);
        Ok(())
    }

    /// Removes the gateway listening on `port`.
    pub fn remove_gateway(&mut self, port: u16) -> Option<GatewayTunnel> {
        self.gateways.remove(&port)
    }

    /// The gateways by listen port.
    pub fn gateways(&self) -> &BTreeMap<u16, GatewayTunnel> {
        &self.gateways
    }

    /// Mutable access to one gateway (to add or remove peers).
    pub fn gateway_mut(&mut self, port: u16) -> Option<&mut GatewayTunnel> {
        self.gateways.get_mut(&port)
    }

    /// The label given to ILB addresses: `<host interface>:egress`, cut to 15 bytes.
    pub fn ilb_label(&self) -> String {
        let mut label = format!("{}:egress", self.host_interface);
        label.truncate(crate::names::IFNAME_MAX);
        label
    }

    /// Whether any gateway is dual-stack (the node then carries IPv6 too).
    pub fn has_ipv6(&self) -> bool {
        self.gateways.values().any(|g| g.secondary_ipv6.is_some())
    }

    /// The gateway namespace as a reference.
    pub fn gateway_netns_ref(&self) -> NetnsRef {
        NetnsRef::Named(self.gateway_netns.clone())
    }
}

/// How a pod's traffic is split between its tunnel and `eth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRouting {
    /// Everything through the tunnel except the listed CIDRs, which keep using `eth0`
    /// (all other IPv4 routes on `eth0` are removed).
    StaticEgressGateway {
        /// Destinations that bypass the tunnel.
        exclude: BTreeSet<Ipv4Net>,
    },
    /// Existing routes stay; only the listed CIDRs go through the tunnel.
    AzureNetworking {
        /// Destinations sent through the tunnel.
        through_tunnel: BTreeSet<Ipv4Net>,
    },
}

/// The IPv6 half of a pod's routing, present only when its gateway carries IPv6 and the pod
/// has an IPv6 address. Its meaning follows the [`PodRouting`] mode: in
/// staticEgressGateway mode `::/0` goes into the tunnel and `cidrs` bypass it via
/// `eth_gateway`; in azureNetworking mode only `cidrs` go into the tunnel. Without it, no
/// IPv6 route of the pod is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIpv6Routing {
    /// `eth0`'s IPv6 gateway (from the main plugin's result), the next hop of the bypassing
    /// CIDRs; `None` when the main plugin gave none.
    pub eth_gateway: Option<Ipv6Addr>,
    /// staticEgressGateway: IPv6 destinations that bypass the tunnel; azureNetworking: IPv6
    /// destinations sent through it.
    pub cidrs: BTreeSet<Ipv6Net>,
}

/// Replies to connections that arrived on `eth0` leave through `eth0` again: incoming
/// connections are marked and a rule sends marked replies to a table routing via `eth0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressReturnPath {
    /// Connection mark of flows that arrived on `eth0` (8738 in the original).
    pub mark: FwMark,
    /// Routing table holding the `eth0` default route (8738 in the original).
    pub table: u32,
    /// Preference of the `fwmark -> table` rule.
    pub rule_priority: u32,
}

/// Desired tunnel of one pod, programmed by the CNI plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTunnelState {
    /// The pod's namespace.
    pub netns: NetnsRef,
    /// Namespace owning the tunnel's UDP socket (the node's host namespace).
    pub socket_netns: NetnsRef,
    /// The pod's tunnel interface (`wg0`).
    pub interface: InterfaceName,
    /// The pod's primary interface (`eth0`).
    pub eth: InterfaceName,
    /// `eth0`'s IPv4 gateway.
    pub eth_gateway: Ipv4Addr,
    /// The pod's private key.
    pub private_key: PrivateKey,
    /// Addresses on the tunnel (the original puts `eth0`'s IPv6 link-local there).
    pub addresses: BTreeSet<IpNet>,
    /// Tunnel MTU.
    pub mtu: u32,
    /// The gateway peer, with its endpoint (the ILB frontend and port).
    pub gateway_peer: Peer,
    /// Route layout (IPv4, and the mode of the IPv6 part).
    pub routing: PodRouting,
    /// IPv6 route layout; `None`: IPv6 routes are left as the main plugin made them.
    pub ipv6: Option<PodIpv6Routing>,
    /// Ingress return path, if wanted.
    pub ingress: Option<IngressReturnPath>,
    /// Set `rp_filter=2` (loose) on `all` and `eth0`, as the ingress path requires.
    pub loose_rp_filter: bool,
}

impl PodTunnelState {
    /// Checks the invariants `plan` relies on.
    pub fn validate(&self) -> Result<(), StateError> {
        check_mtu(&self.interface, self.mtu)?;
        if self.gateway_peer.endpoint.is_none() {
            return Err(StateError::NoEndpoint {
                interface: self.interface.clone(),
            });
        }
        if self.gateway_peer.allowed_ips.is_empty() {
            return Err(StateError::NoAllowedIps {
                interface: self.interface.clone(),
                peer: self.gateway_peer.public_key.clone(),
            });
        }
        if let Some(v6) = &self.ipv6 {
            self.validate_ipv6(v6)?;
        }
        Ok(())
    }

    fn validate_ipv6(&self, v6: &PodIpv6Routing) -> Result<(), StateError> {
        if let Some(gateway) = v6.eth_gateway
            && (gateway.is_unspecified() || gateway.is_loopback() || gateway.is_multicast())
        {
            return Err(StateError::BadIpv6Gateway {
                interface: self.interface.clone(),
                gateway,
            });
        }
        let bypass = matches!(self.routing, PodRouting::StaticEgressGateway { .. });
        if bypass
            && v6.eth_gateway.is_none()
            && let Some(first) = v6.cidrs.first()
        {
            return Err(StateError::NoIpv6Gateway {
                interface: self.interface.clone(),
                eth: self.eth.clone(),
                first: *first,
            });
        }
        Ok(())
    }

    /// The gateway peer the original configures: all IPv4 and IPv6 through the tunnel.
    pub fn gateway_peer(public_key: PublicKey, endpoint: SocketAddr) -> Peer {
        let mut allowed_ips = BTreeSet::new();
        allowed_ips.insert(IpNet::V4(Ipv4Net::default()));
        allowed_ips.insert(IpNet::V6(ipnet::Ipv6Net::default()));
        Peer {
            public_key,
            allowed_ips,
            endpoint: Some(endpoint),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn peer(ip: &str) -> Peer {
        Peer {
            public_key: PrivateKey::generate().public_key(),
            allowed_ips: [ip.parse().unwrap()].into(),
            endpoint: None,
        }
    }

    #[test]
    fn gateways_must_not_share_port_or_secondary_ip() {
        let mut node = GatewayNodeState::new(
            NetnsRef::Current,
            "eth0".parse().unwrap(),
            "10.0.0.4".parse().unwrap(),
        )
        .unwrap();
        let ip: Ipv4Addr = "10.0.0.10".parse().unwrap();
        node.add_gateway(GatewayTunnel::new(6000, PrivateKey::generate(), ip).unwrap())
            .unwrap();
        let err = node
            .add_gateway(
                GatewayTunnel::new(6000, PrivateKey::generate(), "10.0.0.11".parse().unwrap())
                    .unwrap(),
            )
            .unwrap_err();
        assert!(matches!(err, StateError::DuplicatePort { port: 6000, .. }));
        let err = node
            .add_gateway(GatewayTunnel::new(6001, PrivateKey::generate(), ip).unwrap())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("secondary IP 10.0.0.10 is already used by wg-6000"),
            "{err}"
        );
        assert!(matches!(
            GatewayTunnel::new(0, PrivateKey::generate(), ip),
            Err(StateError::ZeroPort { .. })
        ));
        assert_eq!(node.ilb_label(), "eth0:egress");
    }

    #[test]
    fn a_peer_cannot_take_another_peers_allowed_ip() {
        let mut gw =
            GatewayTunnel::new(6000, PrivateKey::generate(), "10.0.0.10".parse().unwrap()).unwrap();
        let a = peer("10.244.1.5/32");
        gw.upsert_peer(a.clone()).unwrap();
        let b = peer("10.244.1.5/32");
        let err = gw.upsert_peer(b.clone()).unwrap_err();
        assert!(matches!(err, StateError::AllowedIpTaken { .. }));
        assert_eq!(gw.peers().len(), 1, "the rejected peer changed nothing");
        // Once a is gone, b may take the address.
        gw.remove_peer(&a.public_key).unwrap();
        gw.upsert_peer(b).unwrap();
        // Replacing a peer's own IPs is allowed.
        let mut c = peer("10.244.1.6/32");
        gw.upsert_peer(c.clone()).unwrap();
        c.allowed_ips = ["10.244.1.7/32".parse().unwrap()].into();
        gw.upsert_peer(c).unwrap();
        assert_eq!(gw.peers().len(), 2);
        let mut empty = peer("10.244.1.8/32");
        empty.allowed_ips.clear();
        assert!(matches!(
            gw.upsert_peer(empty),
            Err(StateError::NoAllowedIps { .. })
        ));
    }

    #[test]
    fn secondary_ipv6_is_checked_unique_and_required_for_ipv6_peers() {
        let v4: Ipv4Addr = "10.0.0.10".parse().unwrap();
        let mut gw = GatewayTunnel::new(6000, PrivateKey::generate(), v4).unwrap();
        assert_eq!(gw.secondary_ipv6(), None);
        let v6_peer = peer("fd00:10:244::5/128");
        let err = gw.upsert_peer(v6_peer.clone()).unwrap_err();
        assert!(
            err.to_string().contains(
                "allowed IP fd00:10:244::5/128 is IPv6 but the gateway has no secondary IPv6"
            ),
            "{err}"
        );
        assert!(gw.peers().is_empty(), "refused whole, nothing half-added");
        for bad in ["::", "::1", "ff02::1", "fe80::10"] {
            let err = gw
                .clone()
                .with_secondary_ipv6(bad.parse().unwrap())
                .unwrap_err();
            assert!(
                matches!(err, StateError::InvalidSecondaryIpv6 { .. }),
                "{bad}"
            );
        }
        let mut gw = gw.with_secondary_ipv6("fd00::10".parse().unwrap()).unwrap();
        gw.upsert_peer(v6_peer).unwrap();

        let mut node = GatewayNodeState::new(
            NetnsRef::Current,
            "eth0".parse().unwrap(),
            "10.0.0.4".parse().unwrap(),
        )
        .unwrap();
        assert!(!node.has_ipv6());
        node.add_gateway(gw).unwrap();
        assert!(node.has_ipv6());
        let same_v6 =
            GatewayTunnel::new(6001, PrivateKey::generate(), "10.0.0.11".parse().unwrap())
                .unwrap()
                .with_secondary_ipv6("fd00::10".parse().unwrap())
                .unwrap();
        let err = node.add_gateway(same_v6).unwrap_err();
        assert!(
            err.to_string()
                .contains("secondary IP fd00::10 is already used by wg-6000"),
            "{err}"
        );
    }

    #[test]
    fn mtu_is_bounded() {
        let gw =
            GatewayTunnel::new(6000, PrivateKey::generate(), "10.0.0.10".parse().unwrap()).unwrap();
        assert!(gw.clone().with_mtu(1000).is_err());
        assert_eq!(gw.with_mtu(1380).unwrap().mtu, 1380);
    }
}
