//! What the plugin records of every sandbox it served an ADD for, annotated or not, and the
//! per-sandbox lock. The record (`<stateDir>/sandboxes/<container id>.json`, 0600 in 0700
//! directories, written by rename) is how the manager learns a running pod's network
//! namespace, interface and address when the pod is attached to a gateway after it started:
//! the manager only ever acts on sandboxes recorded here, i.e. ones this node's runtime
//! created through the plugin. The lock (`<container id>.lock` beside it, `flock`) is held by
//! the plugin for a whole ADD or DEL and by the manager for a whole attach or detach, so the
//! two never change one sandbox at the same time; DEL removes the lock file while holding
//! it, and [`SandboxLock::acquire`] retries when the file it locked was removed meanwhile.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use egress_cni_proto::{AddReply, Backend, PodRef, WireKey};

use crate::tunnel::TunnelSpec;

/// Subdirectory of the state directory holding sandbox records and locks.
pub const SANDBOX_DIR: &str = "sandboxes";

/// One sandbox as ADD saw it: everything a tunnel needs besides the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRecord {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: PathBuf,
    /// `CNI_IFNAME` (the main plugin's interface).
    pub eth: String,
    /// Pod IPv4 address (from the main plugin's result).
    pub pod_ip: Ipv4Addr,
    /// `eth`'s IPv4 gateway.
    pub eth_gateway: Ipv4Addr,
    /// The pod's IPv6 address (dual-stack pods; absent in records written before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ipv6: Option<Ipv6Addr>,
    /// `eth`'s IPv6 gateway, when the main plugin gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth_ipv6_gateway: Option<Ipv6Addr>,
    /// Tunnel MTU from the plugin's config.
    pub mtu: u32,
    /// WireGuard implementation from the plugin's config.
    pub backend: Backend,
    /// Node exception CIDRs from the plugin's config.
    pub node_excluded_cidrs: Vec<IpNet>,
    /// The plugin's state directory (records; wireguard-go logs under `wireguard-go/`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// `K8S_POD_NAMESPACE` (empty in tunnel records written before it was recorded).
    #[serde(default)]
    pub pod_namespace: String,
    /// `K8S_POD_NAME` (likewise).
    #[serde(default)]
    pub pod_name: String,
    /// `K8S_POD_UID` when the runtime passed it (the manager then refuses a re-created pod
    /// of the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(crate::DEFAULT_STATE_DIR)
}

/// File name of a sandbox's record or lock: the container ID with anything but
/// `[A-Za-z0-9_-]` dropped (runtime IDs are hex), so no ID can name a path elsewhere.
fn file_stem(container_id: &str) -> String {
    container_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), creating its
/// directory 0700 and the file 0600: records are root's alone.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Reads a JSON record; a missing file is `None`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `path`; missing is fine.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl SandboxRecord {
    /// The pod, as the manager's requests name it.
    pub fn pod(&self) -> PodRef {
        PodRef {
            namespace: self.pod_namespace.clone(),
            name: self.pod_name.clone(),
            uid: self.pod_uid.clone(),
        }
    }

    /// Directory of sandbox records under `state_dir`.
    pub fn dir(state_dir: &Path) -> PathBuf {
        state_dir.join(SANDBOX_DIR)
    }

    /// Path of this sandbox's record.
    pub fn path(state_dir: &Path, container_id: &str) -> PathBuf {
        Self::dir(state_dir).join(format!("{}.json", file_stem(container_id)))
    }

    /// Writes the record.
    pub fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        write_private(&Self::path(&self.state_dir, &self.container_id), &bytes)
    }

    /// Reads the record of a sandbox, if any.
    pub fn load(state_dir: &Path, container_id: &str) -> std::io::Result<Option<Self>> {
        read_json(&Self::path(state_dir, container_id))
    }

    /// Removes the record; missing is fine.
    pub fn forget(state_dir: &Path, container_id: &str) -> std::io::Result<()> {
        remove_if_present(&Self::path(state_dir, container_id))
    }

    /// Every readable record under `state_dir` (a missing directory is none); unreadable
    /// ones are logged and skipped.
    pub fn list(state_dir: &Path) -> std::io::Result<Vec<Self>> {
        let dir = Self::dir(state_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match read_json::<Self>(&path) {
                Ok(Some(r)) => records.push(r),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable sandbox record skipped")
                }
            }
        }
        records.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(records)
    }

    /// The tunnel of this sandbox to the gateway the manager answered with.
    pub fn tunnel_spec(&self, reply: &AddReply, pod_public_key: WireKey) -> TunnelSpec {
        TunnelSpec {
            sandbox: self.clone(),
            gateway: reply.gateway.clone(),
            endpoint: reply.endpoint,
            gateway_public_key: reply.gateway_public_key.clone(),
            pod_public_key,
            default_route: reply.default_route,
            exclude_cidrs: reply.exclude_cidrs.clone(),
            // Only a pod that has an IPv6 address routes IPv6 through the gateway.
            ipv6: reply.ipv6 && self.pod_ipv6.is_some(),
        }
    }
}

