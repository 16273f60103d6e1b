//! Blocking client used by the CNI plugin: connect, write one request line, read one reply
//! line. Every call finishes within the client's deadline: inside it, a manager that is not
//! there (socket missing or refusing: restarting) or answers `busy` (connection cap reached)
//! is asked again after a short, growing pause; every other failure is returned at once. No
//! async runtime.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::PROTOCOL_VERSION;
use crate::codec::{self, CodecError};
use crate::messages::{
    AddReply, AddRequest, DelReply, DelRequest, ErrorKind, ErrorReply, PodGatewayReply, PodRef,
    Reply, ReplyEnvelope, ReportReply, ReportRequest, Request, RequestEnvelope,
};

/// First pause before asking again; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(20);
/// Longest pause between two attempts.
const RETRY_MAX: Duration = Duration::from_millis(500);

/// Failures of one call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (manager not running) or it cannot be opened.
    #[error(
        "failed to connect to egress-cni-manager at {path} ({attempts} attempts in {:.1}s): {source} (is the egress-cni-manager DaemonSet pod running on this node?)",
        waited.as_secs_f64()
    )]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Connection attempts made.
        attempts: u32,
        /// Time spent trying.
        waited: Duration,
        /// The last OS error.
        #[source]
        source: std::io::Error,
    },
    /// The manager answered `busy` until the deadline.
    #[error(
        "egress-cni-manager at {path} stayed busy for {:.1}s ({attempts} attempts): {last}",
        waited.as_secs_f64()
    )]
    Busy {
        /// Socket path.
        path: PathBuf,
        /// Attempts made.
        attempts: u32,
        /// Time spent trying.
        waited: Duration,
        /// The manager's last answer.
        last: ErrorReply,
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
    deadline: Duration,
}

/// Why one attempt did not produce an answer worth returning.
enum Attempt {
    /// The manager is not there (yet): ask again.
    Absent(std::io::Error),
    /// The manager is at its connection limit: ask again.
    Busy(ErrorReply),
    /// Anything else is final.
    Failed(ClientError),
}

/// Whether a connect error means "no manager right now" (restarting), not a broken setup.
fn is_absent(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::NotFound | K::ConnectionRefused | K::WouldBlock | K::ConnectionReset
    )
}

/// A pause in [`RETRY_MIN`]..=[`RETRY_MAX`] that grows with `attempt`, spread by up to a
/// quarter so plugins refused together do not come back together.
fn pause(attempt: u32) -> Duration {
    let base = RETRY_MIN.saturating_mul(1 << attempt.min(8)).min(RETRY_MAX);
    let spread = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        % (u32::try_from(base.as_micros() / 4).unwrap_or(1).max(1));
    base + Duration::from_micros(u64::from(spread))
}

impl Client {
    /// A client for the socket at `path`; every call returns within `deadline`.
    pub fn new(path: impl AsRef<Path>, deadline: Duration) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            deadline,
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and returns the reply (an [`Reply::Error`] becomes
    /// [`ClientError::Refused`]). A missing or busy manager is asked again until the
    /// deadline, then reported as [`ClientError::Connect`] or [`ClientError::Busy`].
    pub fn call(&self, request: Request) -> Result<Reply, ClientError> {
        let started = Instant::now();
        let give_up = started + self.deadline;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = self.attempt(&request, give_up);
            let waited = started.elapsed();
            let retry = match outcome {
                Ok(reply) => return Ok(reply),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Absent(source)) => ClientError::Connect {
                    path: self.path.clone(),
                    attempts,
                    waited,
                    source,
                },
                Err(Attempt::Busy(last)) => ClientError::Busy {
                    path: self.path.clone(),
                    attempts,
                    waited,
                    last,
                },
            };
            // The last pause is cut to the deadline and followed by one more attempt, so a
            // manager that comes back just before the deadline is still found, and a call
            // that fails has waited the whole deadline, as `managerTimeoutSeconds` promises.
            let now = Instant::now();
            if now >= give_up {
                return Err(retry);
            }
            std::thread::sleep(pause(attempts - 1).min(give_up - now));
        }
    }

    /// One connection: request out, reply in, with I/O timeouts up to `give_up`.
    fn attempt(&self, request: &Request, give_up: Instant) -> Result<Reply, Attempt> {
        let io = |source| {
            Attempt::Failed(ClientError::Io {
                path: self.path.clone(),
                source,
            })
        };
        let mut stream = UnixStream::connect(&self.path).map_err(|e| {
            if is_absent(&e) {
                Attempt::Absent(e)
            } else {
                Attempt::Failed(ClientError::Connect {
                    path: self.path.clone(),
                    attempts: 1,
                    waited: Duration::ZERO,
                    source: e,
                })
            }
        })?;
        // At least 1 ms: a zero timeout means "none" to the OS.
        let left = give_up
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let set_timeouts = stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.set_write_timeout(Some(left)));
        set_timeouts.map_err(|e| io(CodecError::Io(e)))?;
        let line = codec::encode(&RequestEnvelope::new(request.clone())).map_err(io)?;
        let wrote = stream.write_all(&line).and_then(|()| stream.flush());
        // A manager at its connection limit may answer `busy` and close before reading the
        // request, failing the write; its answer is still there to read.
        let answer = match (codec::read_line(&stream), wrote) {
            (Ok(answer), _) => answer,
            (Err(_), Err(write)) => return Err(io(CodecError::Io(write))),
            (Err(read), Ok(())) => return Err(io(read)),
        };
        // Check the version before the body so a newer manager's unknown reply shape is
        // reported as a version problem, not a decode error.
        let version = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
        if let Some(theirs) = version
            && theirs != u64::from(PROTOCOL_VERSION)
        {
            return Err(Attempt::Failed(ClientError::Version {
                theirs: u32::try_from(theirs).unwrap_or(u32::MAX),
            }));
        }
        let envelope: ReplyEnvelope = codec::decode(&answer).map_err(io)?;
        match envelope.reply {
            Reply::Error(e) if e.kind == ErrorKind::Busy => Err(Attempt::Busy(e)),
            Reply::Error(e) => Err(Attempt::Failed(ClientError::Refused(e))),
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

    /// Reports how an ADD went (best effort: callers ignore failures, and a manager that
    /// predates reports answers `badRequest`).
    pub fn report(&self, request: ReportRequest) -> Result<ReportReply, ClientError> {
        match self.call(Request::Report(request))? {
            Reply::Reported(r) => Ok(r),
            _ => Err(ClientError::UnexpectedReply { op: "report" }),
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
