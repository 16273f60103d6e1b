//! The narrow executor traits (one per concern) and [`Dataplane`], which observes through
//! them and applies a plan through them in order. Real implementations live in `exec`, the
//! stateful fake in `fake`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{
    ApplyError, DataplaneError, NetlinkError, NftError, ObserveError, SysctlError, WireGuardError,
};
use crate::key::{PrivateKey, PublicKey};
use crate::names::{InterfaceName, NetnsName, NetnsRef};
use crate::netns::NetnsError;
use crate::nft::{NftTable, NftTableId};
use crate::observed::{ObserveRequest, ObservedNetns, ObservedState, ObservedWgDevice, WgDeviceId};
use crate::op::Op;
use crate::spec::{AddressSpec, Peer, RouteSpec, RuleSpec, SysctlKey};

/// Named network namespaces.
#[async_trait]
pub trait NetnsControl: Send + Sync {
    /// True if the namespace exists (always true for `Current`).
    async fn exists(&self, netns: &NetnsRef) -> Result<bool, NetnsError>;
    /// Creates a named namespace; "already exists" is success.
    async fn create(&self, name: &NetnsName) -> Result<(), NetnsError>;
    /// Deletes a named namespace; "not found" is success.
    async fn delete(&self, name: &NetnsName) -> Result<(), NetnsError>;
}

/// Links, addresses, routes and rules of one namespace at a time.
#[async_trait]
pub trait LinkControl: Send + Sync {
    /// Reads links with addresses, IPv4 routes and IPv4 rules (not sysctls or nftables).
    async fn observe(&self, netns: &NetnsRef) -> Result<ObservedNetns, NetlinkError>;
    /// Creates a veth pair with each end in its namespace; "exists" is success.
    async fn create_veth(
        &self,
        netns: &NetnsRef,
        name: &InterfaceName,
        peer_netns: &NetnsRef,
        peer: &InterfaceName,
    ) -> Result<(), NetlinkError>;
    /// Deletes a link; "not found" is success.
    async fn delete_link(&self, netns: &NetnsRef, link: &InterfaceName)
    -> Result<(), NetlinkError>;
    /// Moves a link to another namespace, renaming it there in the same request if asked.
    async fn move_link(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        to: &NetnsRef,
        new_name: Option<&InterfaceName>,
    ) -> Result<(), NetlinkError>;
    /// Sets a link up.
    async fn set_up(&self, netns: &NetnsRef, link: &InterfaceName) -> Result<(), NetlinkError>;
    /// Sets a link's MTU.
    async fn set_mtu(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        mtu: u32,
    ) -> Result<(), NetlinkError>;
    /// Adds an address; "exists" is success.
    async fn add_address(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        address: &AddressSpec,
    ) -> Result<(), NetlinkError>;
    /// Deletes an address; "not found" is success.
    async fn del_address(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        address: &AddressSpec,
    ) -> Result<(), NetlinkError>;
    /// Adds or replaces a route.
    async fn add_route(&self, netns: &NetnsRef, route: &RouteSpec) -> Result<(), NetlinkError>;
    /// Deletes a route; "not found" is success.
    async fn del_route(&self, netns: &NetnsRef, route: &RouteSpec) -> Result<(), NetlinkError>;
    /// Adds a rule (always with action "to table"); "exists" is success.
    async fn add_rule(&self, netns: &NetnsRef, rule: &RuleSpec) -> Result<(), NetlinkError>;
    /// Deletes a rule; "not found" is success.
    async fn del_rule(&self, netns: &NetnsRef, rule: &RuleSpec) -> Result<(), NetlinkError>;
}

/// Sysctls of one namespace.
#[async_trait]
pub trait SysctlControl: Send + Sync {
    /// Reads a sysctl; `None` if it does not exist (e.g. the interface is missing).
    async fn read(&self, netns: &NetnsRef, key: &SysctlKey) -> Result<Option<String>, SysctlError>;
    /// Writes a sysctl.
    async fn write(
        &self,
        netns: &NetnsRef,
        key: &SysctlKey,
        value: &str,
    ) -> Result<(), SysctlError>;
}

/// Our nftables tables.
#[async_trait]
pub trait NftControl: Send + Sync {
    /// Reads one table; `None` if it does not exist.
    async fn read(&self, netns: &NetnsRef, id: &NftTableId) -> Result<Option<NftTable>, NftError>;
    /// Replaces one table atomically.
    async fn replace(&self, netns: &NetnsRef, table: &NftTable) -> Result<(), NftError>;
    /// Deletes one table; "not found" is success.
    async fn delete(&self, netns: &NetnsRef, id: &NftTableId) -> Result<(), NftError>;
}

/// One peer change inside a WireGuard transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Add the peer, or replace its allowed IPs and endpoint.
    Set(Peer),
    /// Remove the peer; "not found" is success.
    Remove(PublicKey),
}

