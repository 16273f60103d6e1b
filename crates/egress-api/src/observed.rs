//! Pure reading of what the components publish (no client, no clock of its own): which
//! GatewayStatus belongs to which gateway node of a StaticGatewayConfiguration, whether its
//! daemon is alive (heartbeat), whether a PodEndpoint's peer is on it (and its latest
//! handshake) or refused there, the latest drift the node's daemon repaired on the pod's path,
//! and the PodEndpoint status that sums this up. Shared by the
//! operator (which writes PodEndpoint status) and `egressctl` (status, explain), so both read
//! the same facts the same way.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::pod_endpoint::{gateway_state, phase};
use crate::{
    Drift, GatewayPeers, GatewayStatus, GatewayVMProfile, PeerState, PodEndpoint,
    PodEndpointGateway, PodEndpointStatus, RefusedPeer,
};

/// Characters of a public key a GatewayStatus keeps per peer.
pub const KEY_PREFIX_LEN: usize = 8;

/// A daemon that has not written for longer than this many heartbeats (plus slack) is not
/// running, or cannot reach the API server.
const STALE_HEARTBEATS: i64 = 2;
const STALE_SLACK_SECONDS: i64 = 15;

/// A WireGuard session is dead after 180 s without a handshake (REJECT_AFTER_TIME); a peer
/// that sends traffic re-handshakes every 120 s.
pub const SESSION_SECONDS: i64 = 180;

/// The key prefix a GatewayStatus lists for `key`.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX_LEN).collect()
}

/// `<namespace>/<name>` of an object.
pub fn object_key<K: ResourceExt>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

/// How a gateway daemon's heartbeat looks at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Written `age` ago, within its period.
    Fresh(Duration),
    /// Last written `age` ago: longer than its period allows.
    Stale(Duration),
    /// No heartbeat field (a daemon that predates it): liveness unknown.
    Unknown,
}

/// The heartbeat of `status` at `now`.
pub fn heartbeat(status: &GatewayStatus, now: Timestamp) -> Heartbeat {
    let Some(at) = status.spec.heartbeat_time.as_ref() else {
        return Heartbeat::Unknown;
    };
    let age = now.as_second().saturating_sub(at.0.as_second()).max(0);
    let period = status.spec.heartbeat_seconds.unwrap_or(60).max(1);
    let d = Duration::from_secs(u64::try_from(age).unwrap_or(0));
    if age > STALE_HEARTBEATS * period + STALE_SLACK_SECONDS {
        Heartbeat::Stale(d)
    } else {
        Heartbeat::Fresh(d)
    }
}

/// The GatewayStatus of the gateway node `profile` describes: the one named like it, or the
/// one whose node has its secondary (or primary) IP (VM pools name profiles by NIC).
pub fn status_of_profile<'a>(
    statuses: &'a [GatewayStatus],
    profile: &GatewayVMProfile,
) -> Option<&'a GatewayStatus> {
    let name = profile.node_name.as_deref().unwrap_or_default();
    let ips: Vec<&str> = [
        profile.secondary_ip.as_deref(),
        profile.primary_ip.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect();
    statuses
        .iter()
        .find(|s| !name.is_empty() && s.name_any().eq_ignore_ascii_case(name))
        .or_else(|| {
            statuses.iter().find(|s| {
                s.spec
                    .egress_ips
                    .iter()
                    .flatten()
                    .any(|e| ips.contains(&e.private_ip.as_str()))
            })
        })
}

/// The public IP the node of `status` maps `private_ip` to, if it published one.
pub fn public_ip<'a>(status: &'a GatewayStatus, private_ip: &str) -> Option<&'a str> {
    status
        .spec
        .egress_ips
        .iter()
        .flatten()
        .find(|e| e.private_ip == private_ip)
        .and_then(|e| e.public_ip.as_deref())
        .filter(|s| !s.is_empty())
}

/// The interface of gateway `sgc` (`ns/name`) if the node lists it as ready.
pub fn ready_interface<'a>(status: &'a GatewayStatus, sgc: &str) -> Option<&'a str> {
    status
        .spec
        .ready_gateway_configurations
        .iter()
        .flatten()
        .find(|g| g.static_gateway_configuration.as_deref() == Some(sgc))
        .map(|g| g.interface_name.as_deref().unwrap_or_default())
}

/// The peers of gateway `sgc` (`ns/name`) on the node.
pub fn gateway_peers<'a>(status: &'a GatewayStatus, sgc: &str) -> Option<&'a GatewayPeers> {
    status
        .spec
        .gateways
        .iter()
        .flatten()
        .find(|g| g.static_gateway_configuration == sgc)
}

