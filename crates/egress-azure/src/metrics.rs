//! ARM client metrics (prometheus-client): HTTP attempts by operation, method and status, throttled
//! responses, retries and long-running-operation durations. Binaries register them in their
//! `/metrics` registry; tests read the counters directly.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    method: String,
    /// HTTP status code, or `error` when no response arrived.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LroLabels {
    operation: String,
    /// `succeeded`, `failed`, `canceled` or `timeout`.
    result: String,
}

fn lro_histogram() -> Histogram {
    // 0.5 s .. ~17 min: VMSS updates take minutes, LB/prefix PUTs seconds.
    Histogram::new(exponential_buckets(0.5, 2.0, 12))
}

/// Counters and histograms of one ARM client (cheap to clone: shared handles).
#[derive(Clone, Debug)]
pub struct ArmMetrics {
    requests: Family<RequestLabels, Counter>,
    throttled: Family<OperationLabels, Counter>,
    retries: Family<OperationLabels, Counter>,
    lro_duration: Family<LroLabels, Histogram, fn() -> Histogram>,
    /// Mirrors the histogram's `_count` for [`ArmMetrics::lro_count`] (prometheus-client only
    /// exposes a histogram's count to its own tests); not registered.
    lro_count: Family<LroLabels, Counter>,
}

/// Every operation name the client's `ops` use (metric label `operation`).
pub const OPERATIONS: [&str; 19] = [
    "load_balancers.create_or_update",
    "load_balancers.delete",
    "load_balancers.get",
    "network_interfaces.create_or_update",
    "network_interfaces.get",
    "network_interfaces.list",
    "public_ip_addresses.create_or_update",
    "public_ip_addresses.delete",
    "public_ip_prefixes.create",
    "public_ip_prefixes.delete",
    "public_ip_prefixes.get",
    "scale_set_vms.get_network_interface",
    "scale_set_vms.list",
    "scale_set_vms.update_network_profile",
    "scale_sets.get",
    "scale_sets.list",
    "scale_sets.update_network_profile",
    "subnets.get",
    "virtual_machines.list",
];

impl Default for ArmMetrics {
    fn default() -> Self {
        let m = Self {
            requests: Family::default(),
            throttled: Family::default(),
            retries: Family::default(),
            lro_duration: Family::new_with_constructor(lro_histogram),
            lro_count: Family::default(),
        };
        // Throttling and retries exist at zero from the start, so `rate()` alerts see them.
        for operation in OPERATIONS {
            let labels = OperationLabels {
                operation: operation.to_string(),
            };
            let _ = m.throttled.get_or_create(&labels);
            let _ = m.retries.get_or_create(&labels);
        }
        m
    }
}

impl ArmMetrics {
    /// Fresh, unregistered metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the metrics under `registry` (prefix it, e.g. `registry.sub_registry_with_prefix("azure")`):
    /// `arm_requests` (counter), `arm_throttled` (counter), `arm_retries` (counter),
    /// `arm_lro_duration_seconds` (histogram).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "arm_requests",
            "ARM HTTP attempts by operation, method and status code (error = no response)",
            self.requests.clone(),
        );
        registry.register(
            "arm_throttled",
            "ARM responses with HTTP 429, by operation",
            self.throttled.clone(),
        );
        registry.register(
            "arm_retries",
            "ARM requests re-sent by the retry policy, by operation",
            self.retries.clone(),
        );
        registry.register(
            "arm_lro_duration_seconds",
            "Duration of ARM long-running operations from first request to terminal state",
            self.lro_duration.clone(),
        );
    }

    pub(crate) fn record_request(&self, operation: &str, method: &str, status: Option<u16>) {
        let code = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                method: method.to_string(),
                code,
            })
            .inc();
        if status == Some(429) {
            self.throttled
                .get_or_create(&OperationLabels {
                    operation: operation.to_string(),
                })
                .inc();
        }
    }

    pub(crate) fn record_retry(&self, operation: &str) {
        self.retries
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .inc();
    }

    pub(crate) fn record_lro(&self, operation: &str, result: &str, took: Duration) {
        let labels = LroLabels {
            operation: operation.to_string(),
            result: result.to_string(),
        };
        self.lro_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.lro_count.get_or_create(&labels).inc();
    }

    /// HTTP attempts of `operation` with `method` that got `code` (`"200"`, `"429"`, `"error"`).
    pub fn requests(&self, operation: &str, method: &str, code: &str) -> u64 {
        self.requests
            .get(&RequestLabels {
                operation: operation.to_string(),
                method: method.to_string(),
                code: code.to_string(),
            })
            .map_or(0, |c| c.get())
    }

    /// 429 responses seen by `operation`.
    pub fn throttled(&self, operation: &str) -> u64 {
        self.throttled
            .get(&OperationLabels {
                operation: operation.to_string(),
            })
            .map_or(0, |c| c.get())
    }

    /// Retries of `operation`.
    pub fn retries(&self, operation: &str) -> u64 {
        self.retries
            .get(&OperationLabels {
                operation: operation.to_string(),
            })
            .map_or(0, |c| c.get())
    }

    /// Long-running operations of `operation` that ended with `result`.
    pub fn lro_count(&self, operation: &str, result: &str) -> u64 {
        self.lro_count
            .get(&LroLabels {
                operation: operation.to_string(),
                result: result.to_string(),
            })
            .map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_operation_of_the_ops_is_known_and_at_zero_from_the_start() {
        let sources = [
            include_str!("ops/network.rs"),
            include_str!("ops/compute.rs"),
        ];
        let mut used: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.split('"').skip(1).step_by(2))
            .filter(|w| {
                w.split_once('.').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                })
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, OPERATIONS.to_vec());
        let mut reg = Registry::default();
        ArmMetrics::new().register(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains(
                "arm_throttled_total{operation=\"scale_set_vms.update_network_profile\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains("arm_retries_total{operation=\"load_balancers.get\"} 0"));
    }

    #[test]
    fn records_and_encodes() {
        let m = ArmMetrics::new();
        m.record_request("lb.get", "GET", Some(429));
        m.record_request("lb.get", "GET", Some(200));
        m.record_request("lb.get", "GET", None);
        m.record_retry("lb.get");
        m.record_lro("lb.put", "succeeded", Duration::from_millis(1500));
        assert_eq!(m.requests("lb.get", "GET", "429"), 1);
        assert_eq!(m.requests("lb.get", "GET", "error"), 1);
        assert_eq!(m.throttled("lb.get"), 1);
        assert_eq!(m.retries("lb.get"), 1);
        assert_eq!(m.lro_count("lb.put", "succeeded"), 1);

        let mut reg = Registry::default();
        m.register(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains("arm_requests_total{operation=\"lb.get\",method=\"GET\",code=\"429\"} 1"),
            "{text}"
        );
        assert!(text.contains("arm_throttled_total{operation=\"lb.get\"} 1"));
        assert!(text.contains(
            "arm_lro_duration_seconds_count{operation=\"lb.put\",result=\"succeeded\"} 1"
        ));
    }
}
