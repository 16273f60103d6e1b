//! Pure decisions of a pool pass, from what was read and nothing else (no client): which
//! configurations belong to the pool (`members`), the plan of the whole pass (`pass`: blocked
//! gateways, egress, rules, ipConfigs, prefixes), each gateway's prefix (`prefixes`), the load
//! balancer (`load_balancer`), and the gateway ipConfigs of a scale set's NIC configurations
//! (`scale_set`) or of a VM pool's NICs (`vm_nics`, with their public IPs in `public_ips`),
//! both on the one ipConfig plan they share (`ip_config`); the IPv6 half of dual-stack gateways
//! (`ipv6`), each ipConfig and prefix of one `family`.

pub mod family;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod ip_config;
pub mod ipv6;
pub mod load_balancer;
pub mod members;
pub mod pass;
pub mod prefixes;
pub mod public_ips;
pub mod scale_set;
pub mod vm_nics;

pub use pass::{Observed, PoolPlan, plan, prefixes_to_read};
