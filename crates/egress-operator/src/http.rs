//! The operator's HTTP endpoints: `/healthz` (the process serves), `/readyz` (caches synced,
//! or standing by for leadership), `/metrics` (OpenMetrics text), on the shared server of
//! `egress-runtime`.

use std::future::Future;
use std::net::SocketAddr;

use egress_runtime::HealthSource;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

pub use egress_runtime::Readiness;

/// What `/readyz` and `/metrics` read.
struct Health {
    metrics: Metrics,
    ready: Readiness,
}

impl HealthSource for Health {
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

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    ready: Readiness,
    shutdown: impl Future<Output = ()>,
) {
    let health = Health { metrics, ready };
    egress_runtime::serve(
        listener,
        move |path| egress_runtime::health_answer(path, "text/plain", &health),
        shutdown,
    )
    .await;
}

/// The address a listener is bound to, for logs.
pub fn local(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
