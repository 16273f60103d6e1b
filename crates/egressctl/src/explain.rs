//! `egressctl explain pod`, pure: which gateway a pod uses and why (its annotation today; a
//! namespace/pod selector reason fits the same `GatewayChoice`), which gateway nodes could
//! carry its tunnel and which one does (the freshest handshake), its egress IP, whether a
//! destination is tunnelled or excluded, and for every hop (gateway, PodEndpoint, each gateway
//! node's daemon, gateway and peer, the pod's routes) whether it is in place, and what a
//! daemon recently repaired on the pod's path after it was changed by hand (drift) — all from
//! what the operator, the gateway daemons and the CNI managers publish.

use std::net::IpAddr;

use egress_api::constants::POD_ANNOTATION;
use egress_api::observed::{self, PeerOnNode, SESSION_SECONDS};
use egress_api::selection::{Choice, Selectors};
use egress_api::{Drift, PodEndpoint};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::cluster::Snapshot;
use crate::routing::{DEFAULT_NODE_EXCEPTIONS, Destination, PodRouting};
use crate::status::{GatewayNode, gateway_nodes};

/// Annotation the CNI manager puts on a PodEndpoint: the sandbox it belongs to.
const CONTAINER_ID_ANNOTATION: &str = "egressgateway.kubernetes.azure.com/container-id";

/// How one hop looks (in increasing severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HopState {
    /// In place.
    Ok,
    /// For information (not a problem).
    Info,
    /// Not as expected, traffic may still flow (e.g. one of several gateway nodes).
    Warn,
    /// Broken.
    Fail,
}

impl HopState {
    /// The tag printed in the table.
    pub fn tag(self) -> &'static str {
        match self {
            HopState::Ok => "ok",
            HopState::Info => "info",
            HopState::Warn => "WARN",
            HopState::Fail => "FAIL",
        }
    }
}

/// One hop of the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// What it is.
    pub name: String,
    /// Its state.
    pub state: HopState,
    /// What was found.
    pub detail: String,
}

/// Which gateway the pod uses, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayChoice {
    /// `namespace/name`.
    pub name: String,
    /// `annotation`, or `selector` (not annotated; this SGC's `podSelector` alone selects it).
    pub reason: String,
    /// The annotation (or selector) that chose it.
    pub detail: String,
}

/// One gateway node, as it concerns this pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// The node's gateway facts.
    #[serde(flatten)]
    pub node: GatewayNode,
    /// The pod's peer there: `programmed`, `missing`, `refused (<reason>)`, `older key`,
    /// `not listed`, `absent`.
    pub peer: String,
    /// Seconds since the peer's latest handshake there, if any.
    pub handshake_age_seconds: Option<i64>,
    /// The latest drift on the pod's path the node's daemon found (and repaired, or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// This node carries the pod's tunnel now (freshest live handshake).
    pub carries: bool,
}

/// Everything `explain pod` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// `namespace/name`.
    pub pod: String,
    /// Its node.
    pub node: Option<String>,
    /// Its IP.
    pub pod_ip: Option<String>,
    /// Its IPv6 address, if it is dual-stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_ipv6: Option<String>,
    /// The gateway it uses.
    pub gateway: Option<GatewayChoice>,
    /// The gateway's egress prefix (or private IPs).
    pub egress_ip_prefix: Option<String>,
    /// The gateway's IPv6 egress prefix (or private IPv6s), when it has IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_ipv6_prefix: Option<String>,
    /// The pod's routing.
    pub routing: Option<PodRouting>,
    /// The destination asked about (`--to`).
    pub destination: Option<Destination>,
    /// The gateway node carrying the tunnel now.
    pub carried_by: Option<String>,
    /// The egress IP(s) traffic leaves from.
    pub egress_ips: Vec<String>,
    /// Gateway nodes that could carry it.
    pub nodes: Vec<NodeView>,
    /// Every hop, in path order.
    pub hops: Vec<Hop>,
}

impl Explanation {
    /// Hops that are problems (warnings and failures).
    pub fn problems(&self) -> usize {
        self.hops
            .iter()
            .filter(|h| matches!(h.state, HopState::Warn | HopState::Fail))
            .count()
    }

    fn hop(&mut self, name: impl Into<String>, state: HopState, detail: impl Into<String>) {
        self.hops.push(Hop {
            name: name.into(),
            state,
            detail: detail.into(),
        });
    }
}

