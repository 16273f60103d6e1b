//! `egressctl status`, pure: per StaticGatewayConfiguration its readiness, egress prefix and
//! endpoint, its gateway nodes (private and public IP, whether the daemon is alive, whether the
//! gateway is ready there, its peers, missing peers and recent handshakes) and the pods using
//! it (from their PodEndpoints). Every problem found is listed; the exit code is 1 when there
//! is one.

use egress_api::observed::{self, Heartbeat, SESSION_SECONDS};
use egress_api::{GatewayStatus, GatewayVMConfiguration, StaticGatewayConfiguration};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::cluster::Snapshot;

/// A gateway daemon's liveness as its GatewayStatus shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Daemon {
    /// `running`, `not running`, `unknown` (no heartbeat published) or `absent` (no GatewayStatus).
    pub state: String,
    /// Seconds since its last write.
    pub heartbeat_age_seconds: Option<u64>,
}

impl Daemon {
    /// Whether it counts as a problem.
    pub fn is_down(&self) -> bool {
        self.state == "not running" || self.state == "absent"
    }

    /// One short cell.
    pub fn cell(&self) -> String {
        match self.heartbeat_age_seconds {
            Some(a) => format!("{} ({a}s)", self.state),
            None => self.state.clone(),
        }
    }
}

/// One gateway node of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayNode {
    /// Node (GatewayStatus name, else the operator's node name).
    pub node: String,
    /// The gateway's secondary IP on the node.
    pub private_ip: Option<String>,
    /// The public IP Azure maps it to (public mode), as the daemon learned from IMDS.
    pub public_ip: Option<String>,
    /// The address traffic leaves from: the public IP, or in private mode the secondary IP.
    pub egress_ip: Option<String>,
    /// The daemon.
    pub daemon: Daemon,
    /// The gateway is programmed on the node (and its load-balancer probe answers 200).
    pub gateway_ready: bool,
    /// Its WireGuard interface there.
    pub interface: Option<String>,
    /// Peers of the gateway on the node.
    pub peers: i64,
    /// Peers the daemon programmed that the device lacked at its last sample.
    pub missing: usize,
    /// Peers with a handshake within a WireGuard session's lifetime (180 s) of the last report.
    pub recent_handshakes: usize,
    /// Changes made outside the daemon to this gateway or the node that its resync found in
    /// the last 10 minutes (`DRIFT_RECENT_SECONDS`).
    pub recent_drift: usize,
    /// The latest of them, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_drift: Option<String>,
}

/// The gateway nodes of `sgc` (the operator's list in its VM configuration, joined with
/// every node's GatewayStatus) at `now`.
pub fn gateway_nodes(
    sgc: &StaticGatewayConfiguration,
    vm: Option<&GatewayVMConfiguration>,
    statuses: &[GatewayStatus],
    now: Timestamp,
) -> Vec<GatewayNode> {
    let key = observed::object_key(sgc);
    let private = !sgc.spec.target.provision_public_ips;
    let profiles = vm
        .and_then(|v| v.status.as_ref())
        .and_then(|s| s.gateway_vm_profiles.clone())
        .unwrap_or_default();
    profiles
        .iter()
        .map(|p| {
            let status = observed::status_of_profile(statuses, p);
            let private_ip = p.secondary_ip.clone().filter(|s| !s.is_empty());
            let public_ip = status
                .zip(private_ip.as_deref())
                .and_then(|(s, ip)| observed::public_ip(s, ip))
                .map(str::to_string);
            let daemon = match status.map(|s| observed::heartbeat(s, now)) {
                None => Daemon {
                    state: "absent".into(),
                    heartbeat_age_seconds: None,
                },
                Some(Heartbeat::Fresh(d)) => Daemon {
                    state: "running".into(),
                    heartbeat_age_seconds: Some(d.as_secs()),
                },
                Some(Heartbeat::Stale(d)) => Daemon {
                    state: "not running".into(),
                    heartbeat_age_seconds: Some(d.as_secs()),
                },
                Some(Heartbeat::Unknown) => Daemon {
                    state: "unknown".into(),
                    heartbeat_age_seconds: None,
                },
            };
            let interface = status.and_then(|s| observed::ready_interface(s, &key));
            let drift = status.map_or_else(Vec::new, |s| observed::recent_drift(s, interface, now));
            let peers = status.and_then(|s| observed::gateway_peers(s, &key));
            let reported = status
                .and_then(|s| s.spec.heartbeat_time.as_ref())
                .map_or(now.as_second(), |t| t.0.as_second());
            GatewayNode {
                node: status.map_or_else(
                    || p.node_name.clone().unwrap_or_default(),
                    ResourceExt::name_any,
                ),
                egress_ip: if private {
                    private_ip.clone()
                } else {
                    public_ip.clone()
                },
                private_ip,
                public_ip,
                daemon,
                gateway_ready: interface.is_some(),
                interface: interface.map(str::to_string),
                peers: peers.map_or(0, |g| g.peers_total),
                missing: peers.map_or(0, |g| g.peers.iter().filter(|p| p.missing).count()),
                recent_handshakes: peers.map_or(0, |g| {
                    g.peers
                        .iter()
                        .filter(|p| p.handshake.is_some_and(|h| reported - h < SESSION_SECONDS))
                        .count()
                }),
                recent_drift: drift.len(),
                latest_drift: drift.last().map(|d| drift_words(d)),
            }
        })
        .collect()
}

