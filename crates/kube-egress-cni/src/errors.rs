//! Every way the plugin can fail, with the CNI error code the runtime sees. Codes 1-11 are the
//! spec's; 100+ are ours (documented in docs/cni.md).

use egress_cni_proto::{ClientError, ErrorKind};
use rscni_plugin::error::Error as CniError;

use crate::config::ConfigError;
use crate::prev_result::PrevResultError;
use egress_pod_tunnel::handshake::HandshakeError;
use egress_pod_tunnel::tunnel::TunnelError;

/// Plugin-specific code: the named StaticGatewayConfiguration does not exist.
pub const CODE_GATEWAY_NOT_FOUND: u32 = 101;
/// Plugin-specific code: the manager refused the pod (wrong node, IP, UID, no annotation, or
/// the podSelectors of two SGCs select it).
pub const CODE_REFUSED: u32 = 102;
/// Plugin-specific code: no WireGuard handshake within the timeout.
pub const CODE_HANDSHAKE_TIMEOUT: u32 = 103;
/// Plugin-specific code: programming the pod namespace failed.
pub const CODE_DATAPLANE: u32 = 104;
/// Plugin-specific code: CHECK found the tunnel differs from what ADD set up.
pub const CODE_DRIFT: u32 = 105;
/// Plugin-specific code: the StaticGatewayConfiguration cannot be provisioned as it stands
/// (the operator's reason follows) or is being deleted.
pub const CODE_GATEWAY_FAILED: u32 = 106;

/// A failed plugin operation.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Our config fields or CNI_ARGS are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// prevResult is missing or lacks the pod address.
    #[error(transparent)]
    PrevResult(#[from] PrevResultError),
    /// A required CNI variable is missing.
    #[error("{0} is required for {1}")]
    MissingEnv(&'static str, &'static str),
    /// The manager could not be asked or refused.
    #[error(transparent)]
    Manager(#[from] ClientError),
    /// Programming the pod namespace failed.
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// No handshake in time.
    #[error(
        "no WireGuard handshake with gateway {gateway} at {endpoint} within {seconds:.1}s: the gateway nodes have not accepted this pod's key yet (check the gateway daemons and that {endpoint} is reachable over UDP from this node)"
    )]
    HandshakeTimeout {
        /// SGC name.
        gateway: String,
        /// ILB endpoint.
        endpoint: std::net::SocketAddr,
        /// Timeout used.
        seconds: f64,
    },
    /// CHECK found differences.
    #[error("tunnel of this pod differs from what ADD configured: {}", .0.join("; "))]
    Drift(Vec<String>),
}

impl From<HandshakeError> for PluginError {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Tunnel(e) => PluginError::Tunnel(e),
            HandshakeError::Timeout {
                gateway,
                endpoint,
                seconds,
            } => PluginError::HandshakeTimeout {
                gateway,
                endpoint,
                seconds,
            },
        }
    }
}

impl From<PluginError> for CniError {
    fn from(e: PluginError) -> Self {
        let details = egress_runtime::error_chain(&e);
        match &e {
            PluginError::Config(ConfigError::Args(_)) | PluginError::MissingEnv(..) => {
                CniError::InvalidEnvValue(details)
            }
            PluginError::Config(_) | PluginError::PrevResult(_) => {
                CniError::InvalidNetworkConfig(details)
            }
            PluginError::Manager(ClientError::Refused(r)) => match r.kind {
                k if k.is_transient() => CniError::TryAgainLater(details),
                ErrorKind::GatewayNotFound => CniError::Custom(
                    CODE_GATEWAY_NOT_FOUND,
                    "StaticGatewayConfiguration not found".into(),
                    details,
                ),
                ErrorKind::GatewayFailed => CniError::Custom(
                    CODE_GATEWAY_FAILED,
                    "StaticGatewayConfiguration cannot serve pods".into(),
                    details,
                ),
                _ => CniError::Custom(
                    CODE_REFUSED,
                    "refused by egress-cni-manager".into(),
                    details,
                ),
            },
            // Unreachable, timed out or mismatched manager: retrying the sandbox is the remedy.
            PluginError::Manager(_) => CniError::TryAgainLater(details),
            PluginError::Tunnel(_) => CniError::Custom(
                CODE_DATAPLANE,
                "failed to set up the egress tunnel".into(),
                details,
            ),
            PluginError::HandshakeTimeout { .. } => CniError::Custom(
                CODE_HANDSHAKE_TIMEOUT,
                "egress gateway handshake timed out".into(),
                details,
            ),
            PluginError::Drift(_) => {
                CniError::Custom(CODE_DRIFT, "egress tunnel drift".into(), details)
            }
        }
    }
}
