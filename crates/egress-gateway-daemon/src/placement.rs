//! Who holds a peer slot when valid claims contend (pure). A slot is a pod IP (node-wide: one
//! route per IP in the gateway namespace) or a public key on one tunnel (WireGuard allows a key
//! once per device). Claims are served in one total order, best first, each taking its IP and
//! key if both are free:
//!
//! 1. a live pod before a terminating one;
//! 2. a pod whose `status.podIPs` has the IP before one with no IP yet;
//! 3. the incumbent (this exact peer, key and IP, is programmed: in the daemon's desired state,
//!    or in the kernel when the daemon starts) before a newcomer;
//! 4. the older pod (`creationTimestamp`, set by the API server) before the newer;
//! 5. pod UID, then PodEndpoint name (only so that the order is total).
//!
//! Nothing in 1–3 can be set by whoever writes a PodEndpoint; 4 is the pod's own creation time,
//! which the writer of a PodEndpoint cannot move. Name order never decides who owns traffic.
//!
//! Serving a set of claims in this order with "incumbent" = what the previous serving placed
//! gives back the same placement (a fixed point): a resync or a restart that adopts the kernel
//! changes nothing unless a claim's facts changed. Claims that share no slot never affect each
//! other, so an event re-serves only the claims connected to it through shared slots.

use std::collections::{BTreeMap, BTreeSet};

use egress_dataplane::{InterfaceName, PublicKey};
use ipnet::IpNet;

use crate::desired::PeerSlot;
use crate::translate::ObjectKey;
use crate::trust::{Refusal, Standing};

/// A valid claim: one PodEndpoint asking for one peer on an active tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The peer it asks for.
    pub slot: PeerSlot,
    /// Its pod IP (the slot's only allowed IP).
    pub ip: IpNet,
    /// Its pod's IPv6 `/128`, valid by `crate::ipv6`: added to the peer if no stronger claim
    /// holds it (a slot of its own; losing it leaves the IPv4 peer as it is).
    pub ipv6: Option<IpNet>,
    /// How strong it is.
    pub standing: Standing,
}

/// A public key on one tunnel.
pub type KeySlot = (u16, PublicKey);

/// Exact peers known to be programmed: (listen port, public key, IP).
pub type Incumbents = BTreeSet<(u16, PublicKey, IpNet)>;

impl Claim {
    /// Its key slot.
    pub fn key_slot(&self) -> KeySlot {
        (self.slot.port, self.slot.public_key.clone())
    }

    /// Its exact peer.
    pub fn exact(&self) -> (u16, PublicKey, IpNet) {
        (self.slot.port, self.slot.public_key.clone(), self.ip)
    }
}

/// The exact peers of a placed slot.
pub fn exact_peers(slot: &PeerSlot) -> impl Iterator<Item = (u16, PublicKey, IpNet)> + '_ {
    slot.allowed_ips
        .iter()
        .map(|ip| (slot.port, slot.public_key.clone(), *ip))
}

/// Sorts `keys` (all in `claims`) into the serving order; `incumbent` says which are.
pub fn serving_order(
    claims: &BTreeMap<ObjectKey, Claim>,
    keys: impl IntoIterator<Item = ObjectKey>,
    incumbent: impl Fn(&ObjectKey, &Claim) -> bool,
) -> Vec<ObjectKey> {
    let mut ranked: Vec<_> = keys
        .into_iter()
        .filter_map(|k| {
            let c = claims.get(&k)?;
            let s = &c.standing;
            let rank = (
                s.terminating,
                s.provisional,
                !incumbent(&k, c),
                s.pod_created.is_none(),
                s.pod_created,
                s.pod_uid.clone(),
            );
            Some((rank, k))
        })
        .collect();
    ranked.sort();
    ranked.into_iter().map(|(_, k)| k).collect()
}