/// WireGuard devices, kernel or userspace.
#[async_trait]
pub trait WireGuardControl: Send + Sync {
    /// Reads a device; `None` if it does not exist.
    async fn observe(
        &self,
        device: &WgDeviceId,
    ) -> Result<Option<ObservedWgDevice>, WireGuardError>;
    /// Creates a device with its UDP socket in `socket_netns` and its interface in
    /// `device.netns`, configured before it appears there. On failure nothing is left.
    async fn create(
        &self,
        device: &WgDeviceId,
        socket_netns: &NetnsRef,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError>;
    /// Sets key and (if given) port of an existing device.
    async fn configure(
        &self,
        device: &WgDeviceId,
        private_key: &PrivateKey,
        listen_port: Option<u16>,
    ) -> Result<(), WireGuardError>;
    /// Deletes a device; "not found" is success.
    async fn delete(&self, device: &WgDeviceId) -> Result<(), WireGuardError>;
    /// Applies peer changes in one transaction (touching only the named peers).
    async fn update_peers(
        &self,
        device: &WgDeviceId,
        changes: &[PeerChange],
    ) -> Result<(), WireGuardError>;

    /// Pod side: from now on, create, find and stop `device` under `socket_name` in its
    /// socket namespace (the kernel's temporary link name; wireguard-go's daemon, TUN and
    /// UAPI socket name) instead of the name derived from the device's namespace and name.
    /// The CNI plugin uses [`InterfaceName::for_pod_socket`] of the container ID, so every
    /// sandbox has its own name and DEL finds it again from the container ID alone.
    /// Backends without such names (the fake) ignore it.
    fn name_device(&self, _device: &WgDeviceId, _socket_name: &InterfaceName) {}

    /// Pod side: sets `peer` (allowed IPs, endpoint) with a persistent keepalive of
    /// `seconds` (0 = off). Turning keepalive on makes the device send a keepalive at once,
    /// which starts a handshake when there is no session yet. With `recreate` the peer is
    /// first removed and re-added in the same transaction, so its handshake state starts
    /// over and that initiation is not held back by WireGuard's one-initiation-per-5-s rate
    /// limit (REKEY_TIMEOUT), which a plain re-set would hit.
    async fn set_peer_keepalive(
        &self,
        device: &WgDeviceId,
        _peer: &Peer,
        _seconds: u16,
        _recreate: bool,
    ) -> Result<(), WireGuardError> {
        Err(WireGuardError::Device {
            action: "set a persistent keepalive".into(),
            device: device.clone(),
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        })
    }
}

/// Most peer changes sent in one WireGuard transaction.
pub const PEER_BATCH: usize = 1024;

/// A peer operation that failed on its own; the rest of the plan went on.
#[derive(Debug)]
pub struct PeerFailure {
    /// The operation, as displayed.
    pub op: String,
    /// Cause.
    pub error: WireGuardError,
}

/// What [`Dataplane::apply`] did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Operations that took effect.
    pub applied: usize,
    /// Peer operations that failed individually (others are unaffected).
    pub peer_failures: Vec<PeerFailure>,
}

/// The executors of one node, used through their traits.
#[derive(Clone)]
pub struct Dataplane {
    /// Namespaces.
    pub netns: Arc<dyn NetnsControl>,
    /// Links, addresses, routes, rules.
    pub links: Arc<dyn LinkControl>,
    /// Sysctls.
    pub sysctl: Arc<dyn SysctlControl>,
    /// nftables.
    pub nft: Arc<dyn NftControl>,
    /// WireGuard.
    pub wireguard: Arc<dyn WireGuardControl>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane").finish_non_exhaustive()
    }
}

fn observe_err(what: impl Into<String>, source: impl Into<DataplaneError>) -> ObserveError {
    ObserveError {
        what: what.into(),
        source: source.into(),
    }
}

impl Dataplane {
    /// Reads what `request` names. Namespaces that do not exist are left out.
    pub async fn observe(&self, request: &ObserveRequest) -> Result<ObservedState, ObserveError> {
        let mut state = ObservedState::default();
        for (netns, wants) in &request.namespaces {
            if !self
                .netns
                .exists(netns)
                .await
                .map_err(|e| observe_err(netns.to_string(), e))?
            {
                continue;
            }
            let mut ns = self
                .links
                .observe(netns)
                .await
                .map_err(|e| observe_err(netns.to_string(), e))?;
            for key in &wants.sysctls {
                let value = self
                    .sysctl
                    .read(netns, key)
                    .await
                    .map_err(|e| observe_err(format!("sysctl {key}"), e))?;
                if let Some(value) = value {
                    ns.sysctls.insert(key.clone(), value);
                }
            }
            for id in &wants.nft {
                let table = self
                    .nft
                    .read(netns, id)
                    .await
                    .map_err(|e| observe_err(id.to_string(), e))?;
                if let Some(table) = table {
                    ns.nft.insert(id.clone(), table);
                }
            }
            state.namespaces.insert(netns.clone(), ns);
        }
        for device in &request.wireguard {
            if !state.namespaces.contains_key(&device.netns) {
                continue;
            }
            let observed = self
                .wireguard
                .observe(device)
                .await
                .map_err(|e| observe_err(device.to_string(), e))?;
            if let Some(observed) = observed {
                state.wireguard.insert(device.clone(), observed);
            }
        }
        Ok(state)
    }

