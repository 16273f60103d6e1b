//! The per-sandbox tunnel record: after a successful ADD the plugin writes one JSON file per
//! sandbox (`<stateDir>/<container id>.json`, 0600 in a 0700 directory, no private key) that
//! DEL and CHECK read back, and that the manager reads to find the node's established pod
//! tunnels when a gateway fails over (it re-handshakes them). This module holds the fields
//! both sides rely on; the plugin's own type (`kube-egress-cni`'s `TunnelSpec`) writes more,
//! which a reader ignores.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::WireKey;

/// Name of the tunnel interface inside the pod.
pub const POD_TUNNEL_IFNAME: &str = "wg0";

/// WireGuard implementation of a pod tunnel (`wireguardBackend` in the plugin's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// Kernel WireGuard (production nodes).
    #[default]
    Kernel,
    /// wireguard-go (nodes or test machines without the kernel module).
    Userspace,
}

impl Backend {
    /// The configuration value (`kernel`, `userspace`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
        }
    }
}

/// What the manager reads of a plugin record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelRecord {
    /// `CNI_CONTAINERID` of the sandbox.
    pub container_id: String,
    /// `CNI_NETNS`: the pod's network namespace (holds `wg0`).
    pub netns: PathBuf,
    /// Pod IPv4 address.
    pub pod_ip: Ipv4Addr,
    /// WireGuard implementation.
    pub backend: Backend,
    /// Name of the StaticGatewayConfiguration (in the pod's namespace).
    pub gateway: String,
    /// Gateway endpoint (ILB frontend IP and port).
    pub endpoint: SocketAddr,
    /// Gateway public key (the peer of `wg0`).
    pub gateway_public_key: WireKey,
    /// The pod's namespace; empty in records written before it was recorded.
    #[serde(default)]
    pub pod_namespace: String,
    /// The pod's name; empty in records written before it was recorded.
    #[serde(default)]
    pub pod_name: String,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be read.
    #[error("failed to read tunnel record {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a record.
    #[error("failed to parse tunnel record {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The file name of a sandbox's record in the state directory (the container ID reduced to
/// `[A-Za-z0-9_-]`, so no ID can name a path outside the directory).
pub fn record_file_name(container_id: &str) -> String {
    let safe: String = container_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("{safe}.json")
}

/// Whether a directory entry is a record (not the plugin's temporary file or anything else).
pub fn is_record_file(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.')
}

/// Reads one record.
pub fn read_record(path: &Path) -> Result<TunnelRecord, RecordError> {
    let bytes = std::fs::read(path).map_err(|source| RecordError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn records_of_older_plugins_read_without_the_pod() {
        let json = format!(
            r#"{{"containerId":"c1","netns":"/run/netns/p","eth":"eth0","podIp":"10.244.0.5",
                "ethGateway":"10.244.0.1","mtu":1420,"backend":"userspace","gateway":"gw",
                "endpoint":"10.224.0.9:6000","gatewayPublicKey":"{KEY}","podPublicKey":"{KEY}",
                "defaultRoute":"staticEgressGateway","excludeCidrs":[],"nodeExcludedCidrs":[]}}"#
        );
        let r: TunnelRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(r.backend, Backend::Userspace);
        assert_eq!(r.endpoint, "10.224.0.9:6000".parse().unwrap());
        assert_eq!((r.pod_namespace.as_str(), r.pod_name.as_str()), ("", ""));
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(record_file_name("../../etc/x"), "etcx.json");
        assert!(is_record_file("abc.json"));
        assert!(!is_record_file("abc.json.tmp"));
        assert!(!is_record_file(".abc.json"));
    }

    #[test]
    fn a_bad_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, "{}").unwrap();
        let e = read_record(&p).unwrap_err().to_string();
        assert!(e.contains("x.json"), "{e}");
        let e = read_record(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed to read"), "{e}");
    }
}
