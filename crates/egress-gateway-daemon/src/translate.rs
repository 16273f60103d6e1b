//! Pure translation of Kubernetes objects into the data plane's vocabulary: one
//! StaticGatewayConfiguration (+ its GatewayVMConfiguration and key Secret) into a
//! [`GatewaySpec`] for this node, one PodEndpoint into a [`PeerSpec`]. No I/O, no client:
//! every rejection is a typed error naming the object and the field.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use egress_api::constants::{
    GATEWAY_PORT_MAX, GATEWAY_PORT_MIN, IN_USE_FINALIZER, KEY_SECRET_PRIVATE_KEY,
};
use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use egress_dataplane::key::KeyError;
use egress_dataplane::{Peer, PrivateKey, PublicKey};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::ipv6::Ipv6Refusal;
use crate::node::NodeIdentity;
use crate::trust::Refusal;

/// `<namespace>/<name>` of a namespaced object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a namespaced object.
    pub fn of<K: kube::Resource>(obj: &K) -> Self {
        Self::new(obj.namespace().unwrap_or_default(), obj.name_any())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Everything one gateway (SGC) needs on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    /// The StaticGatewayConfiguration.
    pub sgc: ObjectKey,
    /// Its UID (the LB probe path is `/gw/<uid>`).
    pub uid: String,
    /// WireGuard listen port = LB rule port.
    pub port: u16,
    /// The gateway private key from the Secret.
    pub private_key: PrivateKey,
    /// This node's secondary IP for the gateway (SNAT source).
    pub secondary_ip: Ipv4Addr,
    /// This node's primary IP.
    pub primary_ip: Ipv4Addr,
    /// The ILB frontend IP.
    pub ilb_ip: Ipv4Addr,
    /// IPv6 egress of the gateway on this node.
    pub ipv6: Ipv6Egress,
}

/// The IPv6 egress of one gateway on this node. Nothing here ever holds back its IPv4 egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv6Egress {
    /// The SGC egresses IPv4 only (no `IPv6` in `ipFamilies`).
    Disabled,
    /// The SGC asks for IPv6 but the operator has given this node no secondary IPv6 for it
    /// (not yet, or the IPv6 prefix has fewer addresses than the pool has nodes).
    Pending,
    /// IPv6 flows leave this node as this address.
    Ready(Ipv6Addr),
    /// The node's secondary IPv6 cannot be used (why).
    Unusable(String),
}

impl Ipv6Egress {
    /// The address IPv6 flows leave as, if they can.
    pub fn address(&self) -> Option<Ipv6Addr> {
        match self {
            Ipv6Egress::Ready(ip) => Some(*ip),
            _ => None,
        }
    }
}

const SECONDARY_IPV6_FIELD: &str =
    "GatewayVMConfiguration status.gatewayVMProfiles[].secondaryIPv6";

fn ipv6_egress(enabled: bool, secondary: Option<&str>) -> Ipv6Egress {
    let value = secondary.map(str::trim).unwrap_or_default();
    if !enabled {
        Ipv6Egress::Disabled
    } else if value.is_empty() {
        Ipv6Egress::Pending
    } else {
        match value.parse() {
            Ok(ip) => Ipv6Egress::Ready(ip),
            Err(_) => Ipv6Egress::Unusable(format!(
                "{SECONDARY_IPV6_FIELD} {value:?} is not an IPv6 address"
            )),
        }
    }
}

