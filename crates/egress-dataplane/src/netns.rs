//! Network namespaces: create and delete named ones exactly as `ip netns` does (a bind mount
//! of the namespace file under `/run/netns`, with `/run/netns` itself a shared mount), and run
//! code inside one on a dedicated thread that enters it with `setns`.
//!
//! Only the spawned thread changes namespace, never a caller's or a pooled thread, so the rest
//! of the process is unaffected. All calls are the safe wrappers of the `nix` crate.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::names::{NETNS_RUN_DIR, NetnsName, NetnsRef};

/// Failures of namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened (usually: it does not exist).
    #[error("failed to open {netns}")]
    Open {
        /// The namespace.
        netns: NetnsRef,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// `setns` was refused.
    #[error("failed to enter {netns}")]
    Enter {
        /// The namespace.
        netns: NetnsRef,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// A thread could not be started or died.
    #[error("failed to run a thread in {netns}: {reason}")]
    Thread {
        /// The namespace.
        netns: NetnsRef,
        /// What happened.
        reason: String,
    },
    /// Creating a named namespace failed.
    #[error("failed to create netns {name}: {step}")]
    Create {
        /// The namespace.
        name: NetnsName,
        /// Which step failed.
        step: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Deleting a named namespace failed.
    #[error("failed to delete netns {name}: {step}")]
    Delete {
        /// The namespace.
        name: NetnsName,
        /// Which step failed.
        step: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Opens the namespace file for `setns` (the process's own namespace for `Current`).
pub fn open_netns(netns: &NetnsRef) -> Result<File, NetnsError> {
    let path = netns
        .path()
        .unwrap_or_else(|| PathBuf::from("/proc/self/ns/net"));
    File::open(&path).map_err(|source| NetnsError::Open {
        netns: netns.clone(),
        source,
    })
}

/// Runs `f` on a new thread that first enters `netns`, and waits for it. Sockets created by
/// `f` stay bound to that namespace; processes it spawns start there.
pub fn run_in_netns<R, F>(netns: &NetnsRef, f: F) -> Result<R, NetnsError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let file = open_netns(netns)?;
    let ns = netns.clone();
    let handle = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<R, NetnsError> {
            setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|source| NetnsError::Enter { netns: ns, source })?;
            drop(file);
            Ok(f())
        })
        .map_err(|e| NetnsError::Thread {
            netns: netns.clone(),
            reason: e.to_string(),
        })?;
    handle.join().map_err(|_| NetnsError::Thread {
        netns: netns.clone(),
        reason: "the thread panicked".into(),
    })?
}

/// [`run_in_netns`] without blocking the async runtime: the thread reports back through a
/// channel.
pub async fn run_in_netns_async<R, F>(netns: &NetnsRef, f: F) -> Result<R, NetnsError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ns = netns.clone();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let _ = tx.send(run_in_netns(&ns, f));
        })
        .map_err(|e| NetnsError::Thread {
            netns: netns.clone(),
            reason: e.to_string(),
        })?;
    rx.await.map_err(|_| NetnsError::Thread {
        netns: netns.clone(),
        reason: "the thread ended without a result".into(),
    })?
}

/// True if `path` is a mounted namespace file (nsfs), not just a leftover empty file.
fn is_netns_mount(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// True if the named namespace exists.
pub fn netns_exists(name: &NetnsName) -> bool {
    is_netns_mount(&name.path())
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so namespaces created
/// later propagate into mount namespaces that bind `/run/netns` with propagation.
fn share_run_dir(name: &NetnsName) -> Result<(), NetnsError> {
    let create = |step, source| NetnsError::Create {
        name: name.clone(),
        step,
        source,
    };
    fs::create_dir_all(NETNS_RUN_DIR).map_err(|e| create("create /run/netns", e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount::<str, str, str, str>(None, NETNS_RUN_DIR, None, shared, None) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then share it.
            mount::<str, str, str, str>(
                Some(NETNS_RUN_DIR),
                NETNS_RUN_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|e| create("bind /run/netns onto itself", errno_io(e)))?;
            mount::<str, str, str, str>(None, NETNS_RUN_DIR, None, shared, None)
                .map_err(|e| create("make /run/netns shared", errno_io(e)))
        }
        Err(e) => Err(create("make /run/netns shared", errno_io(e))),
    }
}

/// Creates the named namespace if it does not exist ("already exists" is success).
pub fn create_netns(name: &NetnsName) -> Result<(), NetnsError> {
    let path = name.path();
    if is_netns_mount(&path) {
        return Ok(());
    }
    share_run_dir(name)?;
    let create = |step, source| NetnsError::Create {
        name: name.clone(),
        step,
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o0)
        .open(&path)
    {
        Ok(_) => {}
        // A leftover file from an interrupted create: mount over it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(create("create the mount point file", e)),
    }
    let target = path.clone();
    let made = std::thread::Builder::new()
        .name("netns-create".into())
        .spawn(move || -> io::Result<()> {
            // This thread alone moves to the new namespace; it ends right after.
            unshare(CloneFlags::CLONE_NEWNET).map_err(errno_io)?;
            mount::<str, Path, str, str>(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None,
            )
            .map_err(errno_io)
        })
        .map_err(|e| create("start a thread", e))?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread panicked")));
    if let Err(e) = made {
        let _ = fs::remove_file(&path);
        return Err(create("bind-mount the new namespace", e));
    }
    Ok(())
}

/// Deletes the named namespace ("not found" is success). The namespace itself lives on
/// while a process or mount still holds it, as with `ip netns delete`.
pub fn delete_netns(name: &NetnsName) -> Result<(), NetnsError> {
    let path = name.path();
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::Delete {
                name: name.clone(),
                step: "unmount",
                source: errno_io(e),
            });
        }
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetnsError::Delete {
            name: name.clone(),
            step: "remove the mount point file",
            source: e,
        }),
    }
}
