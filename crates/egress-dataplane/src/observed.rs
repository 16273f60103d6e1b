//! Observed state: what the kernel, the WireGuard devices and nftables hold right now, in the
//! same vocabulary as the desired state so `plan` can diff the two. Also the
//! [`ObserveRequest`] saying what to read.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::SystemTime;

use ipnet::IpNet;

use crate::key::PublicKey;
use crate::names::{InterfaceName, NetnsRef};
use crate::nft::{NftTable, NftTableId};
use crate::spec::{AddressSpec, RouteSpec, RuleSpec, SysctlKey};

/// A WireGuard device by where its interface lives and what it is called there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WgDeviceId {
    /// Namespace holding the interface (not necessarily the one holding its UDP socket).
    pub netns: NetnsRef,
    /// Interface name in that namespace.
    pub name: InterfaceName,
}

impl std::fmt::Display for WgDeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.name, self.netns)
    }
}

/// One network interface as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLink {
    /// Kernel interface index.
    pub index: u32,
    /// `IFLA_INFO_KIND` (`veth`, `wireguard`, `tun`, ...), if any.
    pub kind: Option<String>,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// Addresses (IPv4 and IPv6) with labels.
    pub addresses: BTreeSet<AddressSpec>,
}

/// One namespace as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedNetns {
    /// Links by name.
    pub links: BTreeMap<InterfaceName, ObservedLink>,
    /// IPv4 unicast routes (all tables but `local`) that fit [`RouteSpec`].
    pub routes: BTreeSet<RouteSpec>,
    /// IPv6 unicast routes (all tables but `local`) that fit [`RouteSpec`], except those to
    /// link-local (`fe80::/10`) and multicast destinations, which the kernel adds for every
    /// link and nobody plans. Kept apart from `routes` so a plan that owns every IPv4 route
    /// of a device (a pod's `eth0`) leaves its IPv6 routes alone unless it asks for them.
    pub ipv6_routes: BTreeSet<RouteSpec>,
    /// IPv4 rules that look up a table.
    pub rules: BTreeSet<RuleSpec>,
    /// The sysctls that were asked for.
    pub sysctls: BTreeMap<SysctlKey, String>,
    /// The nftables tables that were asked for and exist.
    pub nft: BTreeMap<NftTableId, NftTable>,
}

impl ObservedNetns {
    /// The observed routes of the family of `destination`.
    pub fn routes_of(&self, destination: &IpNet) -> &BTreeSet<RouteSpec> {
        match destination {
            IpNet::V4(_) => &self.routes,
            IpNet::V6(_) => &self.ipv6_routes,
        }
    }

    /// Mutable access to the routes of the family of `destination`.
    pub fn routes_of_mut(&mut self, destination: &IpNet) -> &mut BTreeSet<RouteSpec> {
        match destination {
            IpNet::V4(_) => &mut self.routes,
            IpNet::V6(_) => &mut self.ipv6_routes,
        }
    }

    /// Whether this exact route (of either family) is present.
    pub fn has_route(&self, route: &RouteSpec) -> bool {
        self.routes_of(&route.destination).contains(route)
    }
}

/// One WireGuard peer as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPeer {
    /// Allowed IPs.
    pub allowed_ips: BTreeSet<IpNet>,
    /// Configured or roamed-to endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Latest handshake, if any.
    pub last_handshake: Option<SystemTime>,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
}

/// One WireGuard device as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedWgDevice {
    /// Public key of the configured private key, if one is set.
    pub public_key: Option<PublicKey>,
    /// Listen port, if set.
    pub listen_port: Option<u16>,
    /// Peers by public key.
    pub peers: BTreeMap<PublicKey, ObservedPeer>,
}

/// Everything observed; a namespace missing from `namespaces` does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedState {
    /// Namespaces that exist, with their contents.
    pub namespaces: BTreeMap<NetnsRef, ObservedNetns>,
    /// WireGuard devices that exist and answered.
    pub wireguard: BTreeMap<WgDeviceId, ObservedWgDevice>,
}

impl ObservedState {
    /// The observed namespace, if it exists.
    pub fn netns(&self, netns: &NetnsRef) -> Option<&ObservedNetns> {
        self.namespaces.get(netns)
    }

    /// The observed link, if its namespace and the link exist.
    pub fn link(&self, netns: &NetnsRef, name: &InterfaceName) -> Option<&ObservedLink> {
        self.netns(netns).and_then(|ns| ns.links.get(name))
    }
}

/// What to read for one namespace beyond links, addresses, routes and rules (always read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetnsRequest {
    /// Sysctls to read.
    pub sysctls: BTreeSet<SysctlKey>,
    /// nftables tables to read.
    pub nft: BTreeSet<NftTableId>,
}

/// What to observe so a desired state can be planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserveRequest {
    /// Namespaces to read.
    pub namespaces: BTreeMap<NetnsRef, NetnsRequest>,
    /// WireGuard devices to read.
    pub wireguard: BTreeSet<WgDeviceId>,
}
