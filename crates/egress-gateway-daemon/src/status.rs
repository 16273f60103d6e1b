//! The per-node GatewayStatus, kept in a [`StatusBook`] that the programmer, the counter
//! sampler, the refusal reports and the IMDS reader update in O(log n) per change, and
//! written by `status_write` in batches. Besides the original's two lists it carries, per
//! ready gateway, every peer compactly (PodEndpoint name, key prefix, latest handshake, and
//! whether the device lacked it at the last sample), the PodEndpoints this node refuses with
//! the reason, the node's private→public IP map, the latest drift the resync repaired and a
//! heartbeat. That is what `egressctl` and the operator's PodEndpoint status read.
//!
//! Size: at most `max_peers` entries of the original list, and the compact lists cut where the
//! whole object would pass `max_bytes` (`peersTotal` keeps the count), at most
//! [`MAX_REFUSED`] refusals and [`MAX_DRIFT`] drift records; measured at 10,000 peers in
//! `tests` below and in docs/gateway-daemon.md.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use egress_api::observed::key_prefix;
use egress_api::{
    Drift, EgressIp, GatewayConfiguration, GatewayPeers, GatewayStatusSpec, PeerConfiguration,
    PeerState, RefusedPeer,
};
use tokio::sync::Notify;

use crate::translate::ObjectKey;

/// Annotation with the number of peers when the original list was cut to `max_peers`.
pub const PEERS_TOTAL_ANNOTATION: &str = "egressgateway.kubernetes.azure.com/ready-peers-total";
/// Most refusals listed (the total is in `refusedTotal`).
pub const MAX_REFUSED: usize = 100;
/// Most drift records listed, the latest (the total is in `driftTotal`).
pub const MAX_DRIFT: usize = 20;
/// Longest refusal message, drift repair or error kept.
const MAX_MESSAGE: usize = 256;

fn cut(text: &str) -> String {
    text.chars().take(MAX_MESSAGE).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    interface: String,
    key: String,
    /// When the programmer (re)set it: a sample taken before cannot have seen it.
    since: Instant,
    handshake: Option<i64>,
    missing: bool,
}

#[derive(Debug, Default)]
struct Book {
    gateways: BTreeMap<ObjectKey, String>,
    peers: BTreeMap<ObjectKey, Peer>,
    refused: BTreeMap<ObjectKey, (String, String)>,
    egress_ips: Vec<EgressIp>,
    /// The latest drift, oldest first.
    drift: VecDeque<Drift>,
    drift_total: u64,
    /// Counts changes worth writing soon (not handshake times merely moving on).
    version: u64,
}

/// What is programmed, for the GatewayStatus. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct StatusBook {
    book: Arc<Mutex<Book>>,
    changed: Arc<Notify>,
    gateways_changed: Arc<Notify>,
}

/// Limits of one document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries in the original `readyPeerConfigurations`.
    pub max_peers: usize,
    /// Most bytes of the whole spec as JSON (the compact peer lists are cut to fit).
    pub max_bytes: usize,
}

