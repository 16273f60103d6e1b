//! The cloud config file (`--cloud-config`, YAML or JSON, the original's `azure.json` keys) and
//! its validated form: where resources live, which ARM / Entra endpoints to use and how to
//! authenticate. Turning an [`AuthMode`] into a credential is `credentials`' job, not this one's.

mod raw;
mod validate;

#[cfg(test)]
mod tests;

use azure_core::credentials::Secret;
use azure_core::http::Url;
use std::path::{Path, PathBuf};

use crate::resource_id::ResourceGroupId;

pub use raw::RawCloudConfig;
pub(crate) use validate::is_loopback;

/// Default name of the gateway internal load balancer (as the original's Helm chart).
pub const DEFAULT_LOAD_BALANCER_NAME: &str = "kubeegressgateway-ilb";

/// Why a cloud config cannot be used. Every variant names the offending field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read cloud config {path}")]
    Read {
        /// File that was read.
        path: PathBuf,
        /// I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither valid YAML nor JSON of the expected shape.
    #[error("failed to parse cloud config: {source}")]
    Parse {
        /// Parser error (with line/column).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A required field is absent or blank.
    #[error("cloud config field {field} is required: {why}")]
    Missing {
        /// camelCase key in the file.
        field: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// A field has an unusable value.
    #[error("cloud config field {field} is invalid: {why}")]
    Invalid {
        /// camelCase key in the file.
        field: &'static str,
        /// What is wrong with the value.
        why: String,
    },
    /// Two settings cannot be used together.
    #[error("cloud config fields {first} and {second} contradict each other: {why}")]
    Contradictory {
        /// First key.
        first: &'static str,
        /// Second key.
        second: &'static str,
        /// Why both cannot hold.
        why: &'static str,
    },
}

/// A named Azure cloud, which supplies default endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureCloud {
    /// `AzurePublicCloud`.
    Public,
    /// `AzureChinaCloud`.
    China,
    /// `AzureUSGovernmentCloud`.
    UsGovernment,
    /// `AzureStackCloud` (or any custom cloud): endpoints must be given explicitly.
    Custom,
}

impl AzureCloud {
    /// Parses the `cloud` value, case-insensitively, as cloud-provider-azure does.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "azurepubliccloud" | "azurecloud" | "public" => Some(Self::Public),
            "azurechinacloud" | "china" => Some(Self::China),
            "azureusgovernmentcloud" | "azureusgovernment" | "usgovernment" => {
                Some(Self::UsGovernment)
            }
            "azurestackcloud" | "custom" => Some(Self::Custom),
            _ => None,
        }
    }

    /// Default `(resource manager endpoint, Entra authority host)`; `None` for custom clouds.
    pub fn default_endpoints(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Public => Some((
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
            )),
            Self::China => Some((
                "https://management.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
            )),
            Self::UsGovernment => Some((
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
            )),
            Self::Custom => None,
        }
    }
}

/// How the client obtains ARM tokens.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Managed identity from IMDS (`useManagedIdentityExtension: true`).
    ManagedIdentity {
        /// `userAssignedIdentityID`: a client ID, or a resource ID for a user-assigned identity;
        /// `None` uses the system-assigned identity.
        user_assigned_id: Option<String>,
    },
    /// Service principal with a client secret (`aadClientId` + `aadClientSecret`).
    ClientSecret {
        /// Entra tenant.
        tenant_id: String,
        /// Application (client) ID.
        client_id: String,
        /// The secret (never printed).
        secret: Secret,
    },
    /// Service principal with a PKCS#12 certificate (`aadClientCertPath`, `aadClientCertPassword`).
    ClientCertificate {
        /// Entra tenant.
        tenant_id: String,
        /// Application (client) ID.
        client_id: String,
        /// PKCS#12 (`.pfx`) file with certificate and RSA key.
        cert_path: PathBuf,
        /// Password of the PKCS#12 file, if any.
        password: Option<Secret>,
    },
    /// Entra workload identity: a federated Kubernetes service account token
    /// (`useFederatedWorkloadIdentityExtension`, `aadFederatedTokenFile`, or the
    /// `AZURE_FEDERATED_TOKEN_FILE` environment the AKS webhook injects).
    WorkloadIdentity {
        /// Entra tenant.
        tenant_id: String,
        /// Client ID of the federated identity.
        client_id: String,
        /// Projected service account token file, re-read on every token refresh.
        token_file: PathBuf,
    },
}

impl AuthMode {
    /// Short name for logs and docs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ManagedIdentity { .. } => "managed-identity",
            Self::ClientSecret { .. } => "client-secret",
            Self::ClientCertificate { .. } => "client-certificate",
            Self::WorkloadIdentity { .. } => "workload-identity",
        }
    }
}

/// ARM and Entra endpoints, after applying cloud defaults and overrides.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URL of Resource Manager, e.g. `https://management.azure.com/`.
    pub resource_manager: Url,
    /// Entra ID authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// OAuth scope requested for ARM tokens, e.g. `https://management.azure.com/.default`.
    pub token_scope: String,
    /// Whether bearer tokens may be sent over plain `http://` (loopback emulators only).
    pub allow_insecure_http: bool,
}

/// A validated cloud config.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Named cloud.
    pub cloud: AzureCloud,
    /// Subscription of the cluster resources.
    pub subscription_id: String,
    /// Resource group of gateway VMSS / NICs / managed prefixes (`resourceGroup`).
    pub resource_group: String,
    /// Region of resources the client creates.
    pub location: String,
    /// Virtual network of the gateway subnet.
    pub vnet_name: String,
    /// Resource group of the virtual network (defaults to `resourceGroup`).
    pub vnet_resource_group: String,
    /// Subnet for load balancer frontends.
    pub subnet_name: String,
    /// Gateway internal load balancer name (`loadBalancerName` or `gatewayLoadBalancerName`).
    pub load_balancer_name: String,
    /// Resource group of the load balancer (defaults to `resourceGroup`).
    pub load_balancer_resource_group: String,
    /// `User-Agent` suffix.
    pub user_agent: Option<String>,
    /// How to authenticate.
    pub auth: AuthMode,
    /// Where to send requests.
    pub endpoints: Endpoints,
}

impl CloudConfig {
    /// Reads and validates a YAML or JSON cloud config file. Workload identity settings missing
    /// from the file fall back to the `AZURE_*` environment (as injected by the AKS webhook).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(&text, &|k| std::env::var(k).ok())
    }

    /// Parses and validates config text; `env` looks up environment fallbacks (tests pass a map).
    pub fn from_text(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawCloudConfig =
            serde_saphyr::from_str(text).map_err(|source| ConfigError::Parse {
                source: Box::new(source),
            })?;
        raw.validate(env)
    }

    /// The cluster resource group (`resourceGroup`).
    pub fn resource_group_id(&self) -> ResourceGroupId {
        ResourceGroupId::new(&self.subscription_id, &self.resource_group)
    }

    /// The load balancer's resource group.
    pub fn load_balancer_group_id(&self) -> ResourceGroupId {
        ResourceGroupId::new(&self.subscription_id, &self.load_balancer_resource_group)
    }

    /// The gateway subnet's ID.
    pub fn subnet_id(&self) -> crate::ResourceId {
        ResourceGroupId::new(&self.subscription_id, &self.vnet_resource_group)
            .subnet(&self.vnet_name, &self.subnet_name)
    }

    /// The gateway load balancer's ID.
    pub fn load_balancer_id(&self) -> crate::ResourceId {
        self.load_balancer_group_id()
            .load_balancer(&self.load_balancer_name)
    }
}
