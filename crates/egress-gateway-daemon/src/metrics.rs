//! The daemon's Prometheus metrics (prometheus-client, prefix `egress_gateway`): peers,
//! latest handshake age and traffic per gateway (sampled by `counters`), programming latency,
//! errors by kind, refused PodEndpoints by reason, programmed gateways. Served on `/metrics`
//! by `http`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-gateway series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct GatewayLabels {
    /// `<namespace>/<name>` of the StaticGatewayConfiguration.
    pub gateway: String,
    /// `wg-<port>`.
    pub interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// Per-gateway traffic counters, as read from the tunnel interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes received from pods (decrypted).
    pub rx_bytes: u64,
    /// Bytes sent to pods.
    pub tx_bytes: u64,
    /// Packets received from pods.
    pub rx_packets: u64,
    /// Packets sent to pods.
    pub tx_packets: u64,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~10 s: one peer op is sub-millisecond, a cold start of 10k peers ~1-2 s.
    Histogram::new(exponential_buckets(0.0001, 3.0, 12))
}

/// All metrics (cheap to clone: shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    peers: Family<GatewayLabels, Gauge>,
    handshake_age: Family<GatewayLabels, Gauge<f64, AtomicU64>>,
    rx_bytes: Family<GatewayLabels, Counter>,
    tx_bytes: Family<GatewayLabels, Counter>,
    rx_packets: Family<GatewayLabels, Counter>,
    tx_packets: Family<GatewayLabels, Counter>,
    programming: Family<KindLabels, Histogram, fn() -> Histogram>,
    errors: Family<KindLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    gateways: Gauge,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("egress_gateway");
        let m = Self {
            peers: Family::default(),
            handshake_age: Family::default(),
            rx_bytes: Family::default(),
            tx_bytes: Family::default(),
            rx_packets: Family::default(),
            tx_packets: Family::default(),
            programming: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            refused: Family::default(),
            gateways: Gauge::default(),
            registry: Arc::new(Registry::default()),
        };
        registry.register(
            "peers",
            "WireGuard peers configured on the gateway's interface",
            m.peers.clone(),
        );
        registry.register(
            "latest_handshake_age_seconds",
            "Seconds since the most recent handshake of any peer of the gateway",
            m.handshake_age.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes received from pods through the gateway's tunnel",
            m.rx_bytes.clone(),
        );
        registry.register(
            "sent_bytes",
            "Bytes sent to pods through the gateway's tunnel",
            m.tx_bytes.clone(),
        );
        registry.register(
            "received_packets",
            "Packets received from pods through the gateway's tunnel",
            m.rx_packets.clone(),
        );
        registry.register(
            "sent_packets",
            "Packets sent to pods through the gateway's tunnel",
            m.tx_packets.clone(),
        );
        registry.register(
            "programming_duration_seconds",
            "Time from a change being seen to the data plane being programmed (kind: peer = one PodEndpoint event, full = observe + plan + apply of the node)",
            m.programming.clone(),
        );
        registry.register("errors", "Errors by kind", m.errors.clone());
        registry.register(
            "pod_endpoints_refused",
            "PodEndpoints refused (each counted once per distinct refusal): it may not speak for a pod, or a stronger claim holds its IP or key",
            m.refused.clone(),
        );
        // Every reason exists from the start, so alerts can use rate() without absent().
        for reason in crate::trust::Refusal::REASONS {
            let _ = m.refused.get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            });
        }
        registry.register(
            "gateways_programmed",
            "Gateways fully programmed on this node",
            m.gateways.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Errors of `kind` so far.
    pub fn errors(&self, kind: &str) -> u64 {
        self.errors
            .get(&KindLabels {
                kind: kind.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// Counts one refused PodEndpoint.
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Refusals with `reason` so far.
    pub fn refusals(&self, reason: &str) -> u64 {
        self.refused
            .get(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// Records a programming latency of `kind` (`peer` or `full`).
    pub fn programming(&self, kind: &str, took: Duration) {
        self.programming
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Sets the number of programmed gateways.
    pub fn set_gateways(&self, n: usize) {
        self.gateways.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records one sample of a gateway: peers, latest handshake age, and traffic growth.
    pub fn sample(
        &self,
        labels: &GatewayLabels,
        peers: usize,
        handshake_age: Option<Duration>,
        traffic_delta: Option<Traffic>,
    ) {
        self.peers
            .get_or_create(labels)
            .set(i64::try_from(peers).unwrap_or(i64::MAX));
        match handshake_age {
            Some(age) => {
                self.handshake_age
                    .get_or_create(labels)
                    .set(age.as_secs_f64());
            }
            None => {
                self.handshake_age.remove(labels);
            }
        }
        if let Some(d) = traffic_delta {
            self.rx_bytes.get_or_create(labels).inc_by(d.rx_bytes);
            self.tx_bytes.get_or_create(labels).inc_by(d.tx_bytes);
            self.rx_packets.get_or_create(labels).inc_by(d.rx_packets);
            self.tx_packets.get_or_create(labels).inc_by(d.tx_packets);
        }
    }

    /// Drops the series of a gateway that is gone.
    pub fn forget_gateway(&self, labels: &GatewayLabels) {
        self.peers.remove(labels);
        self.handshake_age.remove(labels);
        self.rx_bytes.remove(labels);
        self.tx_bytes.remove(labels);
        self.rx_packets.remove(labels);
        self.tx_packets.remove(labels);
    }

    /// The OpenMetrics text of everything.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