/// Why a StaticGatewayConfiguration cannot be programmed on this node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The key Secret is in a namespace the daemon does not watch.
    #[error(
        "failed to read the key Secret {secret}: the daemon only reads Secrets in namespace {watched}"
    )]
    SecretNamespace {
        /// The referenced Secret.
        secret: ObjectKey,
        /// The namespace the daemon watches.
        watched: String,
    },
    /// The key Secret does not exist (yet).
    #[error("failed to read the key Secret {secret}: not found")]
    SecretNotFound {
        /// The referenced Secret.
        secret: ObjectKey,
    },
    /// The key Secret has no private key entry.
    #[error("failed to read the key Secret {secret}: it has no data key {key}")]
    SecretKeyMissing {
        /// The Secret.
        secret: ObjectKey,
        /// The missing entry.
        key: &'static str,
    },
    /// The private key is not a WireGuard key.
    #[error("failed to read the private key in Secret {secret}")]
    BadPrivateKey {
        /// The Secret.
        secret: ObjectKey,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The private key does not belong to the public key pods are given.
    #[error(
        "failed to use the private key in Secret {secret}: its public key {derived} differs from the SGC's status.gatewayServerProfile.publicKey {published}"
    )]
    KeyMismatch {
        /// The Secret.
        secret: ObjectKey,
        /// Public key of the Secret's private key.
        derived: String,
        /// Public key in the SGC status.
        published: String,
    },
    /// The LB rule port is outside the range the operator allocates from.
    #[error(
        "failed to use port {port} of status.gatewayServerProfile.port: gateway ports are {GATEWAY_PORT_MIN}-{max}",
        max = GATEWAY_PORT_MAX - 1
    )]
    BadPort {
        /// The rejected port.
        port: i32,
    },
    /// An address field is not an IPv4 address.
    #[error("failed to parse {field} {value:?}: expected an IPv4 address")]
    BadAddress {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// This node's primary IP differs between two gateways' VM configurations.
    #[error(
        "failed to use primary IP {ip} from GatewayVMConfiguration {sgc}: other gateways on this node use {other}"
    )]
    PrimaryIpMismatch {
        /// The SGC.
        sgc: ObjectKey,
        /// Its primary IP.
        ip: Ipv4Addr,
        /// The one already in use.
        other: Ipv4Addr,
    },
    /// It clashes with another gateway on this node (port, secondary IP).
    #[error("failed to add the gateway to this node: {0}")]
    Conflict(String),
    /// Programming the data plane failed for this gateway alone; it is retried when it
    /// changes or at the next resync.
    #[error("failed to program the gateway: {0}")]
    Programming(String),
}

impl GatewayError {
    /// Event reason (PascalCase verb phrase).
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::Programming(_) => "GatewayProgrammingFailed",
            _ => "InvalidGateway",
        }
    }

    /// Metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::SecretNamespace { .. }
            | GatewayError::SecretNotFound { .. }
            | GatewayError::SecretKeyMissing { .. } => "gateway_secret",
            GatewayError::BadPrivateKey { .. } | GatewayError::KeyMismatch { .. } => "gateway_key",
            GatewayError::BadPort { .. } => "gateway_port",
            GatewayError::BadAddress { .. } | GatewayError::PrimaryIpMismatch { .. } => {
                "gateway_address"
            }
            GatewayError::Conflict(_) => "gateway_conflict",
            GatewayError::Programming(_) => "gateway_programming",
        }
    }
}

fn ipv4(field: &'static str, value: Option<&str>) -> Result<Ipv4Addr, GatewayError> {
    let value = value.unwrap_or_default();
    value.trim().parse().map_err(|_| GatewayError::BadAddress {
        field,
        value: value.to_owned(),
    })
}

