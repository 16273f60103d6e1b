//! Gateway node daemon of kube-egress-gateway (reference §5): for every ready
//! StaticGatewayConfiguration whose GatewayVMConfiguration lists this node, it programs the
//! ILB address, one WireGuard interface per gateway in the gateway namespace (socket in the
//! host namespace), the veth, the secondary IP, SNAT and routes through `egress-dataplane`;
//! turns PodEndpoints into peers one event at a time; answers the load balancer's health
//! probe; writes a batched GatewayStatus; exports metrics.
//!
//! Layers: `translate`, `trust`, `placement` and `desired` are pure (objects → desired node
//! state; which PodEndpoints may speak for a pod and who holds each slot); `programmer`
//! turns changes into data-plane work; `watch`, `status`, `status_write`, `report`, `probe`,
//! `http`, `counters`, `snat`, `egress_ips`, `lifecycle` (is the node going away?) and
//! `probe_file` are the I/O around it; `run` wires them; `cli` builds them from flags.
//! `keeper` is the `lb-probe` subcommand that answers the load balancer from the probe state
//! file while no daemon runs.

pub mod cli;
pub mod counters;
pub mod desired;
pub mod egress_ips;
#[cfg(test)]
mod fixtures;
pub mod http;
pub mod inventory;
pub mod ipv6;
pub mod keeper;
pub mod lb_memory;
pub mod lifecycle;
pub mod metrics;
pub mod node;
pub mod placement;
pub mod pods;
pub mod probe;
pub mod probe_file;
pub mod programmer;
pub mod report;
pub mod run;
pub mod sessions;
pub mod snat;
pub mod status;
pub mod status_write;
pub mod translate;
pub mod trust;
pub mod watch;

pub use desired::{Desired, HostConfig};
pub use inventory::{Change, Delta, Inventory};
pub use node::NodeIdentity;
pub use programmer::{Outputs, Programmer};
pub use run::{Daemon, DaemonConfig, DaemonOptions, Listeners};
