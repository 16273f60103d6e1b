//! `egress-operator`: reconciles StaticGatewayConfigurations to Azure, as the original
//! kube-egress-gateway controller-manager does, with the same object chain (SGC →
//! GatewayLBConfiguration → GatewayVMConfiguration), finalizers, Secret and Azure names.
//!
//! Six controllers share one [`Context`]:
//! * [`sgc`]: spec validation, the key Secret, the owned LB configuration, SGC status.
//! * [`vm_config_chain`]: the GatewayLBConfiguration controller, whose one job is the owned
//!   GatewayVMConfiguration (the chain's next link).
//! * [`pool`]: all Azure work, batched per gateway pool (load balancer, scale-set model and
//!   instances, public IP prefixes), LB/VM configuration status and finalizer release.
//! * [`in_use`]: the in-use protection (pods using each SGC, its deletion held meanwhile).
//! * [`pod_endpoint_status`]: each PodEndpoint's status from the gateway nodes' reports.
//! * [`selector_conflicts`]: the `SelectorConflict` condition of SGCs with a `podSelector`.
//!
//! [`run::run`] starts them (optionally behind a leader Lease) with the HTTP endpoints.
//! See `docs/operator.md`.

// No reconcile reads as phases with a function that long (threshold in clippy.toml).
#![warn(clippy::too_many_lines)]

pub mod cli;
pub mod config;
pub mod context;
pub mod controller;
pub mod error;
pub mod finalizers;
pub mod http;
pub mod in_use;
pub mod keys;
pub mod metrics;
pub mod passes;
pub mod pod_endpoint_status;
pub mod pool;
pub mod run;
pub mod selector_conflicts;
pub mod sgc;
pub mod target;
pub mod vm_config_chain;

pub use config::{AzureSettings, OperatorConfig};
pub use context::Context;
pub use error::{Backoff, Category};
pub use metrics::Metrics;
pub use run::{LeaderElection, RunError, RunOptions, run};