/// One drift record in a few words.
fn drift_words(d: &egress_api::Drift) -> String {
    let owner = d
        .pod_endpoint
        .as_deref()
        .map(|pe| format!(" of {pe}"))
        .unwrap_or_default();
    let place = d.interface_name.as_deref().unwrap_or("the node");
    let outcome = if d.repaired {
        "repaired".to_string()
    } else {
        format!("repair failed: {}", d.error.as_deref().unwrap_or("?"))
    };
    format!(
        "{} {}{owner} on {place} at {} ({outcome})",
        d.kind, d.change, d.detected_time.0
    )
}

/// A pod using a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUse {
    /// Pod (= PodEndpoint) name.
    pub name: String,
    /// PodEndpoint `status.phase`.
    pub phase: Option<String>,
    /// PodEndpoint `status.programmed`.
    pub programmed: Option<String>,
}

/// One gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayReport {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Ready` condition status.
    pub ready: bool,
    /// Its reason and message.
    pub reason: String,
    /// ...
    pub message: String,
    /// `status.egressIpPrefix`.
    pub egress_ip_prefix: Option<String>,
    /// `ip:port` pods connect to.
    pub endpoint: Option<String>,
    /// Gateway nodes.
    pub nodes: Vec<GatewayNode>,
    /// Pods with a PodEndpoint naming it.
    pub pods: Vec<PodUse>,
    /// Problems found.
    pub problems: Vec<String>,
}

/// Everything `status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// One entry per gateway.
    pub gateways: Vec<GatewayReport>,
}

impl StatusReport {
    /// Number of problems.
    pub fn problems(&self) -> usize {
        self.gateways.iter().map(|g| g.problems.len()).sum()
    }
}

fn gateway(sgc: &StaticGatewayConfiguration, snap: &Snapshot, now: Timestamp) -> GatewayReport {
    let ns = sgc.namespace().unwrap_or_default();
    let name = sgc.name_any();
    let vm = snap
        .vm_configs
        .iter()
        .find(|v| v.namespace() == sgc.namespace() && v.name_any() == name);
    let status = sgc.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let nodes = gateway_nodes(sgc, vm, &snap.statuses, now);
    let pods: Vec<PodUse> = snap
        .pod_endpoints
        .iter()
        .filter(|p| {
            p.namespace().as_deref() == Some(ns.as_str())
                && p.spec.static_gateway_configuration.as_deref() == Some(name.as_str())
        })
        .map(|p| PodUse {
            name: p.name_any(),
            phase: p.status.as_ref().and_then(|s| s.phase.clone()),
            programmed: p.status.as_ref().and_then(|s| s.programmed.clone()),
        })
        .collect();
    let mut problems = Vec::new();
    match ready {
        Some(c) if c.status == "True" => {}
        Some(c) => problems.push(format!("not Ready: {}: {}", c.reason, c.message)),
        None => problems.push("not Ready: the operator has not reported on it yet".into()),
    }
    if ready.is_some_and(|c| c.status == "True") && nodes.is_empty() {
        problems.push("no gateway node carries it".into());
    }
    for n in &nodes {
        if n.daemon.is_down() {
            problems.push(format!(
                "gateway node {}: daemon {}",
                n.node,
                n.daemon.cell()
            ));
        } else if !n.gateway_ready {
            problems.push(format!(
                "gateway node {}: the gateway is not programmed there",
                n.node
            ));
        }
        if let Some(latest) = &n.latest_drift
            && !n.daemon.is_down()
        {
            problems.push(format!(
                "gateway node {}: {} change(s) made outside the daemon in the last 10 minutes, latest: {latest}",
                n.node, n.recent_drift
            ));
        }
        if n.missing > 0 {
            problems.push(format!(
                "gateway node {}: {} peer(s) missing from {}",
                n.node,
                n.missing,
                n.interface.as_deref().unwrap_or("the tunnel")
            ));
        }
    }
    for p in &pods {
        if p.phase.as_deref() == Some("Refused") {
            problems.push(format!("pod {}: PodEndpoint refused", p.name));
        }
    }
    if !nodes.is_empty() && nodes.iter().all(|n| n.daemon.is_down() || !n.gateway_ready) {
        problems.push("no healthy gateway node: pods of this gateway cannot egress".into());
    }
    let profile = status.gateway_server_profile.clone().unwrap_or_default();
    GatewayReport {
        namespace: ns,
        name,
        ready: ready.is_some_and(|c| c.status == "True"),
        reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
        message: ready.map(|c| c.message.clone()).unwrap_or_default(),
        egress_ip_prefix: status.egress_ip_prefix.clone(),
        endpoint: profile
            .ip
            .map(|ip| format!("{ip}:{}", profile.port.unwrap_or_default())),
        nodes,
        pods,
        problems,
    }
}

/// The report of every gateway in `snap` at `now`.
pub fn status(snap: &Snapshot, now: Timestamp) -> StatusReport {
    let mut gateways: Vec<GatewayReport> =
        snap.sgcs.iter().map(|s| gateway(s, snap, now)).collect();
    gateways.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    StatusReport { gateways }
}