fn pod_ip(pod: &Pod) -> Option<String> {
    let st = pod.status.as_ref()?;
    st.pod_ips
        .as_ref()
        .and_then(|ips| ips.first().map(|p| p.ip.clone()))
        .or_else(|| st.pod_ip.clone())
        .filter(|s| !s.is_empty())
}

/// The pod's IPv6 address among `status.podIPs`, if any.
fn pod_ipv6(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .pod_ips
        .as_ref()?
        .iter()
        .map(|p| p.ip.clone())
        .find(|ip| ip.contains(':'))
}

/// Explains pod `namespace/name` of `snap` at `now`; `to` is the destination asked about.
pub fn explain(
    snap: &Snapshot,
    namespace: &str,
    name: &str,
    to: Option<IpAddr>,
    now: Timestamp,
) -> Explanation {
    let mut out = Explanation {
        pod: format!("{namespace}/{name}"),
        node: None,
        pod_ip: None,
        pod_ipv6: None,
        gateway: None,
        egress_ip_prefix: None,
        egress_ipv6_prefix: None,
        routing: None,
        destination: None,
        carried_by: None,
        egress_ips: Vec::new(),
        nodes: Vec::new(),
        hops: Vec::new(),
    };
    let Some(pod) = &snap.pod else {
        out.hop(
            "pod",
            HopState::Fail,
            format!("pod {namespace}/{name} does not exist"),
        );
        return out;
    };
    out.node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    out.pod_ip = pod_ip(pod);
    out.pod_ipv6 = pod_ipv6(pod);
    // The one rule every component applies (the snapshot holds the annotated SGC, or all of
    // the namespace's SGCs when the pod is not annotated).
    let choice = Selectors::of(&snap.sgcs).choose(
        namespace,
        pod.labels(),
        pod.annotations().get(POD_ANNOTATION).map(String::as_str),
    );
    let (gateway, reason, detail) = match &choice {
        Choice::Annotation(g) => (g.clone(), "annotation", format!("{POD_ANNOTATION}: {g}")),
        Choice::Selector(g) => (
            g.clone(),
            "selector",
            format!(
                "no {POD_ANNOTATION} annotation; the podSelector of {namespace}/{g} is the only one selecting the pod"
            ),
        ),
        Choice::Conflict(_) | Choice::None => {
            let (state, why) = match choice.conflict_reason(namespace) {
                Some(conflict) => (HopState::Fail, conflict),
                None => (
                    HopState::Info,
                    format!(
                        "the pod has no {POD_ANNOTATION} annotation and no podSelector selects it: it leaves with the cluster's normal outbound address, not through a gateway"
                    ),
                ),
            };
            out.hop("gateway", state, why);
            if let Some(ip) = to {
                out.destination = Some(Destination {
                    ip,
                    tunnelled: false,
                    matched: None,
                    why: "not tunnelled: the pod uses no gateway".into(),
                });
            }
            return out;
        }
    };
    out.gateway = Some(GatewayChoice {
        name: format!("{namespace}/{gateway}"),
        reason: reason.into(),
        detail,
    });
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
    {
        out.hop("pod", HopState::Fail, "hostNetwork pods share the node's network; the CNI plugin never runs for them, so they cannot use a gateway");
        return out;
    }
    explain_gateway(snap, pod, &gateway, to, now, &mut out);
    out
}

