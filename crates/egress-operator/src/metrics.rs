//! The operator's Prometheus metrics: reconciles, their durations and errors by controller and
//! category, each gateway's nodes and healthy nodes, plus the ARM client's metrics
//! (egress-azure) under the `azure_` prefix. Every counter and histogram exists from the start
//! with its known label values (zero, not absent). Served on `/metrics` by `http`; tests read
//! the counters directly.

use std::sync::Arc;
use std::time::Duration;

use egress_azure::ArmMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Category;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    /// `success` or `error`.
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayLabels {
    /// `namespace/name` of the StaticGatewayConfiguration.
    gateway: String,
}

/// Every controller's metric label.
pub const CONTROLLERS: [&str; 6] = [
    crate::sgc::CONTROLLER,
    crate::vm_config_chain::CONTROLLER,
    crate::pool::CONTROLLER,
    crate::pod_endpoint_status::CONTROLLER,
    crate::in_use::CONTROLLER,
    crate::selector_conflicts::CONTROLLER,
];

const CATEGORIES: [Category; 5] = [
    Category::InvalidSpec,
    Category::Throttled,
    Category::Conflict,
    Category::Transient,
    Category::Permanent,
];

fn duration_histogram() -> Histogram {
    // 10 ms .. ~5 min: a pool reconcile waits for VMSS operations.
    Histogram::new(exponential_buckets(0.01, 2.5, 14))
}

/// Reconcile metrics of all controllers (cheap to clone: shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    durations: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    gateway_nodes: Family<GatewayLabels, Gauge>,
    gateway_healthy: Family<GatewayLabels, Gauge>,
    registry: Arc<Registry>,
}

impl Metrics {
    /// Registers the reconcile metrics and `arm` (the ARM client's) in a new registry.
    pub fn new(arm: &ArmMetrics) -> Self {
        let mut registry = Registry::with_prefix("egress_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let durations: Family<ControllerLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by controller and result (success, error)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles by controller",
            durations.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller and error category",
            errors.clone(),
        );
        let gateway_nodes = Family::<GatewayLabels, Gauge>::default();
        let gateway_healthy = Family::<GatewayLabels, Gauge>::default();
        registry.register(
            "gateway_nodes",
            "Gateway nodes the operator lists for each StaticGatewayConfiguration",
            gateway_nodes.clone(),
        );
        registry.register(
            "gateway_healthy_nodes",
            "Gateway nodes of each StaticGatewayConfiguration whose daemon reports (fresh heartbeat) the gateway programmed: at 0 its pods cannot egress",
            gateway_healthy.clone(),
        );
        arm.register(registry.sub_registry_with_prefix("azure"));
        for controller in CONTROLLERS {
            let c = || controller.to_string();
            let _ = durations.get_or_create(&ControllerLabels { controller: c() });
            for result in ["success", "error"] {
                let _ = reconciles.get_or_create(&ResultLabels {
                    controller: c(),
                    result: result.into(),
                });
            }
            for category in CATEGORIES {
                let _ = errors.get_or_create(&ErrorLabels {
                    controller: c(),
                    category: category.as_str().into(),
                });
            }
        }
        Self {
            reconciles,
            durations,
            errors,
            gateway_nodes,
            gateway_healthy,
            registry: Arc::new(registry),
        }
    }

    /// Replaces the gateway health gauges: `(gateway, nodes, healthy nodes)`.
    pub fn set_gateway_health(&self, health: impl IntoIterator<Item = (String, usize, usize)>) {
        self.gateway_nodes.clear();
        self.gateway_healthy.clear();
        for (gateway, nodes, healthy) in health {
            let labels = GatewayLabels { gateway };
            let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            self.gateway_nodes.get_or_create(&labels).set(n(nodes));
            self.gateway_healthy.get_or_create(&labels).set(n(healthy));
        }
    }

    /// Records one reconcile of `controller` that took `took` and failed with `error`, if any.
    pub fn record(&self, controller: &str, took: Duration, error: Option<Category>) {
        self.durations
            .get_or_create(&ControllerLabels {
                controller: controller.to_string(),
            })
            .observe(took.as_secs_f64());
        let result = if error.is_some() { "error" } else { "success" };
        self.reconciles
            .get_or_create(&ResultLabels {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .inc();
        if let Some(c) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller: controller.to_string(),
                    category: c.as_str().to_string(),
                })
                .inc();
        }
    }

    /// Reconciles of `controller` with `result` (`success` / `error`).
    pub fn reconciles(&self, controller: &str, result: &str) -> u64 {
        self.reconciles
            .get(&ResultLabels {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .map_or(0, |c| c.get())
    }

    /// Errors of `controller` in `category`.
    pub fn errors(&self, controller: &str, category: Category) -> u64 {
        self.errors
            .get(&ErrorLabels {
                controller: controller.to_string(),
                category: category.as_str().to_string(),
            })
            .map_or(0, |c| c.get())
    }

    /// The OpenMetrics text exposition of everything registered.
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
    fn records_results_durations_and_error_categories() {
        let m = Metrics::new(&ArmMetrics::new());
        m.record("pool", Duration::from_millis(20), None);
        m.record("pool", Duration::from_millis(20), Some(Category::Throttled));
        assert_eq!(m.reconciles("pool", "success"), 1);
        assert_eq!(m.reconciles("pool", "error"), 1);
        assert_eq!(m.errors("pool", Category::Throttled), 1);
        let text = m.encode().unwrap();
        assert!(text.contains("egress_operator_reconcile_errors_total{controller=\"pool\",category=\"throttled\"} 1"), "{text}");
        assert!(
            text.contains(
                "egress_operator_reconcile_duration_seconds_count{controller=\"pool\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn every_controller_and_category_exists_at_zero_from_the_start() {
        let text = Metrics::new(&ArmMetrics::new()).encode().unwrap();
        for line in [
            "egress_operator_reconciles_total{controller=\"gateway-pool\",result=\"error\"} 0",
            "egress_operator_reconcile_errors_total{controller=\"static-gateway-configuration\",category=\"throttled\"} 0",
            "egress_operator_reconcile_duration_seconds_count{controller=\"pod-endpoint-status\"} 0",
            "egress_operator_azure_arm_throttled_total{operation=\"scale_sets.update_network_profile\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let m = Metrics::new(&ArmMetrics::new());
        m.set_gateway_health([("ns/gw".to_string(), 2, 1)]);
        let text = m.encode().unwrap();
        assert!(
            text.contains("egress_operator_gateway_healthy_nodes{gateway=\"ns/gw\"} 1"),
            "{text}"
        );
    }
}
