//! The record of everything one simulator run created (namespaces, processes, files), kept in
//! `/run/egress-sim/<id>/state.json` and rewritten before each new resource exists, so
//! `egress-sim down` can remove all of it, also after a crash.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where run directories live.
pub const STATE_ROOT: &str = "/run/egress-sim";

/// A process we started, identified beyond its PID (PIDs are reused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRecord {
    /// What it is (for messages).
    pub name: String,
    /// PID.
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
}

/// Everything one run owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    /// Run ID (also the prefix of every namespace name).
    pub id: String,
    /// The `egress-sim` process that owns the run.
    pub owner: Option<ProcessRecord>,
    /// Scenario file.
    pub scenario: String,
    /// Network namespaces (names under /run/netns).
    pub namespaces: Vec<String>,
    /// Processes started.
    pub processes: Vec<ProcessRecord>,
    /// Files and directories outside the run directory.
    pub paths: Vec<PathBuf>,
    /// Kubeconfig for kubectl (set once the API server runs).
    pub kubeconfig: Option<PathBuf>,
    /// The host's `fs.inotify.max_user_instances` before the run: the CNI managers raise it
    /// (as on a real node), `down` puts it back when no other run is left.
    #[serde(default)]
    pub inotify_instances: Option<u64>,
}

/// Where the host keeps the inotify instance limit the CNI managers raise.
pub const INOTIFY_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// The host's inotify instance limit now.
pub fn inotify_instances() -> Option<u64> {
    std::fs::read_to_string(INOTIFY_INSTANCES)
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// Failed to keep or read the record.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Filesystem.
    #[error("failed to {what} {path}: {source}")]
    Io {
        /// Action.
        what: &'static str,
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Bad JSON.
    #[error("failed to parse {path}: {source}")]
    Parse {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// A run's directory and its record, saved on every change.
#[derive(Debug)]
pub struct StateFile {
    dir: PathBuf,
    state: RunState,
}

impl StateFile {
    /// Creates a new run directory under `root` with a fresh ID.
    pub fn create(root: &Path, scenario: &str) -> Result<Self, StateError> {
        std::fs::create_dir_all(root).map_err(io("create", root))?;
        let id = loop {
            let id = format!("es{:04x}", fastrand::u16(..));
            if !root.join(&id).exists() {
                break id;
            }
        };
        let dir = root.join(&id);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let file = Self {
            dir,
            state: RunState {
                id,
                owner: process_record("egress-sim", std::process::id() as i32),
                scenario: scenario.to_string(),
                inotify_instances: inotify_instances(),
                ..Default::default()
            },
        };
        file.save()?;
        Ok(file)
    }

    /// Run ID.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// Run directory (logs, sockets, configs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// Changes the record and saves it.
    pub fn update(&mut self, f: impl FnOnce(&mut RunState)) -> Result<(), StateError> {
        f(&mut self.state);
        self.save()
    }

    fn save(&self) -> Result<(), StateError> {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(&self.state).map_err(|source| StateError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))
    }
}

/// Reads every run recorded under `root` (directory, record).
pub fn list_runs(root: &Path) -> Result<Vec<(PathBuf, RunState)>, StateError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("read", root)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io("read", root))?;
        let dir = entry.path();
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
                path: path.display().to_string(),
                source,
            })?,
            // A directory without a record: the run died before its first save.
            Err(_) => RunState {
                id: entry.file_name().to_string_lossy().into_owned(),
                ..Default::default()
            },
        };
        out.push((dir, state));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Start time of a process in clock ticks, if it exists.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// A record of a live process.
pub fn process_record(name: &str, pid: i32) -> Option<ProcessRecord> {
    Some(ProcessRecord {
        name: name.to_string(),
        pid,
        start_ticks: start_ticks(pid)?,
    })
}

/// Whether the recorded process is still the same live process.
pub fn is_alive(p: &ProcessRecord) -> bool {
    start_ticks(p.pid) == Some(p.start_ticks) && !is_zombie(p.pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn record_round_trips_and_lists() {
        let root = tempfile::tempdir().unwrap();
        let mut f = StateFile::create(root.path(), "demo.yaml").unwrap();
        f.update(|s| s.namespaces.push(format!("{}-vnet", s.id)))
            .unwrap();
        let runs = list_runs(root.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].1.namespaces, vec![format!("{}-vnet", f.id())]);
        assert_eq!(runs[0].1.scenario, "demo.yaml");
        assert!(is_alive(runs[0].1.owner.as_ref().unwrap()));
        assert!(list_runs(&root.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn a_reused_pid_is_not_the_recorded_process() {
        let mut me = process_record("me", std::process::id() as i32).unwrap();
        assert!(is_alive(&me));
        me.start_ticks += 1;
        assert!(!is_alive(&me));
    }
}
