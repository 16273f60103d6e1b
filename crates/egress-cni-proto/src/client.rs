//! Blocking client used by the CNI plugin: connect, write one request line, read one reply
//! line, with read/write timeouts. No async runtime, no retries (the container runtime
//! retries the whole CNI operation).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::PROTOCOL_VERSION;
use crate::codec::{self, CodecError};
use crate::messages::{
    AddReply, AddRequest, DelReply, DelRequest, ErrorReply, PodGatewayReply, PodRef, Reply,
    ReplyEnvelope, Request, RequestEnvelope,
};

/// Failures of one call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (manager not running) or it cannot be opened.
    #[error(
        "failed to connect to egress-cni-manager at {path}: {source} (is the egress-cni-manager DaemonSet pod running on this node?)"
    )]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Sending or receiving failed (including timeouts).
    #[error("failed to talk to egress-cni-manager at {path}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: CodecError,
    },
    /// The manager speaks another protocol version.
    #[error(
        "failed to talk to egress-cni-manager: it speaks protocol version {theirs}, this plugin {PROTOCOL_VERSION}"
    )]
    Version {
        /// The manager's version.
        theirs: u32,
    },
    /// The manager refused or failed the request.
    #[error("{0}")]
    Refused(ErrorReply),
    /// The manager answered with a reply of another operation.
    #[error("failed to talk to egress-cni-manager: unexpected reply to {op}")]
    UnexpectedReply {
        /// Operation sent.
        op: &'static str,
    },
}

/// A client bound to one socket path.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client for the socket at `path`; every call gives up after `timeout`.
    pub fn new(path: impl AsRef<Path>, timeout: Duration) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            timeout,
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and returns the reply (an [`Reply::Error`] becomes
    /// [`ClientError::Refused`]).
    pub fn call(&self, request: Request) -> Result<Reply, ClientError> {
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        let mut stream =
            UnixStream::connect(&self.path).map_err(|source| ClientError::Connect {
                path: self.path.clone(),
                source,
            })?;
        let set_timeouts = stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)));
        set_timeouts.map_err(|e| io(CodecError::Io(e)))?;
        let line = codec::encode(&RequestEnvelope::new(request)).map_err(io)?;
        stream
            .write_all(&line)
            .and_then(|()| stream.flush())
            .map_err(|e| io(CodecError::Io(e)))?;
        let answer = codec::read_line(&stream).map_err(io)?;
        // Check the version before the body so a newer manager's unknown reply shape is
        // reported as a version problem, not a decode error.
        let version = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
        if let Some(theirs) = version
            && theirs != u64::from(PROTOCOL_VERSION)
        {
            return Err(ClientError::Version {
                theirs: u32::try_from(theirs).unwrap_or(u32::MAX),
            });
        }
        let envelope: ReplyEnvelope = codec::decode(&answer).map_err(io)?;
        match envelope.reply {
            Reply::Error(e) => Err(ClientError::Refused(e)),
            other => Ok(other),
        }
    }

    /// Which gateway the pod names in its annotation, if any.
    pub fn pod_gateway(&self, pod: PodRef) -> Result<PodGatewayReply, ClientError> {
        match self.call(Request::PodGateway { pod })? {
            Reply::PodGateway(r) => Ok(r),
            _ => Err(ClientError::UnexpectedReply { op: "podGateway" }),
        }
    }

    /// Registers the pod's tunnel key and learns the gateway to connect to.
    pub fn add(&self, request: AddRequest) -> Result<AddReply, ClientError> {
        match self.call(Request::Add(request))? {
            Reply::Added(r) => Ok(r),
            _ => Err(ClientError::UnexpectedReply { op: "add" }),
        }
    }

    /// Removes the pod's tunnel key.
    pub fn del(&self, request: DelRequest) -> Result<DelReply, ClientError> {
        match self.call(Request::Del(request))? {
            Reply::Deleted(r) => Ok(r),
            _ => Err(ClientError::UnexpectedReply { op: "del" }),
        }
    }
}
