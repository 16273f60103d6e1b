//! A stateful in-memory node implementing every executor trait, for tests of `plan` + `apply`
//! and of the daemon and CNI plugin built on this crate. It mimics the kernel behaviours the
//! planner depends on (moving a link drops its addresses and sets it down, deleting a link
//! drops its routes and its veth peer, replacing a route replaces by table + destination)
//! and counts the work done, so tests can assert "one peer change touched one peer".

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::control::{
    Dataplane, LinkControl, NetnsControl, NftControl, PeerChange, SysctlControl, WireGuardControl,
};
use crate::error::{NetlinkError, NftError, SysctlError, WireGuardError};
use crate::key::PrivateKey;
use crate::names::{InterfaceName, NetnsName, NetnsRef};
use crate::netns::NetnsError;
use crate::nft::{NftTable, NftTableId};
use crate::observed::{
    ObservedLink, ObservedNetns, ObservedPeer, ObservedState, ObservedWgDevice, WgDeviceId,
};
use crate::spec::{AddressSpec, RouteSpec, RuleSpec, SysctlKey};

/// Work counters of the fake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// Peer changes (sets + removes) received.
    pub peer_changes: usize,
    /// WireGuard peer transactions received.
    pub peer_transactions: usize,
    /// WireGuard devices created.
    pub devices_created: usize,
    /// WireGuard devices deleted.
    pub devices_deleted: usize,
    /// nftables tables replaced.
    pub nft_replacements: usize,
}

#[derive(Debug, Default)]
struct World {
    namespaces: BTreeMap<NetnsRef, ObservedNetns>,
    wireguard: BTreeMap<WgDeviceId, ObservedWgDevice>,
    veth_peers: BTreeMap<(NetnsRef, InterfaceName), (NetnsRef, InterfaceName)>,
    busy_ports: Vec<u16>,
    rejected_peers: Vec<crate::key::PublicKey>,
    keepalives: BTreeMap<(WgDeviceId, crate::key::PublicKey), u16>,
    next_index: u32,
    stats: FakeStats,
}

/// An in-memory node. Clones share state.
#[derive(Debug, Clone)]
pub struct FakeNode {
    world: Arc<Mutex<World>>,
}

impl Default for FakeNode {
    fn default() -> Self {
        Self::new()
    }
}

fn lo() -> Option<InterfaceName> {
    "lo".parse().ok()
}

fn not_found(netns: &NetnsRef) -> NetnsError {
    NetnsError::Open {
        netns: netns.clone(),
        source: io::Error::from(io::ErrorKind::NotFound),
    }
}

impl FakeNode {
    /// A node with only the current (host) namespace, holding `lo`.
    pub fn new() -> Self {
        let node = Self {
            world: Arc::new(Mutex::new(World::default())),
        };
        node.lock().insert_netns(NetnsRef::Current);
        node
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A [`Dataplane`] whose executors are all this fake.
    pub fn dataplane(&self) -> Dataplane {
        Dataplane {
            netns: Arc::new(self.clone()),
            links: Arc::new(self.clone()),
            sysctl: Arc::new(self.clone()),
            nft: Arc::new(self.clone()),
            wireguard: Arc::new(self.clone()),
        }
    }

    /// Adds a namespace (as a container runtime would create a pod's).
    pub fn add_netns(&self, netns: NetnsRef) {
        self.lock().insert_netns(netns);
    }

    /// Adds a plain link that is up, with addresses (like a node's `eth0`).
    pub fn add_link(&self, netns: &NetnsRef, name: &InterfaceName, addresses: &[AddressSpec]) {
        let mut w = self.lock();
        let index = w.index();
        if let Some(ns) = w.namespaces.get_mut(netns) {
            ns.links.insert(
                name.clone(),
                ObservedLink {
                    index,
                    kind: None,
                    up: true,
                    mtu: Some(1500),
                    addresses: addresses.iter().cloned().collect(),
                },
            );
        }
    }

    /// Adds a route directly (as the runtime or a main CNI plugin would).
    pub fn add_route(&self, netns: &NetnsRef, route: RouteSpec) {
        if let Some(ns) = self.lock().namespaces.get_mut(netns) {
            ns.routes_of_mut(&route.destination).insert(route);
        }
    }

    /// Makes creating a device with this port fail as "in use".
    pub fn occupy_port(&self, port: u16) {
        self.lock().busy_ports.push(port);
    }

    /// Makes any peer transaction touching this key fail (as a daemon refusing it would).
    pub fn reject_peer(&self, key: crate::key::PublicKey) {
        self.lock().rejected_peers.push(key);
    }

    /// The persistent keepalive last set on a peer with `set_peer_keepalive` (pod side).
    pub fn keepalive(&self, device: &WgDeviceId, key: &crate::key::PublicKey) -> Option<u16> {
        self.lock()
            .keepalives
            .get(&(device.clone(), key.clone()))
            .copied()
    }

    /// Work counters so far.
    pub fn stats(&self) -> FakeStats {
        self.lock().stats.clone()
    }

    /// Everything the fake holds.
    pub fn snapshot(&self) -> ObservedState {
        let w = self.lock();
        ObservedState {
            namespaces: w.namespaces.clone(),
            wireguard: w.wireguard.clone(),
        }
    }
}

impl World {
    fn index(&mut self) -> u32 {
        self.next_index += 1;
        self.next_index
    }