/// An exclusive lock on one sandbox, released on drop.
#[derive(Debug)]
pub struct SandboxLock {
    path: PathBuf,
    _file: Flock<File>,
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl SandboxLock {
    /// Waits for the lock of `container_id`'s sandbox (blocking).
    pub fn acquire(state_dir: &Path, container_id: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = SandboxRecord::dir(state_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = dir.join(format!("{}.lock", file_stem(container_id)));
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            let locked = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| std::io::Error::from(errno))?;
            // The holder before us may have been a DEL that removed the file: then this lock
            // guards nothing and the current file (if any) is the one to lock.
            if same_file(&locked, &path) {
                return Ok(Self {
                    path,
                    _file: locked,
                });
            }
        }
    }

    /// Releases the lock and removes its file (DEL: the sandbox is gone). A waiter holding
    /// the removed file notices and locks the new one.
    pub fn remove(self) {
        if let Err(e) = remove_if_present(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "failed to remove a sandbox lock");
        }
    }
}

/// An IPv4-only sandbox of pod `ns/p` for tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_record(state_dir: &Path, container_id: &str) -> SandboxRecord {
    SandboxRecord {
        container_id: container_id.into(),
        netns: "/run/netns/p".into(),
        eth: "eth0".into(),
        pod_ip: "10.244.0.5".parse().unwrap(),
        eth_gateway: "10.244.0.1".parse().unwrap(),
        pod_ipv6: None,
        eth_ipv6_gateway: None,
        mtu: 1420,
        backend: Backend::Kernel,
        node_excluded_cidrs: vec![],
        state_dir: state_dir.to_path_buf(),
        pod_namespace: "ns".into(),
        pod_name: "p".into(),
        pod_uid: Some("u1".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn records_round_trip_and_ids_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let r = test_record(dir.path(), "../../etc/x");
        r.save().unwrap();
        assert!(dir.path().join("sandboxes/etcx.json").exists());
        assert_eq!(
            SandboxRecord::load(dir.path(), "../../etc/x").unwrap(),
            Some(r.clone())
        );
        std::fs::write(dir.path().join("sandboxes/bad.json"), "{").unwrap();
        assert_eq!(SandboxRecord::list(dir.path()).unwrap(), vec![r]);
        SandboxRecord::forget(dir.path(), "../../etc/x").unwrap();
        SandboxRecord::forget(dir.path(), "../../etc/x").unwrap();
        assert_eq!(
            SandboxRecord::load(dir.path(), "../../etc/x").unwrap(),
            None
        );
    }

    #[test]
    fn the_lock_excludes_and_survives_removal_by_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = SandboxLock::acquire(dir.path(), "c1").unwrap();
        let (tx, rx) = mpsc::channel();
        let state = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let lock = SandboxLock::acquire(&state, "c1").unwrap();
            tx.send(()).unwrap();
            lock
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "second holder must wait"
        );
        held.remove();
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let second = waiter.join().unwrap();
        // The waiter holds the file that exists now, so a third must wait for it.
        let state = dir.path().to_path_buf();
        let (tx, rx) = mpsc::channel();
        let third = std::thread::spawn(move || {
            let _lock = SandboxLock::acquire(&state, "c1").unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(second);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        third.join().unwrap();
    }
}
