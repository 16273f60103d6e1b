//! What the plugin asks of the data plane for one pod, as a narrow trait: make a key, build
//! the tunnel (wg0 with its UDP socket in the node namespace, the gateway peer, MTU), read
//! the latest handshake and start a fresh one, then route through it (routes, ingress return
//! path, rp_filter), remove it all, and list drift. [`TunnelSpec`] is also the per-sandbox
//! record DEL and CHECK read back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use egress_cni_proto::{DefaultRoute, WireKey};

use crate::sandbox::SandboxRecord;

/// Name of the tunnel interface inside the pod.
pub use egress_cni_proto::record::POD_TUNNEL_IFNAME;
/// Connection mark and routing table of the ingress return path (the original's 0x2222).
pub const INGRESS_MARK: u32 = 0x2222;

/// A data-plane failure (message already names the step and namespace).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TunnelError(pub String);

/// Everything needed to build, check or remove one pod's tunnel: its sandbox and its
/// gateway. Holds no private key. Serialised flat (the sandbox's fields beside the
/// gateway's), as records were before the sandbox part had a type of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelSpec {
    /// The sandbox.
    #[serde(flatten)]
    pub sandbox: SandboxRecord,
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
    /// The pod's IPv6 goes through the gateway too (its SGC has IPv6 and the pod an IPv6
    /// address); otherwise IPv6 routes are left alone. Absent in older records: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
}

impl TunnelSpec {
    /// Name the device is created under in the node namespace (`wgp` + 12 hex digits of a
    /// hash of the container ID: unique per sandbox; with wireguard-go it is also the daemon's
    /// UAPI socket name, which stays after the rename to wg0).
    pub fn host_ifname(&self) -> String {
        egress_dataplane::InterfaceName::for_pod_socket(&self.sandbox.container_id)
            .as_str()
            .to_owned()
    }

    /// CIDRs that bypass the tunnel (staticEgressGateway) or use it (azureNetworking).
    pub fn routed_cidrs(&self) -> Vec<IpNet> {
        match self.default_route {
            DefaultRoute::StaticEgressGateway => {
                let mut all = self.exclude_cidrs.clone();
                all.extend(self.sandbox.node_excluded_cidrs.iter().copied());
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
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::sandbox::write_private(
            &Self::record_path(state_dir, &self.sandbox.container_id),
            &bytes,
        )
    }

    /// Reads the record of a sandbox, if any.
    pub fn load(state_dir: &Path, container_id: &str) -> std::io::Result<Option<Self>> {
        crate::sandbox::read_json(&Self::record_path(state_dir, container_id))
    }

    /// Removes the record; missing is fine.
    pub fn forget(state_dir: &Path, container_id: &str) -> std::io::Result<()> {
        crate::sandbox::remove_if_present(&Self::record_path(state_dir, container_id))
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
    /// sandbox's device in the node namespace); idempotent. For a namespace about to go
    /// (DEL): the routes the tunnel replaced are not put back.
    fn teardown(
        &self,
        spec: Option<&TunnelSpec>,
        netns: &Path,
        container_id: &str,
        state_dir: &Path,
    ) -> Result<(), TunnelError>;
    /// Removes the tunnel of a pod that keeps running (its gateway annotation went) and puts
    /// back the default route via `eth`'s gateway, so the pod egresses as a pod without a
    /// gateway does; idempotent.
    fn detach(&self, spec: &TunnelSpec) -> Result<(), TunnelError>;
    /// Differences between the pod namespace and `spec`, one line each.
    fn drift(&self, spec: &TunnelSpec) -> Result<Vec<String>, TunnelError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use egress_cni_proto::Backend;

    /// The manager reads these records (`egress_cni_proto::TunnelRecord`): what the plugin
    /// writes must stay readable there, field for field.
    #[test]
    fn the_manager_reads_what_the_plugin_writes() {
        let key = WireKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let spec = TunnelSpec {
            sandbox: SandboxRecord {
                netns: "/run/netns/p1".into(),
                backend: Backend::Userspace,
                pod_namespace: "ns1".into(),
                pod_name: "web-0".into(),
                ..crate::sandbox::test_record(Path::new(crate::DEFAULT_STATE_DIR), "c1")
            },
            gateway: "gw".into(),
            endpoint: "10.224.0.9:6000".parse().unwrap(),
            gateway_public_key: key.clone(),
            pod_public_key: key.clone(),
            default_route: DefaultRoute::StaticEgressGateway,
            exclude_cidrs: vec![],
            ipv6: false,
        };
        let dir = tempfile::tempdir().unwrap();
        spec.save(dir.path()).unwrap();
        let read =
            egress_cni_proto::record::read_record(&TunnelSpec::record_path(dir.path(), "c1"))
                .unwrap();
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(TunnelSpec::record_path(dir.path(), "c1")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["netns"], "/run/netns/p1", "flat, as before: {json}");
        assert_eq!(
            TunnelSpec::load(dir.path(), "c1").unwrap().as_ref(),
            Some(&spec)
        );
        assert_eq!(
            read,
            egress_cni_proto::TunnelRecord {
                container_id: "c1".into(),
                netns: "/run/netns/p1".into(),
                pod_ip: spec.sandbox.pod_ip,
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
