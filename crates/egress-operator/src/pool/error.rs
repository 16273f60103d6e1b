//! Errors of a pool reconcile. [`PoolError`] stops the pass (and decides the requeue);
//! [`MemberError`] blocks one gateway only, becomes a `False` condition on its SGC with a
//! Warning Event, and waits for a change.

use std::time::Duration;

use egress_azure::ArmError;

use crate::controller::ReconcileError;
use crate::error::{Category, KubeError};
use crate::pool::plan::ip_config::NicPlanError;
use crate::target::TargetError;

/// A failure that stops the whole pool pass.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// No scale set matches the pool.
    #[error("failed to find the gateway pool {pool}: {why}")]
    PoolNotFound {
        /// The pool key.
        pool: String,
        /// What was looked for.
        why: String,
    },
    /// The scale set has no `uniqueId` to name the frontend and backend pool after.
    #[error("failed to read the unique ID of scale set {id}")]
    NoUniqueId {
        /// The scale set.
        id: String,
    },
    /// An ARM call failed.
    #[error("failed to {action}")]
    Azure {
        /// What was being done.
        action: String,
        /// The ARM failure.
        #[source]
        source: ArmError,
    },
    /// The scale set's NIC configuration cannot carry gateway ipConfigs.
    #[error("failed to plan the gateway ipConfigs of {what}")]
    Nic {
        /// Model or instance.
        what: String,
        /// Why.
        #[source]
        source: NicPlanError,
    },
    /// A scale set or instance lacks a network profile.
    #[error("failed to read the network profile of {what}")]
    NoNetworkProfile {
        /// Model or instance.
        what: String,
    },
    /// An instance did not get an IP for a gateway ipConfig.
    #[error("failed to find the private IPs of instance {instance}: {why}")]
    MissingIp {
        /// Instance.
        instance: String,
        /// Which IP is missing.
        why: String,
    },
    /// A Kubernetes write failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

impl PoolError {
    pub(crate) fn azure(action: impl Into<String>, source: ArmError) -> Self {
        Self::Azure {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube(KubeError::new(action, source))
    }
}

impl ReconcileError for PoolError {
    fn category(&self) -> Category {
        match self {
            Self::PoolNotFound { .. } => Category::InvalidSpec,
            Self::NoUniqueId { .. } | Self::Nic { .. } | Self::NoNetworkProfile { .. } => {
                Category::Permanent
            }
            // Azure allocates addresses asynchronously; the next pass will see them.
            Self::MissingIp { .. } => Category::Transient,
            // A prefix still releasing its instance IPs heals by itself.
            Self::Azure { source, .. } if source.code() == "InUsePublicIpPrefixCannotBeDeleted" => {
                Category::Transient
            }
            Self::Azure { source, .. } => Category::of_arm(source),
            Self::Kube(e) => e.category(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Azure { source, .. } => source.retry_after(),
            Self::Kube(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Which SGC condition a member error shows up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affects {
    /// `LoadBalancerReady`.
    LoadBalancer,
    /// `PrefixReady`.
    Prefix,
}

/// A failure that blocks one gateway of the pool until its spec (or Azure) changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// The target is invalid.
    #[error("{0}")]
    Invalid(#[from] TargetError),
    /// A node pool without (a valid) `aks-managed-gatewayIPPrefixSize` tag in public mode.
    #[error(
        "failed to find the public IP prefix size: {pool} has no valid tag aks-managed-gatewayIPPrefixSize (28-31)"
    )]
    PrefixSizeUnknown {
        /// `scale set <name>` or `VM node pool <name>`.
        pool: String,
    },
    /// The BYO prefix does not exist.
    #[error("failed to find public IP prefix {id}")]
    PrefixNotFound {
        /// Prefix ID.
        id: String,
    },
    /// The prefix has the wrong length.
    #[error("public IP prefix {id} has length /{found}, the gateway pool needs /{required}")]
    PrefixLengthMismatch {
        /// Prefix ID.
        id: String,
        /// Its length.
        found: u8,
        /// The pool's.
        required: u8,
    },
    /// Azure refused to create the managed prefix.
    #[error("failed to create public IP prefix {id}: {message}")]
    PrefixRejected {
        /// Prefix ID.
        id: String,
        /// ARM code and message.
        message: String,
    },
    /// Another gateway of the same VM node pool already uses this BYO prefix: the per-NIC
    /// public IPs are named by prefix and NIC, so two gateways would need the same public IP.
    #[error(
        "public IP prefix {id} is already used by gateway {other} on VM node pool {pool}; each gateway of a VM node pool needs its own prefix"
    )]
    PrefixShared {
        /// Prefix ID.
        id: String,
        /// The gateway that keeps it (`namespace/name`).
        other: String,
        /// Node pool.
        pool: String,
    },
    /// The pool has more nodes than the public IP prefix has addresses.
    #[error(
        "public IP prefix {id} (/{length}) holds {capacity} addresses, but {pool} has {nodes} {unit}: each needs one; use a prefix of /{needed} or shorter, or scale the pool to {capacity}"
    )]
    PrefixTooSmall {
        /// Prefix ID.
        id: String,
        /// Its length.
        length: u8,
        /// Addresses it holds.
        capacity: usize,
        /// `scale set <name>` or `VM node pool <name>`.
        pool: String,
        /// Nodes of the pool.
        nodes: usize,
        /// `instances` or `gateway NICs`.
        unit: &'static str,
        /// The longest prefix length that holds them.
        needed: u8,
    },
    /// The prefix is of the other IP version (an IPv6 prefix named as the IPv4 one, or the
    /// other way round).
    #[error("public IP prefix {id} is an {found} prefix; this needs an {wanted} one")]
    PrefixWrongVersion {
        /// Prefix ID.
        id: String,
        /// Its `publicIPAddressVersion`.
        found: String,
        /// `IPv4` or `IPv6`.
        wanted: &'static str,
    },
    /// IPv6 egress on a pool whose subnet has no IPv6 range (Azure refuses IPv6 ipConfigs
    /// there; writing them would fail the whole pool's pass).
    #[error(
        "subnet {subnet} of the gateway pool has no IPv6 address range: IPv6 egress needs a dual-stack subnet (an IPv6 prefix in its addressPrefixes)"
    )]
    SubnetWithoutIpv6 {
        /// Subnet ID.
        subnet: String,
    },
    /// All ports 6000-6999 of the pool's frontend are used.
    #[error(
        "failed to allocate a port: all ports 6000-6999 of the gateway pool's load balancer frontend are in use"
    )]
    PortsExhausted,
}

impl MemberError {
    /// PascalCase condition reason and Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.reason(),
            Self::PrefixSizeUnknown { .. } => "PrefixSizeUnknown",
            Self::PrefixNotFound { .. } => "PrefixNotFound",
            Self::PrefixLengthMismatch { .. } => "PrefixLengthMismatch",
            Self::PrefixRejected { .. } => "PrefixRejected",
            Self::PrefixShared { .. } => "PrefixShared",
            Self::PrefixTooSmall { .. } => "PrefixTooSmall",
            Self::PortsExhausted => "PortsExhausted",
            Self::SubnetWithoutIpv6 { .. } => "SubnetNotDualStack",
            // The ID names a prefix that cannot be the one asked for.
            Self::PrefixWrongVersion { .. } => "InvalidPrefixId",
        }
    }

    /// The condition it makes `False`.
    pub fn affects(&self) -> Affects {
        match self {
            Self::Invalid(_) | Self::PortsExhausted => Affects::LoadBalancer,
            _ => Affects::Prefix,
        }
    }
}