fn explain_gateway(
    snap: &Snapshot,
    pod: &Pod,
    gateway: &str,
    to: Option<IpAddr>,
    now: Timestamp,
    out: &mut Explanation,
) {
    let namespace = pod.namespace().unwrap_or_default();
    let Some(sgc) = snap
        .sgcs
        .iter()
        .find(|s| s.name_any() == gateway && s.namespace().as_deref() == Some(&namespace))
    else {
        out.hop(
            "gateway",
            HopState::Fail,
            format!("StaticGatewayConfiguration {namespace}/{gateway} named by the annotation does not exist: the CNI plugin refuses the pod's sandbox until it does"),
        );
        return;
    };
    let status = sgc.status.clone().unwrap_or_default();
    out.egress_ip_prefix = status.egress_ip_prefix.clone();
    if sgc.spec.target.ipv6() {
        out.egress_ipv6_prefix = status.egress_ipv6_prefix.clone();
    }
    match status.conditions.iter().find(|c| c.type_ == "Ready") {
        Some(c) if c.status == "True" => out.hop(
            "gateway",
            HopState::Ok,
            format!("{namespace}/{gateway} is Ready: {}", c.message),
        ),
        Some(c) => out.hop(
            "gateway",
            HopState::Fail,
            format!(
                "{namespace}/{gateway} is not Ready: {}: {}",
                c.reason, c.message
            ),
        ),
        None => out.hop(
            "gateway",
            HopState::Fail,
            format!("{namespace}/{gateway} has no Ready condition yet (is the operator running?)"),
        ),
    }
    let pe = snap
        .pod_endpoints
        .iter()
        .find(|p| p.name_any() == pod.name_any() && p.namespace().as_deref() == Some(&namespace));
    let routing = routing(sgc, pe).with_ipv6(ipv6_use(sgc, pe, out.pod_ipv6.is_some()));
    if let Some(ip) = to {
        let d = routing.destination(ip);
        let state = if d.tunnelled {
            HopState::Ok
        } else {
            HopState::Warn
        };
        out.hop(format!("destination {ip}"), state, d.why.clone());
        out.destination = Some(d);
    }
    out.routing = Some(routing);
    let Some(pe) = pe else {
        out.hop(
            "PodEndpoint",
            HopState::Fail,
            format!("no PodEndpoint {namespace}/{}: the CNI manager never registered this pod (was it created before the annotation or the CNI chain? re-create it)", pod.name_any()),
        );
        return;
    };
    check_pod_endpoint(pod, pe, gateway, out);
    let vm = snap
        .vm_configs
        .iter()
        .find(|v| v.name_any() == gateway && v.namespace().as_deref() == Some(&namespace));
    let nodes = gateway_nodes(sgc, vm, &snap.statuses, now);
    explain_nodes(snap, &observed::object_key(sgc), pe, nodes, now, out);
    routes_hop(pe, out);
    if sgc.spec.target.ipv6() {
        ipv6_hop(out);
    }
}

/// Whether the pod's IPv6 goes through the gateway: the gateway has IPv6 and the manager put
/// the pod's IPv6 on its PodEndpoint (it does exactly when it told the plugin to route IPv6).
fn ipv6_use(
    sgc: &egress_api::StaticGatewayConfiguration,
    pe: Option<&PodEndpoint>,
    pod_has_ipv6: bool,
) -> Result<(), String> {
    if !sgc.spec.target.ipv6() {
        return Err(crate::routing::IPV6_NOT_ENABLED.into());
    }
    if !pod_has_ipv6 {
        return Err("the pod has no IPv6 address, so it egresses IPv4 only".into());
    }
    match pe {
        Some(pe) if pe.spec.pod_ipv6_address.is_none() => Err("the pod's sandbox registered no IPv6 address (it started before IPv6 was added to the gateway, or its CNI plugin predates dual-stack), so its IPv6 leaves through eth0 from the pod's own address until it is re-created".into()),
        _ => Ok(()),
    }
}

fn ipv6_hop(out: &mut Explanation) {
    let Some(routing) = &out.routing else {
        return;
    };
    let (state, detail) = match (routing.ipv6_summary(), &routing.ipv6_off) {
        (Some(summary), _) => (
            HopState::Ok,
            format!(
                "IPv6 through the gateway from {}: {summary}",
                out.egress_ipv6_prefix
                    .as_deref()
                    .unwrap_or("an IPv6 prefix not provisioned yet")
            ),
        ),
        (None, Some(off)) if out.pod_ipv6.is_some() => (HopState::Warn, off.clone()),
        (None, off) => (
            HopState::Info,
            off.clone().unwrap_or_else(|| "IPv4 only".into()),
        ),
    };
    out.hop("IPv6", state, detail);
}

/// The pod's routing: what the plugin reported for the current sandbox, else the SGC spec.
fn routing(sgc: &egress_api::StaticGatewayConfiguration, pe: Option<&PodEndpoint>) -> PodRouting {
    let reported = pe.and_then(|p| {
        let t = p.status.as_ref()?.tunnel.as_ref()?;
        let current = p.annotations().get(CONTAINER_ID_ANNOTATION);
        (t.state.as_deref() == Some("Ready") && t.container_id.as_ref() == current).then_some(t)
    });
    match reported {
        Some(t) => PodRouting::new(
            t.default_route.as_deref() == Some("azureNetworking"),
            t.exclude_cidrs.iter().map(String::as_str),
            t.node_exclude_cidrs.iter().map(String::as_str),
            "the plugin's report at the pod's ADD",
        ),
        None => PodRouting::new(
            sgc.spec.default_route == egress_api::DefaultRoute::AzureNetworking,
            sgc.spec
                .exclude_cidrs
                .iter()
                .flatten()
                .map(|c| c.0.as_str()),
            DEFAULT_NODE_EXCEPTIONS,
            "the gateway's current spec and the chart's default node exceptions (no report from the plugin for this sandbox)",
        ),
    }
}