/// The gateway `sgc` asks of this node, `None` if it asks nothing (not provisioned yet, being
/// deleted and no longer held for its pods, or its GatewayVMConfiguration does not list this
/// node), or why it cannot be programmed.
pub fn gateway_spec(
    sgc: &StaticGatewayConfiguration,
    vm: Option<&GatewayVMConfiguration>,
    secret: impl FnOnce(&ObjectKey) -> Option<Secret>,
    node: &NodeIdentity,
    secret_namespace: &str,
) -> Result<Option<GatewaySpec>, GatewayError> {
    let Some(status) = sgc.status.as_ref().filter(|s| s.is_provisioned()) else {
        return Ok(None);
    };
    // A deleted gateway stays while the operator's in-use protection holds it (pods still use
    // it); it goes once that finalizer is released, before the operator removes it from Azure.
    if sgc.metadata.deletion_timestamp.is_some()
        && !sgc.finalizers().iter().any(|f| f == IN_USE_FINALIZER)
    {
        return Ok(None);
    }
    let Some(profile) = vm
        .and_then(|vm| vm.status.as_ref())
        .and_then(|s| s.gateway_vm_profiles.as_ref())
        .and_then(|profiles| {
            profiles
                .iter()
                .find(|p| p.node_name.as_deref().is_some_and(|n| node.is_named(n)))
        })
    else {
        return Ok(None);
    };
    let server = status.gateway_server_profile.clone().unwrap_or_default();
    let key = ObjectKey::of(sgc);
    let port = server.port.unwrap_or_default();
    if !(GATEWAY_PORT_MIN..GATEWAY_PORT_MAX).contains(&port) {
        return Err(GatewayError::BadPort { port });
    }
    let port = u16::try_from(port).map_err(|_| GatewayError::BadPort { port })?;
    let ilb_ip = ipv4("status.gatewayServerProfile.ip", server.ip.as_deref())?;
    let secondary_ip = ipv4(
        "GatewayVMConfiguration status.gatewayVMProfiles[].secondaryIP",
        profile.secondary_ip.as_deref(),
    )?;
    let primary_ip = ipv4(
        "GatewayVMConfiguration status.gatewayVMProfiles[].primaryIP",
        profile.primary_ip.as_deref(),
    )?;
    let ipv6 = ipv6_egress(sgc.spec.target.ipv6(), profile.secondary_ipv6.as_deref());
    let reference = server.private_key_secret_ref.unwrap_or_default();
    let secret_key = ObjectKey::new(
        reference
            .namespace
            .unwrap_or_else(|| secret_namespace.to_owned()),
        reference.name.unwrap_or_default(),
    );
    if secret_key.namespace != secret_namespace {
        return Err(GatewayError::SecretNamespace {
            secret: secret_key,
            watched: secret_namespace.to_owned(),
        });
    }
    let private_key = private_key(&secret_key, secret(&secret_key))?;
    let published = server.public_key.unwrap_or_default();
    let derived = private_key.public_key().to_base64();
    if derived != published.trim() {
        return Err(GatewayError::KeyMismatch {
            secret: secret_key,
            derived,
            published,
        });
    }
    Ok(Some(GatewaySpec {
        sgc: key,
        uid: sgc.uid().unwrap_or_default(),
        port,
        private_key,
        secondary_ip,
        primary_ip,
        ilb_ip,
        ipv6,
    }))
}

fn private_key(name: &ObjectKey, secret: Option<Secret>) -> Result<PrivateKey, GatewayError> {
    let secret = secret.ok_or_else(|| GatewayError::SecretNotFound {
        secret: name.clone(),
    })?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_SECRET_PRIVATE_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(KEY_SECRET_PRIVATE_KEY))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| GatewayError::SecretKeyMissing {
            secret: name.clone(),
            key: KEY_SECRET_PRIVATE_KEY,
        })?;
    let text = String::from_utf8_lossy(&bytes);
    text.parse::<PrivateKey>()
        .map_err(|source| GatewayError::BadPrivateKey {
            secret: name.clone(),
            source,
        })
}

/// A pod's peer and the gateway it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The StaticGatewayConfiguration (same namespace as the PodEndpoint).
    pub sgc: ObjectKey,
    /// The pod's IP (an IPv4 `/32`).
    pub ip: IpNet,
    /// The pod's IPv6 `/128` (`spec.podIpv6Address`), if set: checked further before it joins
    /// the peer, and never a reason to refuse the IPv4 peer.
    pub ipv6: Option<Result<IpNet, Ipv6Refusal>>,
    /// The WireGuard peer (IPv4 only).
    pub peer: Peer,
}

