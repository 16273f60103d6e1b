//! `egress-runtime`: the process plumbing every long-running binary of kube-egress-gateway
//! shares, so it lives once: the HTTP server for `/healthz`, `/readyz`, `/metrics`
//! ([`http`]), the SIGTERM / Ctrl-C future ([`signal`]), logging set-up ([`logging`]),
//! one-line error chains ([`error_chain`]) and, with the `kube` feature, the Kubernetes client
//! and listeners built from flags (`startup`). It knows no workspace crate, nor Azure.

pub mod error_chain;
#[cfg(feature = "http")]
pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod logging;
pub mod signal;
#[cfg(feature = "kube")]
pub mod startup;

pub use error_chain::error_chain;
#[cfg(feature = "http")]
pub use health::{HealthSource, Readiness, health_answer};
#[cfg(feature = "http")]
pub use http::{
    Answer, Asked, InFlight, Reply, response, serve, serve_async, serve_requests, serve_with,
};
pub use logging::{LogFormat, LogWriter, init_tracing};
pub use signal::{shutdown_signal, try_shutdown_signal};
#[cfg(feature = "kube")]
pub use startup::{StartupError, kube_client, listen};
