//! Carrying out a step on one running sandbox, behind a narrow trait. The real
//! implementation does what ADD does, in the same order and with the same code
//! (egress-pod-tunnel), while holding the sandbox's lock so a DEL of the same sandbox waits:
//! 1. lock the sandbox and re-read its record (gone: DEL won, nothing to do);
//! 2. for a move, remove the old tunnel and restore the pod's default route;
//! 3. a fresh key, registered as the pod's PodEndpoint through the same checks as ADD
//!    (pod on this node, annotated, UID, IP);
//! 4. the tunnel alone, the first handshake (same timeout as ADD), then the routes;
//! 5. the tunnel record DEL, CHECK and failover read.
//!
//! A failure after 3 removes what was built and the PodEndpoint: the pod keeps running and
//! egresses as a pod without a gateway. Detach removes the tunnel, restores the default route
//! and deletes the PodEndpoint.

use std::time::Duration;

use async_trait::async_trait;

use egress_cni_proto::{AddRequest, PodRef, Reply, Request};
use egress_pod_tunnel::handshake::{HandshakeError, wait_handshake};
use egress_pod_tunnel::sandbox::{SandboxLock, SandboxRecord};
use egress_pod_tunnel::tunnel::{PodTunnel, TunnelError, TunnelSpec};

use crate::handler::RequestHandler;

/// Why a step failed; the message goes into the pod's `EgressGatewayFailed` Event.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The manager's own checks refused the pod (as it would refuse ADD).
    #[error("refused: {0}")]
    Refused(String),
    /// The pod's namespace could not be programmed.
    #[error("data plane: {0}")]
    Tunnel(#[from] TunnelError),
    /// No first handshake.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The sandbox's lock or records could not be used.
    #[error("sandbox {container_id}: {source}")]
    Records {
        /// The sandbox.
        container_id: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task did not finish.
    #[error("internal: {0}")]
    Join(String),
}

/// What an attach did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    /// The pod now egresses through `gateway`.
    Attached {
        /// The gateway (as registered).
        gateway: String,
        /// Time to the first handshake.
        handshake: Duration,
    },
    /// The sandbox went (DEL) before the lock was ours.
    SandboxGone,
}

/// What a detach did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detached {
    /// The tunnel to `from` was removed.
    Detached {
        /// Its gateway.
        from: String,
    },
    /// No tunnel (or sandbox) any more.
    Nothing,
}

/// The two changes to a running sandbox.
#[async_trait]
pub trait Attacher: Send + Sync {
    /// Builds (or moves) the sandbox's tunnel to the gateway its pod names now.
    async fn attach(&self, sandbox: &SandboxRecord) -> Result<Attached, AttachError>;
    /// Removes the sandbox's tunnel.
    async fn detach(&self, sandbox: &SandboxRecord) -> Result<Detached, AttachError>;
}

/// [`Attacher`] on a [`PodTunnel`] (the plugin's data plane) and the request handler.
#[derive(Debug, Clone)]
pub struct TunnelAttacher<T> {
    tunnel: T,
    handler: RequestHandler,
    handshake_timeout: Duration,
}

impl<T> TunnelAttacher<T> {
    /// An attacher waiting up to `handshake_timeout` for the first handshake (ADD's).
    pub fn new(tunnel: T, handler: RequestHandler, handshake_timeout: Duration) -> Self {
        Self {
            tunnel,
            handler,
            handshake_timeout,
        }
    }
}

/// Runs blocking data-plane or file work off the async workers.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, AttachError> + Send + 'static,
) -> Result<R, AttachError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AttachError::Join(e.to_string()))?
}

fn records(container_id: &str) -> impl FnOnce(std::io::Error) -> AttachError + '_ {
    move |source| AttachError::Records {
        container_id: container_id.to_owned(),
        source,
    }
}

/// The lock of `sandbox` and its record as it is now (`None`: DEL removed it).
async fn lock(
    sandbox: &SandboxRecord,
) -> Result<(SandboxLock, Option<SandboxRecord>), AttachError> {
    let (dir, id) = (sandbox.state_dir.clone(), sandbox.container_id.clone());
    blocking(move || {
        let lock = SandboxLock::acquire(&dir, &id).map_err(records(&id))?;
        let now = SandboxRecord::load(&dir, &id)
            .map_err(records(&id))?
            .map(|r| SandboxRecord {
                state_dir: dir.clone(),
                ..r
            });
        Ok((lock, now))
    })
    .await
}

