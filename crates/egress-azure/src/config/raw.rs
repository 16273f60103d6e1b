//! The cloud config file exactly as written (every key optional), before validation. Keys follow
//! the original (`pkg/config/config.go`, azclient's `ARMClientConfig`/`AzureAuthConfig`); keys we
//! do not use (rate limits, backoff, ...) are accepted and ignored, as an AKS `azure.json` has many.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Unvalidated cloud config; see `docs/azure.md` for each key.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawCloudConfig {
    /// `AzurePublicCloud`, `AzureChinaCloud`, `AzureUSGovernmentCloud` or `AzureStackCloud`.
    pub cloud: Option<String>,
    /// Entra tenant.
    pub tenant_id: Option<String>,
    /// Subscription.
    pub subscription_id: Option<String>,
    /// Cluster / gateway resource group.
    pub resource_group: Option<String>,
    /// Region.
    pub location: Option<String>,
    /// Virtual network name.
    pub vnet_name: Option<String>,
    /// Virtual network resource group.
    pub vnet_resource_group: Option<String>,
    /// Subnet name.
    pub subnet_name: Option<String>,
    /// Gateway load balancer name.
    #[serde(alias = "gatewayLoadBalancerName")]
    pub load_balancer_name: Option<String>,
    /// Load balancer resource group.
    pub load_balancer_resource_group: Option<String>,
    /// Use managed identity.
    pub use_managed_identity_extension: Option<bool>,
    /// User-assigned identity (client ID or resource ID).
    #[serde(rename = "userAssignedIdentityID", alias = "userAssignedIdentityId")]
    pub user_assigned_identity_id: Option<String>,
    /// Service principal client ID (also the workload identity client ID).
    pub aad_client_id: Option<String>,
    /// Service principal secret.
    pub aad_client_secret: Option<String>,
    /// Service principal PKCS#12 certificate path.
    pub aad_client_cert_path: Option<String>,
    /// Password of the PKCS#12 certificate.
    pub aad_client_cert_password: Option<String>,
    /// Use Entra workload identity (federated token).
    pub use_federated_workload_identity_extension: Option<bool>,
    /// Federated token file (defaults to `AZURE_FEDERATED_TOKEN_FILE`).
    pub aad_federated_token_file: Option<String>,
    /// `User-Agent` suffix.
    pub user_agent: Option<String>,
    /// Resource Manager base URL override (sovereign clouds, Azure Stack, local emulator).
    pub resource_manager_endpoint: Option<String>,
    /// Entra authority host override.
    pub active_directory_authority_host: Option<String>,
    /// Token audience / scope base for ARM (defaults to the cloud's, or the endpoint).
    pub resource_manager_audience: Option<String>,
    /// Allow sending bearer tokens over plain http to a non-loopback host (never in production).
    pub allow_insecure_http: Option<bool>,
    /// Keys this crate does not use.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}
