//! Prerequisites of a run: root, the tools and apt packages the simulation needs, and our
//! binaries, each missing one reported with how to get it.

use std::path::{Path, PathBuf};

use crate::netns::have_tool;
use crate::procs::{self, ProcError};

/// Where the reference CNI plugins are (Debian `containernetworking-plugins`).
pub const CNI_PLUGIN_DIR: &str = "/usr/lib/cni";

/// A missing prerequisite.
#[derive(Debug, thiserror::Error)]
pub enum PrereqError {
    /// Not root.
    #[error(
        "egress-sim needs root (network namespaces, veths, nftables); run it with sudo or as root"
    )]
    NotRoot,
    /// An apt package is missing.
    #[error(
        "missing {what}: install it with `apt-get install -y --no-install-recommends {package}` (or `make deps`)"
    )]
    MissingPackage {
        /// The file or tool.
        what: String,
        /// Debian package.
        package: String,
    },
    /// A binary of ours is missing.
    #[error(transparent)]
    Binary(#[from] ProcError),
    /// The CRD directory is missing.
    #[error("missing CRD directory {0}: set EGRESS_SIM_CRDS or run from the repository")]
    Crds(String),
    /// The WireGuard backend variable has an unknown value.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
}

/// Our binaries a run needs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// egress-apiserver.
    pub apiserver: PathBuf,
    /// egress-azure-emulator.
    pub emulator: PathBuf,
    /// egress-operator.
    pub operator: PathBuf,
    /// egress-cni-manager.
    pub cni_manager: PathBuf,
    /// kube-egress-cni.
    pub cni_plugin: PathBuf,
    /// egress-gateway-daemon, if built.
    pub gateway_daemon: Option<PathBuf>,
    /// CRD directory.
    pub crds: PathBuf,
}

/// Checks everything; the first missing item is the error.
pub fn check() -> Result<Binaries, PrereqError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(PrereqError::NotRoot);
    }
    crate::backend::checked()?;
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("wireguard-go", "wireguard-go"),
    ] {
        if !have_tool(tool) {
            return Err(PrereqError::MissingPackage {
                what: format!("`{tool}`"),
                package: package.into(),
            });
        }
    }
    for plugin in ["ptp", "host-local", "loopback"] {
        let p = Path::new(CNI_PLUGIN_DIR).join(plugin);
        if !p.is_file() {
            return Err(PrereqError::MissingPackage {
                what: format!("CNI plugin {}", p.display()),
                package: "containernetworking-plugins".into(),
            });
        }
    }
    let crds = std::env::var_os("EGRESS_SIM_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../config/crd"));
    if !crds.is_dir() {
        return Err(PrereqError::Crds(crds.display().to_string()));
    }
    Ok(Binaries {
        cni_manager: procs::find_binary("egress-cni-manager", "egress-cni-manager")?,
        apiserver: procs::find_binary("egress-apiserver", "egress-apiserver")?,
        emulator: procs::find_binary("egress-azure-emulator", "egress-azure-emulator")?,
        operator: procs::find_binary("egress-operator", "egress-operator")?,
        cni_plugin: procs::find_binary("kube-egress-cni", "kube-egress-cni")?,
        gateway_daemon: procs::find_binary("egress-gateway-daemon", "egress-gateway-daemon").ok(),
        crds,
    })
}
