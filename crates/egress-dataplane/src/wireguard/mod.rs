//! WireGuard backends behind [`crate::control::WireGuardControl`]: the kernel module
//! ([`KernelWireGuard`]) and wireguard-go ([`UserspaceWireGuard`]), both through
//! `wireguard-control`. This module holds the conversions they share.

mod kernel;
mod userspace;

pub use kernel::KernelWireGuard;
pub use userspace::{UserspaceConfig, UserspaceWireGuard, uapi_name};

use std::collections::BTreeSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};

use ipnet::IpNet;
use wireguard_control::{AllowedIp, Device, DeviceUpdate, PeerConfigBuilder};

use crate::control::PeerChange;
use crate::error::WireGuardError;
use crate::key::{PrivateKey, PublicKey};
use crate::names::NetnsRef;
use crate::netns::run_in_netns;
use crate::observed::{ObservedPeer, ObservedWgDevice, WgDeviceId};
use crate::spec::Peer;

fn wg_name(name: &str) -> io::Result<wireguard_control::InterfaceName> {
    name.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")))
}

fn observed_from(device: &Device) -> ObservedWgDevice {
    ObservedWgDevice {
        public_key: device.public_key.as_ref().map(PublicKey::from_wg),
        listen_port: device.listen_port,
        peers: device
            .peers
            .iter()
            .map(|p| {
                let allowed_ips: BTreeSet<IpNet> = p
                    .config
                    .allowed_ips
                    .iter()
                    .filter_map(|a| IpNet::new(a.address, a.cidr).ok())
                    .collect();
                (
                    PublicKey::from_wg(&p.config.public_key),
                    ObservedPeer {
                        allowed_ips,
                        endpoint: p.config.endpoint,
                        last_handshake: p.stats.last_handshake_time,
                        rx_bytes: p.stats.rx_bytes,
                        tx_bytes: p.stats.tx_bytes,
                    },
                )
            })
            .collect(),
    }
}

/// One peer's allowed IPs (replacing the old ones) and endpoint.
fn peer_config(peer: &Peer) -> PeerConfigBuilder {
    let allowed: Vec<AllowedIp> = peer
        .allowed_ips
        .iter()
        .map(|ip| AllowedIp {
            address: ip.addr(),
            cidr: ip.prefix_len(),
        })
        .collect();
    let mut builder = PeerConfigBuilder::new(&peer.public_key.to_wg())
        .replace_allowed_ips()
        .add_allowed_ips(&allowed);
    if let Some(endpoint) = peer.endpoint {
        builder = builder.set_endpoint(endpoint);
    }
    builder
}

/// Sets `peer` with a persistent keepalive of `seconds` (0 = off); with `recreate`, the peer
/// is removed first in the same transaction so it starts with fresh handshake state. Both
/// wireguard-go and the kernel send a keepalive at once when the interval goes from 0 to
/// non-zero on a running device, which starts a handshake when there is no session.
fn keepalive_update(peer: &Peer, seconds: u16, recreate: bool) -> DeviceUpdate {
    let mut update = DeviceUpdate::new();
    if recreate {
        update = update.remove_peer_by_key(&peer.public_key.to_wg());
    }
    update.add_peer(peer_config(peer).set_persistent_keepalive_interval(seconds))
}

/// One transaction touching only the named peers (no `replace_peers`).
fn peer_update(changes: &[PeerChange]) -> DeviceUpdate {
    let mut update = DeviceUpdate::new();
    for change in changes {
        update = match change {
            PeerChange::Set(peer) => update.add_peer(peer_config(peer)),
            PeerChange::Remove(key) => update.remove_peer_by_key(&key.to_wg()),
        };
    }
    update
}

fn interface_update(private_key: &PrivateKey, listen_port: Option<u16>) -> DeviceUpdate {
    let update = DeviceUpdate::new().set_private_key(private_key.to_wg());
    match listen_port {
        Some(port) => update.set_listen_port(port),
        None => update,
    }
}

/// Fails with [`WireGuardError::PortInUse`] if a UDP socket already holds `port` in the
/// namespace that will own the device's socket. Checked before creating anything, because
/// the daemon only binds once the interface is up, long after configuration succeeded.
fn ensure_port_free(
    device: &WgDeviceId,
    socket_netns: &NetnsRef,
    port: u16,
) -> Result<(), WireGuardError> {
    let probe = run_in_netns(socket_netns, move || {
        let v4 = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port))).map(drop);
        let v6 = UdpSocket::bind(SocketAddr::from(([0u16; 8], port))).map(drop);
        (v4, v6)
    })?;
    let in_use = |r: &io::Result<()>| matches!(r, Err(e) if e.kind() == io::ErrorKind::AddrInUse);
    if in_use(&probe.0) || in_use(&probe.1) {
        return Err(WireGuardError::PortInUse {
            device: device.clone(),
            port,
            socket_netns: socket_netns.clone(),
        });
    }
    Ok(())
}

fn device_error(
    device: &WgDeviceId,
    action: impl Into<String>,
) -> impl FnOnce(io::Error) -> WireGuardError {
    let device = device.clone();
    let action = action.into();
    move |source| WireGuardError::Device {
        action,
        device,
        source,
    }
}

async fn blocking<R: Send + 'static>(
    device: &WgDeviceId,
    f: impl FnOnce() -> Result<R, WireGuardError> + Send + 'static,
) -> Result<R, WireGuardError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WireGuardError::Device {
            action: "run a blocking task".into(),
            device: device.clone(),
            source: io::Error::other(e.to_string()),
        })?
}
