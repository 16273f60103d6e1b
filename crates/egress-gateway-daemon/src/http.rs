//! The daemon's health/metrics endpoints `/healthz`, `/readyz`, `/metrics`, on the shared
//! server of `egress-runtime`, whose generic `serve` the daemon's in-process LB probe server
//! (`probe`) also uses; the `lb-probe` keeper (`keeper`) uses its `serve_requests`.

use egress_runtime::HealthSource;

use crate::metrics::Metrics;

pub use egress_runtime::{Answer, InFlight, Readiness, serve, serve_async};

/// What `/readyz` (set after the first full programming of the node, cleared when draining)
/// and `/metrics` read.
struct Health<'a> {
    metrics: &'a Metrics,
    ready: &'a Readiness,
}

impl HealthSource for Health<'_> {
    fn readiness(&self) -> Result<(), Vec<String>> {
        if self.ready.get() {
            Ok(())
        } else {
            Err(vec![])
        }
    }

    fn metrics(&self) -> Result<String, std::fmt::Error> {
        self.metrics.encode()
    }
}

/// Answers `/healthz`, `/readyz` and `/metrics`.
pub fn health_answer(path: &str, metrics: &Metrics, ready: &Readiness) -> Answer {
    egress_runtime::health_answer(
        path,
        "text/plain; charset=utf-8",
        &Health { metrics, ready },
    )
}
