//! Pure assembly of this node's desired data plane from the inventory: which gateways
//! (SGCs) are active here with their tunnels, which PodEndpoints are peers of which tunnel,
//! and why the rest were rejected. Also the per-PodEndpoint update used by watch events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use egress_api::PodEndpoint;
use egress_dataplane::names::NameError;
use egress_dataplane::state::GatewayTunnel;
use egress_dataplane::{GatewayNodeState, InterfaceName, NetnsName, NetnsRef, Peer, PublicKey};
use ipnet::IpNet;

use crate::inventory::Inventory;
use crate::node::NodeIdentity;
use crate::translate::{GatewayError, GatewaySpec, ObjectKey, PeerError, gateway_spec, peer_spec};

/// Where and how the node is programmed (fixed for the daemon's life).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The host namespace (`Current` in production; a named one in tests).
    pub host_netns: NetnsRef,
    /// The host's primary interface (`eth0`).
    pub host_interface: InterfaceName,
    /// The gateway namespace (`ns-static-egress-gateway`).
    pub gateway_netns: NetnsName,
    /// Tunnel MTU of every gateway interface.
    pub tunnel_mtu: u32,
    /// Namespace of the key Secrets (the only one watched for Secrets).
    pub secret_namespace: String,
}

/// One PodEndpoint programmed as a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSlot {
    /// Listen port of its gateway (`wg-<port>`).
    pub port: u16,
    /// The pod's public key.
    pub public_key: PublicKey,
    /// The pod IP(s).
    pub allowed_ips: BTreeSet<IpNet>,
}

impl PeerSlot {
    /// The data plane peer.
    pub fn peer(&self) -> Peer {
        Peer {
            public_key: self.public_key.clone(),
            allowed_ips: self.allowed_ips.clone(),
            endpoint: None,
        }
    }
}

/// A gateway held back after it failed to program, until it changes or the next resync.
pub type Quarantine = BTreeMap<ObjectKey, (GatewaySpec, GatewayError)>;

/// The desired state of the node and how it came from the objects.
#[derive(Debug, Clone)]
pub struct Desired {
    /// What the data plane library plans against.
    pub state: GatewayNodeState,
    /// Active gateways by port.
    pub gateways: BTreeMap<u16, GatewaySpec>,
    by_sgc: BTreeMap<ObjectKey, u16>,
    /// Programmed PodEndpoints.
    pub peers: BTreeMap<ObjectKey, PeerSlot>,
    key_owner: BTreeMap<(u16, PublicKey), ObjectKey>,
    /// SGCs meant for this node that cannot be programmed.
    pub gateway_errors: BTreeMap<ObjectKey, GatewayError>,
    /// PodEndpoints of active gateways that cannot be peers.
    pub peer_errors: BTreeMap<ObjectKey, PeerError>,
}

/// What one PodEndpoint update changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotChange {
    /// The peer before.
    pub old: Option<PeerSlot>,
    /// The peer after.
    pub new: Option<PeerSlot>,
}

impl Desired {
    /// The gateways of this node (no peers yet). Fails only if the data plane rejects its
    /// own conventional names.
    pub fn gateways(
        inventory: &Inventory,
        node: &NodeIdentity,
        host: &HostConfig,
        quarantine: &Quarantine,
    ) -> Result<Self, NameError> {
        // The primary IP is set from the first active gateway below; with none it is unused.
        let mut state = GatewayNodeState::new(
            host.host_netns.clone(),
            host.host_interface.clone(),
            Ipv4Addr::UNSPECIFIED,
        )?;
        state.gateway_netns = host.gateway_netns.clone();
        let mut desired = Desired {
            state,
            gateways: BTreeMap::new(),
            by_sgc: BTreeMap::new(),
            peers: BTreeMap::new(),
            key_owner: BTreeMap::new(),
            gateway_errors: BTreeMap::new(),
            peer_errors: BTreeMap::new(),
        };
        let mut primary: Option<Ipv4Addr> = None;
        for (key, sgc) in &inventory.sgcs {
            let spec = gateway_spec(
                sgc,
                inventory.vm_configs.get(key),
                |k| inventory.secret(k),
                node,
                &host.secret_namespace,
            );
            let spec = match spec {
                Ok(Some(spec)) => spec,
                Ok(None) => continue,
                Err(e) => {
                    desired.gateway_errors.insert(key.clone(), e);
                    continue;
                }
            };
            if let Some((held, error)) = quarantine.get(key)
                && *held == spec
            {
                desired.gateway_errors.insert(key.clone(), error.clone());
                continue;
            }
            if let Some(other) = primary
                && other != spec.primary_ip
            {
                desired.gateway_errors.insert(
                    key.clone(),
                    GatewayError::PrimaryIpMismatch {
                        sgc: key.clone(),
                        ip: spec.primary_ip,
                        other,
                    },
                );
                continue;
            }
            let tunnel = GatewayTunnel::new(spec.port, spec.private_key.clone(), spec.secondary_ip)
                .and_then(|t| t.with_mtu(host.tunnel_mtu))
                .and_then(|t| desired.state.add_gateway(t));
            if let Err(e) = tunnel {
                desired
                    .gateway_errors
                    .insert(key.clone(), GatewayError::Conflict(e.to_string()));
                continue;
            }
            primary = Some(spec.primary_ip);
            desired.state.ilb_addresses.insert(spec.ilb_ip);
            desired.by_sgc.insert(key.clone(), spec.port);
            desired.gateways.insert(spec.port, spec);
        }
        if let Some(ip) = primary {
            desired.state.host_primary_ip = ip;
        }
        Ok(desired)
    }

