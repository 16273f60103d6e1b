//! Azure Instance Metadata Service (IMDS) client: what a gateway node learns about itself
//! (compute metadata: names, resource group, subscription, location, tags) and its load balancer
//! metadata. A leaf crate of its own so the gateway daemon does not link the ARM client (azure_core,
//! azure_identity, a TLS stack) just to read two JSON documents over link-local plain http.
//!
//! ```no_run
//! # async fn demo() -> Result<(), egress_imds::ImdsError> {
//! let imds = egress_imds::ImdsClient::new(egress_imds::DEFAULT_IMDS_URL)?;
//! let me = imds.instance().await?;
//! println!("{} in {}", me.computer_name, me.resource_group_name);
//! # Ok(()) }
//! ```
//!
//! The base URL is configurable so tests and the simulator can serve IMDS from the Azure
//! emulator (`Emulator::imds_url(computer_name)`).

mod client;
mod error;
mod metadata;
mod retry;

pub use client::ImdsClient;
pub use error::ImdsError;
pub use metadata::{InstanceMetadata, IpAddressPair, LoadBalancerIp, LoadBalancerMetadata};
pub use retry::ImdsRetry;

/// The link-local IMDS endpoint.
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254/";

/// api-version of `/metadata/instance`.
pub const INSTANCE_API_VERSION: &str = "2021-02-01";

/// api-version of `/metadata/loadbalancer`.
pub const LOAD_BALANCER_API_VERSION: &str = "2020-10-01";
