//! What the plugin asks of the data plane for one pod, as a narrow trait: make a key, build
//! the tunnel (wg0 with its UDP socket in the node namespace, the gateway peer, MTU), read
//! the latest handshake and start a fresh one, then route through it (routes, ingress return
//! path, rp_filter), remove it all, and list drift. [`TunnelSpec`] is also the per-sandbox
//! record DEL and CHECK read back.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use egress_cni_proto::{DefaultRoute, WireKey};

use crate::config::Backend;

/// Name of the tunnel interface inside the pod.
pub use egress_cni_proto::record::POD_TUNNEL_IFNAME;
/// Connection mark and routing table of the ingress return path (the original's 0x2222).
pub const INGRESS_MARK: u32 = 0x2222;

/// A data-plane failure (message already names the step and namespace).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TunnelError(pub String);

/// Everything needed to build, check or remove one pod's tunnel. Holds no private key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelSpec {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: PathBuf,
    /// `CNI_IFNAME` (the main plugin's interface, `eth0`).
    pub eth: String,
    /// Pod IPv4 address.
    pub pod_ip: Ipv4Addr,
    /// `eth`'s IPv4 gateway.
    pub eth_gateway: Ipv4Addr,
    /// Tunnel MTU.
    pub mtu: u32,
    /// WireGuard implementation.
    pub backend: Backend,
    /// SGC name.
    pub gateway: String,
    /// Gateway endpoint (ILB frontend IP and port).
    pub endpoint: SocketAddr,
    /// Gateway public key.
    pub gateway_public_key: WireKey,
    /// The pod's public key.
    pub pod_public_key: WireKey,
    /// Route mode.
    pub default_route: DefaultRoute,
    /// SGC `excludeCidrs`.
    pub exclude_cidrs: Vec<IpNet>,
    /// Node exception CIDRs from the conflist.
    pub node_excluded_cidrs: Vec<IpNet>,
    /// The plugin's state directory (records; wireguard-go logs under `wireguard-go/`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The pod's namespace (the manager finds the SGC of a tunnel by it).
    #[serde(default)]
    pub pod_namespace: String,
    /// The pod's name.
    #[serde(default)]
    pub pod_name: String,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(crate::config::DEFAULT_STATE_DIR)
}

impl TunnelSpec {
    /// Name the device is created under in the node namespace (`wgp` + 12 hex digits of a
    /// hash of the container ID: unique per sandbox; with wireguard-go it is also the daemon's
    /// UAPI socket name, which stays after the rename to wg0).
    pub fn host_ifname(&self) -> String {
        egress_dataplane::InterfaceName::for_pod_socket(&self.container_id)
            .as_str()
            .to_owned()
    }

    /// CIDRs that bypass the tunnel (staticEgressGateway) or use it (azureNetworking).
    pub fn routed_cidrs(&self) -> Vec<IpNet> {
        match self.default_route {
            DefaultRoute::StaticEgressGateway => {
                let mut all = self.exclude_cidrs.clone();
                all.extend(self.node_excluded_cidrs.iter().copied());
                all.sort();
                all.dedup();
                all
            }
            // The node exceptions never enter the tunnel in this mode (as in the original).
            DefaultRoute::AzureNetworking => self.exclude_cidrs.clone(),
        }
    }

    /// Path of this sandbox's record.
    pub fn record_path(state_dir: &Path, container_id: &str) -> PathBuf {
        state_dir.join(egress_cni_proto::record::record_file_name(container_id))
    }

    /// Writes the record (directory 0700, file 0600, atomic rename).
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)?;
        let path = Self::record_path(state_dir, &self.container_id);
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    }

    /// Reads the record of a sandbox, if any.
    pub fn load(state_dir: &Path, container_id: &str) -> std::io::Result<Option<Self>> {
        match std::fs::read(Self::record_path(state_dir, container_id)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the record; missing is fine.
    pub fn forget(state_dir: &Path, container_id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(Self::record_path(state_dir, container_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The data-plane operations of the plugin.
pub trait PodTunnel {
    /// Private key type (never serialised or logged).
    type Key;
    /// A fresh key pair; the public half is sent to the manager. Fails when the data plane
    /// cannot be used at all, before anything is registered.
    fn generate_key(&self) -> Result<(Self::Key, WireKey), TunnelError>;
    /// Builds the tunnel (wg0, the gateway peer, MTU, up) and starts a handshake, without
    /// changing how the pod routes: until [`PodTunnel::route`], the namespace routes as the
    /// main plugin made it. On failure it removes whatever it created.
    fn setup(&self, spec: &TunnelSpec, key: &Self::Key) -> Result<(), TunnelError>;
    /// Latest handshake with the gateway, if any.
    fn latest_handshake(&self, spec: &TunnelSpec) -> Result<Option<SystemTime>, TunnelError>;
    /// Kicks off a new handshake attempt now (instead of waiting for WireGuard's 5 s retry).
    fn retry_handshake(&self, spec: &TunnelSpec) -> Result<(), TunnelError>;
    /// After the handshake: routes for the mode, ingress return path, loose rp_filter. On
    /// failure it removes the tunnel and puts back the routes the main plugin made, so the
    /// caller must not tear down again (that could delete a restored route).
    fn route(&self, spec: &TunnelSpec, key: &Self::Key) -> Result<(), TunnelError>;
    /// Removes the tunnel of `spec` (or, without a record, any wg0 in `netns` and the
    /// sandbox's device in the node namespace); idempotent.
    fn teardown(
        &self,
        spec: Option<&TunnelSpec>,
        netns: &Path,
        container_id: &str,
        state_dir: &Path,
    ) -> Result<(), TunnelError>;
    /// Differences between the pod namespace and `spec`, one line each.
    fn drift(&self, spec: &TunnelSpec) -> Result<Vec<String>, TunnelError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The manager reads these records (`egress_cni_proto::TunnelRecord`): what the plugin
    /// writes must stay readable there, field for field.
    #[test]
    fn the_manager_reads_what_the_plugin_writes() {
        let key = WireKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let spec = TunnelSpec {
            container_id: "c1".into(),
            netns: "/run/netns/p1".into(),
            eth: "eth0".into(),
            pod_ip: "10.244.0.5".parse().unwrap(),
            eth_gateway: "10.244.0.1".parse().unwrap(),
            mtu: 1420,
            backend: Backend::Userspace,
            gateway: "gw".into(),
            endpoint: "10.224.0.9:6000".parse().unwrap(),
            gateway_public_key: key.clone(),
            pod_public_key: key.clone(),
            default_route: DefaultRoute::StaticEgressGateway,
            exclude_cidrs: vec![],
            node_excluded_cidrs: vec![],
            state_dir: "/run/egress-gateway/pods".into(),
            pod_namespace: "ns1".into(),
            pod_name: "web-0".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        spec.save(dir.path()).unwrap();
        let read =
            egress_cni_proto::record::read_record(&TunnelSpec::record_path(dir.path(), "c1"))
                .unwrap();
        assert_eq!(
            read,
            egress_cni_proto::TunnelRecord {
                container_id: "c1".into(),
                netns: "/run/netns/p1".into(),
                pod_ip: spec.pod_ip,
                backend: Backend::Userspace,
                gateway: "gw".into(),
                endpoint: spec.endpoint,
                gateway_public_key: key,
                pod_namespace: "ns1".into(),
                pod_name: "web-0".into(),
            }
        );
    }
}
