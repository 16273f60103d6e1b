//! Installs our chained conflist into the CNI config directory and keeps it following the main
//! config: atomic write (temporary file + rename) only when the content changes, removal when
//! the main config disappears or on uninstall. The loop polls the directory (a few stat and
//! read calls per interval) instead of using inotify; see docs/cni.md for why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use egress_api::constants::CNI_CONFLIST_FILE;

use crate::conflist::{self, ConflistError, PluginEntry};
use crate::state::NodeState;

/// File-system failures of installing the conflist.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The directory could not be listed.
    #[error("failed to list CNI config directory {dir}")]
    ListDir {
        /// Directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read, written, renamed or removed.
    #[error("failed to {action} {path}")]
    File {
        /// What was attempted.
        action: &'static str,
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The main config cannot be chained.
    #[error(transparent)]
    Conflist(#[from] ConflistError),
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Our conflist was (re)written from this main config.
    Written {
        /// Main config file name.
        main: String,
    },
    /// Our conflist already matched this main config.
    Unchanged {
        /// Main config file name.
        main: String,
    },
    /// There is no main config; our file was removed if it existed.
    MainMissing {
        /// Whether a file of ours was removed.
        removed: bool,
    },
}

/// The installer for one directory.
#[derive(Debug, Clone)]
pub struct ConflistInstaller {
    dir: PathBuf,
    entry: PluginEntry,
}

impl ConflistInstaller {
    /// An installer writing `entry` into `dir`.
    pub fn new(dir: impl AsRef<Path>, entry: PluginEntry) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            entry,
        }
    }

    /// Path of our conflist.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CNI_CONFLIST_FILE)
    }

    fn file_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
        let path = path.to_path_buf();
        move |source| InstallError::File {
            action,
            path,
            source,
        }
    }

    /// Brings our conflist in line with the directory's current main config.
    pub fn sync(&self) -> Result<SyncOutcome, InstallError> {
        let mut names = Vec::new();
        let rd = std::fs::read_dir(&self.dir).map_err(|source| InstallError::ListDir {
            dir: self.dir.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| InstallError::ListDir {
                dir: self.dir.clone(),
                source,
            })?;
            // Directories and sockets are never configs; symlinks to files are.
            if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_string());
            }
        }
        let Some(main) = conflist::pick_main(names.iter().map(String::as_str)) else {
            return Ok(SyncOutcome::MainMissing {
                removed: self.uninstall()?,
            });
        };
        let main_path = self.dir.join(main);
        let content =
            std::fs::read_to_string(&main_path).map_err(Self::file_err("read", &main_path))?;
        let desired = conflist::chain(main, &content, &self.entry)?;
        let ours = self.path();
        let current = std::fs::read_to_string(&ours)
            .ok()
            .and_then(|c| serde_json::from_str::<Value>(&c).ok());
        if current.as_ref() == Some(&desired) {
            return Ok(SyncOutcome::Unchanged {
                main: main.to_string(),
            });
        }
        self.write_atomically(&desired)?;
        Ok(SyncOutcome::Written {
            main: main.to_string(),
        })
    }

    fn write_atomically(&self, value: &Value) -> Result<(), InstallError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.dir.join(format!(".{CNI_CONFLIST_FILE}.tmp"));
        let mut text = serde_json::to_vec_pretty(value).unwrap_or_default();
        text.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(Self::file_err("create", &tmp))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(Self::file_err("write", &tmp))?;
        drop(f);
        let ours = self.path();
        std::fs::rename(&tmp, &ours).map_err(Self::file_err("rename into place", &ours))
    }

    /// Removes our conflist; the main config is untouched, so the node keeps a working
    /// (unchained) network config. Returns whether a file was removed.
    pub fn uninstall(&self) -> Result<bool, InstallError> {
        let ours = self.path();
        match std::fs::remove_file(&ours) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Self::file_err("remove", &ours)(e)),
        }
    }

    /// Syncs now and then every `interval` until cancelled, recording the outcome in `state`.
    pub async fn run(self, interval: Duration, state: NodeState, cancel: CancellationToken) {
        let mut last: Option<String> = None;
        loop {
            let this = self.clone();
            let result = tokio::task::spawn_blocking(move || this.sync()).await;
            let (installed, report) = match result {
                Ok(Ok(SyncOutcome::Written { main })) => {
                    tracing::info!(%main, path = %self.path().display(), "installed chained CNI conflist");
                    (true, format!("written from {main}"))
                }
                Ok(Ok(SyncOutcome::Unchanged { main })) => {
                    (true, format!("up to date with {main}"))
                }
                Ok(Ok(SyncOutcome::MainMissing { removed })) => (
                    false,
                    format!("no main CNI config (removed ours: {removed})"),
                ),
                Ok(Err(e)) => (
                    self.path().exists(),
                    format!("error: {}", crate::error_chain(&e)),
                ),
                Err(e) => (false, format!("error: sync task failed: {e}")),
            };
            state.set_conflist_installed(installed);
            if last.as_deref() != Some(report.as_str()) {
                if report.starts_with("error") || report.starts_with("no main") {
                    tracing::warn!(dir = %self.dir.display(), "CNI conflist: {report}");
                } else {
                    tracing::debug!("CNI conflist: {report}");
                }
                last = Some(report);
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
