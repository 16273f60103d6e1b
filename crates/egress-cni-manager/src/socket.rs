//! The plugin socket: a unix socket in a root-only directory (0700, socket 0600), peers
//! checked with SO_PEERCRED, one request line and one reply line per connection.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use egress_cni_proto::codec::{self, MAX_MESSAGE_BYTES};
use egress_cni_proto::{
    ErrorKind, ErrorReply, PROTOCOL_VERSION, Reply, ReplyEnvelope, RequestEnvelope,
};

use crate::handler::RequestHandler;
use crate::metrics::Metrics;

/// How long a peer may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Serves connections until cancelled, then waits for in-flight requests to finish and
/// removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    handler: RequestHandler,
    allowed_uids: Vec<u32>,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "failed to accept plugin connection");
                continue;
            }
        };
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        if !uid.is_some_and(|u| allowed_uids.contains(&u)) {
            metrics.refused_peers.inc();
            tracing::warn!(?uid, "refused plugin connection from a non-root peer");
            continue;
        }
        let handler = handler.clone();
        tasks.spawn(async move {
            if let Err(e) = serve_one(stream, &handler).await {
                tracing::debug!(error = %e, "plugin connection ended early");
            }
        });
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    while tasks.join_next().await.is_some() {}
}

fn error_reply(kind: ErrorKind, message: String) -> Reply {
    Reply::Error(ErrorReply { kind, message })
}

async fn serve_one(stream: UnixStream, handler: &RequestHandler) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_MESSAGE_BYTES as u64 + 1));
    let mut line = Vec::new();
    let reply = match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await
    {
        Err(_) => error_reply(ErrorKind::BadRequest, "no request within 5s".into()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) if line.last() != Some(&b'\n') => error_reply(
            ErrorKind::BadRequest,
            format!("request is not one line of at most {MAX_MESSAGE_BYTES} bytes"),
        ),
        Ok(Ok(_)) => {
            line.pop();
            let version = serde_json::from_slice::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
            match version {
                Some(v) if v != u64::from(PROTOCOL_VERSION) => error_reply(
                    ErrorKind::BadRequest,
                    format!(
                        "protocol version {v} is not supported; this manager speaks {PROTOCOL_VERSION}"
                    ),
                ),
                _ => match codec::decode::<RequestEnvelope>(&line) {
                    Ok(env) => handler.handle(env.request).await,
                    Err(e) => error_reply(ErrorKind::BadRequest, crate::error_chain(&e)),
                },
            }
        }
    };
    let bytes = codec::encode(&ReplyEnvelope::new(reply)).map_err(std::io::Error::other)?;
    write.write_all(&bytes).await?;
    write.shutdown().await
}
