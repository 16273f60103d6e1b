//! Request and reply types of the plugin <-> manager protocol. Field names are camelCase JSON;
//! every request names one pod by namespace and name (the manager resolves everything else
//! from the Kubernetes API, never from the caller's word alone).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;

/// A pod as the container runtime names it in `CNI_ARGS`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    /// `K8S_POD_NAMESPACE`.
    pub namespace: String,
    /// `K8S_POD_NAME`.
    pub name: String,
    /// `K8S_POD_UID` when the runtime passes it; the manager then refuses a different pod
    /// that reuses the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A base64 WireGuard public key (32 bytes), checked when parsed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(try_from = "String", into = "String")]
pub struct WireKey(String);

impl WireKey {
    /// Checks the shape of a base64-encoded 32-byte key (44 characters, one `=` of padding).
    pub fn parse(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let is_b64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
        // 32 bytes = 42 full sextets + 4 bits: the 43rd character carries two zero bits.
        let ok = b.len() == 44
            && b[43] == b'='
            && b[..43].iter().all(is_b64)
            && b"AEIMQUYcgkosw048".contains(&b[42]);
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "{text:?} is not a base64 WireGuard key (44 characters encoding 32 bytes)"
            ))
        }
    }

    /// The base64 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WireKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WireKey> for String {
    fn from(k: WireKey) -> Self {
        k.0
    }
}

impl fmt::Display for WireKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an annotated pod's default route points (mirrors the SGC's `spec.defaultRoute`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum DefaultRoute {
    /// Everything through the tunnel except the excluded CIDRs.
    StaticEgressGateway,
    /// Normal routing; only the SGC's `excludeCidrs` go through the tunnel.
    AzureNetworking,
}

/// Whether `ip` can be a pod's IPv6 egress address: unicast, and neither link-local,
/// loopback, unspecified nor IPv4-mapped (the gateway's allowed IP for it must name one pod,
/// and its SNAT must see a routable source). The plugin takes the first such address of the
/// main plugin's result; the manager refuses any other claim.
pub fn usable_pod_ipv6(ip: &Ipv6Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unicast_link_local()
        || ip.to_ipv4_mapped().is_some())
}

/// ADD for an annotated pod: the pod's tunnel key and the address the main plugin gave it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AddRequest {
    /// The pod.
    pub pod: PodRef,
    /// `CNI_CONTAINERID` of the sandbox; stored on the PodEndpoint so a late DEL of an older
    /// sandbox cannot remove the endpoint of a newer one.
    pub container_id: String,
    /// The pod's IPv4 address from the main plugin's result.
    pub pod_ip: IpAddr,
    /// The pod's fresh WireGuard public key (the private key never leaves the plugin).
    pub public_key: WireKey,
    /// The pod's IPv6 address from the main plugin's result, when it has one (dual-stack).
    /// Added to protocol version 1 without a bump: a manager that predates it ignores it and
    /// answers without [`AddReply::ipv6`], so the pod stays IPv4-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ipv6: Option<Ipv6Addr>,
}

/// What the plugin needs to configure the tunnel.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AddReply {
    /// Name of the StaticGatewayConfiguration (pod namespace) the pod uses.
    pub gateway: String,
    /// Gateway endpoint: internal load balancer frontend IP and the gateway's port.
    pub endpoint: SocketAddr,
    /// The gateway's WireGuard public key.
    pub gateway_public_key: WireKey,
    /// Default-route mode of the SGC.
    pub default_route: DefaultRoute,
    /// The SGC's `excludeCidrs` (IPv6 ones included; the plugin uses those only with
    /// [`AddReply::ipv6`]).
    pub exclude_cidrs: Vec<IpNet>,
    /// The pod's IPv6 traffic goes through the gateway: the SGC has IPv6 in `ipFamilies` and
    /// the request's `podIpv6` is on the PodEndpoint. Absent (false) from a manager that
    /// predates it, and ignored by a plugin that does: IPv6 routes are then left alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
}

/// DEL: forget the pod's endpoint (idempotent).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DelRequest {
    /// The pod.
    pub pod: PodRef,
    /// `CNI_CONTAINERID` of the sandbox being torn down.
    pub container_id: String,
}

/// DEL result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DelReply {
    /// Whether a PodEndpoint of this sandbox existed and was deleted.
    pub deleted: bool,
}

/// Which SGC a pod names in its annotation (answered from the manager's node-local cache).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PodGatewayReply {
    /// The gateway the pod uses: its annotation, or the one `podSelector` that selects it
    /// (`None`: neither).
    pub gateway: Option<String>,
}

/// A phase of an annotated pod's ADD, in order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum AddPhase {
    /// Asking the manager (`add`: the PodEndpoint is applied).
    Register,
    /// Building `wg0` (device, key, peer, move, MTU, up).
    Tunnel,
    /// Waiting for the first WireGuard handshake.
    Handshake,
    /// Routes, ingress return path and sysctls in the pod.
    Routes,
}

impl AddPhase {
    /// Every phase, in order.
    pub const ALL: [AddPhase; 4] = [
        AddPhase::Register,
        AddPhase::Tunnel,
        AddPhase::Handshake,
        AddPhase::Routes,
    ];

    /// The wire (and metric label) name.
    pub fn name(self) -> &'static str {
        match self {
            AddPhase::Register => "register",
            AddPhase::Tunnel => "tunnel",
            AddPhase::Handshake => "handshake",
            AddPhase::Routes => "routes",
        }
    }
}

/// How long one phase took.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTiming {
    /// The phase.
    pub phase: AddPhase,
    /// Its duration in seconds.
    pub seconds: f64,
}

