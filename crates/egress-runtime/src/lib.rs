//! `egress-runtime`: the process plumbing every long-running binary of kube-egress-gateway
//! shares, so it lives once: the HTTP server for `/healthz`, `/readyz`, `/metrics`
//! ([`http`]), the SIGTERM / Ctrl-C future ([`signal`]) and logging set-up ([`logging`]).
//! It knows nothing of Kubernetes, Azure or any other workspace crate.

pub mod error_chain;
pub mod health;
pub mod http;
pub mod logging;
pub mod signal;

pub use error_chain::error_chain;
pub use health::{HealthSource, Readiness, health_answer};
pub use http::{Answer, InFlight, serve, serve_with};
pub use logging::{LogFormat, LogWriter, init_tracing};
pub use signal::{shutdown_signal, try_shutdown_signal};
