//! The first-handshake check both ADD and an attach of a running pod make before routing the
//! pod through its tunnel: poll the gateway peer's latest handshake with a short backoff,
//! start a fresh attempt every [`RETRY_EVERY`] (the gateway may have added our peer only
//! after the first initiation was dropped), and give up after the timeout. Blocking: the
//! plugin is one short process, the manager calls it from a blocking thread.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::tunnel::{PodTunnel, TunnelError, TunnelSpec};

/// First pause between handshake polls; doubles up to [`POLL_MAX`].
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(100);
/// Without a handshake after this long, start a fresh attempt.
pub const RETRY_EVERY: Duration = Duration::from_millis(500);

/// Why the first handshake did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Reading or kicking the tunnel failed.
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// No handshake within the timeout.
    #[error(
        "no WireGuard handshake with gateway {gateway} at {endpoint} within {seconds:.1}s: the gateway nodes have not accepted this pod's key yet (check the gateway daemons and that {endpoint} is reachable over UDP from this node)"
    )]
    Timeout {
        /// SGC name.
        gateway: String,
        /// Gateway endpoint.
        endpoint: SocketAddr,
        /// The timeout.
        seconds: f64,
    },
}

/// Waits until `spec`'s tunnel has completed a handshake with its gateway, or `timeout`.
pub fn wait_handshake<T: PodTunnel + ?Sized>(
    tunnel: &T,
    spec: &TunnelSpec,
    timeout: Duration,
) -> Result<Duration, HandshakeError> {
    let started = Instant::now();
    let mut pause = POLL_MIN;
    let mut last_attempt = started;
    loop {
        if tunnel.latest_handshake(spec)?.is_some() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return Err(HandshakeError::Timeout {
                gateway: spec.gateway.clone(),
                endpoint: spec.endpoint,
                seconds: timeout.as_secs_f64(),
            });
        }
        if last_attempt.elapsed() >= RETRY_EVERY {
            tunnel.retry_handshake(spec)?;
            last_attempt = Instant::now();
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(POLL_MAX);
    }
}