    /// Places every PodEndpoint of the inventory.
    pub fn place_all_peers(&mut self, inventory: &Inventory) {
        for (key, pe) in &inventory.pod_endpoints {
            self.place_peer(key, Some(pe));
        }
    }

    /// True if the gateway side (not peers) equals `other`'s.
    pub fn same_gateways(&self, other: &Desired) -> bool {
        self.gateways == other.gateways
            && self.gateway_errors == other.gateway_errors
            && self.state.host_primary_ip == other.state.host_primary_ip
    }

    /// The port of the active gateway for an SGC.
    pub fn port_of(&self, sgc: &ObjectKey) -> Option<u16> {
        self.by_sgc.get(sgc).copied()
    }

    /// Removes a PodEndpoint's peer from the desired state.
    pub fn remove_peer(&mut self, key: &ObjectKey) -> Option<PeerSlot> {
        self.peer_errors.remove(key);
        let slot = self.peers.remove(key)?;
        self.key_owner.remove(&(slot.port, slot.public_key.clone()));
        if let Some(tunnel) = self.state.gateway_mut(slot.port) {
            tunnel.remove_peer(&slot.public_key);
        }
        Some(slot)
    }

    /// Re-places one PodEndpoint (`None`: it is gone) and says what changed. A rejected
    /// PodEndpoint is recorded in `peer_errors` and leaves every other peer as it was.
    pub fn place_peer(&mut self, key: &ObjectKey, pe: Option<&PodEndpoint>) -> SlotChange {
        let old = self.remove_peer(key);
        let new = pe.and_then(|pe| match self.try_place(key, pe) {
            Ok(slot) => slot,
            Err(e) => {
                self.peer_errors.insert(key.clone(), e);
                None
            }
        });
        SlotChange { old, new }
    }

    fn try_place(
        &mut self,
        key: &ObjectKey,
        pe: &PodEndpoint,
    ) -> Result<Option<PeerSlot>, PeerError> {
        let spec = peer_spec(pe)?;
        let Some(port) = self.port_of(&spec.sgc) else {
            return Ok(None);
        };
        let owner_key = (port, spec.peer.public_key.clone());
        let Some(tunnel) = self.state.gateway_mut(port) else {
            return Ok(None);
        };
        if let Some(other) = self.key_owner.get(&owner_key) {
            return Err(PeerError::DuplicateKey {
                pod_endpoint: key.clone(),
                other: other.clone(),
                interface: tunnel.interface.to_string(),
            });
        }
        tunnel
            .upsert_peer(spec.peer.clone())
            .map_err(|e| PeerError::Conflict {
                pod_endpoint: key.clone(),
                reason: e.to_string(),
            })?;
        let slot = PeerSlot {
            port,
            public_key: spec.peer.public_key,
            allowed_ips: spec.peer.allowed_ips,
        };
        self.key_owner.insert(owner_key, key.clone());
        self.peers.insert(key.clone(), slot.clone());
        Ok(Some(slot))
    }

    /// Drops a gateway (after it failed to program) with its peers.
    pub fn drop_gateway(&mut self, port: u16) -> Option<GatewaySpec> {
        let spec = self.gateways.remove(&port)?;
        self.by_sgc.remove(&spec.sgc);
        self.state.remove_gateway(port);
        self.peers.retain(|_, slot| slot.port != port);
        self.key_owner.retain(|(p, _), _| *p != port);
        self.state.ilb_addresses = self.gateways.values().map(|g| g.ilb_ip).collect();
        Some(spec)
    }

    /// The PodEndpoint holding a public key on a gateway, if any.
    pub fn owner_of(&self, port: u16, key: &PublicKey) -> Option<&ObjectKey> {
        self.key_owner.get(&(port, key.clone()))
    }
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