/// Who holds each IP and key slot.
#[derive(Debug, Clone, Default)]
pub struct Holders {
    ips: BTreeMap<IpNet, ObjectKey>,
    keys: BTreeMap<KeySlot, ObjectKey>,
}

impl Holders {
    /// Who holds a slot `claim` wants, if anyone but `key` (the IP is named first).
    pub fn conflict(&self, key: &ObjectKey, claim: &Claim) -> Option<Refusal> {
        if let Some(holder) = self.ips.get(&claim.ip).filter(|h| *h != key) {
            return Some(Refusal::IpTaken {
                ip: claim.ip,
                holder: holder.clone(),
            });
        }
        let holder = self.keys.get(&claim.key_slot()).filter(|h| *h != key)?;
        Some(Refusal::KeyTaken {
            holder: holder.clone(),
            interface: InterfaceName::for_gateway_port(claim.slot.port).to_string(),
        })
    }

    /// Takes both slots of `claim` for `key`, or says who holds one.
    pub fn take(&mut self, key: &ObjectKey, claim: &Claim) -> Result<(), Refusal> {
        if let Some(refusal) = self.conflict(key, claim) {
            return Err(refusal);
        }
        self.ips.insert(claim.ip, key.clone());
        self.keys.insert(claim.key_slot(), key.clone());
        Ok(())
    }

    /// Takes one more IP (a claim's IPv6) for `key`, or names who holds it.
    pub fn take_ip(&mut self, key: &ObjectKey, ip: IpNet) -> Result<(), ObjectKey> {
        match self.ips.get(&ip) {
            Some(holder) if holder != key => Err(holder.clone()),
            _ => {
                self.ips.insert(ip, key.clone());
                Ok(())
            }
        }
    }

    /// Frees the slots `slot` held.
    pub fn release(&mut self, slot: &PeerSlot) {
        for ip in &slot.allowed_ips {
            self.ips.remove(ip);
        }
        self.keys.remove(&(slot.port, slot.public_key.clone()));
    }

    /// The holder of an IP.
    pub fn ip_holder(&self, ip: &IpNet) -> Option<&ObjectKey> {
        self.ips.get(ip)
    }

    /// The holder of a key on a tunnel.
    pub fn key_holder(&self, slot: &KeySlot) -> Option<&ObjectKey> {
        self.keys.get(slot)
    }
}

/// Every claim wanting each slot, to find the claims an event concerns.
#[derive(Debug, Clone, Default)]
pub struct Contenders {
    by_ip: BTreeMap<IpNet, BTreeSet<ObjectKey>>,
    by_key: BTreeMap<KeySlot, BTreeSet<ObjectKey>>,
}

impl Contenders {
    /// Records a claim.
    pub fn add(&mut self, key: &ObjectKey, claim: &Claim) {
        for ip in std::iter::once(claim.ip).chain(claim.ipv6) {
            self.by_ip.entry(ip).or_default().insert(key.clone());
        }
        self.by_key
            .entry(claim.key_slot())
            .or_default()
            .insert(key.clone());
    }

    /// Forgets a claim.
    pub fn remove(&mut self, key: &ObjectKey, claim: &Claim) {
        for ip in std::iter::once(claim.ip).chain(claim.ipv6) {
            if let Some(set) = self.by_ip.get_mut(&ip) {
                set.remove(key);
                if set.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
        }
        let slot = claim.key_slot();
        if let Some(set) = self.by_key.get_mut(&slot) {
            set.remove(key);
            if set.is_empty() {
                self.by_key.remove(&slot);
            }
        }
    }

    /// Claims wanting this IP.
    pub fn of_ip(&self, ip: &IpNet) -> impl Iterator<Item = &ObjectKey> {
        self.by_ip.get(ip).into_iter().flatten()
    }

    /// Claims wanting this key slot.
    pub fn of_key(&self, slot: &KeySlot) -> impl Iterator<Item = &ObjectKey> {
        self.by_key.get(slot).into_iter().flatten()
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