fn check_pod_endpoint(pod: &Pod, pe: &PodEndpoint, gateway: &str, out: &mut Explanation) {
    let name = format!("PodEndpoint {}", observed::object_key(pe));
    let spec_ip = pe.spec.pod_ip_address.clone().unwrap_or_default();
    let spec_gw = pe
        .spec
        .static_gateway_configuration
        .clone()
        .unwrap_or_default();
    let key = observed::key_prefix(pe.spec.pod_public_key.as_deref().unwrap_or_default());
    if spec_gw != gateway {
        out.hop(&name, HopState::Fail, format!("names gateway {spec_gw:?}, the pod's annotation {gateway:?}: the annotation changed after the pod started; re-create the pod"));
        return;
    }
    if let Some(ip) = pod_ip(pod)
        && spec_ip.split('/').next() != Some(ip.as_str())
    {
        out.hop(
            &name,
            HopState::Fail,
            format!("podIpAddress {spec_ip} is not the pod's IP {ip}: gateway daemons refuse it"),
        );
        return;
    }
    if let Some(v6) = &pe.spec.pod_ipv6_address
        && pod_ipv6(pod).as_deref() != v6.split('/').next()
    {
        out.hop(
            &name,
            HopState::Fail,
            format!(
                "podIpv6Address {v6} is not the pod's IPv6 {}: gateway daemons refuse it",
                pod_ipv6(pod).as_deref().unwrap_or("(none)")
            ),
        );
        return;
    }
    let st = pe.status.clone().unwrap_or_default();
    let summary = format!(
        "{spec_ip}, key {key}…, {} on {} gateway nodes",
        st.phase.as_deref().unwrap_or("no status yet"),
        st.programmed.as_deref().unwrap_or("?")
    );
    match st.phase.as_deref() {
        Some("Refused") => out.hop(
            &name,
            HopState::Fail,
            format!(
                "refused ({}): {}",
                st.reason.unwrap_or_default(),
                st.message.unwrap_or_default()
            ),
        ),
        _ => out.hop(&name, HopState::Ok, summary),
    }
}

fn peer_words(p: &PeerOnNode<'_>) -> String {
    match p {
        PeerOnNode::Programmed(_) => "programmed".into(),
        PeerOnNode::OtherKey(s) => format!("older key {}…", s.key),
        PeerOnNode::Missing(_) => "missing".into(),
        PeerOnNode::Refused(r) => format!("refused ({})", r.reason),
        PeerOnNode::NotListed => "not listed".into(),
        PeerOnNode::Absent => "absent".into(),
    }
}