impl StatusBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touched(&self, book: &mut Book) {
        book.version += 1;
        self.changed.notify_one();
    }

    /// Replaces the ready gateways (`sgc` → `wg-<port>`) and every peer
    /// (`PodEndpoint` → (interface, base64 public key)).
    pub fn replace(
        &self,
        gateways: BTreeMap<ObjectKey, String>,
        peers: BTreeMap<ObjectKey, (String, String)>,
    ) {
        let mut book = self.lock();
        let now = Instant::now();
        let mut changed = book.gateways != gateways;
        if changed {
            book.gateways = gateways;
            self.gateways_changed.notify_one();
        }
        let old = std::mem::take(&mut book.peers);
        changed |= old.len() != peers.len();
        for (k, (interface, key)) in peers {
            let entry = match old.get(&k) {
                Some(p) if p.interface == interface && p.key == key => p.clone(),
                _ => {
                    changed = true;
                    Peer {
                        interface,
                        key,
                        since: now,
                        handshake: None,
                        missing: false,
                    }
                }
            };
            book.peers.insert(k, entry);
        }
        if changed {
            self.touched(&mut book);
        }
    }

    /// Sets (`Some((interface, public key))`) or clears one peer.
    pub fn set_peer(&self, pod_endpoint: &ObjectKey, entry: Option<(String, String)>) {
        let mut book = self.lock();
        let changed = match entry {
            Some((interface, key)) => {
                let same = book
                    .peers
                    .get(pod_endpoint)
                    .is_some_and(|p| p.interface == interface && p.key == key);
                if !same {
                    let peer = Peer {
                        interface,
                        key,
                        since: Instant::now(),
                        handshake: None,
                        missing: false,
                    };
                    book.peers.insert(pod_endpoint.clone(), peer);
                }
                !same
            }
            None => book.peers.remove(pod_endpoint).is_some(),
        };
        if changed {
            self.touched(&mut book);
        }
    }

    /// Records (`Some((reason, message))`) or clears a refusal of a PodEndpoint.
    pub fn set_refused(&self, pod_endpoint: &ObjectKey, refusal: Option<(&str, &str)>) {
        let mut book = self.lock();
        let changed = match refusal {
            Some((reason, message)) => {
                let entry = (reason.to_string(), cut(message));
                book.refused.insert(pod_endpoint.clone(), entry.clone()) != Some(entry)
            }
            None => book.refused.remove(pod_endpoint).is_some(),
        };
        if changed {
            self.touched(&mut book);
        }
    }

    /// Forgets refusals of PodEndpoints `keep` does not hold (resolved ones).
    pub fn retain_refused(&self, keep: impl Fn(&ObjectKey) -> bool) {
        let mut book = self.lock();
        let before = book.refused.len();
        book.refused.retain(|k, _| keep(k));
        if book.refused.len() != before {
            self.touched(&mut book);
        }
    }

    /// What one device had at a sample taken at `sampled_at`: its peers' keys (base64) and
    /// latest handshakes. Peers the book holds that the device lacks are marked missing (only
    /// those set before the sample); a first handshake or a peer going missing or coming back
    /// is written soon, a handshake time that merely moves on waits for the heartbeat.
    pub fn observe_device(
        &self,
        interface: &str,
        device: impl IntoIterator<Item = (String, Option<std::time::SystemTime>)>,
        sampled_at: Instant,
    ) {
        let seen: BTreeMap<String, Option<i64>> = device
            .into_iter()
            .map(|(k, t)| {
                let secs = t
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok())
                    .filter(|s| *s > 0);
                (k, secs)
            })
            .collect();
        let mut book = self.lock();
        let mut structural = false;
        // Handshake times that merely move on are not a change of their own: the next write
        // (heartbeat or another change) carries them.
        for p in book.peers.values_mut().filter(|p| p.interface == interface) {
            if p.since > sampled_at {
                continue;
            }
            let (missing, handshake) = match seen.get(&p.key) {
                Some(h) => (false, *h),
                None => (true, p.handshake),
            };
            structural |= missing != p.missing || (p.handshake.is_none() && handshake.is_some());
            p.missing = missing;
            p.handshake = handshake;
        }
        if structural {
            self.touched(&mut book);
        }
    }

    /// Records the drift one full cycle found (the oldest records beyond [`MAX_DRIFT`] go);
    /// the peers of `restored` were put back by its apply, so the device has them again
    /// whatever an earlier sample saw.
    pub fn record_drift(&self, records: Vec<Drift>, restored: &[ObjectKey]) {
        if records.is_empty() {
            return;
        }
        let mut book = self.lock();
        let now = Instant::now();
        for key in restored {
            if let Some(p) = book.peers.get_mut(key) {
                p.missing = false;
                p.since = now;
            }
        }
        book.drift_total += records.len() as u64;
        let skip = records.len().saturating_sub(MAX_DRIFT);
        for mut d in records.into_iter().skip(skip) {
            d.repair = cut(&d.repair);
            d.error = d.error.as_deref().map(cut);
            book.drift.push_back(d);
        }
        while book.drift.len() > MAX_DRIFT {
            book.drift.pop_front();
        }
        self.touched(&mut book);
    }

    /// Drift found since start.
    pub fn drift_total(&self) -> u64 {
        self.lock().drift_total
    }

    /// The node's private IPs and the public IP each maps to.
    pub fn set_egress_ips(&self, ips: Vec<EgressIp>) {
        let mut book = self.lock();
        if book.egress_ips != ips {
            book.egress_ips = ips;
            self.touched(&mut book);
        }
    }

    /// The spec to write (without the heartbeat), with at most `max_peers` entries in the
    /// original list, and the total number of peers.
    pub fn spec(&self, max_peers: usize) -> (GatewayStatusSpec, usize) {
        let (spec, total, _) = self.document(Limits {
            max_peers,
            max_bytes: usize::MAX,
        });
        (spec, total)
    }

    /// The spec within `limits` (without the heartbeat), the total number of peers, and the
    /// change count it reflects.
    pub fn document(&self, limits: Limits) -> (GatewayStatusSpec, usize, u64) {
        let book = self.lock();
        let (spec, total) = build(&book, limits);
        (spec, total, book.version)
    }

    /// Changes worth writing so far (compare with the count a written document reflected).
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// The ready gateways (`sgc` → `wg-<port>`).
    pub fn gateways(&self) -> BTreeMap<ObjectKey, String> {
        self.lock().gateways.clone()
    }

    /// Number of peers listed as ready.
    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Peers marked missing (tests, logs).
    pub fn missing(&self) -> BTreeSet<ObjectKey> {
        let book = self.lock();
        book.peers
            .iter()
            .filter(|(_, p)| p.missing)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Resolves when the book changed in a way worth writing soon.
    pub async fn wait_changed(&self) {
        self.changed.notified().await;
    }

    /// Resolves when the set of ready gateways changed.
    pub async fn wait_gateways_changed(&self) {
        self.gateways_changed.notified().await;
    }
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len())
}

