//! One plugin connection: read one request line (within the read deadline, unless the
//! connection is evicted for a newer one first), answer it, close. Also the `busy` answer
//! given without reading to a connection that finds every slot in use. Nothing here logs above
//! debug: a storm of connections must not become a storm of log lines.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use egress_cni_proto::codec::{self, MAX_MESSAGE_BYTES};
use egress_cni_proto::{
    ErrorKind, ErrorReply, PROTOCOL_VERSION, Reply, ReplyEnvelope, Request, RequestEnvelope,
};

use crate::connections::Slot;

/// How long a peer may take to send its request (the plugin writes it right after connecting).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the reply may take (it fits in the socket buffer unless the peer is stuck).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What answers a decoded request (the [`crate::handler::RequestHandler`] in production).
pub trait Handle: Clone + Send + Sync + 'static {
    /// Answers one request; failures are [`Reply::Error`]s.
    fn handle(&self, request: Request) -> impl Future<Output = Reply> + Send;
}

impl Handle for crate::handler::RequestHandler {
    fn handle(&self, request: Request) -> impl Future<Output = Reply> + Send {
        crate::handler::RequestHandler::handle(self, request)
    }
}

fn error_reply(kind: ErrorKind, message: String) -> Reply {
    Reply::Error(ErrorReply { kind, message })
}

/// The `busy` answer: the plugin retries it within its deadline.
pub fn busy_reply(open: usize, limit: usize) -> Reply {
    error_reply(
        ErrorKind::Busy,
        format!(
            "egress-cni-manager is busy: {open} plugin connections open (limit {limit}); retry"
        ),
    )
}

fn encode(reply: Reply) -> Vec<u8> {
    // A reply of ours always encodes; an empty line would make the peer report a decode error.
    codec::encode(&ReplyEnvelope::new(reply)).unwrap_or_default()
}

/// Answers `busy` without waiting: drains what the peer already sent (closing a unix socket
/// with unread data would reset the peer's side) and writes the reply only if it fits now.
pub fn answer_busy_now(stream: UnixStream, reply: Reply) {
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained <= MAX_MESSAGE_BYTES {
        match stream.try_read(&mut scratch) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
    let _ = stream.try_write(&encode(reply));
}

/// Reads one request (or learns that this connection was evicted), answers it, closes.
pub async fn serve_one<H: Handle>(
    stream: UnixStream,
    slot: Slot,
    handler: &H,
    read_timeout: Duration,
    evicted_reply: impl FnOnce() -> Reply,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_MESSAGE_BYTES as u64 + 1));
    let mut line = Vec::new();
    let reply = tokio::select! {
        () = slot.evicted() => evicted_reply(),
        read = tokio::time::timeout(read_timeout, reader.read_until(b'\n', &mut line)) => {
            match read {
                Err(_) => error_reply(
                    ErrorKind::BadRequest,
                    format!("no request within {}s", read_timeout.as_secs_f64()),
                ),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(_)) => {
                    slot.handling();
                    answer(&mut line, handler).await
                }
            }
        }
    };
    let written = async {
        write.write_all(&encode(reply)).await?;
        write.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, written)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

async fn answer<H: Handle>(line: &mut Vec<u8>, handler: &H) -> Reply {
    if line.last() != Some(&b'\n') {
        return error_reply(
            ErrorKind::BadRequest,
            format!("request is not one line of at most {MAX_MESSAGE_BYTES} bytes"),
        );
    }
    line.pop();
    let version = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
    match version {
        Some(v) if v != u64::from(PROTOCOL_VERSION) => error_reply(
            ErrorKind::BadRequest,
            format!(
                "protocol version {v} is not supported; this manager speaks {PROTOCOL_VERSION}"
            ),
        ),
        _ => match codec::decode::<RequestEnvelope>(line) {
            Ok(env) => handler.handle(env.request).await,
            Err(e) => error_reply(ErrorKind::BadRequest, crate::error_chain(&e)),
        },
    }
}
