//! Which WireGuard implementation the privileged tests drive, chosen by the environment so the
//! same test code runs once with wireguard-go on the host and once with kernel WireGuard
//! inside User-Mode Linux (`EGRESS_WIREGUARD_BACKEND=kernel`, set by `make test-uml`), and the
//! executor of that backend with the clean-up a test needs.

use std::path::PathBuf;
use std::sync::Arc;

use egress_dataplane::control::WireGuardControl;
use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::wireguard::{KernelWireGuard, UserspaceConfig, UserspaceWireGuard};
use egress_dataplane::{Dataplane, WgDeviceId};

/// Environment variable selecting the backend: `userspace` (default) or `kernel`.
pub const BACKEND_ENV: &str = "EGRESS_WIREGUARD_BACKEND";

/// A WireGuard implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// wireguard-go, one daemon per device (works on any kernel with TUN).
    Userspace,
    /// The kernel module (production nodes; here only inside User-Mode Linux).
    Kernel,
}

impl Backend {
    /// The value of `wireguardBackend` / `--wireguard-backend` for this backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Userspace => "userspace",
            Backend::Kernel => "kernel",
        }
    }
}

/// The backend named by [`BACKEND_ENV`]; panics on any other value than the two names, so a
/// typo cannot silently test the wrong implementation.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("") | Ok("userspace") => Backend::Userspace,
        Ok("kernel") => Backend::Kernel,
        Ok(other) => panic!("{BACKEND_ENV}={other:?}: expected \"userspace\" or \"kernel\""),
    }
}

/// What serves one WireGuard device, to tell "kept" from "recreated" across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgInstance {
    /// The wireguard-go daemon with this PID.
    Daemon(u32),
    /// The kernel link with this interface index.
    Link(u32),
}

/// The WireGuard executor of one backend.
#[derive(Debug, Clone)]
pub enum WireGuardExecutor {
    /// wireguard-go daemons, stopped by [`WireGuardExecutor::stop_all_started`].
    Userspace(Arc<UserspaceWireGuard>),
    /// Kernel links; they go with the namespaces that hold them.
    Kernel(Arc<KernelWireGuard>),
}

impl WireGuardExecutor {
    /// An executor of `backend` creating links with `links`; wireguard-go logs to `log_dir`
    /// (`None`: the library's default).
    pub fn new(backend: Backend, links: Arc<NetlinkLinks>, log_dir: Option<PathBuf>) -> Self {
        match backend {
            Backend::Userspace => {
                let mut config = UserspaceConfig::default();
                if let Some(dir) = log_dir {
                    config.log_dir = dir;
                }
                Self::Userspace(Arc::new(UserspaceWireGuard::new(links, config)))
            }
            Backend::Kernel => Self::Kernel(Arc::new(KernelWireGuard::new(links))),
        }
    }

    /// The executor behind the data plane's trait.
    pub fn control(&self) -> Arc<dyn WireGuardControl> {
        match self {
            Self::Userspace(wg) => wg.clone(),
            Self::Kernel(wg) => wg.clone(),
        }
    }

    /// A data plane with the system executors, `links` and this WireGuard executor.
    pub fn dataplane(&self, links: Arc<NetlinkLinks>) -> Dataplane {
        Dataplane::system(links, self.control())
    }

    /// Stops the wireguard-go daemons this executor started (kernel links need nothing).
    pub fn stop_all_started(&self) {
        if let Self::Userspace(wg) = self {
            wg.stop_all_started();
        }
    }

    /// What serves `device` now: its wireguard-go daemon (one this executor started or
    /// adopted), or the kernel link.
    pub async fn instance(&self, links: &NetlinkLinks, device: &WgDeviceId) -> Option<WgInstance> {
        match self {
            Self::Userspace(wg) => wg.daemon_pid(device).map(WgInstance::Daemon),
            Self::Kernel(_) => links
                .index(&device.netns, &device.name)
                .await
                .ok()
                .flatten()
                .map(WgInstance::Link),
        }
    }
}

/// Stops every wireguard-go daemon its executor started when dropped.
#[derive(Debug)]
pub struct ExecutorGuard(pub WireGuardExecutor);

impl Drop for ExecutorGuard {
    fn drop(&mut self) {
        self.0.stop_all_started();
    }
}