/// Why a PodEndpoint cannot become a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// `spec.staticGatewayConfiguration` is empty.
    #[error("failed to use PodEndpoint {pod_endpoint}: spec.staticGatewayConfiguration is empty")]
    NoGateway {
        /// The PodEndpoint.
        pod_endpoint: ObjectKey,
    },
    /// `spec.podIpAddress` is not an IPv4 host CIDR.
    #[error(
        "failed to use PodEndpoint {pod_endpoint}: spec.podIpAddress {value:?} is not an IPv4 /32 such as 10.244.1.5/32"
    )]
    BadIp {
        /// The PodEndpoint.
        pod_endpoint: ObjectKey,
        /// The rejected value.
        value: String,
    },
    /// `spec.podPublicKey` is not a WireGuard key.
    #[error("failed to use PodEndpoint {pod_endpoint}: spec.podPublicKey")]
    BadKey {
        /// The PodEndpoint.
        pod_endpoint: ObjectKey,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// Well-formed, but it may not speak for a pod, or another claim holds its IP or key.
    #[error("refused PodEndpoint {pod_endpoint}: {refusal}")]
    Refused {
        /// The PodEndpoint.
        pod_endpoint: ObjectKey,
        /// Why (boxed: by far the largest variant).
        refusal: Box<Refusal>,
    },
    /// The data plane's own consistency check refused the peer.
    #[error("failed to use PodEndpoint {pod_endpoint}: {reason}")]
    Conflict {
        /// The PodEndpoint.
        pod_endpoint: ObjectKey,
        /// The data plane's reason.
        reason: String,
    },
    /// The data plane refused the peer.
    #[error("failed to program PodEndpoint {pod_endpoint}: {reason}")]
    Programming {
        /// The PodEndpoint.
        pod_endpoint: ObjectKey,
        /// The data plane's reason.
        reason: String,
    },
}

/// Event reason of a refused PodEndpoint.
pub const REFUSED_REASON: &str = "PodEndpointRefused";

impl PeerError {
    /// Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PeerError::Programming { .. } => "PeerProgrammingFailed",
            PeerError::Refused { .. } => REFUSED_REASON,
            _ => "InvalidPodEndpoint",
        }
    }

    /// Metric label of `errors_total` (refusals are counted by reason in their own counter).
    pub fn kind(&self) -> &'static str {
        match self {
            PeerError::NoGateway { .. } | PeerError::BadIp { .. } | PeerError::BadKey { .. } => {
                "invalid_pod_endpoint"
            }
            PeerError::Refused { .. } => "pod_endpoint_refused",
            PeerError::Conflict { .. } => "peer_conflict",
            PeerError::Programming { .. } => "peer_programming",
        }
    }

    /// The refusal, if this is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            PeerError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}

/// The peer a PodEndpoint asks for.
pub fn peer_spec(pe: &PodEndpoint) -> Result<PeerSpec, PeerError> {
    let key = ObjectKey::of(pe);
    let sgc = pe
        .spec
        .static_gateway_configuration
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PeerError::NoGateway {
            pod_endpoint: key.clone(),
        })?;
    let raw_ip = pe.spec.pod_ip_address.clone().unwrap_or_default();
    let ip = match raw_ip.trim().parse::<IpNet>() {
        Ok(ip @ IpNet::V4(v4)) if v4.prefix_len() == 32 => ip,
        _ => {
            return Err(PeerError::BadIp {
                pod_endpoint: key,
                value: raw_ip,
            });
        }
    };
    let public_key = pe
        .spec
        .pod_public_key
        .as_deref()
        .unwrap_or_default()
        .parse::<PublicKey>()
        .map_err(|source| PeerError::BadKey {
            pod_endpoint: key.clone(),
            source,
        })?;
    let ipv6 = pe
        .spec
        .pod_ipv6_address
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .map(|raw| match raw.trim().parse::<IpNet>() {
            Ok(ip @ IpNet::V6(v6)) if v6.prefix_len() == 128 => Ok(ip),
            _ => Err(Ipv6Refusal::BadAddress {
                value: raw.to_owned(),
            }),
        });
    Ok(PeerSpec {
        sgc: ObjectKey::new(key.namespace, sgc),
        ip,
        ipv6,
        peer: Peer {
            public_key,
            allowed_ips: BTreeSet::from([ip]),
            endpoint: None,
        },
    })
}
