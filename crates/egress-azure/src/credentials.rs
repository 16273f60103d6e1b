//! Token sources: azure_identity credentials chosen by the config's [`AuthMode`], a static token
//! for tests and emulators, and the pipeline policy that stamps `Authorization: Bearer` on ARM
//! requests (azure_core's policy over https; our own only for allowed plain-http endpoints).

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::headers::AUTHORIZATION;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientOptions, Context, HttpClient, Request, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::sync::Arc;

use crate::config::{AuthMode, CloudConfig};

/// Why a credential could not be created from the config.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// azure_identity rejected the settings (e.g. a malformed tenant ID).
    #[error("failed to create {mode} credential")]
    Build {
        /// Auth mode name.
        mode: &'static str,
        /// azure_identity's error.
        #[source]
        source: azure_core::Error,
    },
    /// The client certificate file could not be read.
    #[error("failed to read client certificate {path}")]
    ReadCertificate {
        /// `aadClientCertPath`.
        path: std::path::PathBuf,
        /// I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// A fixed bearer token (tests, the simulator, a local emulator). Never expires.
#[derive(Debug, Clone)]
pub struct StaticTokenCredential {
    token: Secret,
}

impl StaticTokenCredential {
    /// A credential that always returns `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Secret::new(token.into()),
        }
    }
}

#[async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.token.secret().to_string(),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(24),
        ))
    }
}

/// Builds the azure_identity credential for the config's auth mode. `http` is the transport the
/// credential uses to reach Entra ID / IMDS (the same ring-based client as ARM requests).
pub fn credential_from_config(
    config: &CloudConfig,
    http: Arc<dyn HttpClient>,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = config
        .endpoints
        .authority_host
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let client_options = ClientOptions {
        transport: Some(Transport::new(http)),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        ..Default::default()
    };
    let mode = config.auth.name();
    let build = |source| CredentialError::Build { mode, source };
    let credential: Arc<dyn TokenCredential> = match &config.auth {
        AuthMode::ManagedIdentity { user_assigned_id } => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: user_assigned_id.as_deref().map(user_assigned),
                client_options,
            }))
            .map_err(build)?
        }
        AuthMode::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            secret.clone(),
            Some(ClientSecretCredentialOptions { client_options }),
        )
        .map_err(build)?,
        AuthMode::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => {
            let mut options = WorkloadIdentityCredentialOptions {
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
                ..Default::default()
            };
            options.credential_options.client_options = client_options;
            WorkloadIdentityCredential::new(Some(options)).map_err(build)?
        }
        AuthMode::ClientCertificate {
            tenant_id,
            client_id,
            cert_path,
            password,
        } => certificate(
            tenant_id,
            client_id,
            cert_path,
            password.clone(),
            client_options,
        )?,
    };
    Ok(credential)
}

/// A resource ID names the identity by ARM ID; anything else is its client ID (as the original).
fn user_assigned(id: &str) -> UserAssignedId {
    if id.starts_with('/') {
        UserAssignedId::ResourceId(id.to_string())
    } else {
        UserAssignedId::ClientId(id.to_string())
    }
}

#[cfg(feature = "client-certificate")]
fn certificate(
    tenant_id: &str,
    client_id: &str,
    cert_path: &std::path::Path,
    password: Option<Secret>,
    client_options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let bytes = std::fs::read(cert_path).map_err(|source| CredentialError::ReadCertificate {
        path: cert_path.to_path_buf(),
        source,
    })?;
    let options = azure_identity::ClientCertificateCredentialOptions {
        client_options,
        password,
    };
    Ok(azure_identity::ClientCertificateCredential::new(
        tenant_id.to_string(),
        client_id.to_string(),
        bytes.into(),
        Some(options),
    )
    .map_err(|source| CredentialError::Build {
        mode: "client-certificate",
        source,
    })?)
}

#[cfg(not(feature = "client-certificate"))]
fn certificate(
    _tenant_id: &str,
    _client_id: &str,
    cert_path: &std::path::Path,
    _password: Option<Secret>,
    _client_options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    // Config validation already rejects this; kept as a typed error rather than a panic.
    Err(CredentialError::ReadCertificate {
        path: cert_path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "egress-azure was built without the `client-certificate` feature",
        ),
    })
}

/// Stamps ARM bearer tokens. Over https it is azure_core's `BearerTokenAuthorizationPolicy`
/// (token caching, refresh on 401). Plain http is refused, except to endpoints the config allowed
/// (loopback emulators), where the token is stamped directly.
#[derive(Debug)]
pub(crate) struct ArmAuthPolicy {
    https: BearerTokenAuthorizationPolicy,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    allow_http: bool,
}

impl ArmAuthPolicy {
    pub(crate) fn new(
        credential: Arc<dyn TokenCredential>,
        scope: String,
        allow_http: bool,
    ) -> Self {
        Self {
            https: BearerTokenAuthorizationPolicy::new(credential.clone(), [scope.clone()]),
            credential,
            scope,
            allow_http,
        }
    }
}

#[async_trait]
impl Policy for ArmAuthPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        if request.url().scheme() == "https" {
            return self.https.send(ctx, request, next).await;
        }
        if !self.allow_http {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                format!(
                    "refusing to send a bearer token over plain http to {}",
                    request.url().host_str().unwrap_or("?")
                ),
            ));
        }
        let token = self.credential.get_token(&[&self.scope], None).await?;
        request.insert_header(AUTHORIZATION, format!("Bearer {}", token.token.secret()));
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