    /// Applies `ops` in order. Stops at the first failing operation, except that peer
    /// operations fail individually: consecutive peer operations on one device go out in
    /// transactions of up to [`PEER_BATCH`], and a failed transaction is retried peer by
    /// peer so one bad peer does not hold back the others.
    pub async fn apply(&self, ops: &[Op]) -> Result<ApplyReport, ApplyError> {
        let mut report = ApplyReport::default();
        let mut i = 0;
        while i < ops.len() {
            if let Some(device) = ops[i].peer_device() {
                let end = ops[i..]
                    .iter()
                    .take(PEER_BATCH)
                    .position(|op| op.peer_device() != Some(device))
                    .map_or_else(|| (i + PEER_BATCH).min(ops.len()), |n| i + n);
                self.apply_peers(device, &ops[i..end], &mut report).await;
                i = end;
                continue;
            }
            tracing::info!(op = %ops[i], "applying");
            self.apply_one(&ops[i]).await.map_err(|source| ApplyError {
                index: i,
                op: ops[i].to_string(),
                source,
            })?;
            report.applied += 1;
            i += 1;
        }
        Ok(report)
    }

    async fn apply_peers(&self, device: &WgDeviceId, ops: &[Op], report: &mut ApplyReport) {
        let changes: Vec<PeerChange> = ops.iter().filter_map(peer_change).collect();
        for op in ops {
            tracing::debug!(%op, "applying");
        }
        match self.wireguard.update_peers(device, &changes).await {
            Ok(()) => report.applied += ops.len(),
            Err(batch_error) => {
                tracing::warn!(%device, error = %batch_error, "peer batch failed, retrying one by one");
                for (op, change) in ops.iter().zip(changes) {
                    match self
                        .wireguard
                        .update_peers(device, std::slice::from_ref(&change))
                        .await
                    {
                        Ok(()) => report.applied += 1,
                        Err(error) => report.peer_failures.push(PeerFailure {
                            op: op.to_string(),
                            error,
                        }),
                    }
                }
            }
        }
    }

    async fn apply_one(&self, op: &Op) -> Result<(), DataplaneError> {
        match op {
            Op::CreateNetns { name } => self.netns.create(name).await?,
            Op::SetSysctl { netns, key, value } => self.sysctl.write(netns, key, value).await?,
            Op::DeleteLink { netns, link } => self.links.delete_link(netns, link).await?,
            Op::CreateVeth {
                netns,
                name,
                peer_netns,
                peer,
            } => {
                self.links
                    .create_veth(netns, name, peer_netns, peer)
                    .await?
            }
            Op::MoveLink { netns, link, to } => self.links.move_link(netns, link, to, None).await?,
            Op::SetLinkUp { netns, link } => self.links.set_up(netns, link).await?,
            Op::SetMtu { netns, link, mtu } => self.links.set_mtu(netns, link, *mtu).await?,
            Op::AddAddress {
                netns,
                link,
                address,
            } => self.links.add_address(netns, link, address).await?,
            Op::DelAddress {
                netns,
                link,
                address,
            } => self.links.del_address(netns, link, address).await?,
            Op::AddRoute { netns, route } => self.links.add_route(netns, route).await?,
            Op::DelRoute { netns, route } => self.links.del_route(netns, route).await?,
            Op::AddRule { netns, rule } => self.links.add_rule(netns, rule).await?,
            Op::DelRule { netns, rule } => self.links.del_rule(netns, rule).await?,
            Op::CreateWireGuard {
                device,
                socket_netns,
                private_key,
                listen_port,
            } => {
                self.wireguard
                    .create(device, socket_netns, private_key, *listen_port)
                    .await?
            }
            Op::ConfigureWireGuard {
                device,
                private_key,
                listen_port,
            } => {
                self.wireguard
                    .configure(device, private_key, *listen_port)
                    .await?
            }
            Op::DeleteWireGuard { device } => self.wireguard.delete(device).await?,
            Op::AddPeer { device, peer } => {
                self.wireguard
                    .update_peers(device, &[PeerChange::Set(peer.clone())])
                    .await?
            }
            Op::RemovePeer { device, public_key } => {
                self.wireguard
                    .update_peers(device, &[PeerChange::Remove(public_key.clone())])
                    .await?
            }
            Op::ReplaceNftTable { netns, table } => self.nft.replace(netns, table).await?,
            Op::DeleteNftTable { netns, id } => self.nft.delete(netns, id).await?,
        }
        Ok(())
    }
}

fn peer_change(op: &Op) -> Option<PeerChange> {
    match op {
        Op::AddPeer { peer, .. } => Some(PeerChange::Set(peer.clone())),
        Op::RemovePeer { public_key, .. } => Some(PeerChange::Remove(public_key.clone())),
        _ => None,
    }
}