    fn insert_netns(&mut self, netns: NetnsRef) {
        let index = self.index();
        let ns = self.namespaces.entry(netns).or_default();
        if let Some(lo) = lo() {
            ns.links.entry(lo).or_insert(ObservedLink {
                index,
                kind: None,
                up: false,
                mtu: Some(65536),
                addresses: Default::default(),
            });
        }
    }

    fn ns(&mut self, netns: &NetnsRef) -> Result<&mut ObservedNetns, NetnsError> {
        self.namespaces
            .get_mut(netns)
            .ok_or_else(|| not_found(netns))
    }

    fn link(
        &mut self,
        netns: &NetnsRef,
        name: &InterfaceName,
    ) -> Result<&mut ObservedLink, NetlinkError> {
        self.ns(netns)?
            .links
            .get_mut(name)
            .ok_or_else(|| NetlinkError::LinkNotFound {
                netns: netns.clone(),
                link: name.clone(),
            })
    }

    fn new_link(
        &mut self,
        netns: &NetnsRef,
        name: &InterfaceName,
        kind: &str,
        mtu: u32,
    ) -> Result<(), NetnsError> {
        let index = self.index();
        self.ns(netns)?.links.insert(
            name.clone(),
            ObservedLink {
                index,
                kind: Some(kind.into()),
                up: false,
                mtu: Some(mtu),
                addresses: Default::default(),
            },
        );
        Ok(())
    }

