//! The probe state on disk, for the `lb-probe` keeper that answers the load balancer while
//! no daemon runs (restart, crash, OOM kill): the daemon writes which gateways are
//! programmed and whether the node drains, atomically (temporary file and rename), at every
//! change and as a heartbeat; the keeper answers from the latest file while its heartbeat is
//! fresh. The file lives on a host path under `/run`, so it survives the daemon's pod being
//! replaced and, like the kernel state it describes, not a reboot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::probe::{ProbeSnapshot, ProbeState};

/// Default path of the state file (a host path the chart mounts into both containers).
pub const DEFAULT_STATE_FILE: &str = "/run/egress-gateway-daemon/lb-probe.json";

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeFile {
    /// What the probe answers.
    #[serde(flatten)]
    pub state: ProbeSnapshot,
    /// When the daemon last wrote it (milliseconds since the Unix epoch).
    pub heartbeat_unix_ms: u64,
    /// The writing daemon's process ID (for people reading the file).
    pub pid: u32,
}

/// Reading the file failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFileError {
    /// Could not read or write it.
    #[error("failed to {action} the probe state file {path}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a probe state file.
    #[error("failed to parse the probe state file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ProbeFile {
    /// Whether the heartbeat is at most `stale_after` old at `now`.
    pub fn fresh(&self, now: SystemTime, stale_after: Duration) -> bool {
        let age = unix_ms(now).saturating_sub(self.heartbeat_unix_ms);
        u128::from(age) <= stale_after.as_millis()
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProbeFileError {
    let path = path.to_path_buf();
    move |source| ProbeFileError::Io {
        action,
        path,
        source,
    }
}

/// Writes `file` to `path` atomically (0644: the keeper need not be root).
pub fn write(path: &Path, file: &ProbeFile) -> Result<(), ProbeFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error("create the directory of", path))?;
    }
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec(file).map_err(|source| ProbeFileError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io_error("write", path))?;
    f.write_all(&body).map_err(io_error("write", path))?;
    std::fs::rename(&tmp, path).map_err(io_error("rename into place", path))
}

/// Reads the file.
pub fn read(path: &Path) -> Result<ProbeFile, ProbeFileError> {
    let bytes = std::fs::read(path).map_err(io_error("read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| ProbeFileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

fn current(probe: &ProbeState) -> ProbeFile {
    ProbeFile {
        state: probe.snapshot(),
        heartbeat_unix_ms: unix_ms(SystemTime::now()),
        pid: std::process::id(),
    }
}

/// Keeps `path` in step with `probe` until `stop`, with a heartbeat every `heartbeat`. Until
/// this instance has computed its programmed set (its first full cycle), the previous
/// instance's file is left as it is, so a restart never answers the load balancer with an
/// empty set; a drain is written at once regardless.
pub async fn keep_written(
    probe: ProbeState,
    path: PathBuf,
    heartbeat: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_error: Option<String> = None;
    loop {
        let stopping = tokio::select! {
            () = probe.changed() => false,
            () = tokio::time::sleep(heartbeat) => false,
            _ = stop.wait_for(|v| *v) => true,
        };
        if probe.started() || probe.draining() {
            match write(&path, &current(&probe)) {
                Ok(()) => last_error = None,
                Err(e) => {
                    let text = egress_runtime::error_chain(&e);
                    if last_error.as_deref() != Some(text.as_str()) {
                        tracing::error!("{text}");
                        last_error = Some(text);
                    }
                }
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn round_trip_and_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/lb-probe.json");
        let file = ProbeFile {
            state: ProbeSnapshot {
                programmed: ["u1".to_owned()].into(),
                draining: None,
            },
            heartbeat_unix_ms: 1_000_000,
            pid: 7,
        };
        write(&path, &file).unwrap();
        assert_eq!(read(&path).unwrap(), file);
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        assert!(file.fresh(at(1_060_000), Duration::from_secs(60)));
        assert!(!file.fresh(at(1_060_001), Duration::from_secs(60)));
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("parse"));
    }

    #[tokio::test]
    async fn a_new_instance_keeps_the_old_file_until_its_first_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lb-probe.json");
        let old = ProbeFile {
            state: ProbeSnapshot {
                programmed: ["u1".to_owned()].into(),
                draining: None,
            },
            heartbeat_unix_ms: unix_ms(SystemTime::now()),
            pid: 1,
        };
        write(&path, &old).unwrap();
        let probe = ProbeState::default();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(keep_written(
            probe.clone(),
            path.clone(),
            Duration::from_millis(20),
            stop,
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(read(&path).unwrap(), old, "not started: left alone");
        probe.set_programmed(["u1".to_owned(), "u2".to_owned()].into());
        probe.set_started();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = read(&path).unwrap();
        assert_eq!(now.state.programmed.len(), 2);
        assert_eq!(now.pid, std::process::id());
        probe.start_draining();
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert!(
            read(&path).unwrap().state.draining.is_some(),
            "the drain is persisted"
        );
    }
}
