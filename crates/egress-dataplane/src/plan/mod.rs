//! Pure planning: desired state + observed state -> ordered list of [`Op`]s. No I/O here;
//! planning against a state equal to the desired one yields no operations.

mod gateway;
mod pod;
mod pod_teardown;

pub use gateway::{observe_request_for_gateway_node, plan_gateway_node};
pub use pod::{observe_request_for_pod, plan_pod};
pub use pod_teardown::{PodTeardown, observe_request_for_pod_teardown, plan_pod_teardown};

use std::collections::BTreeMap;

use crate::key::{PrivateKey, PublicKey};
use crate::names::{InterfaceName, NetnsRef};
use crate::observed::{ObservedNetns, ObservedPeer, ObservedState, ObservedWgDevice, WgDeviceId};
use crate::op::Op;
use crate::spec::{AddressSpec, Peer, SysctlKey};

/// Emits a sysctl write unless the observed value already matches.
fn sysctl(
    ops: &mut Vec<Op>,
    netns: &NetnsRef,
    observed: Option<&ObservedNetns>,
    key: SysctlKey,
    value: &str,
) {
    let current = observed.and_then(|ns| ns.sysctls.get(&key));
    if current.map(|v| v.trim()) != Some(value) {
        ops.push(Op::SetSysctl {
            netns: netns.clone(),
            key,
            value: value.to_owned(),
        });
    }
}

/// Emits "link up" unless the link is observed up.
fn link_up(
    ops: &mut Vec<Op>,
    netns: &NetnsRef,
    observed: Option<&ObservedNetns>,
    link: &InterfaceName,
) {
    let up = observed
        .and_then(|ns| ns.links.get(link))
        .is_some_and(|l| l.up);
    if !up {
        ops.push(Op::SetLinkUp {
            netns: netns.clone(),
            link: link.clone(),
        });
    }
}

/// Emits an address add unless the same address (any label) is on the link.
fn address(
    ops: &mut Vec<Op>,
    netns: &NetnsRef,
    observed: Option<&ObservedNetns>,
    link: &InterfaceName,
    address: AddressSpec,
) {
    let present = observed
        .and_then(|ns| ns.links.get(link))
        .is_some_and(|l| l.addresses.iter().any(|a| a.addr == address.addr));
    if !present {
        ops.push(Op::AddAddress {
            netns: netns.clone(),
            link: link.clone(),
            address,
        });
    }
}

/// Outcome of reconciling one WireGuard device's interface-level settings.
struct DeviceOutcome {
    /// The device is (re)created by the emitted ops: nothing observed about it is valid.
    created: bool,
}

/// Creates, recreates or reconfigures one WireGuard device. A link with the device's name
/// that the WireGuard backend does not know is stale and is replaced.
fn wireguard_device(
    ops: &mut Vec<Op>,
    observed: &ObservedState,
    device: &WgDeviceId,
    socket_netns: &NetnsRef,
    private_key: &PrivateKey,
    listen_port: Option<u16>,
) -> DeviceOutcome {
    let link = observed.link(&device.netns, &device.name);
    match (link, observed.wireguard.get(device)) {
        (Some(_), Some(wg)) => {
            let key_ok = wg.public_key.as_ref() == Some(&private_key.public_key());
            let port_ok = listen_port.is_none() || wg.listen_port == listen_port;
            if !key_ok || !port_ok {
                ops.push(Op::ConfigureWireGuard {
                    device: device.clone(),
                    private_key: private_key.clone(),
                    listen_port,
                });
            }
            DeviceOutcome { created: false }
        }
        (link, wg) => {
            if link.is_some() || wg.is_some() {
                ops.push(Op::DeleteWireGuard {
                    device: device.clone(),
                });
            }
            ops.push(Op::CreateWireGuard {
                device: device.clone(),
                socket_netns: socket_netns.clone(),
                private_key: private_key.clone(),
                listen_port,
            });
            DeviceOutcome { created: true }
        }
    }
}

fn peer_matches(desired: &Peer, observed: &ObservedPeer) -> bool {
    desired.allowed_ips == observed.allowed_ips
        && (desired.endpoint.is_none() || desired.endpoint == observed.endpoint)
}

/// One `RemovePeer` per unwanted peer, then one `AddPeer` per missing or changed peer:
/// never a rewrite of the whole list.
fn peers(
    ops: &mut Vec<Op>,
    device: &WgDeviceId,
    desired: &BTreeMap<PublicKey, Peer>,
    observed: Option<&ObservedWgDevice>,
) {
    let (removals, adds) = peer_changes(device, desired, observed);
    ops.extend(removals);
    ops.extend(adds);
}

/// The peer removals and the peer additions/updates that turn `observed` into `desired`,
/// apart, so a caller can put other ops between them (a gateway programs a peer's route
/// before the peer, see [`gateway`]).
fn peer_changes(
    device: &WgDeviceId,
    desired: &BTreeMap<PublicKey, Peer>,
    observed: Option<&ObservedWgDevice>,
) -> (Vec<Op>, Vec<Op>) {
    let empty = BTreeMap::new();
    let current = observed.map_or(&empty, |d| &d.peers);
    let removals = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .map(|key| Op::RemovePeer {
            device: device.clone(),
            public_key: key.clone(),
        })
        .collect();
    let adds = desired
        .iter()
        .filter(|(key, peer)| !current.get(*key).is_some_and(|o| peer_matches(peer, o)))
        .map(|(_, peer)| Op::AddPeer {
            device: device.clone(),
            peer: peer.clone(),
        })
        .collect();
    (removals, adds)
}

#[cfg(test)]
mod gateway_ipv6_tests;
#[cfg(test)]
mod gateway_tests;
#[cfg(test)]
mod pod_tests;
