//! The namespaces where a pod without the gateway annotation may still use a gateway, because
//! some StaticGatewayConfiguration there has a `podSelector`. The manager writes this file
//! beside its socket whenever that set changes (atomically: a temporary file renamed over);
//! the plugin reads it at ADD so that a pod without the annotation in any other namespace
//! starts without a round trip to the manager, as it always did. A missing or unreadable file
//! means "unknown": the plugin then asks the manager (which answers from its caches).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name, in the socket's directory (root-only, as the socket).
pub const FILE_NAME: &str = "selector-namespaces.json";

/// Where the manager listening on `socket_path` keeps the file.
pub fn path(socket_path: &Path) -> PathBuf {
    socket_path.with_file_name(FILE_NAME)
}

/// The namespaces with at least one usable `podSelector`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SelectorNamespaces {
    /// Namespace names.
    pub namespaces: BTreeSet<String>,
}

impl SelectorNamespaces {
    /// Reads the file; `None` when it is missing or cannot be read or parsed (the caller
    /// must then treat every namespace as possibly selecting).
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Whether a pod of `namespace` without the annotation may use a gateway.
    pub fn may_select(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    /// Writes the file atomically (a reader sees the old or the new set, never half).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Removes the file (the set is unknown until the next [`save`](Self::save)); a missing
    /// file is fine.
    pub fn remove(path: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_missing_or_garbage_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(&dir.path().join("cni.sock"));
        assert_eq!(p, dir.path().join(FILE_NAME));
        assert_eq!(SelectorNamespaces::load(&p), None);
        let set = SelectorNamespaces {
            namespaces: ["a".to_string(), "b".to_string()].into(),
        };
        set.save(&p).unwrap();
        let got = SelectorNamespaces::load(&p).unwrap();
        assert!(got.may_select("a") && !got.may_select("c"));
        std::fs::write(&p, b"{not json").unwrap();
        assert_eq!(SelectorNamespaces::load(&p), None);
        SelectorNamespaces::remove(&p).unwrap();
        SelectorNamespaces::remove(&p).unwrap();
        assert!(!p.exists());
    }
}