fn explain_nodes(
    snap: &Snapshot,
    sgc: &str,
    pe: &PodEndpoint,
    nodes: Vec<GatewayNode>,
    now: Timestamp,
    out: &mut Explanation,
) {
    if nodes.is_empty() {
        out.hop("gateway nodes", HopState::Fail, "the operator lists no gateway node for this gateway (GatewayVMConfiguration status): nothing can carry the tunnel");
        return;
    }
    let mut best: Option<(usize, i64)> = None;
    for (i, n) in nodes.iter().enumerate() {
        let status = snap.statuses.iter().find(|s| s.name_any() == n.node);
        let peer = status.map_or(PeerOnNode::Absent, |s| observed::peer_on_node(s, sgc, pe));
        let handshake = match &peer {
            PeerOnNode::Programmed(p) => p.handshake,
            _ => None,
        };
        let reported = status
            .and_then(|s| s.spec.heartbeat_time.as_ref())
            .map_or(now.as_second(), |t| t.0.as_second());
        if let Some(h) = handshake
            && !n.daemon.is_down()
            && reported - h < SESSION_SECONDS
            && best.is_none_or(|(_, b)| h > b)
        {
            best = Some((i, h));
        }
        let drift = status.and_then(|s| observed::drift_for(s, n.interface.as_deref(), pe));
        let age = handshake.map(|h| now.as_second() - h);
        let (state, detail) = node_hop(n, &peer, age);
        let (state, detail) = match drift.filter(|_| !n.daemon.is_down()) {
            Some(d) => {
                let (s, words) = drift_words(d, now);
                (state.max(s), format!("{detail}; {words}"))
            }
            None => (state, detail),
        };
        out.hop(format!("gateway node {}", n.node), state, detail);
        out.nodes.push(NodeView {
            node: n.clone(),
            peer: peer_words(&peer),
            handshake_age_seconds: age,
            drift: drift.cloned(),
            carries: false,
        });
    }
    let usable: Vec<Option<String>> = out
        .nodes
        .iter()
        .filter(|v| v.peer == "programmed" && !v.node.daemon.is_down() && v.node.gateway_ready)
        .map(|v| v.node.egress_ip.clone())
        .collect();
    if usable.is_empty() {
        out.hop("tunnel", HopState::Fail, "no gateway node has the pod's peer with a running daemon: the pod's traffic to tunnelled destinations is dropped");
    }
    match best {
        Some((i, _)) => {
            out.nodes[i].carries = true;
            out.carried_by = Some(out.nodes[i].node.node.clone());
            out.egress_ips = out.nodes[i].node.egress_ip.iter().cloned().collect();
        }
        None => {
            out.egress_ips = usable.iter().flatten().cloned().collect();
            if !usable.is_empty() {
                out.hop("tunnel", HopState::Info, "no handshake within the last 3 minutes on any node: WireGuard only handshakes while the pod sends traffic, and the load balancer picks one of the nodes above at the next packet");
            }
        }
    }
    if out.egress_ips.is_empty()
        && let Some(prefix) = &out.egress_ip_prefix
    {
        out.egress_ips.push(format!("an address of {prefix}"));
    }
}

/// How a node looks for the pod's peer there (before any drift).
fn node_hop(n: &GatewayNode, peer: &PeerOnNode<'_>, age: Option<i64>) -> (HopState, String) {
    let iface = n.interface.as_deref().unwrap_or("the gateway's interface");
    if n.daemon.state == "absent" {
        (HopState::Fail, "no GatewayStatus: the gateway daemon never ran on this node (is the DaemonSet scheduled there?)".to_string())
    } else if n.daemon.is_down() {
        (
            HopState::Fail,
            format!(
                "gateway daemon not running: its GatewayStatus was last written {}s ago; the load balancer's probe fails there, so this node carries no tunnel (pods move to the other nodes at their next handshake)",
                n.daemon.heartbeat_age_seconds.unwrap_or_default()
            ),
        )
    } else if !n.gateway_ready {
        (HopState::Fail, "the gateway is not programmed on this node (see the daemon's Events on the StaticGatewayConfiguration)".to_string())
    } else {
        match peer {
            PeerOnNode::Programmed(_) => (
                HopState::Ok,
                match age {
                    Some(a) => format!("peer on {iface}, latest handshake {a}s ago"),
                    None => format!(
                        "peer on {iface}, no handshake yet on this node (standby unless the load balancer sends the tunnel here)"
                    ),
                },
            ),
            PeerOnNode::Missing(_) => (
                HopState::Fail,
                format!(
                    "peer missing from {iface}: the daemon programmed it, but the WireGuard device did not have it at its last sample (removed outside the daemon?); its next resync adds it back"
                ),
            ),
            PeerOnNode::Refused(r) => (
                HopState::Fail,
                format!("refused ({}): {}", r.reason, r.message),
            ),
            PeerOnNode::OtherKey(p) => (
                HopState::Fail,
                format!(
                    "the node holds key {}… for this pod, not its current one: it still serves an earlier sandbox",
                    p.key
                ),
            ),
            PeerOnNode::NotListed => (
                HopState::Info,
                "the node's GatewayStatus lists only part of its peers (size budget): cannot tell"
                    .to_string(),
            ),
            PeerOnNode::Absent => (
                HopState::Warn,
                format!("the pod's peer is not on {iface} (yet): the daemon has not programmed it"),
            ),
        }
    }
}