impl<T> TunnelAttacher<T>
where
    T: PodTunnel + Clone + Send + Sync + 'static,
    T::Key: Send + 'static,
{
    /// Removes the recorded tunnel of `sandbox`, if any, restoring the default route.
    async fn remove_tunnel(&self, sandbox: &SandboxRecord) -> Result<Option<String>, AttachError> {
        let tunnel = self.tunnel.clone();
        let (dir, id) = (sandbox.state_dir.clone(), sandbox.container_id.clone());
        blocking(move || {
            let Some(spec) = TunnelSpec::load(&dir, &id).map_err(records(&id))? else {
                return Ok(None);
            };
            tunnel.detach(&spec)?;
            TunnelSpec::forget(&dir, &id).map_err(records(&id))?;
            Ok(Some(spec.gateway))
        })
        .await
    }

    async fn register(
        &self,
        sandbox: &SandboxRecord,
        public_key: egress_cni_proto::WireKey,
    ) -> Result<egress_cni_proto::AddReply, AttachError> {
        let reply = self
            .handler
            .handle(Request::Add(AddRequest {
                pod: sandbox.pod(),
                container_id: sandbox.container_id.clone(),
                pod_ip: sandbox.pod_ip.into(),
                public_key,
                pod_ipv6: sandbox.pod_ipv6,
            }))
            .await;
        match reply {
            Reply::Added(r) => Ok(r),
            Reply::Error(e) => Err(AttachError::Refused(e.message)),
            other => Err(AttachError::Refused(format!("unexpected reply {other:?}"))),
        }
    }

    /// Tunnel, handshake, routes, record; on failure everything built is removed (setup and
    /// route clean up after themselves; a missing handshake or record is undone here).
    async fn build(&self, spec: TunnelSpec, key: T::Key) -> Result<Duration, AttachError> {
        let tunnel = self.tunnel.clone();
        let timeout = self.handshake_timeout;
        blocking(move || {
            let s = &spec.sandbox;
            let undo = |tunnel: &T| {
                if let Err(e) = tunnel.detach(&spec) {
                    tracing::error!(container = %s.container_id, error = %e, "failed to remove a partial tunnel");
                }
            };
            tunnel.setup(&spec, &key)?;
            let took = match wait_handshake(&tunnel, &spec, timeout) {
                Ok(took) => took,
                Err(e) => {
                    undo(&tunnel);
                    return Err(e.into());
                }
            };
            tunnel.route(&spec, &key)?;
            if let Err(e) = spec.save(&s.state_dir) {
                undo(&tunnel);
                return Err(records(&s.container_id)(e));
            }
            Ok(took)
        })
        .await
    }

    async fn unregister(&self, pod: &PodRef, container_id: &str) {
        if let Err(e) = self.handler.remove_endpoint(pod, container_id).await {
            tracing::warn!(%pod, error = %crate::error_chain(&e), "failed to remove the PodEndpoint of a failed attach");
        }
    }
}

#[async_trait]
impl<T> Attacher for TunnelAttacher<T>
where
    T: PodTunnel + Clone + Send + Sync + 'static,
    T::Key: Send + 'static,
{
    async fn attach(&self, sandbox: &SandboxRecord) -> Result<Attached, AttachError> {
        let (_lock, now) = lock(sandbox).await?;
        let Some(mut sandbox) = now else {
            return Ok(Attached::SandboxGone);
        };
        // The runtime's `/var/run/netns/...` as this process sees it (see failover).
        sandbox.netns = crate::failover::tunnels::netns_path(&sandbox.netns);
        if let Some(old) = self.remove_tunnel(&sandbox).await? {
            tracing::info!(pod = %sandbox.pod(), from = %old, "moving the pod's tunnel");
        }
        let (key, public_key) = self.tunnel.generate_key()?;
        let reply = self.register(&sandbox, public_key.clone()).await?;
        let spec = sandbox.tunnel_spec(&reply, public_key);
        match self.build(spec, key).await {
            Ok(handshake) => Ok(Attached::Attached {
                gateway: reply.gateway,
                handshake,
            }),
            Err(e) => {
                self.unregister(&sandbox.pod(), &sandbox.container_id).await;
                Err(e)
            }
        }
    }

    async fn detach(&self, sandbox: &SandboxRecord) -> Result<Detached, AttachError> {
        let (_lock, now) = lock(sandbox).await?;
        if now.is_none() {
            return Ok(Detached::Nothing);
        }
        let Some(from) = self.remove_tunnel(sandbox).await? else {
            return Ok(Detached::Nothing);
        };
        if let Err(e) = self
            .handler
            .remove_endpoint(&sandbox.pod(), &sandbox.container_id)
            .await
        {
            // The tunnel is gone; the PodEndpoint only keeps a gateway peer for an address
            // that no longer sends to it, and goes with the pod.
            tracing::warn!(pod = %sandbox.pod(), error = %crate::error_chain(&e), "failed to remove the PodEndpoint after detaching");
        }
        Ok(Detached::Detached { from })
    }
}
