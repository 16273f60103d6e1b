//! `/healthz` (process alive), `/readyz` (conflist installed, pod cache synced, socket
//! listening) and `/metrics` (Prometheus text) over plain HTTP/1, on the shared server of
//! `egress-runtime`.

use egress_runtime::{Answer, HealthSource, InFlight};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::state::NodeState;

/// What `/readyz` and `/metrics` read.
struct Health<'a> {
    state: &'a NodeState,
    metrics: &'a Metrics,
}

impl HealthSource for Health<'_> {
    fn readiness(&self) -> Result<(), Vec<String>> {
        let reasons = self.state.not_ready_reasons();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.into_iter().map(Into::into).collect())
        }
    }

    fn metrics(&self) -> Result<String, std::fmt::Error> {
        self.metrics
            .conflist_installed
            .set(i64::from(self.state.conflist_installed()));
        Ok(self.metrics.encode())
    }
}

/// Answers one request.
pub fn route(path: &str, state: &NodeState, metrics: &Metrics) -> Answer {
    egress_runtime::health_answer(path, "text/plain", &Health { state, metrics })
}

/// Serves until cancelled; open connections are dropped then.
pub async fn serve(
    listener: TcpListener,
    state: NodeState,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    egress_runtime::serve_with(
        listener,
        move |path| route(path, &state, &metrics),
        cancel.cancelled_owned(),
        InFlight::Abort,
    )
    .await;
}
