//! Prometheus metrics of the manager (text exposition at `/metrics`). Every counter and
//! histogram is created with its known label values at start (zero, not absent), so `rate()`
//! alerts and `curl | grep` work on a healthy node before the first error.

use std::sync::Arc;

use egress_cni_proto::{AddPhase, ErrorKind, Request};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a plugin request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `podGateway`, `add`, `del`, `report`.
    pub op: String,
    /// `ok` or the error kind.
    pub result: String,
}

/// Labels with only an operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// Operation.
    pub op: String,
}

/// Labels of a busy answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusyLabels {
    /// `limit` (a new connection found every slot in use) or `evicted` (an idle connection
    /// gave its slot to a new one).
    pub reason: String,
}

/// Labels of a failed accept.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AcceptErrorLabels {
    /// The errno name (`EMFILE`, `ENFILE`, ...).
    pub error: String,
}

/// Labels of an ADD phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `register`, `tunnel`, `handshake`, `routes`.
    pub phase: String,
}

/// Labels naming a StaticGatewayConfiguration (`namespace/name`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SgcLabels {
    /// `namespace/name`.
    pub sgc: String,
}

/// Labels of a failover action on a pod tunnel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `reset` (session dropped, handshake on the next packet), `kick` (re-created with an
    /// initiation at once) or `keepalive_off`.
    pub action: String,
}

/// Failover actions on pod tunnels (the values of [`ActionLabels::action`]).
/// `spared`: a tunnel of a lost gateway's SGC left alone because a surviving gateway node
/// holds its session.
const TUNNEL_ACTIONS: [&str; 4] = ["reset", "kick", "keepalive_off", "spared"];

/// Errnos a failed accept is known to give (others appear when they happen).
const ACCEPT_ERRNOS: [&str; 4] = ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"];

/// All metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Plugin requests by operation and result.
    pub requests: Family<RequestLabels, Counter>,
    /// Plugin request latency.
    pub request_seconds: Family<OpLabels, Histogram>,
    /// Pods of this node in the cache.
    pub cached_pods: Gauge,
    /// Pod lookups that missed the cache and went to the API.
    pub pod_cache_misses: Counter,
    /// Connections refused because the peer was not an allowed user.
    pub refused_peers: Counter,
    /// Whether our conflist is installed (0/1).
    pub conflist_installed: Gauge,
    /// Times the cni-not-ready taint was removed.
    pub taint_removals: Counter,
    /// Plugin connections open now.
    pub plugin_connections: Gauge,
    /// Connections answered `busy`, by reason.
    pub busy_replies: Family<BusyLabels, Counter>,
    /// Failed accepts on the plugin socket, by errno.
    pub accept_errors: Family<AcceptErrorLabels, Counter>,
    /// Duration of each phase of annotated pods' ADDs, as the plugin reports them.
    pub add_phase_seconds: Family<PhaseLabels, Histogram>,
    /// ADDs of annotated pods that failed after registration, by the phase that failed.
    pub add_failures: Family<PhaseLabels, Counter>,
    /// PodEndpoint status writes that failed.
    pub status_write_errors: Counter,
    /// Gateway nodes of an SGC answering their load-balancer probe, as this node sees them.
    pub healthy_gateways: Family<SgcLabels, Gauge>,
    /// Changes of an SGC's healthy gateways that re-handshook this node's tunnels.
    pub failover_episodes: Counter,
    /// Failover actions on pod tunnels, by action.
    pub tunnel_actions: Family<ActionLabels, Counter>,
    /// Failover reads or actions on pod tunnels that failed.
    pub tunnel_action_errors: Counter,
    /// Sessions queries to surviving gateway nodes that failed (every tunnel was reset).
    pub session_query_errors: Counter,
}

fn phase_histogram() -> Histogram {
    // 1 ms .. ~33 s: registration takes milliseconds, a handshake up to the plugin's timeout.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("egress_cni_manager");
        let m = Self {
            registry: Arc::new(Registry::default()),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
            }),
            cached_pods: Gauge::default(),
            pod_cache_misses: Counter::default(),
            refused_peers: Counter::default(),
            conflist_installed: Gauge::default(),
            taint_removals: Counter::default(),
            plugin_connections: Gauge::default(),
            busy_replies: Family::default(),
            accept_errors: Family::default(),
            add_phase_seconds: Family::new_with_constructor(phase_histogram),
            add_failures: Family::default(),
            status_write_errors: Counter::default(),
            healthy_gateways: Family::default(),
            failover_episodes: Counter::default(),
            tunnel_actions: Family::default(),
            tunnel_action_errors: Counter::default(),
            session_query_errors: Counter::default(),
        };
        m.register(&mut registry);
        m.create_known_series();
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }
}

