//! Typed Azure Resource Manager (ARM) client for kube-egress-gateway: cloud config, credentials,
//! the few Network/Compute operations the operator needs (behind narrow traits so reconcilers can
//! use fakes), ARM long-running operations, retries, error classification and metrics. It knows
//! nothing of CRDs or Kubernetes. (IMDS, which gateway nodes read, is the `egress-imds` crate.)
//!
//! Entry points: [`CloudConfig::from_file`] → [`ArmClient::from_config`] (or
//! [`ArmClient::builder`] for tests against a local emulator), then the traits in [`ops`]
//! ([`AzureApi`] bundles them all). See `docs/azure.md`.

pub mod api_versions;
pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod lro;
pub mod metrics;
pub mod models;
pub mod ops;
pub mod resource_id;
pub mod retry;
mod transport;

pub use transport::TransportError;

pub use client::{ArmClient, ArmClientBuilder, ClientBuildError};
pub use config::{AuthMode, CloudConfig, ConfigError};
pub use credentials::{CredentialError, StaticTokenCredential};
pub use error::{ArmError, ArmErrorBody, ErrorCategory};
pub use lro::LroPolicy;
pub use metrics::ArmMetrics;
pub use ops::{
    AzureApi, LoadBalancers, NetworkInterfaces, PublicIpAddresses, PublicIpPrefixes, ScaleSetVms,
    ScaleSets, Subnets, VirtualMachines,
};
pub use resource_id::{ResourceGroupId, ResourceId, ResourceIdError};
pub use retry::RetryPolicy;
