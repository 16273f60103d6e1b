//! Pure assembly of this node's desired data plane from the inventory: which gateways
//! (SGCs) are active here with their tunnels, which PodEndpoints are peers of which tunnel
//! (only those `trust` accepts, placed by `placement`'s order), and why the rest were refused.
//! Also the incremental re-placement used by watch events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use egress_dataplane::names::NameError;
use egress_dataplane::state::GatewayTunnel;
use egress_dataplane::{GatewayNodeState, InterfaceName, NetnsName, NetnsRef, Peer, PublicKey};
use ipnet::IpNet;

use crate::inventory::Inventory;
use crate::ipv6::{self, Ipv6Refusal};
use crate::node::NodeIdentity;
use crate::placement::{
    Claim, Contenders, Holders, Incumbents, KeySlot, exact_peers, serving_order,
};
use crate::translate::{
    GatewayError, GatewaySpec, Ipv6Egress, ObjectKey, PeerError, gateway_spec, peer_spec,
};
use crate::trust::{self, Refusal};

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
    /// Whether the node's kernel has IPv6 (`/proc/sys/net/ipv6` exists). Without it no
    /// gateway egresses IPv6 here: each dual-stack gateway keeps its IPv4 egress and reports
    /// its IPv6 as unusable, instead of an IPv6 sysctl failing the whole node's programming.
    pub ipv6: bool,
}

