//! The explicit operations `plan` produces and `apply` executes, each with a one-line
//! `Display` for logs. Operations carry everything they need; none reads global state.

use std::fmt;

use crate::key::{PrivateKey, PublicKey};
use crate::names::{InterfaceName, NetnsName, NetnsRef};
use crate::nft::{NftTable, NftTableId};
use crate::observed::WgDeviceId;
use crate::spec::{AddressSpec, Peer, RouteSpec, RuleSpec, SysctlKey};

/// One change to the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a named network namespace (bind mount under `/run/netns`).
    CreateNetns {
        /// The namespace.
        name: NetnsName,
    },
    /// Write a sysctl inside a namespace.
    SetSysctl {
        /// Where.
        netns: NetnsRef,
        /// Which.
        key: SysctlKey,
        /// New value.
        value: String,
    },
    /// Delete a link (not a WireGuard device: see [`Op::DeleteWireGuard`]).
    DeleteLink {
        /// Where.
        netns: NetnsRef,
        /// Which.
        link: InterfaceName,
    },
    /// Create a veth pair with each end in its namespace.
    CreateVeth {
        /// Namespace of the first end.
        netns: NetnsRef,
        /// First end.
        name: InterfaceName,
        /// Namespace of the peer end.
        peer_netns: NetnsRef,
        /// Peer end.
        peer: InterfaceName,
    },
    /// Move a link into another namespace, keeping its name.
    MoveLink {
        /// Where it is.
        netns: NetnsRef,
        /// Which.
        link: InterfaceName,
        /// Where it goes.
        to: NetnsRef,
    },
    /// Set a link administratively up.
    SetLinkUp {
        /// Where.
        netns: NetnsRef,
        /// Which.
        link: InterfaceName,
    },
    /// Set a link's MTU.
    SetMtu {
        /// Where.
        netns: NetnsRef,
        /// Which.
        link: InterfaceName,
        /// New MTU.
        mtu: u32,
    },
    /// Add an address to a link.
    AddAddress {
        /// Where.
        netns: NetnsRef,
        /// Which link.
        link: InterfaceName,
        /// The address.
        address: AddressSpec,
    },
    /// Remove an address from a link.
    DelAddress {
        /// Where.
        netns: NetnsRef,
        /// Which link.
        link: InterfaceName,
        /// The address.
        address: AddressSpec,
    },
    /// Add or replace a route.
    AddRoute {
        /// Where.
        netns: NetnsRef,
        /// The route.
        route: RouteSpec,
    },
    /// Delete a route.
    DelRoute {
        /// Where.
        netns: NetnsRef,
        /// The route.
        route: RouteSpec,
    },
    /// Add a policy-routing rule.
    AddRule {
        /// Where.
        netns: NetnsRef,
        /// The rule.
        rule: RuleSpec,
    },
    /// Delete a policy-routing rule.
    DelRule {
        /// Where.
        netns: NetnsRef,
        /// The rule.
        rule: RuleSpec,
    },
    /// Create a WireGuard device whose UDP socket lives in `socket_netns` and whose
    /// interface lives in `device.netns`, configured with key and port before it appears
    /// there (on failure nothing is left behind).
    CreateWireGuard {
        /// Final location and name.
        device: WgDeviceId,
        /// Namespace owning the UDP socket.
        socket_netns: NetnsRef,
        /// Private key.
        private_key: PrivateKey,
        /// Listen port; `None` lets the kernel pick.
        listen_port: Option<u16>,
    },
    /// Set the private key and listen port of an existing device (peers untouched).
    ConfigureWireGuard {
        /// The device.
        device: WgDeviceId,
        /// Private key.
        private_key: PrivateKey,
        /// Listen port; `None` leaves it as it is.
        listen_port: Option<u16>,
    },
    /// Delete a WireGuard device (and stop its userspace daemon).
    DeleteWireGuard {
        /// The device.
        device: WgDeviceId,
    },
    /// Add one peer, or update its allowed IPs and endpoint.
    AddPeer {
        /// The device.
        device: WgDeviceId,
        /// The peer.
        peer: Peer,
    },
    /// Remove one peer.
    RemovePeer {
        /// The device.
        device: WgDeviceId,
        /// The peer's key.
        public_key: PublicKey,
    },
    /// Replace one of our nftables tables atomically.
    ReplaceNftTable {
        /// Where.
        netns: NetnsRef,
        /// The new content.
        table: NftTable,
    },
    /// Delete one of our nftables tables.
    DeleteNftTable {
        /// Where.
        netns: NetnsRef,
        /// Which.
        id: NftTableId,
    },
}

impl Op {
    /// The WireGuard device a peer operation targets, for batching consecutive ones.
    pub fn peer_device(&self) -> Option<&WgDeviceId> {
        match self {
            Op::AddPeer { device, .. } | Op::RemovePeer { device, .. } => Some(device),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateNetns { name } => write!(f, "create netns {name}"),
            Op::SetSysctl { netns, key, value } => write!(f, "{netns}: sysctl {key}={value}"),
            Op::DeleteLink { netns, link } => write!(f, "{netns}: delete link {link}"),
            Op::CreateVeth {
                netns,
                name,
                peer_netns,
                peer,
            } => write!(f, "{netns}: create veth {name} peer {peer} in {peer_netns}"),
            Op::MoveLink { netns, link, to } => write!(f, "{netns}: move link {link} to {to}"),
            Op::SetLinkUp { netns, link } => write!(f, "{netns}: set {link} up"),
            Op::SetMtu { netns, link, mtu } => write!(f, "{netns}: set {link} mtu {mtu}"),
            Op::AddAddress {
                netns,
                link,
                address,
            } => write!(f, "{netns}: add address {address} dev {link}"),
            Op::DelAddress {
                netns,
                link,
                address,
            } => write!(f, "{netns}: delete address {address} dev {link}"),
            Op::AddRoute { netns, route } => write!(f, "{netns}: replace route {route}"),
            Op::DelRoute { netns, route } => write!(f, "{netns}: delete route {route}"),
            Op::AddRule { netns, rule } => write!(f, "{netns}: add rule {rule}"),
            Op::DelRule { netns, rule } => write!(f, "{netns}: delete rule {rule}"),
            Op::CreateWireGuard {
                device,
                socket_netns,
                private_key,
                listen_port,
            } => {
                write!(
                    f,
                    "create wireguard {device} (socket in {socket_netns}, key {}",
                    private_key.public_key()
                )?;
                match listen_port {
                    Some(port) => write!(f, ", port {port})"),
                    None => f.write_str(", random port)"),
                }
            }
            Op::ConfigureWireGuard {
                device,
                private_key,
                listen_port,
            } => {
                write!(
                    f,
                    "configure wireguard {device}: key {}",
                    private_key.public_key()
                )?;
                if let Some(port) = listen_port {
                    write!(f, ", port {port}")?;
                }
                Ok(())
            }
            Op::DeleteWireGuard { device } => write!(f, "delete wireguard {device}"),
            Op::AddPeer { device, peer } => write!(f, "wireguard {device}: set {peer}"),
            Op::RemovePeer { device, public_key } => {
                write!(f, "wireguard {device}: remove peer {public_key}")
            }
            Op::ReplaceNftTable { netns, table } => write!(f, "{netns}: replace {table}"),
            Op::DeleteNftTable { netns, id } => write!(f, "{netns}: delete {id}"),
        }
    }
}
