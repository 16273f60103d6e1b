//! Prometheus metrics of the manager (text exposition at `/metrics`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a plugin request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `podGateway`, `add`, `del`.
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
    /// Gateway nodes of an SGC answering their load-balancer probe, as this node sees them.
    pub healthy_gateways: Family<SgcLabels, Gauge>,
    /// Changes of an SGC's healthy gateways that re-handshook this node's tunnels.
    pub failover_episodes: Counter,
    /// Failover actions on pod tunnels, by action.
    pub tunnel_actions: Family<ActionLabels, Counter>,
    /// Failover reads or actions on pod tunnels that failed.
    pub tunnel_action_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("egress_cni_manager");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
        });
        let cached_pods = Gauge::default();
        let pod_cache_misses = Counter::default();
        let refused_peers = Counter::default();
        let conflist_installed = Gauge::default();
        let taint_removals = Counter::default();
        let plugin_connections = Gauge::default();
        let busy_replies = Family::<BusyLabels, Counter>::default();
        let accept_errors = Family::<AcceptErrorLabels, Counter>::default();
        let healthy_gateways = Family::<SgcLabels, Gauge>::default();
        let failover_episodes = Counter::default();
        let tunnel_actions = Family::<ActionLabels, Counter>::default();
        let tunnel_action_errors = Counter::default();
        registry.register(
            "requests",
            "Plugin requests by operation and result",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Plugin request latency",
            request_seconds.clone(),
        );
        registry.register(
            "cached_pods",
            "Pods of this node in the cache",
            cached_pods.clone(),
        );
        registry.register(
            "pod_cache_misses",
            "Pod lookups answered by the API instead of the cache",
            pod_cache_misses.clone(),
        );
        registry.register(
            "refused_peers",
            "Socket connections refused by peer credentials",
            refused_peers.clone(),
        );
        registry.register(
            "conflist_installed",
            "Whether the chained conflist is installed",
            conflist_installed.clone(),
        );
        registry.register(
            "taint_removals",
            "Removals of the cni-not-ready node taint",
            taint_removals.clone(),
        );
        registry.register(
            "plugin_connections",
            "Plugin socket connections open now",
            plugin_connections.clone(),
        );
        registry.register(
            "busy_replies",
            "Plugin connections answered busy (connection limit reached)",
            busy_replies.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accepts on the plugin socket by errno",
            accept_errors.clone(),
        );
        registry.register(
            "healthy_gateways",
            "Gateway nodes of an SGC answering their load-balancer probe, as seen from this node",
            healthy_gateways.clone(),
        );
        registry.register(
            "failover_episodes",
            "Changes of an SGC's healthy gateways that re-handshook this node's pod tunnels",
            failover_episodes.clone(),
        );
        registry.register(
            "tunnel_actions",
            "Failover actions on pod tunnels by action",
            tunnel_actions.clone(),
        );
        registry.register(
            "tunnel_action_errors",
            "Failover reads or actions on pod tunnels that failed",
            tunnel_action_errors.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            request_seconds,
            cached_pods,
            pod_cache_misses,
            refused_peers,
            conflist_installed,
            taint_removals,
            plugin_connections,
            busy_replies,
            accept_errors,
            healthy_gateways,
            failover_episodes,
            tunnel_actions,
            tunnel_action_errors,
        }
    }
}

impl Metrics {
    /// Text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