/// What one gateway node says about one PodEndpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOnNode<'a> {
    /// The peer is on the device with this key.
    Programmed(&'a PeerState),
    /// The peer is listed with another key (an older sandbox's).
    OtherKey(&'a PeerState),
    /// The daemon programmed it but the device lacked it at the last sample.
    Missing(&'a PeerState),
    /// Refused, with the reason.
    Refused(&'a RefusedPeer),
    /// The node's list was cut before this peer (object size budget): unknown.
    NotListed,
    /// Not on this node.
    Absent,
}

/// What the node of `status` says about `pe` (of gateway `sgc`, `ns/name`).
pub fn peer_on_node<'a>(status: &'a GatewayStatus, sgc: &str, pe: &PodEndpoint) -> PeerOnNode<'a> {
    let key = object_key(pe);
    if let Some(r) = status
        .spec
        .refused
        .iter()
        .flatten()
        .find(|r| r.pod_endpoint == key)
    {
        return PeerOnNode::Refused(r);
    }
    let Some(g) = gateway_peers(status, sgc) else {
        return PeerOnNode::Absent;
    };
    let name = pe.name_any();
    let want = key_prefix(pe.spec.pod_public_key.as_deref().unwrap_or_default());
    match g.peers.iter().find(|p| p.name == name) {
        Some(p) if p.missing => PeerOnNode::Missing(p),
        Some(p) if p.key == want => PeerOnNode::Programmed(p),
        Some(p) => PeerOnNode::OtherKey(p),
        None if usize::try_from(g.peers_total).unwrap_or(0) > g.peers.len() => {
            PeerOnNode::NotListed
        }
        None => PeerOnNode::Absent,
    }
}

/// Drift found this recently (seconds) is news: someone or something changes the gateway node
/// by hand, and traffic through it may have failed until the repair. Older drift is history.
pub const DRIFT_RECENT_SECONDS: i64 = 600;

/// True when `d` was found within [`DRIFT_RECENT_SECONDS`] of `now`.
pub fn drift_is_recent(d: &Drift, now: Timestamp) -> bool {
    now.as_second() - d.detected_time.0.as_second() <= DRIFT_RECENT_SECONDS
}

/// The drift records of the node of `status` found within [`DRIFT_RECENT_SECONDS`] of `now`
/// that concern the gateway on `interface` (its device, its pods' peers and routes) or the
/// whole node.
pub fn recent_drift<'a>(
    status: &'a GatewayStatus,
    interface: Option<&str>,
    now: Timestamp,
) -> Vec<&'a Drift> {
    status
        .spec
        .drift
        .iter()
        .flatten()
        .filter(|d| drift_is_recent(d, now))
        .filter(|d| d.interface_name.is_none() || d.interface_name.as_deref() == interface)
        .collect()
}

/// The latest drift on the node of `status` that lies on the path of `pe` through the
/// gateway's `interface` there: its own peer or route, an item of that gateway (its device,
/// address, …) or of the whole node. Other pods' peers and routes, and strangers', are not on
/// its path.
pub fn drift_for<'a>(
    status: &'a GatewayStatus,
    interface: Option<&str>,
    pe: &PodEndpoint,
) -> Option<&'a Drift> {
    let key = object_key(pe);
    status.spec.drift.iter().flatten().rev().find(|d| {
        match (&d.pod_endpoint, d.interface_name.as_deref()) {
            (Some(owner), _) => *owner == key,
            _ if matches!(d.kind.as_str(), "peer" | "route") => false,
            (None, None) => true,
            (None, Some(i)) => Some(i) == interface,
        }
    })
}

/// The status the operator writes on a PodEndpoint: per gateway node of its gateway (`nodes`:
/// the node name and its GatewayStatus, if any) what that node published, summed up.
pub fn pod_endpoint_status(
    pe: &PodEndpoint,
    sgc: &str,
    nodes: &[(String, Option<&GatewayStatus>)],
) -> PodEndpointStatus {
    let mut gateways = Vec::new();
    for (node, status) in nodes {
        let (state, reason, message) = match status.map(|s| peer_on_node(s, sgc, pe)) {
            Some(PeerOnNode::Programmed(_)) => (gateway_state::PROGRAMMED, None, None),
            Some(PeerOnNode::Missing(_)) => (
                gateway_state::MISSING,
                Some("missing".to_string()),
                Some("programmed, but not on the WireGuard device at the last sample".to_string()),
            ),
            Some(PeerOnNode::Refused(r)) => (
                gateway_state::REFUSED,
                Some(r.reason.clone()),
                Some(r.message.clone()),
            ),
            _ => (gateway_state::PENDING, None, None),
        };
        gateways.push(PodEndpointGateway {
            node: node.clone(),
            state: state.to_string(),
            reason,
            message,
        });
    }
    let count = |s: &str| gateways.iter().filter(|g| g.state == s).count();
    let programmed = count(gateway_state::PROGRAMMED);
    let refused = gateways
        .iter()
        .find(|g| g.state == gateway_state::REFUSED || g.state == gateway_state::MISSING);
    let phase = if gateways.iter().any(|g| g.state == gateway_state::REFUSED) {
        phase::REFUSED
    } else if programmed > 0 && programmed == gateways.len() {
        phase::PROGRAMMED
    } else if programmed > 0 || count(gateway_state::MISSING) > 0 {
        phase::PARTIAL
    } else {
        phase::PENDING
    };
    PodEndpointStatus {
        phase: Some(phase.to_string()),
        programmed: Some(format!("{programmed}/{}", gateways.len())),
        reason: refused.and_then(|g| g.reason.clone()),
        message: refused.and_then(|g| g.message.clone()),
        gateways,
        tunnel: None,
    }
}

#[cfg(test)]
#[path = "observed_tests.rs"]
mod tests;