/// What a drift record says, and how serious it is at `now`: a failed repair is a failure; a
/// repair within [`observed::DRIFT_RECENT_SECONDS`] a warning; an older one information.
fn drift_words(d: &Drift, now: Timestamp) -> (HopState, String) {
    let place = d.interface_name.as_deref().unwrap_or("the node");
    let what = match (d.kind.as_str(), d.pod_endpoint.is_some()) {
        ("peer", true) => "the pod's peer".to_string(),
        ("route", true) => format!("the pod's route via {place}"),
        (kind, _) => format!("a {kind} item of {place}"),
    };
    let how = match d.change.as_str() {
        "missing" if d.pod_endpoint.is_some() && d.kind == "peer" => {
            format!("was removed from {place}")
        }
        "missing" => "was removed".to_string(),
        "changed" => "was changed".to_string(),
        _ => "appeared".to_string(),
    };
    let age = now.as_second() - d.detected_time.0.as_second();
    let found = format!(
        "{what} {how} outside the daemon: its resync found it at {} ({age}s ago)",
        d.detected_time.0
    );
    if !d.repaired {
        return (
            HopState::Fail,
            format!(
                "{found} and could not repair it ({}); it retries at its next resync",
                d.error.as_deref().unwrap_or("no reason given")
            ),
        );
    }
    let fix = match d.change.as_str() {
        "unexpected" => "removed it",
        "missing" => "put it back",
        _ => "restored it",
    };
    let state = if observed::drift_is_recent(d, now) {
        HopState::Warn
    } else {
        HopState::Info
    };
    (
        state,
        format!(
            "{found} and {fix}; the pod's traffic through this node may have failed until then"
        ),
    )
}

fn routes_hop(pe: &PodEndpoint, out: &mut Explanation) {
    let current = pe.annotations().get(CONTAINER_ID_ANNOTATION);
    let t = pe.status.as_ref().and_then(|s| s.tunnel.as_ref());
    let (state, detail) = match t {
        Some(t) if t.container_id.as_ref() != current => (HopState::Info, "the plugin's last report is about another sandbox of this pod".to_string()),
        Some(t) if t.state.as_deref() == Some("Ready") => (
            HopState::Ok,
            format!(
                "tunnel, first handshake and routes done at ADD (register {} ms, tunnel {} ms, handshake {} ms, routes {} ms)",
                t.register_ms.unwrap_or_default(),
                t.tunnel_ms.unwrap_or_default(),
                t.handshake_ms.unwrap_or_default(),
                t.routes_ms.unwrap_or_default()
            ),
        ),
        Some(t) => (HopState::Fail, format!("the pod's ADD failed in phase {}", t.failed_phase.as_deref().unwrap_or("?"))),
        None => (HopState::Info, "no report from the plugin (an older plugin or manager): a running pod's ADD programmed its routes".to_string()),
    };
    out.hop("routes in the pod", state, detail);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn snapshot(selectors: &[(&str, &str)], labels: serde_json::Value) -> Snapshot {
        let sgcs = selectors
            .iter()
            .map(|(name, app)| {
                serde_json::from_value(json!({
                    "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
                    "kind": "StaticGatewayConfiguration",
                    "metadata": {"name": name, "namespace": "ns"},
                    "spec": {"gatewayNodepoolName": "p", "podSelector": {"matchLabels": {"app": app}}},
                }))
                .unwrap()
            })
            .collect();
        let pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "ns", "labels": labels},
            "spec": {"containers": []},
        }))
        .unwrap();
        Snapshot {
            sgcs,
            pod: Some(pod),
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_pod_is_explained_by_the_same_selection_rule() {
        let now = Timestamp::now();
        let web = json!({"app": "web"});
        let e = explain(
            &snapshot(&[("gw", "web")], web.clone()),
            "ns",
            "web",
            None,
            now,
        );
        let g = e.gateway.unwrap();
        assert_eq!((g.name.as_str(), g.reason.as_str()), ("ns/gw", "selector"));

        let e = explain(
            &snapshot(&[("gw", "web"), ("gw2", "web")], web),
            "ns",
            "web",
            None,
            now,
        );
        assert!(e.gateway.is_none());
        assert_eq!(e.hops[0].state, HopState::Fail);
        assert!(e.hops[0].detail.contains("(gw, gw2)"), "{:?}", e.hops);

        let e = explain(
            &snapshot(&[("gw", "web")], json!({})),
            "ns",
            "web",
            None,
            now,
        );
        assert!(e.gateway.is_none());
        assert!(e.hops[0].detail.contains("no podSelector selects it"));
    }
}
