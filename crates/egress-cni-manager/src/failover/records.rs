//! This node's established pod tunnels, from the records the plugin writes after each
//! successful ADD (and removes at DEL) in the state directory the manager configured in the
//! conflist. A tunnel still in ADD has no record yet and is left alone: the plugin drives
//! its first handshake itself. The directory is re-read only when its modification time
//! changes (records are written by rename), and a record only when its own does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use egress_cni_proto::TunnelRecord;
use egress_cni_proto::record::{is_record_file, read_record};

/// Reads the records directory incrementally.
#[derive(Debug)]
pub struct RecordScanner {
    dir: PathBuf,
    dir_mtime: Option<SystemTime>,
    files: BTreeMap<String, (SystemTime, TunnelRecord)>,
}

impl RecordScanner {
    /// A scanner of `dir` (which may not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            dir_mtime: None,
            files: BTreeMap::new(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current records when the directory changed since the last call (or `force`),
    /// else `None`. Unreadable records are logged and skipped (a half-written one cannot
    /// exist: the plugin renames complete files into place).
    pub fn scan(&mut self, force: bool) -> Option<Vec<TunnelRecord>> {
        let mtime = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        if !force && mtime.is_some() && mtime == self.dir_mtime {
            return None;
        }
        self.dir_mtime = mtime;
        let names: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| is_record_file(n))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "failed to list tunnel records");
                return None;
            }
        };
        let mut files = BTreeMap::new();
        for name in names {
            let path = self.dir.join(&name);
            let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
                continue;
            };
            match self.files.remove(&name) {
                Some((m, rec)) if m == modified => {
                    files.insert(name, (m, rec));
                }
                _ => match read_record(&path) {
                    Ok(rec) => {
                        files.insert(name, (modified, rec));
                    }
                    Err(e) => tracing::warn!("{}", crate::error_chain(&e)),
                },
            }
        }
        self.files = files;
        Some(self.files.values().map(|(_, r)| r.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn record(id: &str, ns: &str) -> String {
        format!(
            r#"{{"containerId":"{id}","netns":"/run/netns/{id}","podIp":"10.244.0.5","backend":"kernel",
                "gateway":"gw","endpoint":"10.224.0.9:6000",
                "gatewayPublicKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","podNamespace":"{ns}","podName":"p"}}"#
        )
    }

    #[test]
    fn records_are_read_when_the_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RecordScanner::new(dir.path().join("pods"));
        assert_eq!(s.scan(false), Some(vec![]), "missing directory: no tunnels");
        std::fs::create_dir(dir.path().join("pods")).unwrap();
        std::fs::write(dir.path().join("pods/c1.json"), record("c1", "a")).unwrap();
        std::fs::write(dir.path().join("pods/c2.json.tmp"), "{").unwrap();
        std::fs::write(dir.path().join("pods/bad.json"), "{").unwrap();
        let got = s.scan(false).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].container_id, "c1");
        assert_eq!(got[0].pod_namespace, "a");
        assert_eq!(s.scan(false), None, "nothing changed");
        assert_eq!(s.scan(true).unwrap().len(), 1, "forced");
        std::fs::remove_file(dir.path().join("pods/c1.json")).unwrap();
        assert_eq!(s.scan(false), Some(vec![]));
    }
}
