//! The health routes every binary serves: `/healthz` and `/livez` (the process serves),
//! `/readyz` (200 or 503 from the binary's own readiness) and `/metrics` (OpenMetrics text).
//! What "ready" means and what the metrics hold stay with the binary ([`HealthSource`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::StatusCode;

use crate::http::Answer;

/// Content type of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the health routes read from the process.
pub trait HealthSource {
    /// `Ok(())` when ready, otherwise why not (may be empty).
    fn readiness(&self) -> Result<(), Vec<String>>;
    /// The metrics in OpenMetrics text.
    fn metrics(&self) -> Result<String, std::fmt::Error>;
}

/// A shared readiness flag, for binaries whose readiness is one yes/no.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether it is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Answers `/healthz`, `/livez`, `/readyz` and `/metrics` (404 otherwise); plain-text answers
/// carry `text_type` as their content type.
pub fn health_answer(path: &str, text_type: &'static str, source: &impl HealthSource) -> Answer {
    let text = |status, body: &str| (status, text_type, body.to_owned());
    match path {
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match source.readiness() {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(reasons) if reasons.is_empty() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
            Err(reasons) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {}\n", reasons.join(", ")),
            ),
        },
        "/metrics" => match source.metrics() {
            Ok(body) => (StatusCode::OK, OPENMETRICS, body),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}