fn build(book: &Book, limits: Limits) -> (GatewayStatusSpec, usize) {
    let ready = book
        .gateways
        .iter()
        .map(|(sgc, interface)| GatewayConfiguration {
            static_gateway_configuration: Some(sgc.to_string()),
            interface_name: Some(interface.clone()),
        })
        .collect::<Vec<_>>();
    let original = book
        .peers
        .iter()
        .take(limits.max_peers)
        .map(|(pe, p)| PeerConfiguration {
            pod_endpoint: Some(pe.to_string()),
            interface_name: Some(p.interface.clone()),
            public_key: Some(p.key.clone()),
        })
        .collect::<Vec<_>>();
    let refused = book
        .refused
        .iter()
        .take(MAX_REFUSED)
        .map(|(pe, (reason, message))| RefusedPeer {
            pod_endpoint: pe.to_string(),
            reason: reason.clone(),
            message: message.clone(),
        })
        .collect::<Vec<_>>();
    let mut spec = GatewayStatusSpec {
        ready_gateway_configurations: (!ready.is_empty()).then_some(ready),
        ready_peer_configurations: (!original.is_empty()).then_some(original),
        egress_ips: (!book.egress_ips.is_empty()).then(|| book.egress_ips.clone()),
        refused: (!refused.is_empty()).then_some(refused),
        refused_total: (!book.refused.is_empty())
            .then(|| i64::try_from(book.refused.len()).unwrap_or(i64::MAX)),
        drift: (!book.drift.is_empty()).then(|| book.drift.iter().cloned().collect()),
        drift_total: (book.drift_total > 0)
            .then(|| i64::try_from(book.drift_total).unwrap_or(i64::MAX)),
        ..GatewayStatusSpec::default()
    };
    // Room for the compact lists, after the rest, the heartbeat fields (~80 bytes) and each
    // gateway's own entry around its list.
    let wrappers: usize = book
        .gateways
        .iter()
        .map(|(sgc, iface)| {
            json_len(&GatewayPeers {
                static_gateway_configuration: sgc.to_string(),
                interface_name: iface.clone(),
                peers_total: i64::MAX,
                peers: Vec::new(),
            }) + "\"peers\":[],".len()
        })
        .sum();
    let mut budget = limits
        .max_bytes
        .saturating_sub(json_len(&spec))
        .saturating_sub(wrappers)
        .saturating_sub(128);
    let by_interface: BTreeMap<&str, &ObjectKey> = book
        .gateways
        .iter()
        .map(|(sgc, i)| (i.as_str(), sgc))
        .collect();
    let mut gateways: BTreeMap<&str, GatewayPeers> = BTreeMap::new();
    for (pe, p) in &book.peers {
        let Some(sgc) = by_interface.get(p.interface.as_str()) else {
            continue;
        };
        let g = gateways
            .entry(p.interface.as_str())
            .or_insert_with(|| GatewayPeers {
                static_gateway_configuration: sgc.to_string(),
                interface_name: p.interface.clone(),
                peers_total: 0,
                peers: Vec::new(),
            });
        g.peers_total += 1;
        let entry = PeerState {
            name: pe.name.clone(),
            key: key_prefix(&p.key),
            handshake: p.handshake,
            missing: p.missing,
        };
        let cost = json_len(&entry) + 1;
        if cost <= budget {
            budget -= cost;
            g.peers.push(entry);
        } else {
            budget = 0;
        }
    }
    for (interface, sgc) in &by_interface {
        gateways.entry(interface).or_insert_with(|| GatewayPeers {
            static_gateway_configuration: sgc.to_string(),
            interface_name: (*interface).to_string(),
            peers_total: 0,
            peers: Vec::new(),
        });
    }
    let gateways: Vec<GatewayPeers> = gateways.into_values().collect();
    spec.gateways = (!gateways.is_empty()).then_some(gateways);
    (spec, book.peers.len())
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
