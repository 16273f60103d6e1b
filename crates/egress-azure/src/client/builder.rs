//! [`ArmClientBuilder`]: assembles an [`ArmClient`] from an endpoint, a token source, a transport
//! and policies (the azure_core pipeline with our auth policy and no pipeline retries).

use azure_core::credentials::TokenCredential;
use azure_core::http::{
    ClientOptions, HttpClient, Pipeline, RetryOptions, Transport, Url, UserAgentOptions,
};
use std::sync::Arc;
use std::time::Duration;

use super::{ArmClient, Inner};
use crate::config::CloudConfig;
use crate::credentials::{
    ArmAuthPolicy, CredentialError, StaticTokenCredential, credential_from_config,
};
use crate::lro::LroPolicy;
use crate::metrics::ArmMetrics;
use crate::retry::RetryPolicy;
use crate::transport::{TransportError, http_client};

/// Why an [`ArmClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The HTTP transport could not be created.
    #[error("failed to build the ARM HTTP transport")]
    Transport(#[from] TransportError),
    /// The credential could not be created.
    #[error("failed to build the ARM credential")]
    Credential(#[from] CredentialError),
    /// Neither a credential nor a static token was given.
    #[error("failed to build the ARM client: no credential configured")]
    MissingCredential,
}

/// Builder of [`ArmClient`], for tests and emulators (production uses [`ArmClient::from_config`]).
#[derive(Debug)]
pub struct ArmClientBuilder {
    endpoint: Url,
    credential: Option<Arc<dyn TokenCredential>>,
    transport: Option<Arc<dyn HttpClient>>,
    scope: String,
    allow_http: bool,
    retry: RetryPolicy,
    lro: LroPolicy,
    metrics: ArmMetrics,
    user_agent: Option<String>,
    request_timeout: Duration,
    /// Credential to build from the config at `build()` unless one was given explicitly.
    config: Option<CloudConfig>,
}

impl ArmClientBuilder {
    /// Token source (any azure_core `TokenCredential`).
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Use a fixed bearer token ([`StaticTokenCredential`]).
    pub fn static_token(self, token: &str) -> Self {
        self.credential(Arc::new(StaticTokenCredential::new(token)))
    }

    /// Replace the HTTP transport (e.g. an in-process fake `HttpClient`).
    pub fn transport(mut self, transport: Arc<dyn HttpClient>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// OAuth scope for ARM tokens (default: `{endpoint}/.default`).
    pub fn token_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Allow bearer tokens over plain http (default: only for loopback endpoints).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Retry policy for single requests.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Long-running operation policy.
    pub fn lro(mut self, lro: LroPolicy) -> Self {
        self.lro = lro;
        self
    }

    /// Share metrics (e.g. ones registered in the binary's registry).
    pub fn metrics(mut self, metrics: ArmMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// `User-Agent` application id.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Timeout of one HTTP attempt with the default transport (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<ArmClient, ClientBuildError> {
        let transport = match self.transport {
            Some(t) => t,
            None => http_client(self.request_timeout)?,
        };
        let credential = match (self.credential, &self.config) {
            (Some(c), _) => c,
            (None, Some(config)) => credential_from_config(config, transport.clone())?,
            (None, None) => return Err(ClientBuildError::MissingCredential),
        };
        let auth = ArmAuthPolicy::new(credential, self.scope, self.allow_http);
        let options = ClientOptions {
            // Retries are ours (budget, metrics, idempotency); the pipeline must not add its own.
            retry: RetryOptions::none(),
            transport: Some(Transport::new(transport)),
            user_agent: UserAgentOptions {
                application_id: self.user_agent,
            },
            ..Default::default()
        };
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            vec![Arc::new(auth)],
            None,
        );
        Ok(ArmClient {
            inner: Arc::new(Inner {
                pipeline,
                endpoint: self.endpoint,
                retry: self.retry,
                lro: self.lro,
                metrics: self.metrics,
            }),
        })
    }
}

impl ArmClient {
    /// A builder for `endpoint` (e.g. an emulator's `http://127.0.0.1:PORT/`).
    pub fn builder(endpoint: Url) -> ArmClientBuilder {
        let mut endpoint = endpoint;
        if !endpoint.path().ends_with('/') {
            let p = format!("{}/", endpoint.path());
            endpoint.set_path(&p);
        }
        let scope = format!("{}/.default", endpoint.as_str().trim_end_matches('/'));
        let allow_http = crate::config::is_loopback(&endpoint);
        ArmClientBuilder {
            endpoint,
            credential: None,
            transport: None,
            scope,
            allow_http,
            retry: RetryPolicy::default(),
            lro: LroPolicy::default(),
            metrics: ArmMetrics::default(),
            user_agent: None,
            request_timeout: Duration::from_secs(60),
            config: None,
        }
    }

    /// The production client: endpoints, credential (per `auth`) and user agent from the config.
    pub fn from_config(config: &CloudConfig) -> Result<Self, ClientBuildError> {
        Self::builder_from_config(config).build()
    }

    /// A builder preset from the config; override what a test or the simulator needs (e.g.
    /// `.static_token(..)` against an emulator, `.retry(..)`, shared `.metrics(..)`). The
    /// config's credential is only created at `build()` if none was set.
    pub fn builder_from_config(config: &CloudConfig) -> ArmClientBuilder {
        let mut b = Self::builder(config.endpoints.resource_manager.clone())
            .token_scope(config.endpoints.token_scope.clone())
            .allow_insecure_http(config.endpoints.allow_insecure_http);
        if let Some(ua) = &config.user_agent {
            b = b.user_agent(ua.clone());
        }
        b.config = Some(config.clone());
        b
    }
}