/// What the plugin routed in the pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoutesReport {
    /// The SGC's default-route mode at ADD.
    pub default_route: DefaultRoute,
    /// The SGC's `excludeCidrs` at ADD.
    pub exclude_cidrs: Vec<IpNet>,
    /// The node exception CIDRs from the conflist.
    pub node_exclude_cidrs: Vec<IpNet>,
    /// IPv6 was routed too ([`AddReply::ipv6`]); without it the IPv6 CIDRs above changed
    /// nothing. Absent from older plugins.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
}

/// After an annotated pod's ADD got past registration: how long each phase took, whether it
/// succeeded, and what the pod's routes are. Added to protocol version 1 without a bump: a
/// manager that predates it answers `badRequest`, which the plugin ignores; ADD's result never
/// depends on the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReportRequest {
    /// The pod.
    pub pod: PodRef,
    /// `CNI_CONTAINERID` of the sandbox.
    pub container_id: String,
    /// The phase that failed; `None` when ADD succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<AddPhase>,
    /// The phases that ran (the failed one included), in order.
    pub phases: Vec<PhaseTiming>,
    /// The routes, once they are programmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RoutesReport>,
}

/// Answer to a report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReportReply {
    /// Whether the manager took it (it records it asynchronously).
    pub recorded: bool,
}

/// One request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// Which gateway (if any) does this pod use?
    PodGateway {
        /// The pod.
        pod: PodRef,
    },
    /// Register the pod's tunnel key.
    Add(AddRequest),
    /// Remove the pod's tunnel key.
    Del(DelRequest),
    /// How an ADD went (phase timings, routes); best effort.
    Report(ReportRequest),
}

impl Request {
    /// Every operation name [`Request::op`] returns.
    pub const OPS: [&'static str; 4] = ["podGateway", "add", "del", "report"];

    /// The pod the request is about.
    pub fn pod(&self) -> &PodRef {
        match self {
            Request::PodGateway { pod } => pod,
            Request::Add(r) => &r.pod,
            Request::Del(r) => &r.pod,
            Request::Report(r) => &r.pod,
        }
    }

    /// Short operation name for logs and metrics.
    pub fn op(&self) -> &'static str {
        match self {
            Request::PodGateway { .. } => "podGateway",
            Request::Add(_) => "add",
            Request::Del(_) => "del",
            Request::Report(_) => "report",
        }
    }
}

/// Why the manager refused or failed a request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// Unparseable request or unsupported protocol version.
    BadRequest,
    /// The pod does not exist in the API.
    PodNotFound,
    /// The pod is scheduled to another node: this manager serves only its own node.
    PodNotOnNode,
    /// The pod has no gateway annotation (ADD is only for annotated pods).
    PodNotAnnotated,
    /// The claimed IP is not the pod's (per the API) or belongs to another pod on the node.
    IpMismatch,
    /// The named StaticGatewayConfiguration does not exist.
    GatewayNotFound,
    /// The StaticGatewayConfiguration exists but is not provisioned yet.
    GatewayNotReady,
    /// The StaticGatewayConfiguration's status is unusable (bad IP, key or CIDR).
    GatewayInvalid,
    /// The StaticGatewayConfiguration cannot serve pods until someone changes it or Azure:
    /// the operator reports why it cannot be provisioned (pool not found, prefix too small,
    /// invalid spec), or it is being deleted. The message carries the operator's reason.
    GatewayFailed,
    /// The pod has no annotation and the `podSelector`s of two or more StaticGatewayConfigurations
    /// of its namespace match it: it uses none of them until someone resolves the conflict.
    GatewayConflict,
    /// The Kubernetes API could not be reached or failed.
    ApiUnavailable,
    /// The manager is starting or stopping.
    NotReady,
    /// The manager has as many plugin connections open as it allows: retry shortly (the
    /// plugin does so itself within its deadline).
    Busy,
    /// A kind this side does not know (sent by a newer peer); the message still says why.
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    /// Every kind this side knows (metrics list them all from the start).
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::BadRequest,
        ErrorKind::PodNotFound,
        ErrorKind::PodNotOnNode,
        ErrorKind::PodNotAnnotated,
        ErrorKind::IpMismatch,
        ErrorKind::GatewayNotFound,
        ErrorKind::GatewayNotReady,
        ErrorKind::GatewayInvalid,
        ErrorKind::GatewayFailed,
        ErrorKind::GatewayConflict,
        ErrorKind::ApiUnavailable,
        ErrorKind::NotReady,
        ErrorKind::Busy,
        ErrorKind::Unknown,
    ];

    /// Whether retrying later can succeed without anyone changing configuration.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::GatewayNotReady
                | ErrorKind::ApiUnavailable
                | ErrorKind::NotReady
                | ErrorKind::Busy
        )
    }
}

/// A refusal with a message meant for `kubectl describe pod`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    /// Category.
    pub kind: ErrorKind,
    /// Specific, human-readable reason (names the pod, SGC and what is missing).
    pub message: String,
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One reply.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Reply {
    /// Answer to [`Request::PodGateway`].
    PodGateway(PodGatewayReply),
    /// Answer to [`Request::Add`].
    Added(AddReply),
    /// Answer to [`Request::Del`].
    Deleted(DelReply),
    /// Answer to [`Request::Report`].
    Reported(ReportReply),
    /// The request failed.
    Error(ErrorReply),
}

/// A request on the wire.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestEnvelope {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
}

impl RequestEnvelope {
    /// Wraps a request with the current protocol version.
    pub fn new(request: Request) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// A reply on the wire.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReplyEnvelope {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The reply.
    #[serde(flatten)]
    pub reply: Reply,
}

impl ReplyEnvelope {
    /// Wraps a reply with the current protocol version.
    pub fn new(reply: Reply) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            reply,
        }
    }
}
