//! The default HTTP transport: reqwest with rustls on the ring provider (the provider kube uses,
//! so the workspace links one crypto library, not ring and aws-lc-rs) and the platform's roots.

use azure_core::http::HttpClient;
use std::sync::Arc;
use std::time::Duration;

/// Why the default HTTP transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// rustls rejected the configuration or the platform verifier found no roots.
    #[error("failed to configure TLS")]
    Tls(#[source] rustls::Error),
    /// reqwest refused the builder settings.
    #[error("failed to build the HTTP client")]
    Build(#[source] reqwest::Error),
}

fn tls_config() -> Result<rustls::ClientConfig, TransportError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TransportError::Tls)?
        .with_platform_verifier()
        .map_err(TransportError::Tls)?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A reqwest client for ARM and Entra: connect timeout, per-request timeout, no redirects
/// (ARM does not redirect; following one could leak the bearer token).
pub(crate) fn http_client(
    request_timeout: Duration,
) -> Result<Arc<dyn HttpClient>, TransportError> {
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .connect_timeout(Duration::from_secs(20))
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(TransportError::Build)?;
    Ok(Arc::new(client))
}
