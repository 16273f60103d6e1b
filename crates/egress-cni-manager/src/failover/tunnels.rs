//! The two things failover does to a pod tunnel, behind a narrow trait: read the gateway
//! peer's counters, and re-create the peer (dropping its session, keeping its configuration),
//! optionally with a keepalive that sends an initiation at once. The real implementation
//! reaches `wg0` in the pod's network namespace through egress-dataplane: kernel WireGuard
//! by generic netlink from a thread that entered the namespace (`setns`: CAP_SYS_ADMIN;
//! changing a device: CAP_NET_ADMIN), wireguard-go through its UAPI socket in the node's
//! `/var/run/wireguard`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use egress_cni_proto::{Backend, TunnelRecord};
use egress_dataplane::control::WireGuardControl;
use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::wireguard::{KernelWireGuard, UserspaceConfig, UserspaceWireGuard};
use egress_dataplane::{InterfaceName, NetnsRef, Peer, PodTunnelState, PublicKey, WgDeviceId};

use super::episode::{Action, TunnelStats};

/// Keepalive interval of a kicked tunnel: switching it on sends a keepalive, which starts a
/// handshake at once; it is switched off again after the handshake.
const KICK_KEEPALIVE_SECONDS: u16 = 1;

/// A failed tunnel operation (the message names the tunnel and the step).
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} the tunnel of sandbox {container_id} ({netns}): {reason}")]
pub struct TunnelOpError {
    /// What was attempted.
    pub action: &'static str,
    /// The sandbox.
    pub container_id: String,
    /// Its namespace.
    pub netns: String,
    /// Cause (with its chain).
    pub reason: String,
}

/// What failover does to pod tunnels.
#[async_trait]
pub trait PodTunnels: Send + Sync {
    /// The gateway peer's counters; `None` when the device or the peer is gone.
    async fn stats(&self, tunnel: &TunnelRecord) -> Result<Option<TunnelStats>, TunnelOpError>;
    /// Carries out `action`.
    async fn apply(&self, tunnel: &TunnelRecord, action: Action) -> Result<(), TunnelOpError>;
}

/// [`PodTunnels`] on the real executors.
#[derive(Debug, Default, Clone, Copy)]
pub struct DataplaneTunnels;

fn op_error<'a>(
    action: &'static str,
    tunnel: &'a TunnelRecord,
) -> impl FnOnce(&dyn std::error::Error) -> TunnelOpError + 'a {
    move |e| TunnelOpError {
        action,
        container_id: tunnel.container_id.clone(),
        netns: tunnel.netns.display().to_string(),
        reason: egress_runtime::error_chain(e),
    }
}

/// The pod's namespace file as this process sees it: runtimes name it under
/// `/var/run/netns`, which is `/run/netns` on the host, and the manager's image need not
/// have the `/var/run` link (the chart mounts the host's `/run/netns`).
pub(crate) fn netns_path(recorded: &Path) -> PathBuf {
    if !recorded.exists()
        && let Ok(rest) = recorded.strip_prefix("/var/run")
    {
        let alt = Path::new("/run").join(rest);
        if alt.exists() {
            return alt;
        }
    }
    recorded.to_path_buf()
}

fn device(tunnel: &TunnelRecord) -> Result<WgDeviceId, TunnelOpError> {
    let name: InterfaceName = egress_cni_proto::record::POD_TUNNEL_IFNAME
        .parse()
        .map_err(|e| op_error("name", tunnel)(&e))?;
    Ok(WgDeviceId {
        netns: NetnsRef::Path(netns_path(&tunnel.netns)),
        name,
    })
}

fn gateway_peer(tunnel: &TunnelRecord) -> Result<Peer, TunnelOpError> {
    let key = PublicKey::from_base64(tunnel.gateway_public_key.as_str())
        .map_err(|e| op_error("read the gateway key of", tunnel)(&e))?;
    Ok(PodTunnelState::gateway_peer(key, tunnel.endpoint))
}

/// The backend of one tunnel. Built per call: cheap (sockets open lazily), and the
/// userspace backend's name of the sandbox's daemon must not accumulate across pods.
fn control(tunnel: &TunnelRecord, device: &WgDeviceId) -> Arc<dyn WireGuardControl> {
    let links = Arc::new(NetlinkLinks::new());
    match tunnel.backend {
        Backend::Kernel => Arc::new(KernelWireGuard::new(links)),
        Backend::Userspace => {
            let wg = UserspaceWireGuard::new(links, UserspaceConfig::default());
            wg.name_device(device, &InterfaceName::for_pod_socket(&tunnel.container_id));
            Arc::new(wg)
        }
    }
}

#[async_trait]
impl PodTunnels for DataplaneTunnels {
    async fn stats(&self, tunnel: &TunnelRecord) -> Result<Option<TunnelStats>, TunnelOpError> {
        let device = device(tunnel)?;
        let peer = gateway_peer(tunnel)?;
        let observed = control(tunnel, &device)
            .observe(&device)
            .await
            .map_err(|e| op_error("read", tunnel)(&e))?;
        Ok(observed.and_then(|d| {
            d.peers.get(&peer.public_key).map(|p| TunnelStats {
                handshake: p.last_handshake.is_some_and(|t| t > SystemTime::UNIX_EPOCH),
                rx: p.rx_bytes,
                tx: p.tx_bytes,
            })
        }))
    }

    async fn apply(&self, tunnel: &TunnelRecord, action: Action) -> Result<(), TunnelOpError> {
        let device = device(tunnel)?;
        let peer = gateway_peer(tunnel)?;
        let (what, seconds, recreate) = match action {
            Action::Reset { kick: false } => ("reset", 0, true),
            Action::Reset { kick: true } => ("kick", KICK_KEEPALIVE_SECONDS, true),
            Action::KeepaliveOff => ("switch the keepalive off in", 0, false),
        };
        control(tunnel, &device)
            .set_peer_keepalive(&device, &peer, seconds, recreate)
            .await
            .map_err(|e| op_error(what, tunnel)(&e))
    }
}