    /// Removes a link, its routes, its WireGuard device and its veth peer.
    fn remove_link(&mut self, netns: &NetnsRef, name: &InterfaceName) {
        if let Some(ns) = self.namespaces.get_mut(netns) {
            ns.links.remove(name);
            ns.routes.retain(|r| &r.device != name);
            ns.ipv6_routes.retain(|r| &r.device != name);
        }
        let device = WgDeviceId {
            netns: netns.clone(),
            name: name.clone(),
        };
        self.wireguard.remove(&device);
        if let Some(peer) = self.veth_peers.remove(&(netns.clone(), name.clone())) {
            self.veth_peers.remove(&peer);
            self.remove_link(&peer.0, &peer.1);
        }
    }
}

#[async_trait]
impl NetnsControl for FakeNode {
    async fn exists(&self, netns: &NetnsRef) -> Result<bool, NetnsError> {
        Ok(self.lock().namespaces.contains_key(netns))
    }
    async fn create(&self, name: &NetnsName) -> Result<(), NetnsError> {
        self.lock().insert_netns(NetnsRef::Named(name.clone()));
        Ok(())
    }
    async fn delete(&self, name: &NetnsName) -> Result<(), NetnsError> {
        let netns = NetnsRef::Named(name.clone());
        let mut w = self.lock();
        let links: Vec<InterfaceName> = w
            .namespaces
            .get(&netns)
            .map(|ns| ns.links.keys().cloned().collect())
            .unwrap_or_default();
        for link in links {
            w.remove_link(&netns, &link);
        }
        w.namespaces.remove(&netns);
        Ok(())
    }
}

#[async_trait]
impl LinkControl for FakeNode {
    async fn observe(&self, netns: &NetnsRef) -> Result<ObservedNetns, NetlinkError> {
        let mut w = self.lock();
        let ns = w.ns(netns)?;
        Ok(ObservedNetns {
            links: ns.links.clone(),
            routes: ns.routes.clone(),
            ipv6_routes: ns.ipv6_routes.clone(),
            rules: ns.rules.clone(),
            ..Default::default()
        })
    }
    async fn create_veth(
        &self,
        netns: &NetnsRef,
        name: &InterfaceName,
        peer_netns: &NetnsRef,
        peer: &InterfaceName,
    ) -> Result<(), NetlinkError> {
        let mut w = self.lock();
        w.ns(peer_netns)?;
        if w.ns(netns)?.links.contains_key(name) {
            return Ok(());
        }
        w.new_link(netns, name, "veth", 1500)?;
        w.new_link(peer_netns, peer, "veth", 1500)?;
        let a = (netns.clone(), name.clone());
        let b = (peer_netns.clone(), peer.clone());
        w.veth_peers.insert(a.clone(), b.clone());
        w.veth_peers.insert(b, a);
        Ok(())
    }
    async fn delete_link(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
    ) -> Result<(), NetlinkError> {
        let mut w = self.lock();
        w.ns(netns)?;
        w.remove_link(netns, link);
        Ok(())
    }
    async fn move_link(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        to: &NetnsRef,
        new_name: Option<&InterfaceName>,
    ) -> Result<(), NetlinkError> {
        let mut w = self.lock();
        w.ns(to)?;
        let mut moved = w.link(netns, link)?.clone();
        let ns = w.ns(netns)?;
        ns.links.remove(link);
        ns.routes.retain(|r| &r.device != link);
        ns.ipv6_routes.retain(|r| &r.device != link);
        // The kernel sets a moved link down and drops its addresses.
        moved.up = false;
        moved.addresses.clear();
        let name = new_name.unwrap_or(link).clone();
        w.ns(to)?.links.insert(name.clone(), moved);
        if let Some(peer) = w.veth_peers.remove(&(netns.clone(), link.clone())) {
            w.veth_peers
                .insert(peer.clone(), (to.clone(), name.clone()));
            w.veth_peers.insert((to.clone(), name), peer);
        }
        Ok(())
    }
    async fn set_up(&self, netns: &NetnsRef, link: &InterfaceName) -> Result<(), NetlinkError> {
        self.lock().link(netns, link)?.up = true;
        Ok(())
    }
    async fn set_mtu(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        mtu: u32,
    ) -> Result<(), NetlinkError> {
        self.lock().link(netns, link)?.mtu = Some(mtu);
        Ok(())
    }
    async fn add_address(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        address: &AddressSpec,
    ) -> Result<(), NetlinkError> {
        let mut w = self.lock();
        let l = w.link(netns, link)?;
        if !l.addresses.iter().any(|a| a.addr == address.addr) {
            l.addresses.insert(address.clone());
        }
        Ok(())
    }
    async fn del_address(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        address: &AddressSpec,
    ) -> Result<(), NetlinkError> {
        let mut w = self.lock();
        if let Ok(l) = w.link(netns, link) {
            l.addresses.retain(|a| a.addr != address.addr);
        }
        Ok(())
    }
    async fn add_route(&self, netns: &NetnsRef, route: &RouteSpec) -> Result<(), NetlinkError> {
        let mut w = self.lock();
        w.link(netns, &route.device)?;
        let routes = w.ns(netns)?.routes_of_mut(&route.destination);
        routes.retain(|r| !(r.table == route.table && r.destination == route.destination));
        routes.insert(route.clone());
        Ok(())
    }
    async fn del_route(&self, netns: &NetnsRef, route: &RouteSpec) -> Result<(), NetlinkError> {
        self.lock()
            .ns(netns)?
            .routes_of_mut(&route.destination)
            .remove(route);
        Ok(())
    }
    async fn add_rule(&self, netns: &NetnsRef, rule: &RuleSpec) -> Result<(), NetlinkError> {
        self.lock().ns(netns)?.rules.insert(rule.clone());
        Ok(())
    }
    async fn del_rule(&self, netns: &NetnsRef, rule: &RuleSpec) -> Result<(), NetlinkError> {
        self.lock().ns(netns)?.rules.remove(rule);
        Ok(())
    }
}

#[async_trait]
impl SysctlControl for FakeNode {
    async fn read(&self, netns: &NetnsRef, key: &SysctlKey) -> Result<Option<String>, SysctlError> {
        let mut w = self.lock();
        let ns = w.ns(netns)?;
        // Every sysctl of a fresh namespace reads 0, as forwarding and rp_filter do.
        Ok(Some(
            ns.sysctls.get(key).cloned().unwrap_or_else(|| "0".into()),
        ))
    }
    async fn write(
        &self,
        netns: &NetnsRef,
        key: &SysctlKey,
        value: &str,
    ) -> Result<(), SysctlError> {
        self.lock()
            .ns(netns)?
            .sysctls
            .insert(key.clone(), value.into());
        Ok(())
    }
}

#[async_trait]
impl NftControl for FakeNode {
    async fn read(&self, netns: &NetnsRef, id: &NftTableId) -> Result<Option<NftTable>, NftError> {
        Ok(self.lock().ns(netns)?.nft.get(id).cloned())
    }
    async fn replace(&self, netns: &NetnsRef, table: &NftTable) -> Result<(), NftError> {
        let mut w = self.lock();
        w.ns(netns)?.nft.insert(table.id(), table.clone());
        w.stats.nft_replacements += 1;
        Ok(())
    }
    async fn delete(&self, netns: &NetnsRef, id: &NftTableId) -> Result<(), NftError> {
        self.lock().ns(netns)?.nft.remove(id);
        Ok(())
    }
}

#[async_trait]
impl WireGuardControl for FakeNode {
    async fn observe(
        &self,
        device: &WgDeviceId,
    ) -> Result<Option<ObservedWgDevice>, WireGuardError> {
        Ok(self.lock().wireguard.get(device).cloned())
    }
    async fn create(
        &self,
        device: &WgDeviceId,
        socket_netns: &NetnsRef,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError> {
        let mut w = self.lock();
        w.ns(socket_netns)?;
        w.ns(&device.netns)?;
        if let Some(port) = listen_port
            && w.busy_ports.contains(&port)
        {
            return Err(WireGuardError::PortInUse {
                device: device.clone(),
                port,
                socket_netns: socket_netns.clone(),
            });
        }
        w.new_link(&device.netns, &device.name, "wireguard", 1420)?;
        w.wireguard.insert(
            device.clone(),
            ObservedWgDevice {
                public_key: Some(private_key.public_key()),
                listen_port: Some(listen_port.unwrap_or(51820)),
                peers: BTreeMap::new(),
            },
        );
        w.stats.devices_created += 1;
        Ok(())
    }
    async fn configure(
        &self,
        device: &WgDeviceId,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError> {
        let mut w = self.lock();
        let dev = w
            .wireguard
            .get_mut(device)
            .ok_or_else(|| WireGuardError::NotFound {
                device: device.clone(),
            })?;
        dev.public_key = Some(private_key.public_key());
        if listen_port.is_some() {
            dev.listen_port = listen_port;
        }
        Ok(())
    }
    async fn delete(&self, device: &WgDeviceId) -> Result<(), WireGuardError> {
        let mut w = self.lock();
        w.remove_link(&device.netns, &device.name);
        w.stats.devices_deleted += 1;
        Ok(())
    }
    async fn update_peers(
        &self,
        device: &WgDeviceId,
        changes: &[PeerChange],
    ) -> Result<(), WireGuardError> {
        let mut w = self.lock();
        let rejected = changes.iter().any(|c| match c {
            PeerChange::Set(p) => w.rejected_peers.contains(&p.public_key),
            PeerChange::Remove(k) => w.rejected_peers.contains(k),
        });
        if rejected {
            return Err(WireGuardError::Device {
                action: "apply peer changes".into(),
                device: device.clone(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
        let dev = w
            .wireguard
            .get_mut(device)
            .ok_or_else(|| WireGuardError::NotFound {
                device: device.clone(),
            })?;
        for change in changes {
            match change {
                PeerChange::Set(peer) => {
                    // WireGuard moves an allowed IP to the last peer that claims it.
                    for other in dev.peers.values_mut() {
                        other
                            .allowed_ips
                            .retain(|ip| !peer.allowed_ips.contains(ip));
                    }
                    let entry = dev
                        .peers
                        .entry(peer.public_key.clone())
                        .or_insert(ObservedPeer {
                            allowed_ips: Default::default(),
                            endpoint: None,
                            last_handshake: None,
                            rx_bytes: 0,
                            tx_bytes: 0,
                        });
                    entry.allowed_ips = peer.allowed_ips.clone();
                    if peer.endpoint.is_some() {
                        entry.endpoint = peer.endpoint;
                    }
                }
                PeerChange::Remove(key) => {
                    dev.peers.remove(key);
                }
            }
        }
        w.stats.peer_changes += changes.len();
        w.stats.peer_transactions += 1;
        Ok(())
    }

    async fn set_peer_keepalive(
        &self,
        device: &WgDeviceId,
        peer: &crate::spec::Peer,
        seconds: u16,
        recreate: bool,
    ) -> Result<(), WireGuardError> {
        let mut changes = Vec::new();
        if recreate {
            changes.push(PeerChange::Remove(peer.public_key.clone()));
        }
        changes.push(PeerChange::Set(peer.clone()));
        self.update_peers(device, &changes).await?;
        self.lock()
            .keepalives
            .insert((device.clone(), peer.public_key.clone()), seconds);
        Ok(())
    }
}
