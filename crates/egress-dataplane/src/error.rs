//! Error enums of the executors (one per concern) and of observe/apply.

use std::io;

use crate::names::{InterfaceName, NetnsRef};
use crate::netns::NetnsError;
use crate::observed::WgDeviceId;

/// Failures of link, address, route and rule handling (rtnetlink).
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The namespace could not be entered to open a netlink socket.
    #[error("failed to open a netlink socket in {netns}")]
    Connect {
        /// The namespace.
        netns: NetnsRef,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A link the operation needs does not exist.
    #[error("failed to find link {link} in {netns}")]
    LinkNotFound {
        /// The namespace.
        netns: NetnsRef,
        /// The link.
        link: InterfaceName,
    },
    /// The kernel refused a request.
    #[error("failed to {action} in {netns}")]
    Request {
        /// What was attempted (`add route ...`).
        action: String,
        /// The namespace.
        netns: NetnsRef,
        /// Cause (boxed: rtnetlink errors carry whole messages).
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// Entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// Failures reading or writing sysctls.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Reading failed.
    #[error("failed to read sysctl {key} in {netns}")]
    Read {
        /// The key.
        key: String,
        /// The namespace.
        netns: NetnsRef,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Writing failed.
    #[error("failed to write sysctl {key}={value} in {netns}")]
    Write {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The namespace.
        netns: NetnsRef,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// Failures of nftables handling.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` rejected or failed the batch.
    #[error("failed to {action} in {netns}: {detail}")]
    Nft {
        /// What was attempted.
        action: String,
        /// The namespace.
        netns: NetnsRef,
        /// `nft`'s own message, if any.
        detail: String,
        /// Cause.
        #[source]
        source: nftables::helper::NftablesError,
    },
    /// `nft -j` printed something that is not JSON.
    #[error("failed to parse the listing of {table} in {netns}")]
    Parse {
        /// The table.
        table: String,
        /// The namespace.
        netns: NetnsRef,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// Failures of WireGuard device handling.
#[derive(Debug, thiserror::Error)]
pub enum WireGuardError {
    /// The listen port is already bound in the socket's namespace.
    #[error("failed to create {device}: UDP port {port} is already in use in {socket_netns}")]
    PortInUse {
        /// The device.
        device: WgDeviceId,
        /// The port.
        port: u16,
        /// Where the socket would live.
        socket_netns: NetnsRef,
    },
    /// The userspace daemon could not be started or did not come up.
    #[error("failed to start {program} for {device}: {reason}")]
    Start {
        /// The daemon binary.
        program: String,
        /// The device.
        device: WgDeviceId,
        /// What happened (including the daemon's log tail when there is one).
        reason: String,
    },
    /// The kernel cannot create WireGuard links (no `wireguard` module, EOPNOTSUPP).
    #[error(
        "failed to create {device}: this kernel has no WireGuard (the wireguard module is not \
         loaded or not built; load it with 'modprobe wireguard', or run the userspace backend: \
         --wireguard-backend userspace, chart value wireguardBackend: userspace)"
    )]
    KernelUnsupported {
        /// The device.
        device: WgDeviceId,
    },
    /// The device does not exist.
    #[error("failed to find wireguard device {device}")]
    NotFound {
        /// The device.
        device: WgDeviceId,
    },
    /// Configuration or query through the UAPI socket / generic netlink failed.
    #[error("failed to {action} on wireguard device {device}")]
    Device {
        /// What was attempted.
        action: String,
        /// The device.
        device: WgDeviceId,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Moving or renaming the device's link failed.
    #[error("failed to place wireguard device {device}")]
    Link {
        /// The device.
        device: WgDeviceId,
        /// Cause.
        #[source]
        source: Box<NetlinkError>,
    },
    /// Stopping the daemon timed out.
    #[error("failed to stop the daemon of {device}: {reason}")]
    Stop {
        /// The device.
        device: WgDeviceId,
        /// What happened.
        reason: String,
    },
    /// Entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// Any executor failure.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// Namespace handling.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Links, addresses, routes, rules.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// Sysctls.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// nftables.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// WireGuard.
    #[error(transparent)]
    WireGuard(#[from] WireGuardError),
}

impl DataplaneError {
    /// A short stable label for metrics and events.
    pub fn category(&self) -> &'static str {
        match self {
            DataplaneError::Netns(_) => "netns",
            DataplaneError::Netlink(_) => "netlink",
            DataplaneError::Sysctl(_) => "sysctl",
            DataplaneError::Nft(_) => "nftables",
            DataplaneError::WireGuard(_) => "wireguard",
        }
    }
}

/// Applying a plan stopped at one operation; the ones before it took effect.
#[derive(Debug, thiserror::Error)]
#[error("failed to apply operation {index} `{op}`")]
pub struct ApplyError {
    /// Position of the failed operation in the plan.
    pub index: usize,
    /// The operation, as displayed.
    pub op: String,
    /// Cause.
    #[source]
    pub source: DataplaneError,
}

/// Reading the current state failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to observe {what}")]
pub struct ObserveError {
    /// What was being read.
    pub what: String,
    /// Cause.
    #[source]
    pub source: DataplaneError,
}