/// Why a node without IPv6 in its kernel egresses no IPv6.
pub const NO_IPV6_ON_NODE: &str = "this node's kernel has IPv6 disabled (no /proc/sys/net/ipv6, e.g. booted with ipv6.disable=1): it cannot egress IPv6; IPv4 egress is unaffected";

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
    /// Valid claims on the active tunnels, placed or not.
    claims: BTreeMap<ObjectKey, Claim>,
    contenders: Contenders,
    holders: Holders,
    /// SGCs meant for this node that cannot be programmed.
    pub gateway_errors: BTreeMap<ObjectKey, GatewayError>,
    /// PodEndpoints of active gateways that cannot be peers.
    pub peer_errors: BTreeMap<ObjectKey, PeerError>,
    /// PodEndpoints whose IPv6 address is left out of their (IPv4) peer, and why.
    pub ipv6_refusals: BTreeMap<ObjectKey, Ipv6Refusal>,
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
            claims: BTreeMap::new(),
            contenders: Contenders::default(),
            holders: Holders::default(),
            gateway_errors: BTreeMap::new(),
            peer_errors: BTreeMap::new(),
            ipv6_refusals: BTreeMap::new(),
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
            let mut spec = match spec {
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
            if !host.ipv6 && spec.ipv6.address().is_some() {
                spec.ipv6 = Ipv6Egress::Unusable(NO_IPV6_ON_NODE.into());
            }
            if let Err(e) = desired.add_tunnel(&mut spec, host.tunnel_mtu) {
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

    /// Adds the tunnel of `spec` to the node state. A secondary IPv6 the state refuses (a
    /// link-local one, one another gateway here uses) costs only the IPv6 egress: the tunnel
    /// is added without it and `spec.ipv6` says why.
    fn add_tunnel(
        &mut self,
        spec: &mut GatewaySpec,
        mtu: u32,
    ) -> Result<(), egress_dataplane::state::StateError> {
        let tunnel = GatewayTunnel::new(spec.port, spec.private_key.clone(), spec.secondary_ip)
            .and_then(|t| t.with_mtu(mtu))?;
        if let Some(ip) = spec.ipv6.address() {
            let dual = tunnel
                .clone()
                .with_secondary_ipv6(ip)
                .and_then(|t| self.state.add_gateway(t));
            match dual {
                Ok(()) => return Ok(()),
                Err(e) => spec.ipv6 = Ipv6Egress::Unusable(e.to_string()),
            }
        }
        self.state.add_gateway(tunnel)
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

    /// Places every PodEndpoint of the inventory. `incumbents` are the exact peers already
    /// programmed (the kernel's, and the previous desired state's): they keep their slots
    /// against newcomers of equal standing.
    pub fn place_all_peers(&mut self, inventory: &Inventory, incumbents: &Incumbents) {
        for key in inventory.pod_endpoints.keys() {
            self.record(inventory, key);
        }
        let order = serving_order(&self.claims, self.claims.keys().cloned(), |_, c| {
            incumbents.contains(&c.exact())
        });
        self.serve(order);
    }

    /// Re-evaluates the touched PodEndpoints (after their object or their pod changed) and
    /// re-serves every claim that shares a slot with them, directly or through others; the
    /// rest is not looked at. Says what changed for each PodEndpoint concerned.
    pub fn replace_peers(
        &mut self,
        inventory: &Inventory,
        touched: &BTreeSet<ObjectKey>,
    ) -> BTreeMap<ObjectKey, SlotChange> {
        let mut ips = Vec::new();
        let mut keys = Vec::new();
        for key in touched {
            if let Some(old) = self.claims.remove(key) {
                self.contenders.remove(key, &old);
                ips.push(old.ip);
                ips.extend(old.ipv6);
                keys.push(old.key_slot());
            }
            self.record(inventory, key);
        }
        let affected = self.connected(touched, ips, keys);
        let before: BTreeMap<ObjectKey, Option<PeerSlot>> = affected
            .iter()
            .map(|k| (k.clone(), self.unplace(k)))
            .collect();
        let order = serving_order(&self.claims, affected.iter().cloned(), |k, c| {
            before
                .get(k)
                .and_then(Option::as_ref)
                .is_some_and(|s| exact_peers(s).any(|p| p == c.exact()))
        });
        self.serve(order);
        before
            .into_iter()
            .map(|(k, old)| {
                let new = self.peers.get(&k).cloned();
                (k, SlotChange { old, new })
            })
            .collect()
    }

    /// The claim of one PodEndpoint of the inventory (`None`: gone, or not for a tunnel of
    /// this node) with why its IPv6 address is left out, if it is; or why it cannot be one.
    fn evaluate(
        &self,
        inventory: &Inventory,
        key: &ObjectKey,
    ) -> Result<Option<(Claim, Option<Ipv6Refusal>)>, PeerError> {
        let Some(pe) = inventory.pod_endpoints.get(key) else {
            return Ok(None);
        };
        let spec = peer_spec(pe)?;
        let Some(port) = self.port_of(&spec.sgc) else {
            return Ok(None);
        };
        let pod = inventory.pods.get(key);
        let standing = trust::check(pe, &spec.sgc.name, spec.ip, pod, &inventory.selectors)
            .map_err(|refusal| PeerError::Refused {
                pod_endpoint: key.clone(),
                refusal: Box::new(refusal),
            })?;
        let ipv6 = spec.ipv6.map(|ip| {
            let egress = self.gateways.get(&port).map(|g| &g.ipv6);
            ipv6::check(
                ip?,
                &spec.sgc,
                egress.unwrap_or(&Ipv6Egress::Disabled),
                key,
                pod,
            )
        });
        let claim = Claim {
            slot: PeerSlot {
                port,
                public_key: spec.peer.public_key,
                allowed_ips: spec.peer.allowed_ips,
            },
            ip: spec.ip,
            ipv6: ipv6.clone().and_then(Result::ok),
            standing,
        };
        Ok(Some((claim, ipv6.and_then(Result::err))))
    }

    /// Evaluates one PodEndpoint into `claims` (and `contenders`) or `peer_errors`.
    fn record(&mut self, inventory: &Inventory, key: &ObjectKey) {
        self.peer_errors.remove(key);
        self.ipv6_refusals.remove(key);
        match self.evaluate(inventory, key) {
            Ok(Some((claim, ipv6_refusal))) => {
                self.contenders.add(key, &claim);
                self.claims.insert(key.clone(), claim);
                if let Some(refusal) = ipv6_refusal {
                    self.ipv6_refusals.insert(key.clone(), refusal);
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.peer_errors.insert(key.clone(), e);
            }
        }
    }

    /// The PodEndpoints connected to `touched` through shared IPs or keys (claimed or held),
    /// `touched` included; `ips` and `keys` are slots they claimed before.
    fn connected(
        &self,
        touched: &BTreeSet<ObjectKey>,
        mut ips: Vec<IpNet>,
        mut keys: Vec<KeySlot>,
    ) -> BTreeSet<ObjectKey> {
        let mut affected = BTreeSet::new();
        let mut queue: Vec<ObjectKey> = touched.iter().cloned().collect();
        let (mut seen_ips, mut seen_keys) = (BTreeSet::new(), BTreeSet::new());
        loop {
            while let Some(k) = queue.pop() {
                if !affected.insert(k.clone()) {
                    continue;
                }
                if let Some(c) = self.claims.get(&k) {
                    ips.push(c.ip);
                    ips.extend(c.ipv6);
                    keys.push(c.key_slot());
                }
                if let Some(slot) = self.peers.get(&k) {
                    ips.extend(slot.allowed_ips.iter().copied());
                    keys.push((slot.port, slot.public_key.clone()));
                }
            }
            if let Some(ip) = ips.pop() {
                if seen_ips.insert(ip) {
                    queue.extend(self.contenders.of_ip(&ip).cloned());
                    queue.extend(self.holders.ip_holder(&ip).cloned());
                }
            } else if let Some(slot) = keys.pop() {
                if seen_keys.insert(slot.clone()) {
                    queue.extend(self.contenders.of_key(&slot).cloned());
                    queue.extend(self.holders.key_holder(&slot).cloned());
                }
            } else {
                return affected;
            }
        }
    }

    /// Serves claims in `order`: each takes its slots if free. Those left out are refused
    /// naming the final holder of their IP (else of their key), so the message does not
    /// depend on the order in which events arrived.
    fn serve(&mut self, order: Vec<ObjectKey>) {
        let mut left_out = Vec::new();
        for key in order {
            let Some(claim) = self.claims.get(&key).cloned() else {
                continue;
            };
            if !self.serve_one(&key, &claim) {
                left_out.push((key, claim));
            }
        }
        for (key, claim) in left_out {
            match self.holders.conflict(&key, &claim) {
                Some(refusal) => {
                    self.peer_errors.insert(
                        key.clone(),
                        PeerError::Refused {
                            pod_endpoint: key,
                            refusal: Box::new(refusal),
                        },
                    );
                }
                // Freed by a peer the data plane state refused after all.
                None => {
                    self.serve_one(&key, &claim);
                }
            }
        }
    }

    /// Places one claim if its slots are free; false if one is held. Its IPv6 address joins
    /// the peer if no one holds it; if someone does, the peer is placed without it.
    fn serve_one(&mut self, key: &ObjectKey, claim: &Claim) -> bool {
        self.peer_errors.remove(key);
        if self.holders.take(key, claim).is_err() {
            return false;
        }
        if matches!(self.ipv6_refusals.get(key), Some(Ipv6Refusal::Taken { .. })) {
            self.ipv6_refusals.remove(key);
        }
        let mut slot = claim.slot.clone();
        if let Some(ip) = claim.ipv6 {
            match self.holders.take_ip(key, ip) {
                Ok(()) => {
                    slot.allowed_ips.insert(ip);
                }
                Err(holder) => {
                    self.ipv6_refusals
                        .insert(key.clone(), Ipv6Refusal::Taken { ip, holder });
                }
            }
        }
        let Some(tunnel) = self.state.gateway_mut(slot.port) else {
            self.holders.release(&slot);
            return true;
        };
        if let Err(e) = tunnel.upsert_peer(slot.peer()) {
            self.holders.release(&slot);
            self.peer_errors.insert(
                key.clone(),
                PeerError::Conflict {
                    pod_endpoint: key.clone(),
                    reason: e.to_string(),
                },
            );
            return true;
        }
        self.peers.insert(key.clone(), slot);
        true
    }

    /// Takes a PodEndpoint's peer out of the placement (its claim stays); returns the slot.
    fn unplace(&mut self, key: &ObjectKey) -> Option<PeerSlot> {
        let slot = self.peers.remove(key)?;
        self.holders.release(&slot);
        if let Some(tunnel) = self.state.gateway_mut(slot.port) {
            tunnel.remove_peer(&slot.public_key);
        }
        Some(slot)
    }

    /// Removes a PodEndpoint's peer after the data plane refused it (the next full cycle
    /// serves its claim again).
    pub fn remove_peer(&mut self, key: &ObjectKey) -> Option<PeerSlot> {
        self.unplace(key)
    }

    /// The exact peers placed now (for the next full cycle's incumbents).
    pub fn placed(&self) -> Incumbents {
        self.peers.values().flat_map(exact_peers).collect()
    }

    /// True if the refusal of `key` is a clash with another valid claim.
    pub fn contends(&self, key: &ObjectKey) -> bool {
        self.peer_errors
            .get(key)
            .and_then(PeerError::refusal)
            .is_some_and(Refusal::is_contention)
    }
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
