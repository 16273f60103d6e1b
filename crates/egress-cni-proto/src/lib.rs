//! The wire protocol between the chained CNI plugin `kube-egress-cni` and the node-local
//! `egress-cni-manager`: one JSON request and one JSON reply, each a single line, per unix
//! socket connection, both carrying [`PROTOCOL_VERSION`]. Also the blocking client the plugin
//! uses (no async runtime), and the per-sandbox tunnel record the plugin writes and the
//! manager reads. This crate knows nothing of Kubernetes or netlink.

pub mod client;
pub mod codec;
pub mod messages;
pub mod record;
pub mod selectors;

pub use client::{Client, ClientError};
pub use codec::{CodecError, MAX_MESSAGE_BYTES};
pub use messages::{
    AddPhase, AddReply, AddRequest, DefaultRoute, DelReply, DelRequest, ErrorKind, ErrorReply,
    PhaseTiming, PodGatewayReply, PodRef, Reply, ReplyEnvelope, ReportReply, ReportRequest,
    Request, RequestEnvelope, RoutesReport, WireKey, usable_pod_ipv6,
};
pub use record::{Backend, RecordError, TunnelRecord};
pub use selectors::SelectorNamespaces;

/// Version of the message format; both sides refuse other versions with a clear error.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where the manager listens unless configured otherwise (directory 0700, socket 0600, root).
pub const DEFAULT_SOCKET_PATH: &str = "/run/egress-gateway/cni.sock";
