//! The plugin socket: a unix socket in a root-only directory (0700, socket 0600), peers
//! checked with SO_PEERCRED, one request line and one reply line per connection
//! ([`crate::exchange`]). The accept loop survives running out of file descriptors: a failed
//! accept pauses it (10 ms doubling to 1 s, reset by the next success) instead of retrying at
//! once, and frees a descriptor held by an idle connection; connections are capped
//! ([`crate::connections`]), a new one beyond the cap being answered `busy`; the log lines of
//! all three are rate-limited ([`crate::throttle`]).

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::connections::{Admission, Connections};
use crate::exchange::{self, Handle};
use crate::metrics::{AcceptErrorLabels, BusyLabels, Metrics};
use crate::throttle::Throttle;

/// First pause after a failed accept.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between accepts while they keep failing.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Failures of setting up the socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Directory creation or permission change failed.
    #[error("failed to prepare socket directory {0}")]
    Dir(PathBuf, #[source] std::io::Error),
    /// Another process serves the socket.
    #[error("failed to bind {0}: another egress-cni-manager is serving it")]
    InUse(PathBuf),
    /// Binding failed.
    #[error("failed to bind {0}")]
    Bind(PathBuf, #[source] std::io::Error),
}

/// Binds the socket: creates the directory 0700, replaces a stale socket, sets 0600.
pub async fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SocketError::Dir(dir.to_path_buf(), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| SocketError::Dir(dir.to_path_buf(), e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(SocketError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(|e| SocketError::Bind(path.to_path_buf(), e))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| SocketError::Bind(path.to_path_buf(), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| SocketError::Bind(path.to_path_buf(), e))?;
    Ok(listener)
}

/// Where connections come from: the bound [`UnixListener`] (tests supply their own).
pub trait Accept: Send {
    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<UnixStream>> + Send;
}

impl Accept for UnixListener {
    async fn accept(&mut self) -> std::io::Result<UnixStream> {
        UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// What the accept loop enforces.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Peer UIDs allowed on the socket (root only in production).
    pub allowed_uids: Vec<u32>,
    /// The open connections and their cap.
    pub connections: Connections,
    /// How long a peer may take to send its request.
    pub read_timeout: Duration,
}

/// State of the accept loop between two connections.
struct AcceptLoop {
    settings: ServeSettings,
    metrics: Metrics,
    backoff: Duration,
    failed_accepts: Throttle,
    busy: Throttle,
    refused: Throttle,
}

/// Whether an accept error means the process or system is out of a resource, which only
/// closing descriptors (or waiting) cures.
fn is_exhaustion(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().map(Errno::from_raw).is_some_and(|n| {
        matches!(
            n,
            Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM
        )
    })
}

fn errno_name(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map(|n| format!("{:?}", nix::errno::Errno::from_raw(n)))
        .unwrap_or_else(|| format!("{:?}", e.kind()))
}

impl AcceptLoop {
    /// Counts and (rate-limited) logs a failed accept, frees an idle connection's descriptor
    /// when out of them, and returns how long to pause before accepting again.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        let now = Instant::now();
        let error = errno_name(e);
        self.metrics
            .accept_errors
            .get_or_create(&AcceptErrorLabels {
                error: error.clone(),
            })
            .inc();
        let freed = is_exhaustion(e) && self.settings.connections.evict_idle();
        let pause = self.backoff;
        self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        if let Some(suppressed) = self.failed_accepts.check(now) {
            tracing::warn!(
                %error,
                suppressed,
                pause_ms = pause.as_millis() as u64,
                freed_idle_connection = freed,
                open_connections = self.settings.connections.open(),
                "failed to accept plugin connection: {e}; pausing accept"
            );
        }
        pause
    }

    /// Checks the peer and admits or answers `busy`; returns what to serve.
    fn admit(&mut self, stream: UnixStream) -> Option<(UnixStream, crate::connections::Slot)> {
        self.backoff = ACCEPT_BACKOFF_MIN;
        let now = Instant::now();
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        if !uid.is_some_and(|u| self.settings.allowed_uids.contains(&u)) {
            self.metrics.refused_peers.inc();
            if let Some(suppressed) = self.refused.check(now) {
                tracing::warn!(
                    ?uid,
                    suppressed,
                    "refused plugin connection from a non-root peer"
                );
            }
            return None;
        }
        let conns = &self.settings.connections;
        let (slot, reason) = match conns.admit() {
            Admission::Admitted { slot, displaced } => (Some(slot), displaced.then_some("evicted")),
            Admission::Full => (None, Some("limit")),
        };
        if let Some(reason) = reason {
            self.metrics
                .busy_replies
                .get_or_create(&BusyLabels {
                    reason: reason.into(),
                })
                .inc();
            if let Some(suppressed) = self.busy.check(now) {
                tracing::warn!(
                    limit = conns.limit(),
                    suppressed,
                    "plugin connection limit reached: answering busy to new or idle connections"
                );
            }
        }
        match slot {
            Some(slot) => Some((stream, slot)),
            None => {
                exchange::answer_busy_now(
                    stream,
                    exchange::busy_reply(conns.open(), conns.limit()),
                );
                None
            }
        }
    }
}

/// Serves connections until cancelled, then waits for in-flight requests to finish and
/// removes the socket file.
pub async fn serve<A: Accept, H: Handle>(
    mut listener: A,
    path: PathBuf,
    handler: H,
    settings: ServeSettings,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    let mut state = AcceptLoop {
        settings,
        metrics,
        backoff: ACCEPT_BACKOFF_MIN,
        failed_accepts: Throttle::default(),
        busy: Throttle::default(),
        refused: Throttle::default(),
    };
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                let pause = state.failed(&e);
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let Some((stream, slot)) = state.admit(stream) else {
            continue;
        };
        let handler = handler.clone();
        let conns = state.settings.connections.clone();
        let read_timeout = state.settings.read_timeout;
        tasks.spawn(async move {
            let evicted = || exchange::busy_reply(conns.open(), conns.limit());
            if let Err(e) = exchange::serve_one(stream, slot, &handler, read_timeout, evicted).await
            {
                tracing::debug!(error = %e, "plugin connection ended early");
            }
        });
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use egress_cni_proto::{PodGatewayReply, Reply, Request};

    use super::*;

    #[derive(Clone)]
    struct NoAnswer;
    impl Handle for NoAnswer {
        async fn handle(&self, _: Request) -> Reply {
            Reply::PodGateway(PodGatewayReply { gateway: None })
        }
    }

    /// Fails every accept with `errno`, counting the attempts.
    struct Failing(i32, Arc<AtomicUsize>);
    impl Accept for Failing {
        async fn accept(&mut self) -> std::io::Result<UnixStream> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Err(std::io::Error::from_raw_os_error(self.0))
        }
    }

    fn settings() -> ServeSettings {
        ServeSettings {
            allowed_uids: vec![0],
            connections: Connections::new(4, Default::default()),
            read_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn running_out_of_descriptors_backs_off_instead_of_spinning() {
        let calls = Arc::new(AtomicUsize::new(0));
        let metrics = Metrics::default();
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(
            Failing(nix::errno::Errno::EMFILE as i32, calls.clone()),
            PathBuf::from("/nonexistent/test.sock"),
            NoAnswer,
            settings(),
            metrics.clone(),
            cancel.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(10)).await;
        cancel.cancel();
        server.await.unwrap();
        // 10, 20, ... 640 ms, then 1 s each: 8 + 9 attempts in 10 s, not millions.
        let n = calls.load(Ordering::SeqCst);
        assert!((12..=20).contains(&n), "{n} accepts in 10 s");
        assert!(
            metrics.encode().contains(&format!(
                "egress_cni_manager_accept_errors_total{{error=\"EMFILE\"}} {n}"
            )),
            "{}",
            metrics.encode()
        );
    }
}
