//! The node's inotify instance limit, for the userspace WireGuard backend. Every wireguard-go
//! daemon (one per annotated pod) holds one inotify instance, to exit when its UAPI socket
//! file is removed; instances are counted per user, all of root's processes share them, and
//! the kernel's default `fs.inotify.max_user_instances` is 128. Past it, wireguard-go dies
//! at start with "Failed to listen on uapi socket: too many open files" after its socket
//! already appeared, so the plugin sees "connection reset by peer" — measured at 200 pods
//! on one kernel, where 74 of them failed their ADD over and over. The manager raises the
//! limit once at start to a floor (never lowers it); the kernel backend needs none of this.

use std::path::{Path, PathBuf};

/// Where the kernel keeps the limit.
pub const MAX_USER_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// Default floor: far above the pods a node runs (Kubernetes' default is 110 per node) plus
/// what the node's own daemons hold; an instance costs about 1 KiB of kernel memory.
pub const DEFAULT_MIN_INSTANCES: u64 = 8192;

/// What [`ensure`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The limit already reached the floor.
    Enough(u64),
    /// The limit was raised.
    Raised {
        /// Before.
        from: u64,
        /// After.
        to: u64,
    },
}

/// The limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub enum InotifyError {
    /// Reading or parsing the sysctl.
    #[error("failed to read {path}: {reason}")]
    Read {
        /// The sysctl file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing it (not privileged, or a read-only /proc).
    #[error(
        "fs.inotify.max_user_instances is {current}, below the {wanted} the userspace WireGuard backend needs (one per annotated pod), and raising it failed: {source}; set it on the node (sysctl -w fs.inotify.max_user_instances={wanted}) or use the kernel backend"
    )]
    Raise {
        /// The limit now.
        current: u64,
        /// The floor.
        wanted: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The value to write, if any: the floor when the limit is below it, never lower.
pub fn plan(current: u64, floor: u64) -> Option<u64> {
    (current < floor).then_some(floor)
}

/// Raises the limit at `path` to `floor` if it is lower.
pub fn ensure(path: &Path, floor: u64) -> Result<Outcome, InotifyError> {
    let read_error = |reason: String| InotifyError::Read {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    let current: u64 = text
        .trim()
        .parse()
        .map_err(|e| read_error(format!("{:?} is not a number: {e}", text.trim())))?;
    let Some(to) = plan(current, floor) else {
        return Ok(Outcome::Enough(current));
    };
    std::fs::write(path, format!("{to}\n")).map_err(|source| InotifyError::Raise {
        current,
        wanted: to,
        source,
    })?;
    Ok(Outcome::Raised { from: current, to })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_a_limit_below_the_floor_is_raised() {
        assert_eq!(plan(128, 8192), Some(8192));
        assert_eq!(plan(8192, 8192), None);
        assert_eq!(plan(65536, 8192), None, "never lowered");
    }

    #[test]
    fn ensure_raises_a_low_limit_and_leaves_a_high_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("max_user_instances");
        std::fs::write(&path, "128\n").unwrap();
        assert_eq!(
            ensure(&path, 8192).unwrap(),
            Outcome::Raised {
                from: 128,
                to: 8192
            }
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "8192\n");
        assert_eq!(ensure(&path, 1024).unwrap(), Outcome::Enough(8192));
    }

    #[test]
    fn an_unreadable_limit_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("max_user_instances");
        std::fs::write(&path, "lots\n").unwrap();
        let e = ensure(&path, 8192).unwrap_err().to_string();
        assert!(e.contains("\"lots\" is not a number"), "{e}");
        let e = ensure(&dir.path().join("absent"), 8192)
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed to read"), "{e}");
    }
}