impl Metrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "requests",
            "Plugin requests by operation and result",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Plugin request latency",
            self.request_seconds.clone(),
        );
        r.register(
            "cached_pods",
            "Pods of this node in the cache",
            self.cached_pods.clone(),
        );
        r.register(
            "pod_cache_misses",
            "Pod lookups answered by the API instead of the cache",
            self.pod_cache_misses.clone(),
        );
        r.register(
            "refused_peers",
            "Socket connections refused by peer credentials",
            self.refused_peers.clone(),
        );
        r.register(
            "conflist_installed",
            "Whether the chained conflist is installed",
            self.conflist_installed.clone(),
        );
        r.register(
            "taint_removals",
            "Removals of the cni-not-ready node taint",
            self.taint_removals.clone(),
        );
        r.register(
            "plugin_connections",
            "Plugin socket connections open now",
            self.plugin_connections.clone(),
        );
        r.register(
            "busy_replies",
            "Plugin connections answered busy (connection limit reached)",
            self.busy_replies.clone(),
        );
        r.register(
            "accept_errors",
            "Failed accepts on the plugin socket by errno",
            self.accept_errors.clone(),
        );
        r.register(
            "add_phase_duration_seconds",
            "Duration of each phase of an annotated pod's CNI ADD (register, tunnel, handshake, routes), as reported by the plugin: the first packet waits for their sum",
            self.add_phase_seconds.clone(),
        );
        r.register(
            "add_failures",
            "Annotated pods' CNI ADDs that failed after registration, by the phase that failed",
            self.add_failures.clone(),
        );
        r.register(
            "pod_endpoint_status_write_errors",
            "Failed writes of a PodEndpoint's status.tunnel",
            self.status_write_errors.clone(),
        );
        r.register(
            "healthy_gateways",
            "Gateway nodes of an SGC answering their load-balancer probe, as seen from this node",
            self.healthy_gateways.clone(),
        );
        r.register(
            "failover_episodes",
            "Changes of an SGC's healthy gateways that re-handshook this node's pod tunnels",
            self.failover_episodes.clone(),
        );
        r.register(
            "tunnel_actions",
            "Failover actions on pod tunnels by action",
            self.tunnel_actions.clone(),
        );
        r.register(
            "tunnel_action_errors",
            "Failover reads or actions on pod tunnels that failed",
            self.tunnel_action_errors.clone(),
        );
        r.register(
            "session_query_errors",
            "Sessions queries to surviving gateway nodes that failed, so every tunnel of the SGC on this node was reset",
            self.session_query_errors.clone(),
        );
    }

    /// Every label value known in advance, at zero.
    fn create_known_series(&self) {
        let results = std::iter::once("ok".to_string())
            .chain(ErrorKind::ALL.iter().map(|k| format!("{k:?}")))
            .collect::<Vec<_>>();
        for op in Request::OPS {
            let _ = self
                .request_seconds
                .get_or_create(&OpLabels { op: op.into() });
            for result in &results {
                let _ = self.requests.get_or_create(&RequestLabels {
                    op: op.into(),
                    result: result.clone(),
                });
            }
        }
        for reason in ["limit", "evicted"] {
            let _ = self.busy_replies.get_or_create(&BusyLabels {
                reason: reason.into(),
            });
        }
        for error in ACCEPT_ERRNOS {
            let _ = self.accept_errors.get_or_create(&AcceptErrorLabels {
                error: error.into(),
            });
        }
        for phase in AddPhase::ALL {
            let labels = PhaseLabels {
                phase: phase.name().into(),
            };
            let _ = self.add_phase_seconds.get_or_create(&labels);
            let _ = self.add_failures.get_or_create(&labels);
        }
        for action in TUNNEL_ACTIONS {
            let _ = self.tunnel_actions.get_or_create(&ActionLabels {
                action: action.into(),
            });
        }
    }

    /// Text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_known_series_exists_at_zero_before_anything_happens() {
        let text = Metrics::default().encode();
        for line in [
            "egress_cni_manager_requests_total{op=\"add\",result=\"GatewayNotReady\"} 0",
            "egress_cni_manager_requests_total{op=\"report\",result=\"ok\"} 0",
            "egress_cni_manager_busy_replies_total{reason=\"evicted\"} 0",
            "egress_cni_manager_accept_errors_total{error=\"EMFILE\"} 0",
            "egress_cni_manager_add_phase_duration_seconds_count{phase=\"handshake\"} 0",
            "egress_cni_manager_add_failures_total{phase=\"routes\"} 0",
            "egress_cni_manager_request_duration_seconds_count{op=\"del\"} 0",
            "egress_cni_manager_pod_endpoint_status_write_errors_total 0",
            "egress_cni_manager_tunnel_actions_total{action=\"kick\"} 0",
            "egress_cni_manager_failover_episodes_total 0",
            "egress_cni_manager_tunnel_action_errors_total 0",
            "egress_cni_manager_tunnel_actions_total{action=\"spared\"} 0",
            "egress_cni_manager_session_query_errors_total 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
