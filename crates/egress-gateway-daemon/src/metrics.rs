//! The daemon's Prometheus metrics (prometheus-client, prefix `egress_gateway`): peers,
//! latest handshake age and traffic per gateway (sampled by `counters`), SNAT/conntrack use
//! per egress IP (sampled by `snat`), programming latency, errors by kind, refused
//! PodEndpoints by reason, drift repaired by kind, programmed gateways. Served on `/metrics` by `http`. Every counter
//! and histogram exists from the start with its known label values (at zero, not absent), so
//! `rate()` alerts and `curl | grep` work on a healthy node.

use std::collections::BTreeMap;
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

/// Labels of per-egress-IP SNAT series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct SnatLabels {
    /// `<namespace>/<name>` of the StaticGatewayConfiguration (from the connection's mark).
    pub gateway: String,
    /// The address connections are SNATed to (the gateway's secondary IP on this node).
    pub egress_ip: String,
}

/// Every `errors_total` kind the daemon counts (created at zero at start).
pub const ERROR_KINDS: [&str; 17] = [
    "invalid_pod_endpoint",
    "peer_conflict",
    "peer_programming",
    "gateway_secret",
    "gateway_key",
    "gateway_port",
    "gateway_address",
    "gateway_conflict",
    "gateway_programming",
    "status_write",
    "netns",
    "netlink",
    "sysctl",
    "nftables",
    "wireguard",
    "conntrack",
    "imds",
];

/// `programming_duration_seconds` kinds.
const PROGRAMMING_KINDS: [&str; 2] = ["peer", "full"];

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
    drift: Family<KindLabels, Counter>,
    gateways: Gauge,
    snat_entries: Family<SnatLabels, Gauge>,
    snat_usage: Family<SnatLabels, Gauge<f64, AtomicU64>>,
    conntrack_entries: Gauge,
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
            drift: Family::default(),
            gateways: Gauge::default(),
            snat_entries: Family::default(),
            snat_usage: Family::default(),
            conntrack_entries: Gauge::default(),
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
            "PodEndpoints refused (each counted once per distinct refusal): it may not speak for a pod, or a stronger claim holds its IP or key; ipv6_* reasons: only its IPv6 address was left out of its peer",
            m.refused.clone(),
        );
        // Every reason exists from the start, so alerts can use rate() without absent().
        let ipv6 = crate::ipv6::Ipv6Refusal::REASONS;
        for reason in crate::trust::Refusal::REASONS.into_iter().chain(ipv6) {
            let _ = m.refused.get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            });
        }
        registry.register(
            "drift",
            "Changes to the node's data plane made outside the daemon that its resync found (a programmed item missing or different, or an unexpected one), by kind; each is repaired, or its failure counted in errors_total",
            m.drift.clone(),
        );
        for kind in crate::programmer::drift::KINDS {
            let _ = m.drift.get_or_create(&KindLabels { kind: kind.into() });
        }
        registry.register(
            "gateways_programmed",
            "Gateways fully programmed on this node",
            m.gateways.clone(),
        );
        registry.register(
            "snat_conntrack_entries",
            "Connections in the gateway namespace's conntrack table SNATed to this egress IP",
            m.snat_entries.clone(),
        );
        registry.register(
            "snat_port_usage_ratio",
            "Share (0-1) of the SNAT source-port range (1024-65535) in use toward the busiest destination (address, port, protocol) from this egress IP: at 1 new connections to it fail",
            m.snat_usage.clone(),
        );
        registry.register(
            "conntrack_entries",
            "Entries in the gateway namespace's conntrack table at the last sample",
            m.conntrack_entries.clone(),
        );
        for kind in ERROR_KINDS {
            let _ = m.errors.get_or_create(&KindLabels { kind: kind.into() });
        }
        for kind in PROGRAMMING_KINDS {
            let _ = m
                .programming
                .get_or_create(&KindLabels { kind: kind.into() });
        }
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

    /// Counts one drifted item of `kind`.
    pub fn drift(&self, kind: &str) {
        self.drift
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Drifted items of `kind` so far.
    pub fn drifts(&self, kind: &str) -> u64 {
        self.drift
            .get(&KindLabels {
                kind: kind.to_owned(),
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

    /// Replaces the SNAT series with one sample: per egress IP, the entries and the port share
    /// toward its busiest destination; the total size of the table.
    pub fn set_snat(&self, sample: &BTreeMap<SnatLabels, (u64, f64)>, total: u64) {
        self.conntrack_entries
            .set(i64::try_from(total).unwrap_or(i64::MAX));
        self.clear_snat();
        for (labels, (entries, usage)) in sample {
            self.snat_entries
                .get_or_create(labels)
                .set(i64::try_from(*entries).unwrap_or(i64::MAX));
            self.snat_usage.get_or_create(labels).set(*usage);
        }
    }

    /// Drops the per-egress-IP SNAT series (no gateway left to sample); the table's total keeps
    /// its last sample.
    pub fn clear_snat(&self) {
        self.snat_entries.clear();
        self.snat_usage.clear();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn counters_and_histograms_exist_at_zero_from_the_start() {
        let text = Metrics::new().encode().unwrap();
        for line in [
            "egress_gateway_errors_total{kind=\"status_write\"} 0",
            "egress_gateway_errors_total{kind=\"conntrack\"} 0",
            "egress_gateway_errors_total{kind=\"wireguard\"} 0",
            "egress_gateway_pod_endpoints_refused_total{reason=\"ip_taken\"} 0",
            "egress_gateway_programming_duration_seconds_count{kind=\"peer\"} 0",
            "egress_gateway_programming_duration_seconds_count{kind=\"full\"} 0",
            "egress_gateway_conntrack_entries 0",
            "egress_gateway_drift_total{kind=\"peer\"} 0",
            "egress_gateway_drift_total{kind=\"nftables\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn snat_series_follow_the_latest_sample() {
        let m = Metrics::new();
        let l = |ip: &str| SnatLabels {
            gateway: "ns/gw".into(),
            egress_ip: ip.into(),
        };
        m.set_snat(&[(l("10.0.1.5"), (3, 0.25))].into(), 7);
        let text = m.encode().unwrap();
        assert!(
            text.contains(
                "egress_gateway_snat_conntrack_entries{gateway=\"ns/gw\",egress_ip=\"10.0.1.5\"} 3"
            ),
            "{text}"
        );
        assert!(text.contains("egress_gateway_snat_port_usage_ratio{gateway=\"ns/gw\",egress_ip=\"10.0.1.5\"} 0.25"), "{text}");
        m.set_snat(&BTreeMap::new(), 0);
        assert!(!m.encode().unwrap().contains("10.0.1.5"));
    }
}
