//! egress-pod-tunnel: one pod's egress tunnel, shared by the two programs that build it. The
//! kube-egress-cni plugin builds it at ADD (the first packet of a new pod already leaves
//! through the gateway) and removes it at DEL; egress-cni-manager attaches, moves and
//! detaches the tunnels of pods that are already running when their annotation or gateway
//! changes. Both go through the same steps ([`tunnel::PodTunnel`]: key, tunnel, first
//! handshake ([`handshake::wait_handshake`]), routes), the same records in the plugin's state
//! directory ([`tunnel::TunnelSpec`] per tunnel, [`sandbox::SandboxRecord`] per sandbox) and
//! the same per-sandbox lock ([`sandbox::SandboxLock`]), so a DEL never races an attach.

pub mod dataplane;
pub mod handshake;
pub mod sandbox;
pub mod tunnel;

/// Default directory of per-sandbox state files (the plugin's `stateDir`).
pub const DEFAULT_STATE_DIR: &str = "/run/egress-gateway/pods";
